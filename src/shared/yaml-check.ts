// One way to check a YAML file a person writes (the mapping, the run config, the serve config):
// parse it keeping node positions, check it against its JSON Schema with ajv, and turn every
// problem into `file:line:column: yaml.path: message`. The schema is the single definition of
// each file's keys and types; what a schema cannot say (a file exists, a secret is set, a code is
// allowed) is checked afterwards by the file's own module, which reports through the same Locator
// so that every problem reads the same.
//
// A file's problems come in one pass: the values the schema refuses are taken out of a copy of
// what was written, and the later checks run on what is left. Without that, a typo in one key
// would hide a missing key file, and the operator would fix one problem per run.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { LineCounter, parseDocument, isMap, isPair, isScalar, type Document, type Node as YamlNode } from 'yaml';
import { closestOf } from './suggest.js';

export interface Problem {
  file: string;
  line: number;
  column: number;
  /** The YAML path, e.g. user_group.rules[2].when.program; '' for the file as a whole. */
  path: string;
  message: string;
}

export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.path ? p.path + ': ' : ''}${p.message}`;
}

/** Problems as a person reads the file: top to bottom. */
export function inFileOrder<P extends Problem>(problems: readonly P[]): P[] {
  return [...problems].sort((a, b) => a.line - b.line || a.column - b.column);
}

export type PathItem = string | number;

export function formatPath(p: readonly PathItem[]): string {
  return p.map((item, i) => (typeof item === 'number' ? `[${item}]` : i === 0 ? item : `.${item}`)).join('');
}

/** A YAML path → file:line:column, from the parsed document's node ranges. */
export class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    readonly file: string,
  ) {}

  /** A problem at the value at `p` (or the nearest value above it), or at its key when `key` is set. */
  at(p: readonly PathItem[], message: string, key = false): Problem {
    let offset = 0;
    const last = p[p.length - 1];
    const parent = this.doc.getIn(p.slice(0, -1), true) as YamlNode | undefined;
    if (key && isMap(parent)) {
      const pair = parent.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === String(last));
      const keyNode = pair?.key as YamlNode | undefined;
      if (keyNode?.range) offset = keyNode.range[0];
    } else {
      for (let depth = p.length; depth >= 0; depth--) {
        const node = this.doc.getIn(p.slice(0, depth), true) as YamlNode | undefined;
        if (node && typeof node === 'object' && 'range' in node && node.range) {
          offset = node.range[0];
          break;
        }
      }
    }
    const pos = this.lines.linePos(offset);
    return { file: this.file, line: pos.line, column: pos.col, path: formatPath(p), message };
  }
}

export interface ParsedYaml {
  /** What the file holds, as plain data; undefined when the YAML itself is broken. */
  written?: unknown;
  where: Locator;
  /** The YAML's syntax errors, at their positions. */
  problems: Problem[];
}

/**
 * Parses YAML text keeping positions. `firstErrorOnly`: a config's syntax errors after the first
 * are mostly echoes of it.
 */
export function parseYaml(text: string, file: string, { firstErrorOnly = false } = {}): ParsedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const where = new Locator(doc, lineCounter, file);
  const errors = firstErrorOnly ? doc.errors.slice(0, 1) : doc.errors;
  const problems = errors.map((error) => {
    const pos = lineCounter.linePos(error.pos[0]);
    return { file, line: pos.line, column: pos.col, path: '', message: `YAML: ${error.message.split('\n')[0]}` };
  });
  return problems.length ? { where, problems } : { written: doc.toJS() as unknown, where, problems };
}

const ajv = new Ajv({ allErrors: true, verbose: true, strict: false });

/** Compiles a file's JSON Schema once, for checkAgainst. */
export function compileSchema(schema: object): ValidateFunction {
  return ajv.compile(schema);
}

export interface SchemaCheck {
  problems: Problem[];
  /**
   * A copy of what was written without the values the schema refused: every value left has the
   * type and form the schema gives it, but keys the schema requires may be missing. Undefined
   * when the file as a whole is not what the schema wants (not a mapping of keys).
   */
  rest?: Record<string, unknown>;
  /** True when `rest` passes the schema as it is (nothing required is missing either). */
  complete: boolean;
  /** The YAML paths of the values taken out of `rest`. */
  refused: string[];
}

/** Checks written data against a compiled schema: every problem in the person's words, at its place. */
export function checkAgainst(validate: ValidateFunction, written: unknown, where: Locator): SchemaCheck {
  if (validate(written)) return { problems: [], rest: written as Record<string, unknown>, complete: true, refused: [] };
  const problems = describeErrors(pruneAlternatives(validate.errors ?? []), where);
  // Take out what was refused, and again, until only missing keys are left (each round removes
  // at least one value, so this ends).
  let rest: unknown = structuredClone(written);
  let errors = validate.errors ?? [];
  const refusedPaths = new Set<string>();
  for (let round = 0; round < 50; round++) {
    const refused = pruneAlternatives(errors).filter((e) => e.keyword !== 'required' && e.keyword !== 'if');
    if (refused.length === 0) break;
    for (const error of refused) {
      const p = refusedPath(error);
      refusedPaths.add(formatPath(p));
      rest = without(rest, p);
    }
    if (rest === undefined || validate(rest)) break;
    errors = validate.errors ?? [];
  }
  const usable = rest !== null && typeof rest === 'object' && !Array.isArray(rest);
  return { problems, ...(usable ? { rest: rest as Record<string, unknown> } : {}), complete: usable && validate(rest), refused: [...refusedPaths] };
}

/**
 * The later checks' problems, less those about a place the schema already refused something in:
 * an object that lost its only source key would otherwise be reported again as having none.
 */
export function withoutEchoes(problems: Problem[], refused: readonly string[]): Problem[] {
  const within = (inner: string, outer: string) => inner === outer || inner.startsWith(outer + '.') || inner.startsWith(outer + '[');
  return problems.filter((p) => !refused.some((r) => within(r, p.path) || within(p.path, r)) || p.path === '');
}

/** The path of the value an error is about; for a list item, the whole list's, so that the other items keep their places. */
function refusedPath(error: ErrorObject): PathItem[] {
  const p = pointerToPath(error.instancePath);
  if (error.keyword === 'additionalProperties') p.push(String((error.params as { additionalProperty: string }).additionalProperty));
  while (typeof p[p.length - 1] === 'number') p.pop();
  return p;
}

/** `data` without the value at `p` (nothing at all when `p` is the whole). */
function without(data: unknown, p: PathItem[]): unknown {
  if (p.length === 0) return undefined;
  let parent: unknown = data;
  for (const item of p.slice(0, -1)) {
    if (parent === null || typeof parent !== 'object') return data;
    parent = (parent as Record<string, unknown>)[item as string];
  }
  if (parent !== null && typeof parent === 'object') delete (parent as Record<string, unknown>)[p[p.length - 1] as string];
  return data;
}

function describeErrors(errors: ErrorObject[], where: Locator): Problem[] {
  const seen = new Set<string>();
  const out: Problem[] = [];
  for (const error of errors) {
    const p = pointerToPath(error.instancePath);
    const schema = (error.parentSchema ?? {}) as { description?: string; writeOnly?: boolean; properties?: Record<string, { description?: string }>; minimum?: number; maximum?: number; exclusiveMinimum?: number };
    // A value that may be a secret written in the wrong place is never repeated.
    const found = schema.writeOnly ? '' : `, found ${describeData(error.data)}`;
    let problem: Problem;
    if (error.keyword === 'if') continue; // the branch's own errors say what is wrong
    if (error.keyword === 'additionalProperties') {
      const extra = String((error.params as { additionalProperty: string }).additionalProperty);
      // A key of a pattern (identifier:TYPE) is offered with the rest of the key written: "identifer:BARCODE" → "identifier:BARCODE".
      const patterns = Object.values((schema as { patternProperties?: Record<string, { title?: string }> }).patternProperties ?? {}).flatMap((s) => (s.title ? [s.title] : []));
      const known = [...Object.keys(schema.properties ?? {}), ...patterns];
      const written = patterns.map((title) => title.slice(0, title.indexOf(':') + 1) + extra.slice(extra.indexOf(':') + 1)).filter((k) => k !== extra);
      const closest = closestOf(extra, [...Object.keys(schema.properties ?? {}), ...written]);
      problem = where.at([...p, extra], `unknown key "${extra}"${closest ? `; did you mean "${closest}"?` : known.length ? `; expected one of: ${known.join(', ')}` : ''}`, true);
    } else if (error.keyword === 'required') {
      const missing = (error.params as { missingProperty: string }).missingProperty;
      const what = schema.properties?.[missing]?.description;
      problem = where.at(p, `missing "${missing}"${what ? `: ${what[0]!.toLowerCase()}${what.slice(1).replace(/\.$/, '')}` : ''}`);
    } else if (error.keyword === 'enum') {
      problem = where.at(p, `expected one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}${found}`);
    } else if (error.keyword === 'pattern') {
      const shown = schema.writeOnly ? 'the value' : JSON.stringify(error.data);
      problem = where.at(p, `${shown} is not in the expected form${schema.description ? ` (${schema.description})` : ` (${error.message})`}`);
    } else if (error.keyword === 'type') {
      problem = where.at(p, `expected ${describeType((error.params as { type: string | string[] }).type)}${found}`);
    } else if (error.keyword === 'minimum' || error.keyword === 'maximum' || error.keyword === 'exclusiveMinimum') {
      const type = (schema as { type?: string | string[] }).type ?? 'number';
      problem = where.at(p, `expected ${describeType(Array.isArray(type) ? type.filter((t) => t === 'integer' || t === 'number') : type)}${describeRange(schema)}${found}`);
    } else if (error.keyword === 'minItems' && (error.params as { limit: number }).limit === 1) {
      problem = where.at(p, 'expected at least one item, found an empty list');
    } else if (error.keyword === 'minLength' && (error.params as { limit: number }).limit === 1) {
      problem = where.at(p, 'expected a text, found an empty one');
    } else {
      problem = where.at(p, error.message ?? error.keyword);
    }
    const key = `${problem.line}:${problem.column}:${problem.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(problem);
    }
  }
  return out;
}

