// Fast start (issue 14, item 4): a command's wings and packages load only when that command runs,
// so that `sis2alma --version` and `--help` load neither libxmljs2, ssh2, ajv nor the pipeline.
// Checked by what the process imports, not by its time (bench/RESULTS.md has the times).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/shared/paths.js';
import { CLI, INFINITI_MAPPING, tempDir } from './helpers/run-cli.js';

const HOOK = path.join(PACKAGE_ROOT, 'dist', 'test', 'helpers', 'loaded-modules.js');

/** The modules `sis2alma ARGS` imports: packages by name, sis2alma's files by their path under src/. */
function loaded(args: string[]): { code: number | null; stdout: string; modules: string[] } {
  const file = path.join(tempDir(), 'loaded.txt');
  const r = spawnSync(process.execPath, ['--import', HOOK, CLI, ...args], { env: { ...process.env, SIS2ALMA_LOADED: file }, encoding: 'utf8' });
  const urls = readFileSync(file, 'utf8').trim().split('\n');
  const modules = urls
    .filter((u) => !u.startsWith('node:') && !u.includes('/dist/test/'))
    .map((u) => (u.includes('/node_modules/') ? u.replace(/^.*\/node_modules\/((?:@[^/]+\/)?[^/]+)\/.*$/, '$1') : u.replace(/^.*\/dist\/src\//, 'src/')));
  return { code: r.status, stdout: r.stdout, modules: [...new Set(modules)].sort() };
}

/** The files of sis2alma the command line itself needs: the list of commands and their options, and the ground. */
const COMMAND_LINE = ['src/cli.js', 'src/commands/', 'src/shared/', 'src/pipeline/report.js'];

describe('fast start', () => {
  test('--version loads neither yargs nor a command', () => {
    const r = loaded(['--version']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `${JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')).version}\n`);
    assert.deepEqual(r.modules, ['src/cli.js', 'src/shared/errors.js', 'src/shared/log.js', 'src/shared/on-stop.js', 'src/shared/paths.js']);
  });

  for (const args of [['--help'], ['run', '--help'], ['mapping', 'explain', '--help'], ['validate', '--help'], ['--version', '--help']]) {
    test(`${args.join(' ')} loads the command line and yargs, no wing a command runs and no other package`, () => {
      const r = loaded(args);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /Options:/);
      const packages = r.modules.filter((m) => !m.startsWith('src/'));
      assert.deepEqual(packages.filter((p) => !['yargs', 'yargs-parser', 'y18n', 'cliui', 'escalade', 'string-width', 'strip-ansi', 'ansi-regex', 'wrap-ansi', 'ansi-styles', 'emoji-regex', 'get-east-asian-width', 'get-caller-file', 'require-directory'].includes(p)), []);
      assert.deepEqual(r.modules.filter((m) => m.startsWith('src/') && !COMMAND_LINE.some((c) => m.startsWith(c))), []);
    });
  }

  test('a command loads its wings when it runs (the check above sees them)', () => {
    const r = loaded(['mapping', 'check', INFINITI_MAPPING]);
    assert.equal(r.code, 0);
    assert.ok(r.modules.includes('src/mapping/load.js'), r.modules.join('\n'));
    assert.ok(r.modules.includes('ajv'), r.modules.join('\n'));
  });
});
