import path from 'node:path';
import type { Argv } from 'yargs';
import { createLogger } from '../shared/log.js';
import { RunError } from '../shared/errors.js';
import { parseMaxRejected } from '../pipeline/report.js';
import { logFormatOption, type Command } from './command.js';
import { progressView } from './progress-view.js';

/** Options every command that converts shares (convert here; run and serve take them from the config). */
export function runTime(now: string | undefined): Date {
  if (now === undefined) return new Date();
  const date = new Date(now);
  if (Number.isNaN(date.getTime())) throw new RunError('usage', `--now expects a date and time such as 2026-11-21T02:00:00, not '${now}'`);
  return date;
}

/** A path as short as it can be said: relative below the current folder, absolute elsewhere. */
function shown(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : path.resolve(file);
}

export const convertCommand: Command = {
  command: 'convert',
  describe: 'Turn SIS CSV exports into a validated zip of Alma user XML, with a report',
  builder: (y: Argv) =>
    logFormatOption(y)
      .option('mapping', { type: 'string', demandOption: true, describe: 'The mapping file (YAML)' })
      .option('input', { type: 'string', array: true, demandOption: true, describe: 'A CSV export; repeat for several (e.g. students and staff)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Folder for the zip, report and rejects files' })
      .option('encoding', { type: 'string', default: 'utf-8', describe: 'Encoding of the CSV files (utf-8, windows-1252, latin1, utf-16le, ...)' })
      .option('schema', { type: 'string', describe: "XSD to validate against (default: the project's schemas/alma_users.xsd)" })
      .option('chunk-size', { type: 'number', default: 10000, describe: 'Users per XML file in the zip' })
      .option('max-rejected', { type: 'string', default: '5%', describe: 'Deliver nothing when more rows than this fail: a count (25) or a share (5%)' })
      .option('min-users', { type: 'number', default: 0, describe: 'Deliver nothing when fewer users than this would be written' })
      .option('now', { type: 'string', describe: 'Run as if at this time (ISO 8601), for reruns and tests' })
      .option('show-pii', { type: 'boolean', default: false, describe: 'Let logs show ids in full' })
      .option('quiet', { type: 'boolean', default: false, describe: 'Print nothing but problems' })
      .check((argv) => {
        if (!Number.isInteger(argv['chunk-size']) || (argv['chunk-size'] as number) < 1) throw new RunError('usage', `--chunk-size expects a whole number of users, at least 1, not ${argv['chunk-size']}`);
        if (!parseMaxRejected(String(argv['max-rejected']))) throw new RunError('usage', `--max-rejected expects a count (25) or a share (5%), not '${argv['max-rejected']}'`);
        if (!Number.isInteger(argv['min-users']) || (argv['min-users'] as number) < 0) throw new RunError('usage', `--min-users expects a whole number, not ${argv['min-users']}`);
        return true;
      }),
  handler: async (argv) => {
    const { convert } = await import('../pipeline/convert.js');
    const view = progressView(createLogger({ command: 'convert', format: argv['log-format'], showPii: argv['show-pii'], quiet: argv.quiet }), { quiet: argv.quiet });
    const log = view.log;
    const result = await convert({
      mappingFile: argv.mapping,
      inputs: argv.input,
      outDir: argv.out,
      encoding: argv.encoding,
      schemaFile: argv.schema,
      chunkSize: argv['chunk-size'],
      guards: { maxRejected: argv['max-rejected'], minUsers: argv['min-users'] },
      now: runTime(argv.now),
      log,
      progress: view,
    }).finally(() => view.close());
    for (const zip of result.zips) log.info(`Wrote ${shown(zip)}`);
    log.info(`Report: ${shown(result.reportFile)}`);
    if (result.rejectsFile) log.info(`Rejected rows: ${shown(result.rejectsFile)}`);
    argv.exitCode = result.exitCode;
  },
};
