// Log lines an operator can use (issue 14, item 3): each has the time, the level and one prefix,
// `sis2alma COMMAND:`; `--log-format json` gives one JSON object a line with the same messages, for
// a log shipper; neither shows patron data. A failed command's last line stays `sis2alma: MESSAGE`
// in text (the answer a person or a cron mail reads) and is a JSON line with --log-format json.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import path from 'node:path';
import { createLogger } from '../src/shared/log.js';
import { PACKAGE_ROOT } from '../src/shared/paths.js';
import { NOW, runCli, tempDir } from './helpers/run-cli.js';
import { untimed } from './helpers/log-lines.js';

const EXAMPLE = path.join(PACKAGE_ROOT, 'examples', 'infiniti-users.csv');
/** Patron values of the example export that a log line could leak: ids, names, emails. */
const PATRON = ['astu1', 'bstu2', 'cstaff1', 'Aroha', 'school.example', 'emma@@'];

function runConfig(): { config: string; drop: string } {
  const dir = tempDir();
  const drop = path.join(dir, 'drop');
  mkdirSync(drop);
  const config = path.join(dir, 'run.yaml');
  writeFileSync(config, `mapping: ${path.join(PACKAGE_ROOT, 'mappings', 'infiniti.yaml')}\ninputs: [${EXAMPLE}]\noutput_dir: ${path.join(dir, 'out')}\nguards: { max_rejected: 50% }\ndelivery: { target: dir, dir: ${drop} }\n`);
  return { config, drop };
}

const zip = 'users_infiniti_20261121-020000.zip';
// Without a terminal, each stage ends with one line and its duration (issue 14, item 2).
const runMessages = (drop: string) => [
  /^validating with (xmllint --stream|libxmljs2)$/,
  /^pass 1 \(index ids\): 0\.0 MB, 8 rows in \d+\.\d s$/,
  /^pass 2 \(map\): 8 rows, \d+ validated, \d+ zipped in \d+\.\d s$/,
  /^validate the last users: \d+ users, \d+ zipped in \d+\.\d s$/,
  /^write the report: 8 rows in \d+\.\d s$/,
  "8 rows processed. 5 users written. 1 row merged. 2 rows failed. First night: no earlier delivery in the run state to compare with; tonight's users become the state once delivered.",
  /^upload users_infiniti_20261121-020000\.zip: 0\.0 MB in \d+\.\d s$/,
  `delivered ${zip} to dir ${drop} as ${path.join(drop, zip)}`,
  `5 users from 8 rows, 2 rejected (first night: no earlier state); delivered ${zip} to dir ${drop}`,
];

function assertMessages(actual: string[], expected: (string | RegExp)[]): void {
  assert.equal(actual.length, expected.length, actual.join('\n'));
  expected.forEach((e, i) => (typeof e === 'string' ? assert.equal(actual[i], e) : assert.match(actual[i]!, e)));
}

/** Two streams a logger writes to, and what each holds: [stdout, stderr]. */
function streams() {
  const out = new PassThrough();
  const err = new PassThrough();
  return { out, err, text: () => [String(out.read() ?? ''), String(err.read() ?? '')] };
}

