// Runs the real CLI as a child process and reads back what a run left in its output folder: the
// report, the rejects file (parsed as a spreadsheet would), the zips and the XML inside them.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { readZip } from './zip.js';
import { PACKAGE_ROOT } from '../../src/shared/paths.js';
import { makeTempDir } from './tmp.js';

export const CLI = path.join(PACKAGE_ROOT, 'dist', 'src', 'cli.js');
export const INFINITI_MAPPING = path.join(PACKAGE_ROOT, 'mappings', 'infiniti.yaml');
export const BAD_FIXTURES = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'bad');
/** Ex Libris' published schema, read from ../shared beside the repository (never copied into it). */
export const EXLIBRIS_XSD = path.resolve(PACKAGE_ROOT, '..', 'shared', 'reference', 'alma', 'rest_users.xsd');
/** The run time every test passes, so that names and expiry dates do not depend on the clock. */
export const NOW = '2026-11-21T02:00:00';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function tempDir(prefix = 'sis2alma-test-'): string {
  return makeTempDir(prefix);
}

/** Runs `node dist/src/cli.js ...args`; never rejects on a non-zero exit. */
export function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...options.env };
    delete env.SIS2ALMA_DEBUG;
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd ?? PACKAGE_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : -1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
    );
  });
}

export interface ConvertRun extends CliResult {
  outDir: string;
  outputs: Outputs;
}

/** `sis2alma convert` with the fixed run time, into a fresh folder (or `out`). */
export async function convertCli(p: { mapping?: string; inputs: string[]; out?: string; args?: string[]; env?: NodeJS.ProcessEnv }): Promise<ConvertRun> {
  const outDir = p.out ?? path.join(tempDir(), 'out');
  const args = ['convert', '--mapping', p.mapping ?? INFINITI_MAPPING, ...p.inputs.flatMap((i) => ['--input', i]), '--out', outDir, '--now', NOW, ...(p.args ?? [])];
  const result = await runCli(args, { env: p.env });
  return { ...result, outDir, outputs: await readOutputs(outDir) };
}

export interface ReportJson {
  success: boolean;
  summary: string;
  counts: { rows: number; users: number; merged: number; rejected: number; skipped: number; warnings: number };
  files: string[];
  details?: Record<string, string>;
  warnings: Record<string, { count: number; examples: string[] }>;
  rejections: Record<string, { count: number; examples: string[] }>;
  guard?: { guard: string; limit: string; actual: number; message: string };
  [more: string]: unknown;
}

export interface Outputs {
  /** Every name in the output folder, sorted (hidden and temporary files included). */
  files: string[];
  report?: ReportJson;
  /** The rejects file's rows as a spreadsheet reads them, header first. */
  rejects?: string[][];
  rejectsText?: string;
  zips: string[];
  /** Every XML file in every zip. */
  xml: { zip: string; name: string; text: string }[];
}

export async function readOutputs(outDir: string): Promise<Outputs> {
  if (!existsSync(outDir)) return { files: [], zips: [], xml: [] };
  const files = readdirSync(outDir).sort();
  const reportName = files.find((f) => f.endsWith('.report.json'));
  const rejectsName = files.find((f) => f.endsWith('.rejects.csv'));
  const zips = files.filter((f) => f.endsWith('.zip')).map((f) => path.join(outDir, f));
  const xml: Outputs['xml'] = [];
  for (const zip of zips) for (const entry of await readZip(zip)) xml.push({ zip, ...entry });
  const rejectsText = rejectsName ? readFileSync(path.join(outDir, rejectsName), 'utf8') : undefined;
  return {
    files,
    ...(reportName ? { report: JSON.parse(readFileSync(path.join(outDir, reportName), 'utf8')) as ReportJson } : {}),
    ...(rejectsText !== undefined ? { rejectsText, rejects: parse(rejectsText, { bom: true, relax_column_count: true }) as string[][] } : {}),
    zips,
    xml,
  };
}

/** One CSV line per row, every field quoted the way a careful exporter quotes it. */
export function toCsv(rows: string[][]): string {
  return rows.map((row) => row.map((v) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v)).join(',')).join('\r\n') + '\r\n';
}

/** Lines of stderr that look like a JavaScript stack frame. */
export function stackLines(text: string): string[] {
  return text.split('\n').filter((l) => /^\s+at\s/.test(l));
}

/** What a failed or stopped run must never leave behind: a zip under any name, or a half-written file. */
export function leftovers(files: string[]): string[] {
  return files.filter((f) => f.endsWith('.zip') || f.endsWith('.partial') || f.endsWith('.tmp'));
}

/** The details of a report with its keys in row order, for exact comparisons. */
export function detailsInOrder(report: ReportJson | undefined): [string, string][] {
  return Object.entries(report?.details ?? {}).sort(([a], [b]) => Number(a) - Number(b));
}

export { readZip };
