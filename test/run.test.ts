// The run config and the nightly job (`run`, `upload`): config problems with file:line:column,
// then whole runs with the real convert, delivering to a folder and to a real sshd.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { checkRunConfig, formatProblem, loadRunConfig } from '../src/config/run-config.js';
import { runCommand } from '../src/commands/run.js';
import { runJob } from '../src/job/run-job.js';
import { withLock, LOCK_FILE } from '../src/job/lock.js';
import { RunError } from '../src/shared/errors.js';
import { silentLogger } from '../src/shared/log.js';
import { RunLog, addToReport } from '../src/pipeline/report.js';
import { PACKAGE_ROOT, RUN_CONFIG_JSON_SCHEMA } from '../src/shared/paths.js';
import { jsonSchemaText, staleJsonSchemas } from '../src/config/json-schema.js';
import { runConfigSchema } from '../src/config/shape.js';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { startSshd, sshdMissing, type SshServer } from './helpers/sshd.js';
import { makeTempDir } from './helpers/tmp.js';
import { usersXml, writeZip } from './helpers/users-zip.js';
import { toolMissing } from './helpers/tools.js';
import { untimed } from './helpers/log-lines.js';

/** A fresh folder for one test, removed when the test process ends. */
const folder = (name: string): string => makeTempDir(`sis2alma-run-${name}-`);

const NOW = new Date(Date.UTC(2026, 10, 21, 3, 15, 0));
const missingSshd = toolMissing(sshdMissing());
const CLI = process.env.SIS2ALMA_TEST_CLI ?? path.join(PACKAGE_ROOT, 'dist', 'src', 'cli.js');

function problemsOf(yamlText: string, env: NodeJS.ProcessEnv = {}): string[] {
  const dir = folder('config');
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, yamlText);
  return checkRunConfig(yamlText, file, env).problems.map((p) => formatProblem({ ...p, file: path.basename(p.file) }));
}

