// `sis2alma upload ZIP... --config FILE`: delivers zips made earlier (by `convert`, or by a run
// whose delivery failed) to the target in the run config, with the same checks as `run`.
import path from 'node:path';
import type { Command } from './index.js';
import { loadRunConfig } from '../config.js';
import { deliverZips } from '../deliver.js';
import { archiveFiles, pruneArchive, pruneOutput } from '../archive.js';
import { RunError } from '../errors.js';
import { createLogger } from '../log.js';
import { withLock } from './run.js';

interface UploadArgs {
  zips: string[];
  config: string;
  quiet?: boolean;
  exitCode?: number;
}

export const uploadCommand: Command = {
  command: 'upload <zips..>',
  describe: 'Deliver zip files to the target in a run config (atomically, with stale-file checks and retries)',
  builder: (yargs) =>
    yargs
      .positional('zips', { type: 'string', array: true, describe: 'The zip files to deliver, in the order Alma should load them' })
      .option('config', { type: 'string', demandOption: true, describe: 'The run config (YAML) that names the delivery target' })
      .option('quiet', { type: 'boolean', default: false, describe: 'Print only warnings and errors' })
      .example('$0 upload out/infiniti-20261121T031500.zip --config /etc/sis2alma/config.yaml', 'deliver one zip'),
  handler: async (args) => {
    const argv = args as unknown as UploadArgs;
    const log = createLogger({ quiet: argv.quiet ?? false });
    const config = loadRunConfig(argv.config);
    const zips = argv.zips.map((z) => path.resolve(z));
    const bad = zips.find((z) => !z.toLowerCase().endsWith('.zip'));
    if (bad) throw new RunError('usage', `${bad} is not a .zip file: Alma's user import loads zip files`);
    const now = new Date();
    const result = await withLock(config.outputDir, now, () => deliverZips(config.delivery, zips, { log }));
    const folder = await archiveFiles(config.archive, zips, now);
    await pruneOutput(config.outputDir, config.archive, now, zips);
    await pruneArchive(config.archive, now);
    log.info(`upload: delivered ${result.delivered.map((d) => path.basename(d.file)).join(', ')} to ${result.delivered[0]?.target ?? ''}; archived in ${folder}`);
    argv.exitCode = 0;
  },
};
