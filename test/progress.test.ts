// Issue 14, items 2 and 5, through the commands as an operator and a librarian run them: progress
// on a terminal (a pseudo-terminal made by util-linux `script`) and one line per stage without
// one (cron); report.json in reading order; `mapping explain` in words.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generate } from '../bench/generate.js';
import { PACKAGE_ROOT } from '../src/shared/paths.js';
import { CLI, NOW, runCli, tempDir } from './helpers/run-cli.js';
import { untimed } from './helpers/log-lines.js';

const UNIVERSITY = path.join(PACKAGE_ROOT, 'mappings', 'university.yaml');
const ROWS = 20_000;
const scriptMissing = spawnSync('script', ['--version']).error ? 'util-linux script is not installed' : undefined;

/** A run config that converts `inputs` and delivers into a folder. */
function runConfig(inputs: string[]): { config: string; out: string } {
  const dir = tempDir('sis2alma-progress-');
  const out = path.join(dir, 'out');
  const config = path.join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      `mapping: ${JSON.stringify(UNIVERSITY)}`,
      'inputs:',
      ...inputs.map((i) => `  - ${JSON.stringify(i)}`),
      `output_dir: ${JSON.stringify(out)}`,
      'guards:',
      '  max_rejected: "50%"',
      'delivery:',
      '  target: dir',
      `  dir: ${JSON.stringify(path.join(dir, 'delivered'))}`,
      '  create_dir: true',
      '',
    ].join('\n'),
  );
  return { config, out };
}

/** Runs the CLI under a pseudo-terminal (stdin, stdout and stderr all on it); what the terminal showed. */
function underTerminal(args: string[]): Promise<{ code: number; screen: string }> {
  // A terminal wide enough for the whole line (a narrow one cuts it at its width).
  const command = 'stty cols 200; ' + [process.execPath, CLI, ...args].map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => out.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, screen: Buffer.concat(out).toString('utf8') }));
  });
}

function reportOf(out: string): Record<string, unknown> {
  const name = readdirSync(out).find((f) => f.endsWith('.report.json'));
  assert.ok(name, `a report in ${out}`);
  return JSON.parse(readFileSync(path.join(out, name), 'utf8')) as Record<string, unknown>;
}