describe('run config', () => {
  const head = 'mapping: m.yaml\ninputs: [a.csv]\noutput_dir: out\n';

  test('an unknown key is reported at its line and column with the closest valid key', () => {
    assert.deepEqual(problemsOf(`${head}delivery:\n  target: dir\n  dir: x\n  stael: rename\nguards:\n  min_user: 3\n`), [
      'config.yaml:7:3: delivery.stael: unknown key "stael"; did you mean "stale"?',
      'config.yaml:9:3: guards.min_user: unknown key "min_user"; did you mean "min_users"?',
    ]);
  });

  test('a key far from any valid one lists the valid keys', () => {
    assert.deepEqual(problemsOf(`${head}colour: blue\ndelivery: { target: dir, dir: x }\n`), [
      'config.yaml:4:1: colour: unknown key "colour"; expected one of: mapping, inputs, encoding, output_dir, archive, guards, state, departures, delivery',
    ]);
  });

  test('relative paths are read from the config file\'s folder', () => {
    const dir = folder('relative');
    writeFileSync(path.join(dir, 'c.yaml'), 'mapping: ../m/map.yaml\ninputs: [in/a.csv, /abs/b.csv]\noutput_dir: out\narchive: { keep_days: 7 }\ndelivery: { target: dir, dir: ./drop }\n');
    const config = loadRunConfig(path.join(dir, 'c.yaml'));
    assert.equal(config.mappingFile, path.join(path.dirname(dir), 'm', 'map.yaml'));
    assert.deepEqual(config.inputs, [path.join(dir, 'in', 'a.csv'), '/abs/b.csv']);
    assert.equal(config.outputDir, path.join(dir, 'out'));
    assert.deepEqual(config.archive, { dir: path.join(dir, 'out', 'archive'), keepDays: 7 });
    assert.deepEqual(config.delivery, { target: 'dir', dir: path.join(dir, 'drop'), createDir: false, retries: 3, retryDelayMs: 30000, stale: 'stop' });
  });

  test('a private key file readable by others is refused, as ssh refuses it', () => {
    const dir = folder('key-mode');
    const key = path.join(dir, 'id_rsa');
    writeFileSync(key, 'key');
    chmodSync(key, 0o644);
    const text = `${head}delivery:\n  target: sftp\n  host: h\n  username: u\n  private_key_file: id_rsa\n  host_key: "SHA256:${'b'.repeat(43)}"\n  remote_dir: /production\n`;
    writeFileSync(path.join(dir, 'config.yaml'), text);
    const problems = checkRunConfig(text, path.join(dir, 'config.yaml')).problems;
    assert.deepEqual(problems.map((p) => [p.line, p.column, p.path, p.message]), [[8, 21, 'delivery.private_key_file', `private key file ${key} is readable by others (mode 644): run chmod 600 ${key}`]]);
  });

  test('an sftp target must pin the host key, name one login method, and find its secret', () => {
    assert.deepEqual(problemsOf(`${head}delivery:\n  target: sftp\n  host: h\n  username: u\n  password_env: SFTP_PW\n  remote_dir: /production\n`), [
      'config.yaml:5:3: delivery: the sftp target needs host_key (the server key\'s fingerprint, as `ssh-keygen -lf` prints it) or known_hosts (a known_hosts file)',
      'config.yaml:8:17: delivery.password_env: environment variable SFTP_PW (the password, named by password_env) is not set',
    ]);
  });

  test('a password written where its variable\'s name belongs is not repeated in the message', () => {
    const problems = problemsOf(`${head}delivery:\n  target: sftp\n  host: h\n  username: u\n  password_env: "s3cret pass!"\n  host_key: "SHA256:${'b'.repeat(43)}"\n  remote_dir: /p\n`);
    assert.deepEqual(problems, ['config.yaml:8:17: delivery.password_env: must be the name of an environment variable (letters, digits and _, like SIS2ALMA_SFTP_PASSWORD), not the password itself']);
  });

  test('host_key accepts a whole ssh-keygen -lf line and asks the server for that key type', () => {
    const dir = folder('fp-line');
    const text = `${head}delivery:\n  target: sftp\n  host: h\n  username: u\n  password_env: PW\n  host_key: "3072 SHA256:${'c'.repeat(43)} root@h (RSA)"\n  remote_dir: /p\n`;
    const { config, problems } = checkRunConfig(text, path.join(dir, 'c.yaml'), { PW: 'x' });
    assert.deepEqual(problems, []);
    assert.ok(config?.delivery.target === 'sftp');
    assert.deepEqual(config.delivery.hostKey, { kind: 'fingerprint', fingerprints: [`SHA256:${'c'.repeat(43)}`], keyTypes: ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] });
    assert.deepEqual(config.delivery.auth, { kind: 'password', password: { env: 'PW' } });
    assert.ok(!JSON.stringify(config).includes('"x"'), 'the secret itself is not kept in the config');
  });

  test('a value of the wrong kind and a YAML syntax error point at the place', () => {
    assert.deepEqual(problemsOf(`${head}delivery:\n  target: dir\n  dir: x\n  retries: many\n  stale: sometimes\n`), [
      'config.yaml:7:12: delivery.retries: expected a whole number, found "many"',
      'config.yaml:8:10: delivery.stale: expected one of "stop", "rename", "report", found "sometimes"',
    ]);
    const syntax = problemsOf(`${head}delivery:\n  target: dir\n   dir: x\n`);
    assert.equal(syntax.length, 1);
    assert.match(syntax[0]!, /^config\.yaml:5:11: YAML: Nested mappings are not allowed in compact mappings$/);
  });

  // Every problem of a file in one run, in file order: the schema's and the checks after it.
  const mistakes: Array<{ what: string; yaml: string; env?: NodeJS.ProcessEnv; problems: string[] }> = [
    {
      what: 'a misspelt key, a wrong type and a missing required key',
      yaml: `${head}delivery:\n  target: dir\n  stael: rename\n  retries: many\n`,
      problems: [
        "config.yaml:5:3: delivery: missing \"dir\": the folder Alma's server reads",
        'config.yaml:6:3: delivery.stael: unknown key "stael"; did you mean "stale"?',
        'config.yaml:7:12: delivery.retries: expected a whole number, found "many"',
      ],
    },
    {
      what: 'a number out of its range names the range',
      yaml: `${head}archive: { keep_days: 0 }\ndelivery: { target: dir, dir: x, retries: 25 }\n`,
      problems: [
        'config.yaml:4:23: archive.keep_days: expected a whole number of 1 or more, found 0',
        'config.yaml:5:43: delivery.retries: expected a whole number between 0 and 20, found 25',
      ],
    },
    {
      what: 'a required top-level key says what it is for',
      yaml: 'mapping: m.yaml\noutput_dir: out\ndelivery: { target: dir, dir: x }\n',
      problems: ['config.yaml:1:1: missing "inputs": the CSV file (or list of files) to convert, together'],
    },
    {
      what: 'a fingerprint in the wrong form',
      yaml: `${head}delivery:\n  target: sftp\n  host: h\n  username: u\n  password_env: PW\n  host_key: [abc]\n  remote_dir: /p\n`,
      env: { PW: 'x' },
      problems: [
        'config.yaml:9:14: delivery.host_key[0]: "abc" is not in the expected form (a fingerprint like SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8, or a whole line of ssh-keygen -lf)',
      ],
    },
    {
      what: 'a value where a variable name belongs is never repeated, whatever its type',
      yaml: `${head}delivery:\n  target: sftp\n  host: h\n  username: u\n  password_env: 738201946621\n  host_key: "SHA256:${'b'.repeat(43)}"\n  remote_dir: /p\n`,
      problems: ['config.yaml:8:17: delivery.password_env: expected a text'],
    },
    {
      what: 'a schema problem does not hide a file the config names that does not exist',
      yaml: `${head}colour: blue\ndelivery:\n  target: sftp\n  host: h\n  username: u\n  private_key_file: /nonexistent/id_rsa\n  known_hosts: /nonexistent/known_hosts\n  remote_dir: /p\n`,
      problems: [
        'config.yaml:4:1: colour: unknown key "colour"; expected one of: mapping, inputs, encoding, output_dir, archive, guards, state, departures, delivery',
        'config.yaml:9:21: delivery.private_key_file: private key file /nonexistent/id_rsa does not exist',
        'config.yaml:10:16: delivery.known_hosts: known_hosts file /nonexistent/known_hosts does not exist',
      ],
    },
  ];
  for (const { what, yaml, env, problems } of mistakes) {
    test(`every problem in one run: ${what}`, () => {
      assert.deepEqual(problemsOf(yaml, env), problems);
    });
  }

  test('loadRunConfig throws config_invalid with every problem, one per line', () => {
    const dir = folder('load');
    writeFileSync(path.join(dir, 'c.yaml'), 'inputs: []\ndelivery: { target: ftp }\n');
    assert.throws(() => loadRunConfig(path.join(dir, 'c.yaml')), (error: unknown) => {
      assert.ok(error instanceof RunError);
      assert.equal(error.code, 'config_invalid');
      assert.equal(error.exitCode, 3);
      const lines = error.message.split('\n');
      assert.ok(lines.length >= 3, error.message);
      assert.ok(lines.every((l) => l.startsWith(`${path.join(dir, 'c.yaml')}:`)), error.message);
      assert.ok(lines.some((l) => l.endsWith('delivery.target: expected one of "sftp", "dir", found "ftp"')), error.message);
      return true;
    });
  });
});

