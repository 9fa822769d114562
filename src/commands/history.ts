// `sis2alma history --config FILE`: what the run state remembers of the delivered runs, one run
// (`show RUN`), and one person run by run (`person ID`): what was sent, and why (the user group
// rule, the merge). Reads state.db and nothing else; --json for scripts.
import type { Command } from './command.js';
import { RunError } from '../shared/errors.js';
import type { PersonHistory, RunRow } from '../state/history.js';

interface HistoryArgs {
  config: string;
  account?: string;
  json?: boolean;
  run?: number;
  id?: string;
}

const common = (yargs: import('yargs').Argv) =>
  yargs
    .option('config', { type: 'string', demandOption: true, describe: 'The run config whose run state to read' })
    .option('account', { type: 'string', describe: 'With a serve config: the push account whose run state to read' })
    .option('json', { type: 'boolean', default: false, describe: 'Print JSON instead of text' });

/**
 * The state.db to read: the run config's, or with --account, the state of one push account of a
 * serve config (`<state dir>/<account>/state.db`). Asked for a serve config's own state, which
 * does not exist, it names the accounts that have one.
 */
async function stateFile(config: string, account?: string): Promise<string> {
  const [{ stateDirOf }, { accountStateDir, stateFileOf, STATE_FILE }, { existsSync, readdirSync }] = await Promise.all([import('../config/run-config.js'), import('../state/store.js'), import('node:fs')]);
  const dir = stateDirOf(config);
  if (!dir) throw new RunError('usage', `the run config ${config} keeps no run state (state: { enabled: false })`);
  if (account !== undefined) {
    const file = stateFileOf(accountStateDir(dir, account));
    if (!existsSync(file)) throw new RunError('usage', `no run state for the push account "${account}" in ${dir} (${file} does not exist): no push of that account has been delivered yet, or the name is not the account's username`);
    return file;
  }
  const file = stateFileOf(dir);
  if (!existsSync(file)) {
    const accounts = (existsSync(dir) ? readdirSync(dir, { withFileTypes: true }) : []).filter((e) => e.isDirectory() && existsSync(`${dir}/${e.name}/${STATE_FILE}`)).map((e) => decodeAccount(e.name));
    if (accounts.length)
      throw new RunError('usage', `${file} does not exist, but pushes to \`sis2alma serve\` keep a run state per account in ${dir}: name one with --account (${accounts.map((a) => JSON.stringify(a)).join(', ')})`);
  }
  return file;
}

/** The account's username from its state folder's name (store.ts accountStateDir writes other bytes as %XX). */
function decodeAccount(folder: string): string {
  try {
    return decodeURIComponent(folder);
  } catch {
    return folder;
  }
}

const print = (text: string): void => {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
};

