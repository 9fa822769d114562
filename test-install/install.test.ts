// The front door: the package npm packs is the one a campus installs, so the test packs a copy of
// the project, installs the tarball globally into a temporary prefix with npm, as the README's
// Install section does, and runs the installed `sis2alma` command from PATH: its version, then the
// bundled example, which must deliver its zip. Native modules (libxmljs2) build from source here,
// as on a campus machine: the install alone took 168 s on the shared two-core machine, so this
// file is not in `npm test` (which runs every file under dist/test/) but in `npm run
// test:install`, which .ci/run runs after it. npm takes the packages from its cache when it has
// them (--prefer-offline).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, realpathSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/shared/paths.js';
import { untimed } from '../test/helpers/log-lines.js';
import { makeTempDir } from '../test/helpers/tmp.js';
import { readZip, NOW } from '../test/helpers/run-cli.js';

const noNpm = spawnSync('npm', ['--version'], { stdio: 'ignore' }).error ? 'npm is not installed (Debian package npm)' : undefined;

// Run under `npm test`, the environment holds npm's own settings for this project
// (npm_config_local_prefix and the like), which would point the npm started here back at the
// working tree: it would pack that, and its prepack would empty the dist/ the other tests run from.
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD' && k !== 'SIS2ALMA_DEBUG') env[k] = v;
  return { ...env, ...extra };
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = cleanEnv()): SpawnSyncReturns<string> {
  const r = spawnSync(command, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return r;
}

/** The project as a fresh clone has it (no dist/, no out/), with the installed development tools. */
function cloneLike(): string {
  const dir = path.join(makeTempDir('sis2alma-install-'), 'sis2alma');
  const skip = new Set(['node_modules', 'dist', 'out', '.git', '.bench-data']);
  cpSync(PACKAGE_ROOT, dir, { recursive: true, filter: (src) => !skip.has(path.basename(src)) || path.dirname(src) !== PACKAGE_ROOT });
  symlinkSync(realpathSync(path.join(PACKAGE_ROOT, 'node_modules')), path.join(dir, 'node_modules'));
  return dir;
}

test('npm pack gives a package that installs with npm install -g and runs the bundled example from PATH', { skip: noNpm }, async (t) => {
  const project = cloneLike();
  const work = makeTempDir('sis2alma-install-');
  const packDir = path.join(work, 'pack');
  mkdirSync(packDir);
  const prefix = path.join(work, 'prefix');

  const pack = run('npm', ['pack', '--json', '--pack-destination', packDir], project);
  assert.equal(pack.status, 0, pack.stderr);
  // prepack's and prepare's output come first on standard output; the JSON is the rest.
  const listing = JSON.parse(pack.stdout.slice(pack.stdout.search(/^\[$/m))) as { filename: string; files: { path: string }[] }[];
  const tarball = path.join(packDir, listing[0]!.filename);
  const files = listing[0]!.files.map((f) => f.path).sort();
  assert.deepEqual([...new Set(files.map((f) => f.split('/')[0]))], ['LICENSE', 'README.md', 'bin', 'dist', 'examples', 'mappings', 'package.json', 'schemas']);
  assert.deepEqual(files.filter((f) => f.startsWith('dist/') && !/^dist\/src\/.*\.js$/.test(f)), [], 'only the compiled program, no tests or source maps');
  for (const f of ['bin/sis2alma', 'dist/src/cli.js', 'dist/src/pipeline/map-worker.js', 'dist/src/pipeline/validate-worker.js', 'schemas/alma_users.xsd', 'schemas/mapping.schema.json'])
    assert.ok(files.includes(f), `${f} is in the package`);
  assert.deepEqual(files.filter((f) => f.endsWith('/xml-reference.js')), [], "the tests' reference XML writer (xmlbuilder2) stays out");

  const started = process.hrtime.bigint();
  const install = run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], work);
  t.diagnostic(`npm install -g of the tarball took ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(1)} s`);
  assert.equal(install.status, 0, install.stderr);
  const installed = path.join(prefix, 'lib', 'node_modules', 'sis2alma');
  assert.deepEqual(readdirSync(path.join(prefix, 'bin')), ['sis2alma']);

  // The command as the README's cron line calls it: found on PATH, run from anywhere.
  const env = cleanEnv({ PATH: `${path.join(prefix, 'bin')}${path.delimiter}${process.env.PATH ?? ''}` });
  const elsewhere = makeTempDir('sis2alma-install-cwd-');
  const version = run('sis2alma', ['--version'], elsewhere, env);
  assert.deepEqual([version.status, version.stdout, version.stderr], [0, `${JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')).version}\n`, '']);

  // The bundled example names its paths from its own folder: its output goes to the installed
  // package's out/, here under the temporary prefix.
  const example = run('sis2alma', ['run', '--config', path.join(installed, 'examples', 'config.yaml'), '--now', NOW], elsewhere, env);
  assert.equal(example.status, 0, example.stderr);
  const zip = 'users_infiniti_20261121-020000.zip';
  const delivered = path.join(installed, 'out', 'delivered');
  assert.equal(untimed(example.stdout).split('\n').at(-2), `<time> INFO  sis2alma run: 5 users from 8 rows, 2 rejected (first night: no earlier state); delivered ${zip} to dir ${delivered}`);
  assert.deepEqual(readdirSync(delivered), [zip]);
  assert.deepEqual(readFileSync(path.join(delivered, zip)), readFileSync(path.join(installed, 'out', zip)));
  const entries = await readZip(path.join(delivered, zip));
  assert.deepEqual(entries.map((e) => e.name), ['users_infiniti_20261121-020000_0001.xml']);
  // 8 rows: 2 bad on purpose, and one person in two rows.
  assert.equal((entries[0]!.text.match(/<user>/g) ?? []).length, 5);
  assert.deepEqual(readdirSync(elsewhere), [], 'nothing is written in the working folder');
});