describe('log lines', () => {
  test('`run`: every line has the time, the level and the one prefix `sis2alma run:`', async () => {
    const { config, drop } = runConfig();
    const r = await runCli(['run', '--config', config, '--now', NOW]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const lines = untimed(r.stdout).trimEnd().split('\n');
    for (const line of lines) assert.ok(line.startsWith('<time> INFO  sis2alma run: '), line);
    assertMessages(
      lines.map((l) => l.slice('<time> INFO  sis2alma run: '.length)),
      runMessages(drop),
    );
    assert.deepEqual(PATRON.filter((v) => r.stdout.includes(v)), []);
  });

  test('`run --log-format json`: one JSON object a line, the same messages, no patron data', async () => {
    const { config, drop } = runConfig();
    const r = await runCli(['run', '--config', config, '--now', NOW, '--log-format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const records = r.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, string>);
    for (const record of records) {
      assert.deepEqual(Object.keys(record), ['level', 'time', 'command', 'msg']);
      assert.equal(record.level, 'info');
      assert.equal(record.command, 'run');
      assert.equal(new Date(record.time!).toISOString(), record.time);
    }
    assertMessages(
      records.map((x) => x.msg!),
      runMessages(drop),
    );
    assert.deepEqual(PATRON.filter((v) => r.stdout.includes(v)), []);
  });

  test('a warning goes to stderr with WARN (a tripped guard), info to stdout; --quiet keeps the warning only', async () => {
    const out = tempDir();
    const r = await runCli(['convert', '--mapping', path.join(PACKAGE_ROOT, 'mappings', 'infiniti.yaml'), '--input', EXAMPLE, '--out', out, '--now', NOW, '--quiet']);
    assert.equal(r.code, 5, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(
      untimed(r.stderr),
      `<time> WARN  sis2alma convert: guard max_rejected tripped: 2 of 8 rows were rejected (25.0%), over the limit of 5% (max_rejected). Nothing was packaged for delivery; see ${path.join(out, 'users_infiniti_20261121-020000.report.json')}\n`,
    );
  });

  test('a failed command ends with `sis2alma: MESSAGE` in text, and with a JSON line in json', async () => {
    const missing = path.join(tempDir(), 'nope.yaml');
    const text = await runCli(['run', '--config', missing]);
    assert.equal(text.code, 3);
    assert.equal(text.stderr, `sis2alma: run config ${missing} does not exist\n`);
    for (const args of [['--log-format', 'json'], ['--log-format=json']]) {
      const json = await runCli(['run', '--config', missing, ...args]);
      assert.equal(json.code, 3);
      assert.equal(json.stdout, '');
      const lines = json.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, json.stderr);
      const record = JSON.parse(lines[0]!) as Record<string, string>;
      assert.equal(new Date(record.time!).toISOString(), record.time);
      assert.deepEqual({ ...record, time: '' }, { level: 'error', time: '', command: 'run', msg: `run config ${missing} does not exist` });
    }
  });

  test('a message of several lines: each line is dated and prefixed in text; one JSON object in json', () => {
    const clock = () => new Date('2026-12-02T03:15:00.123Z');
    const t = streams();
    const text = createLogger({ command: 'serve', out: t.out, err: t.err, clock });
    text.info('listening');
    text.warn('SIGHUP: not reloaded:\nc.yaml:1:2: a problem');
    assert.deepEqual(t.text(), [
      '2026-12-02T03:15:00.123Z INFO  sis2alma serve: listening\n',
      '2026-12-02T03:15:00.123Z WARN  sis2alma serve: SIGHUP: not reloaded:\n2026-12-02T03:15:00.123Z WARN  sis2alma serve: c.yaml:1:2: a problem\n',
    ]);
    const j = streams();
    const json = createLogger({ command: 'serve', format: 'json', out: j.out, err: j.err, clock, quiet: true });
    json.info('not shown: --quiet');
    json.warn('SIGHUP: not reloaded:\nc.yaml:1:2: a problem');
    assert.deepEqual(j.text(), ['', '{"level":"warn","time":"2026-12-02T03:15:00.123Z","command":"serve","msg":"SIGHUP: not reloaded:\\nc.yaml:1:2: a problem"}\n']);
  });

  test("a line's event is a JSON field; the text line reads as before", () => {
    const clock = () => new Date('2026-12-02T03:15:00.123Z');
    const j = streams();
    createLogger({ command: 'run', format: 'json', out: j.out, err: j.err, clock }).warn('dir x still holds 1 zip(s)', { event: 'stale_zips' });
    assert.deepEqual(j.text(), ['', '{"level":"warn","time":"2026-12-02T03:15:00.123Z","command":"run","event":"stale_zips","msg":"dir x still holds 1 zip(s)"}\n']);
    const t = streams();
    createLogger({ command: 'run', out: t.out, err: t.err, clock }).warn('dir x still holds 1 zip(s)', { event: 'stale_zips' });
    assert.deepEqual(t.text(), ['', '2026-12-02T03:15:00.123Z WARN  sis2alma run: dir x still holds 1 zip(s)\n']);
  });

  test('ids are masked in both formats unless --show-pii', () => {
    assert.equal(createLogger({ command: 'run', format: 'json' }).id('astu1'), 'as***1');
    assert.equal(createLogger({ command: 'run' }).id('astu1'), 'as***1');
    assert.equal(createLogger({ command: 'run', showPii: true }).id('astu1'), 'astu1');
  });
});