describe('schemas/run-config.schema.json', () => {
  test('is the JSON of src/config/shape.ts, the schema the runtime check uses (run node dist/src/config/json-schema.js --write after a change)', () => {
    assert.equal(readFileSync(RUN_CONFIG_JSON_SCHEMA, 'utf8'), jsonSchemaText(runConfigSchema));
    assert.ok(!staleJsonSchemas().includes(RUN_CONFIG_JSON_SCHEMA));
  });

  test('an editor using it accepts the shipped example and flags the misspelt key the check names', () => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(RUN_CONFIG_JSON_SCHEMA, 'utf8')) as object);
    const example = readFileSync(path.join(PACKAGE_ROOT, 'examples', 'config.yaml'), 'utf8');
    assert.equal(validate(parseYaml(example)), true, JSON.stringify(validate.errors));
    assert.equal(validate(parseYaml('mapping: m.yaml\ninputs: a.csv\noutput_dir: out\ndelivery:\n  target: dir\n  dri: x\n')), false);
    const extras = (validate.errors ?? []).filter((e) => e.keyword === 'additionalProperties').map((e) => `${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty}`);
    assert.deepEqual(extras, ['/delivery/dri']);
  });

  test('the shipped example points editors at it', () => {
    assert.match(readFileSync(path.join(PACKAGE_ROOT, 'examples', 'config.yaml'), 'utf8'), /^# yaml-language-server: \$schema=\.\.\/schemas\/run-config\.schema\.json$/m);
  });
});