describe('a long run shows progress on a terminal, and stage lines without one', () => {
  let inputs: string[];
  let students: number;
  let employees: number;
  before(async () => {
    const g = await generate({ rows: ROWS, seed: 14, outDir: tempDir('sis2alma-progress-data-') });
    inputs = g.files;
    students = g.students;
    employees = g.employees;
  });

  test('under a pseudo-terminal: a bar per stage with counts, rates and the time left, and the upload in bytes', { skip: scriptMissing }, async () => {
    const { config, out } = runConfig(inputs);
    const { code, screen } = await underTerminal(['run', '--config', config, '--now', NOW]);
    assert.equal(code, 0, screen);
    assert.match(screen, /\x1b\[/, 'the bar is drawn with escape sequences');
    // Each stage's last drawing: full, with its counts.
    assert.match(screen, /pass 1 \(index ids\) \[=+\] 100% [\d.]+\/[\d.]+ MB( [\d.]+ MB\/s)? in [\d.]+ s, 20000 rows/);
    assert.match(screen, new RegExp(`pass 2 \\(map\\) \\[=+\\] 100% ${ROWS}/${ROWS} rows( \\d+/s)? in [\\d.]+ s, \\d+ validated, \\d+ zipped`));
    assert.match(screen, /validate the last users \[=+\] 100% (\d+)\/\1 users( \d+\/s)? in [\d.]+ s, \d+ zipped/);
    assert.match(screen, /upload users_university_20261121-020000\.zip \[=+\] 100% [\d.]+\/[\d.]+ MB/);
    // While it ran: the rows per second and the time left.
    assert.match(screen, /pass 2 \(map\) \[[= ]+\] +\d+% \d+\/20000 rows \d+\/s, (\d+ s|\d+ min \d+ s) left/);
    // Counts and rates only: no patron's id reaches the screen.
    assert.doesNotMatch(screen, /\bstu\d{5}\b|@/);
    assert.equal(reportOf(out).success, false);
  });

  test('without a terminal (cron): no bar and no escape sequence, one line per stage through the log', async () => {
    const { config, out } = runConfig(inputs);
    const r = await runCli(['run', '--config', config, '--now', NOW]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /\x1b|\[=|\r/);
    // Each stage line is a log line: the time, the level, the prefix (src/shared/log.ts).
    const stages = untimed(r.stdout).split('\n').filter((l) => / in [\d.]+ s$/.test(l));
    const report = reportOf(out);
    const users = (report.counts as { users: number }).users;
    assert.deepEqual(
      stages.map((l) => l.replace(/ in [\d.]+ s$/, ' in N s').replace(/ [\d.]+ MB/, ' X MB').replace(/\d+ validated, \d+ zipped/, 'V validated, Z zipped')),
      [
        `<time> INFO  sis2alma run: pass 1 (index ids): X MB, ${ROWS} rows in N s`,
        `<time> INFO  sis2alma run: pass 2 (map): ${ROWS} rows, V validated, Z zipped in N s`,
        `<time> INFO  sis2alma run: validate the last users: ${users} users, ${users} zipped in N s`,
        `<time> INFO  sis2alma run: write the report: ${ROWS} rows in N s`,
        '<time> INFO  sis2alma run: upload users_university_20261121-020000.zip: X MB in N s',
      ],
    );

    // report.json opens with what happened, then where the zips went; its details are in input order.
    assert.deepEqual(Object.keys(report).slice(0, 6), ['success', 'summary', 'counts', 'files', 'delivered', 'delivery']);
    const labels = [...Array.from({ length: students }, (_, i) => `students.csv:${i + 1}`), ...Array.from({ length: employees }, (_, i) => `employees.csv:${i + 1}`)];
    assert.deepEqual(Object.keys(report.details as object), labels);
  });

  test('--quiet on a terminal shows no progress', { skip: scriptMissing }, async () => {
    const out = path.join(tempDir('sis2alma-progress-quiet-'), 'out');
    const { code, screen } = await underTerminal(['convert', '--mapping', UNIVERSITY, ...inputs.flatMap((i) => ['--input', i]), '--out', out, '--now', NOW, '--max-rejected', '50%', '--quiet']);
    assert.equal(code, 0, screen);
    assert.equal(screen, '');
  });
});

describe('mapping explain says each reason in words', () => {
  test('rejections by reason and column, with counts and example rows; merges without doubled wording', async () => {
    const examples = path.join(PACKAGE_ROOT, 'examples', 'university');
    const r = await runCli(['mapping', 'explain', '--mapping', UNIVERSITY, '--input', path.join(examples, 'students.csv'), '--input', path.join(examples, 'employees.csv'), '--now', NOW]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const from = lines.indexOf('Rejected rows by reason:');
    assert.deepEqual(lines.slice(from + 1, lines.indexOf('', from)), [
      '  Field (active) is not a yes/no value (expected y, yes, true, 1, n, no, false or 0): 1 row, e.g. row employees.csv:9',
      '  Field (birth_date) is not a date in the form the mapping gives: 1 row, e.g. row students.csv:8',
      '  Field (email) is not a well-formed email address: 1 row, e.g. row students.csv:7',
      '  Field (end_date) is not a date in the form the mapping gives: 1 row, e.g. row employees.csv:10',
      '  Field (netid) is required but empty: 1 row, e.g. row students.csv:9',
      '  Field (work_email) is not a well-formed email address: 1 row, e.g. row employees.csv:11',
      '  No user group rule maps this row (it looked at employee_type): 1 row, e.g. row employees.csv:8',
      '  No user group rule maps this row (it looked at level): 1 row, e.g. row students.csv:6',
    ]);
    assert.ok(lines.includes('  e.g. gs***5: rows students.csv:15 + employees.csv:6 → GRAD (the active row) wins'), r.stdout);
    assert.ok(lines.includes('  the expiry date is before the run date: 1 row, e.g. row employees.csv:6'), r.stdout);
    // No bare code anywhere: no_user_group, bad_value, expiry_in_past, ...
    assert.doesNotMatch(r.stdout, /^ +[a-z]+_[a-z_]+:/m);
    for (const code of ['no_user_group', 'bad_email', 'bad_date', 'missing_value', 'bad_boolean', 'extra_preferred', 'unknown_code', 'expiry_in_past']) assert.ok(!r.stdout.includes(code), code);
    assert.doesNotMatch(r.stdout, /GRAD \(GRAD/);
    // Without a terminal, its two passes are lines on stderr; stdout holds the answer alone.
    assert.deepEqual(untimed(r.stderr).split('\n').filter(Boolean).map((l) => l.replace(/ in [\d.]+ s$/, ' in N s')), ['<time> INFO  sis2alma mapping: pass 1 (index ids): 0.0 MB, 30 rows in N s', '<time> INFO  sis2alma mapping: pass 2 (map): 30 rows in N s']);
  });
});