/** ajv reports every failed branch of a oneOf; keep the errors of the branch that fits the data's type. */
function pruneAlternatives(errors: ErrorObject[]): ErrorObject[] {
  const hasDeeperOrSibling = (e: ErrorObject) =>
    errors.some((o) => o !== e && o.keyword !== 'oneOf' && o.keyword !== 'type' && o.keyword !== 'if' && (o.instancePath === e.instancePath || o.instancePath.startsWith(e.instancePath + '/')));
  return errors.filter((e) => {
    // A scalar branch failing for an object (or the reverse) is noise when the other branch spoke.
    if (e.keyword === 'oneOf' || e.keyword === 'type') return !hasDeeperOrSibling(e);
    return true;
  });
}

function pointerToPath(pointer: string): PathItem[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function describeType(type: string | string[]): string {
  const names: Record<string, string> = { string: 'a text', object: 'a mapping (key: value)', array: 'a list', boolean: 'true or false', number: 'a number', integer: 'a whole number' };
  return (Array.isArray(type) ? type : [type]).map((t) => names[t] ?? t).join(' or ');
}

/** ` between 0 and 20`, ` of 1 or more`, or nothing, from the schema's bounds. */
function describeRange(schema: { minimum?: number; maximum?: number; exclusiveMinimum?: number }): string {
  const { minimum, maximum, exclusiveMinimum } = schema;
  if (minimum !== undefined && maximum !== undefined) return ` between ${minimum} and ${maximum}`;
  if (minimum !== undefined) return ` of ${minimum} or more`;
  if (exclusiveMinimum !== undefined) return ` above ${exclusiveMinimum}`;
  if (maximum !== undefined) return ` of at most ${maximum}`;
  return '';
}

function describeData(data: unknown): string {
  if (Array.isArray(data)) return 'a list';
  if (data === null || data === undefined) return 'nothing';
  if (typeof data === 'object') return 'a mapping';
  return JSON.stringify(data);
}