/** A copy of the shipped example (config, CSV) and mapping, laid out as in the repository. */
function exampleTree(): string {
  const root = folder('tree');
  mkdirSync(path.join(root, 'examples'));
  cpSync(path.join(PACKAGE_ROOT, 'mappings'), path.join(root, 'mappings'), { recursive: true });
  for (const f of ['config.yaml', 'infiniti-users.csv']) cpSync(path.join(PACKAGE_ROOT, 'examples', f), path.join(root, 'examples', f));
  return root;
}

/** The example config with its delivery block replaced. */
function configWith(root: string, delivery: string, extra = ''): string {
  const text = readFileSync(path.join(root, 'examples', 'config.yaml'), 'utf8').replace(/^delivery:\n(?:  .*\n|\n)*/m, `delivery:\n${delivery.replace(/^/gm, '  ')}\n`);
  const file = path.join(root, 'examples', 'run.yaml');
  writeFileSync(file, text + extra);
  return file;
}

describe('run with the real convert', () => {
  test('the shipped example config converts and delivers to its folder on a fresh machine', async () => {
    const root = exampleTree();
    const config = loadRunConfig(path.join(root, 'examples', 'config.yaml'));
    const result = await runJob(config, { now: NOW, log: silentLogger });
    assert.equal(result.exitCode, 0);
    assert.equal(result.zips.length, 1);
    const name = path.basename(result.zips[0]!);
    assert.deepEqual(readdirSync(path.join(root, 'out', 'delivered')), [name]);
    assert.deepEqual(readFileSync(path.join(root, 'out', 'delivered', name)), readFileSync(result.zips[0]!));
    // The report says where the zip went; the archive keeps the zip with that report.
    const report = JSON.parse(readFileSync(result.reportFile, 'utf8'));
    assert.deepEqual(report.delivered, [{ file: result.zips[0], target: `dir ${path.join(root, 'out', 'delivered')}`, remote_path: path.join(root, 'out', 'delivered', name) }]);
    assert.equal(result.archiveFolder, path.join(root, 'out', 'archive', '2026-11-21T031500Z'));
    assert.deepEqual(readdirSync(result.archiveFolder!).sort(), [path.basename(result.reportFile), name].sort());
    assert.deepEqual(JSON.parse(readFileSync(path.join(result.archiveFolder!, path.basename(result.reportFile)), 'utf8')).delivered, report.delivered);
    assert.match(result.summary, new RegExp(`^\\d+ users from 8 rows, \\d+ rejected \\(first night: no earlier state\\); delivered ${name.replace('.', '\\.')} to dir `));
    assert.ok(!existsSync(path.join(root, 'out', LOCK_FILE)), 'the lock is released');
  });

  test('a tripped guard delivers nothing and ends with 5', async () => {
    const root = exampleTree();
    const file = configWith(root, 'target: dir\ndir: ../out/delivered\ncreate_dir: true');
    const text = readFileSync(file, 'utf8').replace(/min_users: 1/, 'min_users: 1000');
    writeFileSync(file, text);
    const result = await runJob(loadRunConfig(file), { now: NOW });
    assert.equal(result.exitCode, 5);
    assert.deepEqual(result.zips, []);
    assert.ok(!existsSync(path.join(root, 'out', 'delivered')) || readdirSync(path.join(root, 'out', 'delivered')).length === 0);
    assert.match(result.summary, /guard min_users tripped; nothing delivered$/);
  });

  test('an archive that cannot be kept after a delivery is a warning, not a failure (a retry would load the zip twice)', async () => {
    const root = exampleTree();
    // The archive folder's place is taken by a file: the archive cannot be made.
    mkdirSync(path.join(root, 'out'), { recursive: true });
    writeFileSync(path.join(root, 'out', 'archive'), 'not a folder');
    const warnings: string[] = [];
    const log = { ...silentLogger, warn: (m: string) => warnings.push(m) };
    const result = await runJob(loadRunConfig(path.join(root, 'examples', 'config.yaml')), { now: NOW, log });
    assert.equal(result.exitCode, 0);
    assert.deepEqual(readdirSync(path.join(root, 'out', 'delivered')), [path.basename(result.zips[0]!)]);
    assert.equal(result.archiveFolder, undefined);
    assert.equal(warnings.filter((w) => w.startsWith('delivered, but the local archive could not be kept')).length, 1, warnings.join('\n'));
  });

  test('a failed delivery ends with 6, keeps the zip in output_dir and says why in the report', async () => {
    const root = exampleTree();
    const result = await runJob(loadRunConfig(configWith(root, 'target: dir\ndir: ../nowhere')), { now: NOW });
    assert.equal(result.exitCode, 6);
    assert.equal(result.deliveryError?.message, `delivery folder ${path.join(root, 'nowhere')} does not exist`);
    assert.ok(existsSync(result.zips[0]!));
    const report = JSON.parse(readFileSync(result.reportFile, 'utf8'));
    assert.deepEqual(report.delivered, []);
    assert.equal(report.delivery.error, result.deliveryError?.message);
    assert.ok(!existsSync(path.join(root, 'out', 'archive')), 'nothing delivered, nothing archived');
  });

  test('the run handler sets the exit code and throws the delivery failure for the CLI to print', async () => {
    const root = exampleTree();
    const ok: Record<string, unknown> = { config: path.join(root, 'examples', 'config.yaml'), quiet: true, dryRun: true };
    await (runCommand.handler as (a: unknown) => Promise<void>)(ok);
    assert.equal(ok.exitCode, 0);
    assert.ok(!existsSync(path.join(root, 'out', 'delivered')) || readdirSync(path.join(root, 'out', 'delivered')).length === 0, 'dry run delivers nothing');
    const bad = { config: configWith(root, 'target: dir\ndir: ../nowhere'), quiet: true };
    await assert.rejects((runCommand.handler as (a: unknown) => Promise<void>)(bad), (e: unknown) => e instanceof RunError && e.exitCode === 6);
  });

  test('old archive folders are pruned after keep_days; other folders stay', async () => {
    const root = exampleTree();
    mkdirSync(path.join(root, 'out', 'archive', '2026-10-01T031500Z'), { recursive: true });
    mkdirSync(path.join(root, 'out', 'archive', '2026-11-01T031500Z'));
    mkdirSync(path.join(root, 'out', 'archive', 'keep-me'));
    const result = await runJob(loadRunConfig(path.join(root, 'examples', 'config.yaml')), { now: NOW });
    assert.equal(result.exitCode, 0);
    assert.deepEqual(readdirSync(path.join(root, 'out', 'archive')).sort(), ['2026-11-01T031500Z', '2026-11-21T031500Z', 'keep-me']);
  });
  test('keep_days prunes the output folder too: old reports and rejects, and old zips only once they are in the archive', async () => {
    const root = exampleTree();
    const out = path.join(root, 'out');
    mkdirSync(path.join(out, 'archive', '2026-10-01T031500Z'), { recursive: true });
    const old = 'users_infiniti_20261001-031500';
    for (const name of [`${old}.report.json`, `${old}.rejects.csv`, 'users_infiniti_20261101-031500.report.json', 'notes.txt']) writeFileSync(path.join(out, name), 'x');
    // Delivered (its copy is in the archive) and still waiting for `upload` (none is).
    writeFileSync(path.join(out, `${old}.zip`), 'zip');
    writeFileSync(path.join(out, 'archive', '2026-10-01T031500Z', `${old}.zip`), 'zip');
    writeFileSync(path.join(out, 'users_infiniti_20261002-031500_02.zip'), 'zip');
    const result = await runJob(loadRunConfig(path.join(root, 'examples', 'config.yaml')), { now: NOW });
    assert.equal(result.exitCode, 0);
    const current = [path.basename(result.reportFile), path.basename(result.zips[0]!), ...(result.report.rejects_file ? [result.report.rejects_file] : [])];
    assert.deepEqual(readdirSync(out).sort(), ['archive', 'delivered', 'notes.txt', 'state', 'users_infiniti_20261002-031500_02.zip', 'users_infiniti_20261101-031500.report.json', ...current].sort());
  });
});