export const historyCommand: Command = {
  command: 'history',
  describe: 'What the run state remembers: the delivered runs, one run, or one person run by run',
  builder: (yargs) =>
    common(yargs)
      .command({
        command: 'show <run>',
        describe: 'One delivered run: its counts, changes, guards and files',
        builder: (y) => common(y).positional('run', { type: 'number', describe: 'The run number, as history lists it' }),
        handler: async (args) => {
          const argv = args as unknown as HistoryArgs;
          if (!Number.isInteger(argv.run)) throw new RunError('usage', `history show expects a run number, not '${argv.run}'`);
          const file = await stateFile(argv.config, argv.account);
          const { showRun } = await import('../state/history.js');
          const run = showRun(file, argv.run!);
          print(argv.json ? JSON.stringify(run, null, 2) : describeRun(run));
        },
      })
      .command({
        command: 'person <id>',
        describe: 'What was sent for one person, run by run, and why (the user group rule, the merge)',
        builder: (y) => common(y).positional('id', { type: 'string', describe: 'The primary id' }),
        handler: async (args) => {
          const argv = args as unknown as HistoryArgs;
          const file = await stateFile(argv.config, argv.account);
          const { personHistory } = await import('../state/history.js');
          const person = personHistory(file, String(argv.id), argv.json ?? false);
          print(argv.json ? JSON.stringify(person, null, 2) : describePerson(person));
        },
      })
      .example('$0 history --config /etc/sis2alma/config.yaml', 'the delivered runs')
      .example('$0 history show 12 --config /etc/sis2alma/config.yaml', 'one run')
      .example('$0 history person astu1 --config /etc/sis2alma/config.yaml', 'why does this user have this group?')
      .example('$0 history --config /etc/sis2alma/serve-config.yaml --account infiniti', 'the delivered pushes of one serve account'),
  handler: async (args) => {
    const argv = args as unknown as HistoryArgs;
    const file = await stateFile(argv.config, argv.account);
    const { listRuns } = await import('../state/history.js');
    const runs = listRuns(file);
    if (argv.json) return print(JSON.stringify(runs, null, 2));
    if (!runs.length) return print(`no delivered run in the run state ${file} yet`);
    print(table(['run', 'time', 'mode', 'outcome', 'users', 'rejected', 'new', 'changed', 'departed', 'returned', 'files'], runs.map((r) => [String(r.id), r.run_time, r.mode, r.outcome, String(r.counts.users ?? ''), String(r.counts.rejected ?? ''), String(r.changes.new.count), String(r.changes.changed.count), String(r.changes.departed.count), String(r.changes.returned.count), r.files.join(' ')])));
  },
};

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

function describeRun(r: RunRow): string {
  const c = r.changes;
  const fields = Object.entries(c.changed.fields).map(([f, n]) => `${f} ${n}`).join(', ');
  const lines = [
    `run ${r.id}, ${r.run_time}: ${r.outcome} (${r.mode})`,
    `config ${r.config_file} (sha256 ${r.config_sha256})`,
    `mapping ${r.mapping_file} (sha256 ${r.mapping_sha256})`,
    `counts: ${Object.entries(r.counts).map(([k, v]) => `${v} ${k}`).join(', ')}`,
    c.first_night
      ? 'changes: first night, nothing compared'
      : `changes: ${c.new.count} new, ${c.changed.count} changed${fields ? ` (${fields})` : ''}, ${c.unchanged.count} unchanged, ${c.departed.count} departed, ${c.returned.count} returned`,
    ...(c.group_moves.length ? ['group moves:', ...c.group_moves.map((m) => `  ${m.from || '(none)'} → ${m.to || '(none)'}: ${m.count}`)] : []),
    ...(c.guards.length ? [`guards${c.accepted ? ` (accepted with ${c.accepted_by ?? '--accept-changes'})` : ''}:`, ...c.guards.map((g) => `  ${g.guard}: ${g.message}`)] : []),
    `files: ${r.files.join(', ')}`,
    ...(r.report_file ? [`report: ${r.report_file}`] : []),
  ];
  return lines.join('\n');
}

function describePerson(p: PersonHistory): string {
  const why = (n: { group_rule: string; merge?: string; rows: string[] }) =>
    `rule "${n.group_rule}"${n.merge ? `; merged${n.rows.length ? ` from rows ${n.rows.join(', ')}` : ''}: ${n.merge}` : n.rows.length ? `; row ${n.rows.join(', ')}` : ''}`;
  const lines = [
    `${p.primary_id}: user group ${p.user_group} (${why({ ...p, rows: [] })}), expiry ${p.expiry_date || '(none)'}; first sent ${p.first_seen}, last sent ${p.last_seen} (run ${p.last_run}${p.current ? ', the last delivered run' : ''})`,
    ...p.runs.map((n) =>
      n.change === 'departed'
        ? `run ${n.run}  ${n.run_time}  departed: not in the feed`
        : n.change === 'departure sent'
          ? `run ${n.run}  ${n.run_time}  departure sent: the last record, as the run config's departures: says`
          : `run ${n.run}  ${n.run_time}  ${n.change}${n.fields.length ? ` (${n.fields.join(', ')})` : ''}: ${n.user_group}, ${why(n)}`,
    ),
  ];
  return lines.join('\n');
}
