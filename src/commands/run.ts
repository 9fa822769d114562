// `sis2alma run --config FILE`: the nightly job, unattended. It reads as the job's design card:
// lock → convert (read, map, write, validate, zip, guards) → deliver → archive → record in report.
import { logFormatOption, type Command } from './command.js';
import { RunError } from '../shared/errors.js';
import { createLogger, type LogFormat } from '../shared/log.js';
import { parseMaxRejected } from '../pipeline/report.js';
import { runTime } from './convert.js';
import { progressView } from './progress-view.js';

interface RunArgs {
  config: string;
  dryRun?: boolean;
  quiet?: boolean;
  maxRejected?: string;
  minUsers?: number;
  showPii?: boolean;
  logFormat?: LogFormat;
  now?: string;
  acceptChanges?: boolean;
  full?: boolean;
  exitCode?: number;
}

export const runCommand: Command = {
  command: 'run',
  describe: 'The nightly job: convert the inputs named in a run config, check the guards, and deliver the zips to Alma',
  builder: (yargs) =>
    logFormatOption(yargs)
      .option('config', { type: 'string', demandOption: true, describe: 'The run config (YAML): mapping, inputs, folders, guards, delivery target' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Do everything but the upload: convert, check guards, connect and list the remote folder' })
      .option('quiet', { type: 'boolean', default: false, describe: 'Print only warnings and errors' })
      .option('max-rejected', { type: 'string', describe: "Override the config's guards.max_rejected: a count (25) or a share (5%)" })
      .option('min-users', { type: 'number', describe: "Override the config's guards.min_users" })
      .option('show-pii', { type: 'boolean', default: false, describe: 'Let logs show ids in full' })
      .option('accept-changes', { type: 'boolean', default: false, describe: 'Deliver a night whose changes since the last delivery trip the guards against it (max_departures, max_group_changes, max_field_loss, max_new_users), once you have checked them' })
      .option('full', { type: 'boolean', default: false, describe: 'Send every user tonight, where the run config says state.mode: delta' })
      .option('now', { type: 'string', describe: 'Run as if at this time (ISO 8601): fixes expiry dates and file names, for a rerun of a missed night' })
      .check((argv) => {
        if (argv['max-rejected'] !== undefined && !parseMaxRejected(String(argv['max-rejected'])))
          throw new RunError('usage', `--max-rejected expects a count (25) or a share (5%), not '${argv['max-rejected']}'`);
        if (argv['min-users'] !== undefined && (!Number.isInteger(argv['min-users']) || (argv['min-users'] as number) < 0))
          throw new RunError('usage', `--min-users expects a whole number, not ${argv['min-users']}`);
        return true;
      })
      .example('$0 run --config /etc/sis2alma/config.yaml', 'convert and deliver, as cron or a systemd timer would')
      .example('$0 run --config /etc/sis2alma/config.yaml --dry-run', 'check everything without uploading'),
  handler: async (args) => {
    const argv = args as unknown as RunArgs;
    const view = progressView(createLogger({ command: 'run', format: argv.logFormat ?? 'text', quiet: argv.quiet ?? false, showPii: argv.showPii ?? false }), { quiet: argv.quiet ?? false });
    const log = view.log;
    const [{ loadRunConfig }, { runJob }] = await Promise.all([import('../config/run-config.js'), import('../job/run-job.js')]);
    const config = loadRunConfig(argv.config);
    // The command line overrides the config's guards, e.g. to push through a known-bad night by hand.
    if (argv.maxRejected !== undefined) config.guards = { ...config.guards, maxRejected: argv.maxRejected };
    if (argv.minUsers !== undefined) config.guards = { ...config.guards, minUsers: argv.minUsers };
    const result = await runJob(config, { now: runTime(argv.now), dryRun: argv.dryRun ?? false, acceptChanges: argv.acceptChanges ?? false, full: argv.full ?? false, log, progress: view }).finally(() => view.close());
    if (result.deliveryError) {
      log.warn(result.summary);
      throw result.deliveryError;
    }
    (result.exitCode === 0 ? log.info : log.warn)(result.summary);
    argv.exitCode = result.exitCode;
  },
};