describe('run lock', () => {
  test('a second run of the same config is refused while the first holds the lock', async () => {
    const root = exampleTree();
    const config = loadRunConfig(path.join(root, 'examples', 'config.yaml'));
    const lock = path.join(config.outputDir, LOCK_FILE);
    await withLock(config.outputDir, new Date('2026-11-21T03:00:00.000Z'), async () => {
      await assert.rejects(runJob(config, { now: NOW }), (e: unknown) => {
        assert.ok(e instanceof RunError);
        assert.equal(e.code, 'busy');
        assert.equal(e.exitCode, 9);
        assert.equal(e.message, `another sis2alma run (pid ${process.pid}, started 2026-11-21T03:00:00.000Z) is using ${config.outputDir}: it holds the lock ${lock}`);
        return true;
      });
      assert.ok(existsSync(lock), "the refused run leaves the holder's lock alone");
    });
    assert.ok(!existsSync(lock), 'the lock is released');
  });

  test('a lock left by a process that is gone is taken over', async () => {
    const root = exampleTree();
    const config = loadRunConfig(path.join(root, 'examples', 'config.yaml'));
    mkdirSync(config.outputDir, { recursive: true });
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    writeFileSync(path.join(config.outputDir, LOCK_FILE), `${gone} 2026-11-20T03:00:00.000Z\n`);
    const result = await runJob(config, { now: NOW });
    assert.equal(result.exitCode, 0);
    assert.ok(!existsSync(path.join(config.outputDir, LOCK_FILE)));
  });

  test('a lock file naming a live process that is not a run (a pid reused after a reboot) does not block', async () => {
    const root = exampleTree();
    const config = loadRunConfig(path.join(root, 'examples', 'config.yaml'));
    mkdirSync(config.outputDir, { recursive: true });
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      writeFileSync(path.join(config.outputDir, LOCK_FILE), `${other.pid} 2026-11-20T03:00:00.000Z\n`);
      const result = await runJob(config, { now: NOW });
      assert.equal(result.exitCode, 0);
      assert.equal(other.exitCode, null, 'the other process is still there');
      assert.ok(!existsSync(path.join(config.outputDir, LOCK_FILE)));
    } finally {
      other.kill();
    }
  });
});

