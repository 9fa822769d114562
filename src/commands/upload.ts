// `sis2alma upload ZIP... --config FILE`: delivers zips made earlier (by `convert`, or by a run
// whose delivery failed) to the target in the run config, with the same checks as `run`. Alma
// loads whatever zip lands in its folder, and with `stale: rename` an upload first moves the real
// pending zips aside, so each zip is checked to be an Alma users package (`validate`'s checks,
// with Alma's limits) before anything on the server is touched.
import path from 'node:path';
import { logFormatOption, type Command } from './command.js';
import { RunError } from '../shared/errors.js';
import { createLogger, type LogFormat, type Logger } from '../shared/log.js';
import { validateFiles } from './validate.js';
import { progressView } from './progress-view.js';

interface UploadArgs {
  zips: string[];
  config: string;
  schema?: string;
  quiet?: boolean;
  logFormat?: LogFormat;
  exitCode?: number;
}

export const uploadCommand: Command = {
  command: 'upload <zips..>',
  describe: 'Deliver zip files to the target in a run config (atomically, with stale-file checks and retries)',
  builder: (yargs) =>
    logFormatOption(yargs)
      .positional('zips', { type: 'string', array: true, describe: 'The zip files to deliver, in the order Alma should load them' })
      .option('config', { type: 'string', demandOption: true, describe: 'The run config (YAML) that names the delivery target' })
      .option('schema', { type: 'string', describe: "XSD the users are checked against before anything is sent (default: sis2alma's schemas/alma_users.xsd); e.g. Ex Libris' rest_users.xsd" })
      .option('quiet', { type: 'boolean', default: false, describe: 'Print only warnings and errors' })
      .example('$0 upload out/users_infiniti_20261121-031500.zip --config /etc/sis2alma/config.yaml', 'deliver one zip'),
  handler: async (args) => {
    const argv = args as unknown as UploadArgs;
    const view = progressView(createLogger({ command: 'upload', format: argv.logFormat ?? 'text', quiet: argv.quiet ?? false }), { quiet: argv.quiet ?? false });
    const log = view.log;
    const [{ loadRunConfig }, { deliverZips }, { keepDelivered }, { withLock }] = await Promise.all([
      import('../config/run-config.js'),
      import('../delivery/deliver.js'),
      import('../delivery/archive.js'),
      import('../job/lock.js'),
    ]);
    const config = loadRunConfig(argv.config);
    const zips = argv.zips.map((z) => path.resolve(z));
    const bad = zips.find((z) => !z.toLowerCase().endsWith('.zip'));
    if (bad) throw new RunError('usage', `${bad} is not a .zip file: Alma's user import loads zip files`);
    await checkPackages(zips, argv.schema, log);
    const now = new Date();
    // The archive and the pruning touch output_dir too: under the lock, as a run's do.
    const { result, folder } = await withLock(config.outputDir, now, async () => {
      const result = await deliverZips(config.delivery, zips, { log, progress: view }).finally(() => view.close());
      return { result, folder: await keepDelivered(config.archive, config.outputDir, zips, zips, now, (m) => log.warn(m)) };
    });
    log.info(`delivered ${result.delivered.map((d) => path.basename(d.file)).join(', ')} to ${result.delivered[0]?.target ?? ''}${folder ? `; archived in ${folder}` : ''}`);
    argv.exitCode = 0;
  },
};

/** Refuses, before any connection, a zip Alma's SIS load would not take; names the zip and its first problem. */
async function checkPackages(zips: string[], schema: string | undefined, log: Logger): Promise<void> {
  const refused: { zip: string; problems: string[] }[] = [];
  for (const zip of zips) {
    const problems: string[] = [];
    const result = await validateFiles([zip], {
      ...(schema !== undefined ? { schema } : {}),
      almaPackage: true,
      write: (line, kind) => (kind === 'problem' ? problems.push(line) : log.info(line)),
    });
    if (result.failed > 0) refused.push({ zip, problems });
  }
  const first = refused[0];
  if (!first) return;
  const more = first.problems.length - 1;
  const others = refused.slice(1).map((r) => path.basename(r.zip));
  throw new RunError(
    'input_invalid',
    `${first.problems[0] ?? `${first.zip}: not an Alma users package`}` +
      (more > 0 ? ` (and ${more} more ${more === 1 ? 'problem' : 'problems'}: sis2alma validate ${first.zip} lists them)` : '') +
      `; refused: nothing was uploaded` +
      (others.length > 0 ? ` (${others.join(', ')} refused too)` : ''),
    { file: first.zip },
  );
}
