// The layout of src/ stays true: each folder is a wing, and imports run one way, from the commands
// down to the ground (README, "How it works"). A file may import from its own wing and from the
// wings below it, never from one above it or beside it; and no files import each other in a circle,
// inside a wing or across. The scanner reads the sources (not dist/, which keeps the files of
// earlier layouts): every `import ... from '...'`, `export ... from '...'`, `import('...')` and
// `new URL('...', import.meta.url)` (how the worker files are found) with a relative path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/shared/paths.js';

/**
 * The wings from the top down. A wing may import from the wings in the rows below its own; wings
 * in one row are independent of each other. `commands` is src/commands/ and src/cli.ts.
 */
export const WINGS: readonly (readonly string[])[] = [
  ['commands'], // the CLI: one file per command
  ['serve'], // the push server
  ['job'], // the nightly job for one run config: lock, convert, deliver, archive
  ['review', 'delivery', 'state'], // mapping explain/diff; SFTP and folder targets, host keys, the archive; the run state (state.db)
  ['config'], // the run config
  ['pipeline'], // the conversion, stage by stage
  ['mapping'], // the mapping language and the compiled mapper
  ['shared'], // the ground: Alma's user, errors, dates, the logger, paths, signals, suggestions
];

/** The wing of a file given relative to src/ ('pipeline/read.ts'), or undefined for a file in none. */
export function wingOf(file: string): string | undefined {
  if (file === 'cli.ts') return 'commands';
  const [top, ...rest] = file.split('/');
  return rest.length > 0 && WINGS.some((row) => row.includes(top!)) ? top : undefined;
}

function rowOf(wing: string): number {
  return WINGS.findIndex((row) => row.includes(wing));
}

/** The relative paths a source imports, as written. */
export function importsOf(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^;]*?\bfrom\s*'(\.[^']*)'/g,
    /\bimport\s*'(\.[^']*)'/g,
    /\bimport\(\s*'(\.[^']*)'\s*\)/g,
    /\bnew URL\(\s*'(\.[^']*)'\s*,\s*import\.meta\.url\s*\)/g,
  ];
  for (const pattern of patterns) for (const m of source.matchAll(pattern)) found.push(m[1]!);
  return found;
}

/** src-relative file → its source. */
type Sources = Map<string, string>;

/** Every rule broken, one line each, naming the file and the import. */
export function layoutProblems(sources: Sources): string[] {
  const problems: string[] = [];
  const edges = new Map<string, string[]>();
  for (const [file, source] of sources) {
    const from = wingOf(file);
    if (!from) {
      problems.push(`src/${file} is in no wing: put it in one of ${WINGS.flat().join(', ')} (or declare a new wing in test/wings.test.ts and the README)`);
      continue;
    }
    const targets: string[] = [];
    for (const spec of importsOf(source)) {
      const target = path.posix.join(path.posix.dirname(file), spec).replace(/\.js$/, '.ts');
      if (target.startsWith('..')) continue; // outside src/ (package.json): not a wing
      targets.push(target);
      const to = wingOf(target);
      if (!to || to === from) continue;
      if (rowOf(to) < rowOf(from)) problems.push(`src/${file} (${from}) imports '${spec}' from ${to}, a wing above it`);
      else if (rowOf(to) === rowOf(from)) problems.push(`src/${file} (${from}) imports '${spec}' from ${to}, a wing beside it`);
    }
    edges.set(file, targets);
  }
  for (const circle of circles(edges)) problems.push(`import circle: ${circle.map((f) => `src/${f}`).join(' → ')}`);
  return problems;
}

/** One circle for each set of files that import each other (each shown from its first file back to it). */
function circles(edges: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const done = new Set<string>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const visit = (file: string) => {
    stack.push(file);
    onStack.add(file);
    for (const next of edges.get(file) ?? []) {
      if (onStack.has(next)) found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!done.has(next) && edges.has(next)) visit(next);
    }
    stack.pop();
    onStack.delete(file);
    done.add(file);
  };
  for (const file of [...edges.keys()].sort()) if (!done.has(file)) visit(file);
  return found;
}

function readSources(dir: string): Sources {
  const sources: Sources = new Map();
  const walk = (rel: string) => {
    for (const entry of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const file = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.ts')) sources.set(file, readFileSync(path.join(dir, file), 'utf8'));
    }
  };
  walk('');
  return sources;
}

test('src/: every file is in a wing, no wing imports from a wing above or beside it, and no imports go in a circle', () => {
  const sources = readSources(path.join(PACKAGE_ROOT, 'src'));
  assert.ok(sources.size > 40, `found only ${sources.size} source files under src/`);
  const problems = layoutProblems(sources);
  assert.deepEqual(problems, [], `the layout of src/ is broken:\n  ${problems.join('\n  ')}`);
});

test('the scanner names the file and the import that break the rule', () => {
  const problems = layoutProblems(
    new Map([
      ['shared/log.ts', "import { convert } from '../pipeline/convert.js';\n"],
      ['pipeline/convert.ts', "import {\n  a,\n  b,\n} from '../mapping/map.js';\nimport type { X } from './read.js';\n"],
      ['pipeline/read.ts', "export type { X } from './convert.js';\nconst W = new URL('./worker.js', import.meta.url);\n"],
      ['mapping/map.ts', "const m = await import('../review/explain.js');\n"],
      ['review/explain.ts', "import { deliverZips } from '../delivery/deliver.js';\n"],
      ['delivery/deliver.ts', "import { paths } from '../shared/paths.js';\n"],
      ['stray.ts', ''],
    ]),
  );
  assert.deepEqual(problems, [
    "src/shared/log.ts (shared) imports '../pipeline/convert.js' from pipeline, a wing above it",
    "src/mapping/map.ts (mapping) imports '../review/explain.js' from review, a wing above it",
    "src/review/explain.ts (review) imports '../delivery/deliver.js' from delivery, a wing beside it",
    'src/stray.ts is in no wing: put it in one of commands, serve, job, review, delivery, state, config, pipeline, mapping, shared (or declare a new wing in test/wings.test.ts and the README)',
    'import circle: src/pipeline/convert.ts → src/pipeline/read.ts → src/pipeline/convert.ts',
  ]);
});