describe('run against a real sshd', { skip: missingSshd }, () => {
  let server: SshServer;
  before(async () => {
    server = await startSshd();
  });
  after(async () => {
    await server?.dispose();
  });
  const sftp = () =>
    [
      'target: sftp',
      `host: ${server.host}`,
      `port: ${server.port}`,
      `username: ${server.user}`,
      `private_key_file: ${server.clientKey}`,
      `host_key: "${server.hostKeyFingerprint}"`,
      `remote_dir: ${server.remoteDir}`,
      'retries: 0',
      'stale: stop',
    ].join('\n');

  test('--dry-run converts and checks the server but uploads nothing', async () => {
    for (const f of readdirSync(server.remoteDir)) rmSync(path.join(server.remoteDir, f));
    const root = exampleTree();
    const result = await runJob(loadRunConfig(configWith(root, sftp())), { now: NOW, dryRun: true });
    assert.equal(result.exitCode, 0);
    assert.equal(result.zips.length, 1);
    assert.ok(existsSync(result.zips[0]!), 'the zip is made');
    assert.deepEqual(readdirSync(server.remoteDir), []);
    const report = JSON.parse(readFileSync(result.reportFile, 'utf8'));
    assert.deepEqual(report.delivered, []);
    assert.equal(report.delivery.dry_run, true);
    assert.match(result.summary, /; dry run: users_.*\.zip not uploaded$/);
    assert.ok(!existsSync(path.join(root, 'out', 'archive')));
  });

  test('a run uploads the zip and records where it went', async () => {
    for (const f of readdirSync(server.remoteDir)) rmSync(path.join(server.remoteDir, f));
    const root = exampleTree();
    const result = await runJob(loadRunConfig(configWith(root, sftp())), { now: NOW });
    assert.equal(result.exitCode, 0);
    const name = path.basename(result.zips[0]!);
    assert.deepEqual(readdirSync(server.remoteDir), [name]);
    const report = JSON.parse(readFileSync(result.reportFile, 'utf8'));
    assert.deepEqual(report.delivered, [{ file: result.zips[0], target: `sftp://${server.user}@127.0.0.1:${server.port}`, remote_path: `${server.remoteDir}/${name}` }]);

    // The next night, with Alma not having processed this zip yet, stale: stop refuses to add another.
    const next = await runJob(loadRunConfig(configWith(root, sftp())), { now: new Date(NOW.getTime() + 86_400_000) });
    assert.equal(next.exitCode, 6);
    assert.match(next.deliveryError!.message, new RegExp(`still holds 1 zip\\(s\\) Alma has not processed: ${name.replace('.', '\\.')}`));
    assert.deepEqual(readdirSync(server.remoteDir), [name]);
  });
});

describe('sis2alma run and upload through the CLI', () => {
  test('run --dry-run exits 0 and prints the summary', () => {
    const root = exampleTree();
    const r = spawnSync(process.execPath, [CLI, 'run', '--config', path.join(root, 'examples', 'config.yaml'), '--dry-run'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(untimed(r.stdout), /^<time> INFO  sis2alma run: .*dry run: users_.*\.zip not uploaded$/m);
    assert.ok(!existsSync(path.join(root, 'out', 'delivered')));
  });

  test('run --now reruns a missed night: the zip is named and dated for that time; guard options override the config', () => {
    const root = exampleTree();
    const config = path.join(root, 'examples', 'config.yaml');
    const r = spawnSync(process.execPath, [CLI, 'run', '--config', config, '--now', '2026-11-20T02:00:00', '--quiet'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(path.join(root, 'out', 'delivered')), ['users_infiniti_20261120-020000.zip']);
    // The example export has 2 bad rows of 8: --max-rejected 1 on the command line trips the guard.
    const tripped = spawnSync(process.execPath, [CLI, 'run', '--config', config, '--now', '2026-11-21T02:00:00', '--max-rejected', '1'], { encoding: 'utf8' });
    assert.equal(tripped.status, 5, tripped.stderr);
    assert.deepEqual(readdirSync(path.join(root, 'out', 'delivered')), ['users_infiniti_20261120-020000.zip']);
    const bad = spawnSync(process.execPath, [CLI, 'run', '--config', config, '--now', 'yesterday'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--now expects a date and time/);
  });

  test('a bad run config exits 3 naming file, line and column', () => {
    const dir = folder('cli-bad');
    writeFileSync(path.join(dir, 'c.yaml'), 'mapping: m.yaml\ninputs: [a.csv]\noutput_dir: out\ndelivery:\n  target: dir\n  dri: x\n');
    const r = spawnSync(process.execPath, [CLI, 'run', '--config', path.join(dir, 'c.yaml')], { encoding: 'utf8' });
    assert.equal(r.status, 3);
    assert.match(r.stderr, new RegExp(`${path.join(dir, 'c.yaml').replace(/[.]/g, '\\.')}:6:3: delivery\\.dri: unknown key "dri"; did you mean "dir"\\?`));
    assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
  });

  test('upload delivers the zips named and exits 0; a file that only has a .zip name is refused and the folder left as it was', async () => {
    const dir = folder('cli-upload');
    mkdirSync(path.join(dir, 'drop'));
    writeFileSync(path.join(dir, 'drop', 'pending.zip'), 'a zip Alma has not loaded yet');
    writeFileSync(path.join(dir, 'c.yaml'), 'mapping: m.yaml\ninputs: [a.csv]\noutput_dir: out\ndelivery: { target: dir, dir: drop, stale: rename }\n');
    writeFileSync(path.join(dir, 'x.zip'), 'hi\n');
    const refused = spawnSync(process.execPath, [CLI, 'upload', path.join(dir, 'x.zip'), '--config', path.join(dir, 'c.yaml')], { encoding: 'utf8' });
    assert.equal(refused.stderr, `sis2alma: ${path.join(dir, 'x.zip')}: not a zip file (it does not start with a zip header); refused: nothing was uploaded\n`);
    assert.equal(refused.status, 4);
    assert.deepEqual(readdirSync(path.join(dir, 'drop')), ['pending.zip']);

    await writeZip(path.join(dir, 'a.zip'), [['a_0001.xml', usersXml(['a1'])]]);
    const r = spawnSync(process.execPath, [CLI, 'upload', path.join(dir, 'a.zip'), '--config', path.join(dir, 'c.yaml')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(path.join(dir, 'drop')).sort(), ['a.zip', 'pending.zip.stale']);
    assert.match(untimed(r.stdout), /^<time> INFO  sis2alma upload: delivered a\.zip to dir /m);
  });
});

describe('adding to report.json', () => {
  test('the delivery goes into the report as written, in one step, the new fields after success, summary, counts and files; a file that is not a report is left as it was', async () => {
    const dir = folder('add');
    const file = path.join(dir, 'r.report.json');
    const log = new RunLog(path.join(dir, '.details.tmp'), path.join(dir, 'rejects.partial'));
    for (let i = 1; i <= 3000; i++) {
      log.row();
      log.written(i, String(i), []);
    }
    await log.close(path.join(dir, 'rejects.csv'));
    const written = await log.writeReport(file, { success: true, summary: 'three thousand rows', counts: { ...log.counts }, files: [] });
    const before = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    assert.equal(Object.keys(before.details as object).length, 3000);
    assert.equal(written.summary, 'three thousand rows');

    const fields = { delivered: [{ file: 'a.zip', target: 'dir /x' }], delivery: { target: 'dir /x', dry_run: false, stale_found: [] } };
    await addToReport(file, fields);
    const after = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(after), ['success', 'summary', 'counts', 'files', 'delivered', 'delivery', 'details']);
    assert.deepEqual(Object.keys(after.details as object), Array.from({ length: 3000 }, (_, i) => String(i + 1)));
    assert.deepEqual(after, { ...fields, ...before });
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);

    const notReport = path.join(dir, 'other.json');
    writeFileSync(notReport, '[1, 2]\n');
    await assert.rejects(addToReport(notReport, fields), /does not start as sis2alma writes a report/);
    assert.equal(readFileSync(notReport, 'utf8'), '[1, 2]\n');
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  });
});
