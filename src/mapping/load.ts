// A mapping file goes YAML → checked → normalised. Checking never throws for what the librarian
// wrote: it returns every problem with its file:line:column and YAML path, so `mapping check`
// can show them all at once. Only loadMapping (used by the pipeline) turns problems into a
// RunError that stops the run.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { RunError } from '../shared/errors.js';
import { CONDITION_WORDS, mappingSchema } from './shape.js';
import { closestOf } from '../shared/suggest.js';
import { isValidYmd } from '../shared/dates.js';
import { checkAgainst, compileSchema, formatPath, formatProblem, inFileOrder, parseYaml, withoutEchoes, type Locator, type PathItem, type Problem } from '../shared/yaml-check.js';
import { visitColumns } from './map.js';
import { phoneRegions } from './phone.js';
import {
  ADDRESS_PARTS,
  conditionColumns,
  tableKey,
  type AddressSpec,
  type AllowedCodeKind,
  type AllowedCodes,
  type Condition,
  type ConditionTest,
  type DateFormat,
  type DateRule,
  type GroupPolicy,
  type PhoneFormat,
  type Replacement,
  type Mapping,
  type Source,
  type Table,
  type TemplatePart,
  type ValueExpr,
} from './model.js';

/** A problem in a mapping file, with its file:line:column and YAML path. */
export type MappingProblem = Problem;

export interface MappingCheck {
  mapping?: Mapping;
  problems: MappingProblem[];
  warnings: MappingProblem[];
}

export { formatProblem };

/** Reads and checks a mapping file; problems are returned, never thrown (but an unreadable file is). */
export function checkMapping(file: string): MappingCheck {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new RunError('mapping_invalid', `cannot read mapping file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { file });
  }
  return checkMappingText(text, file);
}

export function checkMappingText(text: string, file: string): MappingCheck {
  const { written, where, problems: syntax } = parseYaml(text, file);
  if (syntax.length) return { problems: syntax, warnings: [] };
  if (written === null || typeof written !== 'object' || Array.isArray(written)) {
    return { problems: [{ file, line: 1, column: 1, path: '', message: 'a mapping file is a YAML mapping (key: value lines), with at least source, fields and user_group' }], warnings: [] };
  }
  // The normaliser runs on what the schema let through, so that a typo and a code outside
  // allowed_codes are both reported in one pass; it needs every required part to be there.
  const shape = checkAgainst(validateShape, written, where);
  if (!shape.complete || !shape.rest) return { problems: inFileOrder(shape.problems), warnings: [] };
  const normaliser = new Normaliser(shape.rest as Written, where, file, text);
  const mapping = normaliser.run();
  const problems = inFileOrder([...shape.problems, ...withoutEchoes(normaliser.problems, shape.refused)]);
  return problems.length ? { problems, warnings: normaliser.warnings } : { mapping, problems: [], warnings: normaliser.warnings };
}

/** Loads a mapping for a run: any problem stops the run with all problems listed. */
export function loadMapping(file: string): Mapping {
  const result = checkMapping(file);
  if (!result.mapping) {
    const list = result.problems.slice(0, 20).map(formatProblem).join('\n  ');
    const more = result.problems.length > 20 ? `\n  ... and ${result.problems.length - 20} more` : '';
    throw new RunError('mapping_invalid', `the mapping file has ${result.problems.length} problem(s); run 'sis2alma mapping check ${file}':\n  ${list}${more}`, { file });
  }
  return result.mapping;
}

// ---------------------------------------------------------------------------------------------
// Shape: the JSON Schema (shape.ts), checked by shared/yaml-check.ts, which words ajv's errors for a librarian.

/** How many rows of one primary id a mapping allows when it does not say: a person with more is a broken export. */
export const DEFAULT_MAX_ROWS_PER_PERSON = 20;

const validateShape = compileSchema(mappingSchema);

// ---------------------------------------------------------------------------------------------
// Normalising: shorthands spelled out, tables loaded, codes checked against allowed_codes.

type Written = Record<string, any>;

class Normaliser {
  readonly problems: MappingProblem[] = [];
  readonly warnings: MappingProblem[] = [];
  private tables = new Map<string, Table>();
  private allowed: AllowedCodes = {};

  constructor(
    private readonly w: Written,
    private readonly where: Locator,
    private readonly file: string,
    private readonly text: string,
  ) {}

  private problem(p: PathItem[], message: string, key = false): void {
    this.problems.push(this.where.at(p, message, key));
  }

  run(): Mapping {
    const w = this.w;
    for (const [kind, codes] of Object.entries(w.allowed_codes ?? {})) this.allowed[kind as AllowedCodeKind] = new Set((codes as string[]).map(String));
    for (const [name, spec] of Object.entries(w.tables ?? {})) this.tables.set(name, this.table(name, spec));

    const fields = Object.entries(w.fields as Record<string, unknown>).map(([field, spec]) => ({ field, value: this.value(spec, ['fields', field]) }));
    const mapping: Mapping = {
      file: this.file,
      sha256: createHash('sha256').update(this.text).digest('hex'),
      source: String(w.source),
      requiredColumns: (w.input?.required_columns ?? []).map(String),
      unusedColumns: { ...(w.input?.unused_columns ?? {}) },
      delimiter: w.input?.delimiter ?? ',',
      sensitiveColumns: (w.input?.sensitive_columns ?? []).map(String),
      maxRowsPerPerson: w.input?.max_rows_per_person ?? DEFAULT_MAX_ROWS_PER_PERSON,
      tables: this.tables,
      allowedCodes: this.allowed,
      fields,
      userGroup: this.groupPolicy(w.user_group),
      merge: { policy: w.merge?.policy ?? 'combine', order: (w.merge?.order ?? []).map(String) },
      skip: this.rowRules(w.skip, 'skip').map(({ name, when }) => ({ name, when })),
      reject: this.rowRules(w.reject, 'reject'),
      expiry: new Map(),
      purge: new Map(),
      identifiers: (w.identifiers ?? []).map((spec: Written, i: number) => {
        this.code('id_type', spec.id_type, ['identifiers', i, 'id_type']);
        return {
          id_type: String(spec.id_type),
          note: spec.note === undefined ? undefined : this.value(spec.note, ['identifiers', i, 'note']),
          status: spec.status === undefined ? undefined : this.value(spec.status, ['identifiers', i, 'status']),
          value: this.value(pickValue(spec), ['identifiers', i]),
        };
      }),
      emails: (w.emails ?? []).map((spec: Written, i: number) => {
        this.code('email_type', spec.email_type, ['emails', i, 'email_type']);
        return {
          email_type: String(spec.email_type),
          preferred: spec.preferred === true,
          description: spec.description,
          onInvalid: spec.on_invalid ?? 'reject',
          value: this.value(pickValue(spec), ['emails', i]),
        };
      }),
      phones: (w.phones ?? []).map((spec: Written, i: number) => {
        this.code('phone_type', spec.phone_type, ['phones', i, 'phone_type']);
        return { phone_type: String(spec.phone_type), preferred: spec.preferred === true, preferred_sms: spec.preferred_sms === true, value: this.value(pickValue(spec), ['phones', i]) };
      }),
      addresses: (w.addresses ?? []).map((spec: Written, i: number): AddressSpec => {
        this.code('address_type', spec.address_type, ['addresses', i, 'address_type']);
        const parts: AddressSpec['parts'] = {};
        for (const part of ADDRESS_PARTS) if (spec[part] !== undefined) parts[part] = this.value(spec[part], ['addresses', i, part]);
        const address: AddressSpec = { address_type: String(spec.address_type), preferred: spec.preferred === true, parts };
        for (const part of ['start_date', 'end_date'] as const) if (spec[part] !== undefined) address[part] = this.dateValue(spec[part], ['addresses', i, part]);
        return address;
      }),
      statistics: (w.statistics ?? []).map((spec: Written, i: number) => {
        const category = this.value(spec.statistic_category, ['statistics', i, 'statistic_category']);
        this.codesOfValue('statistic_category', category, ['statistics', i, 'statistic_category']);
        return { statistic_category: category, category_type: spec.category_type, statistic_note: spec.statistic_note };
      }),
      blocks: (w.user_blocks ?? []).map((spec: Written, i: number) => ({
        block_type: spec.block_type === undefined ? undefined : String(spec.block_type),
        block_description: this.value(spec.block_description, ['user_blocks', i, 'block_description']),
        block_status: spec.block_status,
        block_note: spec.block_note === undefined ? undefined : this.value(spec.block_note, ['user_blocks', i, 'block_note']),
      })),
      rsLibraries: (w.rs_libraries ?? []).map((spec: unknown, i: number) => this.value(spec, ['rs_libraries', i])),
      libraryNotices: (w.library_notices ?? []).map((spec: Written, i: number) => {
        const value = this.value(pickValue(spec), ['library_notices', i]);
        if (value.boolean || value.map) this.problem(['library_notices', i], 'a library notice\'s value is read as yes/no already: leave out boolean and map');
        return { code: String(spec.code), value };
      }),
      notes: (w.notes ?? []).map((spec: Written, i: number) => {
        this.code('note_type', spec.note_type, ['notes', i, 'note_type']);
        return { note_type: String(spec.note_type), note_text: this.template(String(spec.note_text), ['notes', i, 'note_text']), user_viewable: spec.user_viewable === true, popup_note: spec.popup_note === true };
      }),
    };
    for (const [group, rule] of Object.entries(w.expiry ?? {})) {
      const normalised = this.dateRule(rule as Written, ['expiry', group], 'expiry');
      if (group === 'default') mapping.defaultExpiry = normalised;
      else {
        this.code('user_group', group, ['expiry', group], true);
        mapping.expiry.set(group, normalised);
      }
    }
    if (mapping.merge.order.length && mapping.merge.policy !== 'first_wins_whole') this.problem(['merge', 'order'], 'order goes with policy: first_wins_whole (a combined user takes every row)', true);
    if (mapping.merge.policy === 'first_wins_whole' && mapping.userGroup.exceptions.length)
      this.warnings.push(this.where.at(['user_group', 'exceptions'], 'exceptions do not apply under merge.policy first_wins_whole: the winning row keeps its own group', true));
    mapping.merge.order.forEach((name, i) => {
      if (/[\\/]/.test(name)) this.problem(['merge', 'order', i], `"${name}": name the file without its folder (${name.split(/[\\/]/).pop()})`);
    });
    this.purge(mapping);
    for (const column of mapping.requiredColumns) {
      if (column in mapping.unusedColumns) this.problem(['input', 'unused_columns', column], `"${column}" is both required and unused`, true);
    }
    // A secret the mapping read could come back quoted in a row's reason ("Field (password) is ...").
    const sensitive = new Map(mapping.sensitiveColumns.map((c, i) => [c.toLowerCase(), i]));
    const reported = new Set<string>();
    visitColumns(mapping, (column) => {
      const i = sensitive.get(column.toLowerCase());
      if (i === undefined || reported.has(column)) return;
      reported.add(column);
      this.problem(['input', 'sensitive_columns', i], `"${column}" is a sensitive column, which never leaves the input, but the mapping reads it`);
    });
    return mapping;
  }

  /** The purge dates: per group like expiry, days_after_expiry as the default; a warning when some users get none. */
  private purge(mapping: Mapping): void {
    const w = (this.w.purge ?? {}) as Written;
    for (const [group, rule] of Object.entries(w)) {
      if (group === 'days_after_expiry') continue;
      // Without allowed_codes a misspelt "default" would pass as a group nobody has.
      const meant = group === 'default' || this.allowed.user_group ? undefined : closestOf(group, ['default', 'days_after_expiry']);
      if (meant) this.problem(['purge', group], `"${group}" is not a key of purge; did you mean "${meant}"? (other keys are user group codes)`, true);
      const normalised = this.dateRule(rule as Written, ['purge', group], 'purge');
      if (group === 'default') mapping.defaultPurge = normalised;
      else {
        this.code('user_group', group, ['purge', group], true);
        mapping.purge.set(group, normalised);
      }
    }
    if (w.days_after_expiry !== undefined) {
      if (w.default !== undefined) this.problem(['purge', 'days_after_expiry'], 'give days_after_expiry or default, not both (days_after_expiry is the default for every group)', true);
      mapping.defaultPurge = { kind: 'after_expiry', amount: w.days_after_expiry, unit: 'day' };
    }
    // Alma never purges a user who has no purge date: such users stay for ever once they leave.
    if (this.w.purge === undefined) {
      this.warnings.push(this.where.at([], 'no purge block: Alma never purges a user without a purge date; add one, e.g. purge: { default: { after_expiry: 1 year } }'));
    } else if (!mapping.defaultPurge) {
      const groups = this.allowed.user_group;
      const without = groups ? [...groups].filter((g) => !mapping.purge.has(g)) : undefined;
      if (!without || without.length)
        this.warnings.push(
          this.where.at(['purge'], `users of ${without ? `${without.join(', ')}` : 'groups not listed here'} get no purge date, and Alma never purges them; add default`, true),
        );
    }
  }

  private table(name: string, spec: unknown): Table {
    if (typeof spec === 'string') {
      const csvPath = path.resolve(path.dirname(this.file), spec);
      const entries = new Map<string, string>();
      try {
        const records = parseCsv(readFileSync(csvPath), { bom: true, skip_empty_lines: true, relax_column_count: true }) as string[][];
        records.slice(1).forEach((record, i) => {
          if (record.length < 2 || !record[0]!.trim()) {
            this.problem(['tables', name], `${spec} row ${i + 1}: a table row needs a code and a value`);
            return;
          }
          entries.set(tableKey(record[0]!), record[1]!.trim());
        });
      } catch (error) {
        this.problem(['tables', name], `cannot read table file ${csvPath}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      return { name, origin: csvPath, entries };
    }
    const entries = new Map<string, string>();
    for (const [k, v] of Object.entries(spec as object)) entries.set(tableKey(k), String(v));
    return { name, origin: 'inline', entries };
  }

  private groupPolicy(w: Written): GroupPolicy {
    const rules = (w.rules as Written[]).map((rule, i) => {
      const group = this.value(rule.group, ['user_group', 'rules', i, 'group']);
      this.codesOfValue('user_group', group, ['user_group', 'rules', i, 'group']);
      return { name: rule.name ?? `rule ${i + 1}`, when: this.conditions(rule.when, ['user_group', 'rules', i, 'when']), group };
    });
    if (w.default !== undefined) this.code('user_group', w.default, ['user_group', 'default']);
    const priority = new Map<string, number>();
    (w.priority ?? []).forEach((group: string, i: number) => {
      this.code('user_group', group, ['user_group', 'priority', i]);
      priority.set(String(group), i);
    });
    const exceptions = (w.exceptions ?? []).map((e: Written, i: number) => {
      e.groups.forEach((g: string, j: number) => this.code('user_group', g, ['user_group', 'exceptions', i, 'groups', j]));
      this.code('user_group', e.group, ['user_group', 'exceptions', i, 'group']);
      return { name: String(e.name), groups: e.groups.map(String), group: String(e.group) };
    });
    if (w.unmapped === 'omit' && w.default !== undefined) this.problem(['user_group', 'unmapped'], 'unmapped: omit has no effect with a default: every row no rule maps gets the default group', true);
    return { rules, default: w.default === undefined ? undefined : String(w.default), priority, exceptions, unmapped: w.unmapped ?? 'reject' };
  }

  private conditions(w: Written | Written[] | undefined, at: PathItem[]): Condition[] {
    if (!w) return [];
    // A list: every item must hold; each item is a mapping of its own.
    if (Array.isArray(w)) return w.map((item, i) => ({ kind: 'all' as const, conditions: this.conditions(item, [...at, i]) }));
    const out: Condition[] = [];
    for (const [key, test] of Object.entries(w)) {
      const here = [...at, key];
      if (key === 'not') out.push({ kind: 'not', conditions: this.conditions(test, here) });
      else if (key === 'all' || key === 'any') out.push({ kind: key, conditions: (test as Written[]).map((item, i) => ({ kind: 'all' as const, conditions: this.conditions(item, [...here, i]) })) });
      else if (key === 'input_file') {
        const patterns = (Array.isArray(test) ? test : [test]).map(String);
        patterns.forEach((p, i) => {
          if (/[\\/]/.test(p)) this.problem(Array.isArray(test) ? [...here, i] : here, `input_file names a file without its folder (found "${p}"): write ${p.split(/[\\/]/).pop()}`);
        });
        out.push({ kind: 'input_file', patterns, regexes: patterns.map(globRegex) });
      } else {
        const column = key.startsWith('column:') ? key.slice('column:'.length) : key;
        if (!column) this.problem(here, 'column: needs the column name after it, e.g. "column:any"', true);
        // A near miss of a condition word (ANY, Not, alls; input-file and inputfile by spelling distance) is most likely meant as one.
        const near = key.toLowerCase().replace(/s$/, '');
        const word = CONDITION_WORDS.find((x) => x === near) ?? closestOf(key, ['input_file']);
        if (column === key && word)
          this.warnings.push(this.where.at(here, `"${key}" is read as a column; did you mean "${word}"? (a column of that name is written "column:${key}")`, true));
        out.push({ column, ...this.conditionTest(test, here) });
      }
    }
    return out;
  }

  private conditionTest(t: unknown, at: PathItem[]): { test: ConditionTest; negate?: boolean } {
    if (typeof t === 'boolean') return { test: { kind: 'is', is: t } };
    if (typeof t === 'string' || typeof t === 'number') return { test: { kind: 'equals', values: [String(t)] } };
    if (Array.isArray(t)) return { test: { kind: 'equals', values: t.map(String) } };
    const o = t as Written;
    const dateKeys = DATE_OPS.filter((k) => o[k] !== undefined);
    const modifiers = ['format', 'not_a_date', 'ignore_case'];
    const tests = Object.keys(o).filter((k) => !modifiers.includes(k) && !(DATE_OPS as readonly string[]).includes(k));
    if (tests.length + (dateKeys.length ? 1 : 0) > 1) this.problem(at, `one test per column (found ${Object.keys(o).join(', ')}); write two rules, use one_of, or all:`);
    if (dateKeys.length === 0 && (o.format !== undefined || o.not_a_date !== undefined))
      this.problem([...at, o.format !== undefined ? 'format' : 'not_a_date'], `${o.format !== undefined ? 'format' : 'not_a_date'} goes with a date comparison: before, after, on_or_before or on_or_after`);
    if (o.ignore_case !== undefined && o.equals_column === undefined && o.not_equals_column === undefined)
      this.problem([...at, 'ignore_case'], 'ignore_case goes with equals_column or not_equals_column');
    if (dateKeys.length) {
      for (const k of dateKeys) if (o[k] !== 'run_date' && !isRealDate(o[k])) this.problem([...at, k], `${o[k]} is not a date`);
      return {
        test: {
          kind: 'date',
          compare: dateKeys.map((op) => ({ op, bound: String(o[op]) })),
          format: dateFormat(o.format ?? 'YYYY-MM-DD'),
          notADate: o.not_a_date ?? 'reject',
        },
      };
    }
    if (o.equals_column !== undefined) return { test: { kind: 'equals_column', other: String(o.equals_column), ignoreCase: o.ignore_case === true } };
    if (o.not_equals_column !== undefined) return { test: { kind: 'equals_column', other: String(o.not_equals_column), ignoreCase: o.ignore_case === true }, negate: true };
    if (o.equals !== undefined) return { test: { kind: 'equals', values: [String(o.equals)] } };
    if (o.not_equals !== undefined) return { test: { kind: 'equals', values: [String(o.not_equals)] }, negate: true };
    if (o.one_of !== undefined) return { test: { kind: 'equals', values: o.one_of.map(String) } };
    if (o.in !== undefined) return { test: { kind: 'equals', values: o.in.map(String) } };
    if (o.not_in !== undefined) return { test: { kind: 'equals', values: o.not_in.map(String) }, negate: true };
    if (o.empty !== undefined) return { test: { kind: 'empty', empty: o.empty } };
    if (o.is !== undefined) return { test: { kind: 'is', is: o.is } };
    if (o.in_table !== undefined) return { test: { kind: 'in_table', table: this.tableRef(o.in_table, [...at, 'in_table']) } };
    const key = o.not_matches !== undefined ? 'not_matches' : 'matches';
    try {
      return { test: { kind: 'matches', regex: new RegExp(`^(?:${o[key]})$`, 'u'), source: String(o[key]) }, ...(key === 'not_matches' ? { negate: true } : {}) };
    } catch (error) {
      this.problem([...at, key], `not a valid regular expression: ${(error as Error).message}`);
      // Stryker disable next-line all: a mapping with a problem is never returned, so what stands in for the bad pattern is never read
      return { test: { kind: 'matches', regex: /$^/, source: String(o[key]) } };
    }
  }

  /** The top-level skip or reject list. */
  private rowRules(list: Written[] | undefined, key: 'skip' | 'reject'): { name: string; when: Condition[]; message: string }[] {
    const seen = new Map<string, number>();
    return (list ?? []).map((rule, i) => {
      const name = String(rule.name);
      if (seen.has(name)) this.problem([key, i, 'name'], `another ${key} rule is named "${name}" (${key}[${seen.get(name)}]); names tell the rules apart in the report`);
      else seen.set(name, i);
      return { name, when: this.conditions(rule.when, [key, i, 'when']), message: String(rule.message ?? '') };
    });
  }

  private tableRef(name: string, at: PathItem[]): Table {
    const table = this.tables.get(name);
    if (table) return table;
    const closest = closestOf(name, [...this.tables.keys()]);
    this.problem(at, `no table named "${name}"${closest ? `; did you mean "${closest}"?` : this.tables.size ? `; tables: ${[...this.tables.keys()].join(', ')}` : ' (define it under tables)'}`);
    // Stryker disable next-line StringLiteral: a mapping with a problem is never returned; the origin only names what stands in
    return { name, origin: 'missing', entries: new Map() };
  }

  /** A value, from its shorthand (a template string or constant) or its object form. */
  value(w: unknown, at: PathItem[]): ValueExpr {
    if (typeof w !== 'object' || w === null) {
      const source = this.templateSource(String(w), at);
      return { source, trim: true, required: false, truncate: false, onUnfit: 'reject', columns: columnsOf(source) };
    }
    const o = w as Written;
    const sources = ['from', 'template', 'value', 'rules'].filter((k) => o[k] !== undefined);
    if (sources.length !== 1) {
      this.problem(at, sources.length ? `give one of from, template, value or rules, not ${sources.join(' and ')}` : 'say where the value comes from: from (a column), template, value (a constant) or rules');
    }
    let source: Source;
    if (o.from !== undefined) source = { kind: 'column', columns: Array.isArray(o.from) ? o.from.map(String) : [String(o.from)] };
    else if (o.template !== undefined) source = this.templateSource(String(o.template), [...at, 'template']);
    else if (o.rules !== undefined)
      source = {
        kind: 'rules',
        rules: (o.rules as Written[]).map((rule, i) => ({ name: rule.name, when: this.conditions(rule.when, [...at, 'rules', i, 'when']), value: this.value(rule.value, [...at, 'rules', i, 'value']) })),
      };
    else source = { kind: 'constant', value: o.value === undefined ? '' : String(o.value) };
    const expr: ValueExpr = {
      source,
      trim: o.trim !== false,
      stripPrefix: o.strip_prefix,
      case: o.case,
      map: o.map === undefined ? undefined : typeof o.map === 'string' ? this.tableRef(o.map, [...at, 'map']) : inlineTable(o.map, `${formatPath(at)}.map`),
      unknown: o.unknown,
      boolean: o.boolean,
      dateFormat: o.format === undefined ? undefined : dateFormat(o.format),
      required: o.required === true,
      truncate: o.truncate === true,
      onUnfit: o.on_unfit ?? 'reject',
      otherwise: o.otherwise === undefined ? undefined : this.value(o.otherwise, [...at, 'otherwise']),
      columns: columnsOf(source),
    };
    if (o.replace !== undefined) expr.replace = (Array.isArray(o.replace) ? o.replace : [o.replace]).map((r: Written, i: number) => this.replacement(r, Array.isArray(o.replace) ? [...at, 'replace', i] : [...at, 'replace']));
    if (o.must_match !== undefined) expr.mustMatch = o.must_match === true;
    if (o.split !== undefined) expr.split = { by: o.split.by, part: o.split.part };
    if (o.substring !== undefined) expr.substring = this.substring(o.substring, [...at, 'substring']);
    if (o.pad !== undefined) expr.pad = { width: o.pad.width, with: o.pad.with ?? '0', side: o.pad.side ?? 'left' };
    if (o.phone !== undefined) expr.phone = this.phone(o.phone, [...at, 'phone']);
    if (o.prefix !== undefined) expr.prefix = String(o.prefix);
    if (o.unless_same_as !== undefined) {
      // A plain name is a column here (as in from), not a constant: comparing with a constant is seldom meant.
      const other = typeof o.unless_same_as === 'string' && !o.unless_same_as.includes('{') ? { from: o.unless_same_as } : o.unless_same_as;
      expr.unlessSameAs = { value: this.value(other, [...at, 'unless_same_as']), ignoreCase: o.ignore_case === true };
    }
    if (o.must_match !== undefined && !expr.replace) this.problem([...at, 'must_match'], 'must_match goes with replace', true);
    if (o.on_unfit !== undefined && !expr.replace && !expr.split && !expr.substring) this.problem([...at, 'on_unfit'], 'on_unfit goes with replace (must_match), split or substring: it says what a value they cannot handle becomes', true);
    if (o.ignore_case !== undefined && !expr.unlessSameAs) this.problem([...at, 'ignore_case'], 'ignore_case goes with unless_same_as', true);
    if (expr.phone && (expr.boolean || expr.dateFormat)) this.problem([...at, 'phone'], `a value is either a phone number or ${expr.boolean ? 'a yes/no value' : 'a date'}, not both`, true);
    if (expr.unknown !== undefined && !expr.map) this.problem([...at, 'unknown'], '"unknown" goes with "map": it says what a value the map does not know becomes');
    if (expr.map && expr.boolean) this.problem(at, 'use either map or boolean, not both');
    // A yes/no value becomes one of boolean's two words, and nothing is done to it after that.
    for (const key of ['prefix', 'unless_same_as'] as const)
      if (expr.boolean && o[key] !== undefined) this.problem([...at, key], `${key} does not apply to a yes/no value: boolean writes its true or false word as it is`, true);
    return expr;
  }

  /** A value that is a date: read in its format, YYYY-MM-DD unless the mapping gives one. */
  private dateValue(w: unknown, at: PathItem[]): ValueExpr {
    const expr = this.value(w, at);
    expr.dateFormat ??= dateFormat('YYYY-MM-DD');
    return expr;
  }

  private replacement(r: Written, at: PathItem[]): Replacement {
    const pattern = String(r.pattern);
    try {
      return { pattern, regex: new RegExp(pattern, 'gu'), test: new RegExp(pattern, 'u'), with: String(r.with) };
    } catch (error) {
      this.problem([...at, 'pattern'], `not a valid regular expression: ${(error as Error).message}`);
      // Stryker disable next-line all: a mapping with a problem is never returned, so what stands in for the bad pattern is never read
      return { pattern, regex: /$^/g, test: /$^/, with: '' };
    }
  }

  private substring(w: Written, at: PathItem[]): NonNullable<ValueExpr['substring']> {
    const given = ['first', 'last', 'start'].filter((k) => w[k] !== undefined);
    if (given.length !== 1) this.problem(at, given.length ? `give one of first, last or start, not ${given.join(' and ')}` : 'say which part: first, last or start (with length)');
    if (w.length !== undefined && w.start === undefined) this.problem([...at, 'length'], 'length goes with start', true);
    if (w.first !== undefined) return { start: 0, length: w.first, needs: w.first };
    if (w.last !== undefined) return { start: -w.last, needs: w.last };
    const start = (w.start ?? 1) - 1;
    return { start, length: w.length, needs: start + (w.length ?? 1) };
  }

  private phone(w: Written, at: PathItem[]): PhoneFormat {
    const region = String(w.region);
    const regions = phoneRegions();
    if (!regions.includes(region)) {
      // The United Kingdom's code is GB; UK is the usual slip, and no spelling distance finds it.
      const closest = region === 'UK' ? 'GB' : closestOf(region, regions);
      this.problem([...at, 'region'], `"${region}" is not a country code libphonenumber knows${closest ? `; did you mean "${closest}"?` : ''}`);
    }
    return { format: w.format ?? 'e164', region, onInvalid: w.on_invalid ?? 'reject' };
  }

  private templateSource(text: string, at: PathItem[]): Source {
    const parts = this.template(text, at);
    if (parts.length === 1 && 'column' in parts[0]!) return { kind: 'column', columns: [parts[0].column] };
    // No {column} at all: the text is the value.
    if (parts.every((p) => 'text' in p)) return { kind: 'constant', value: text };
    return { kind: 'template', parts };
  }

  private template(text: string, at: PathItem[]): TemplatePart[] {
    const parts: TemplatePart[] = [];
    const re = /\{([^{}]*)\}/g;
    let last = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      if (m.index > last) parts.push({ text: text.slice(last, m.index) });
      const name = m[1]!.trim();
      if (!name) this.problem(at, 'an empty {} in a template: put a column name inside the braces');
      parts.push(name === 'run_date' ? { runDate: true } : { column: name });
      last = m.index + m[0].length;
    }
    if (last < text.length) parts.push({ text: text.slice(last) });
    // A brace in the template's own text (between the {columns}) has no partner.
    if (parts.some((p) => 'text' in p && /[{}]/.test(p.text))) this.problem(at, `unbalanced braces in "${text}"`);
    return parts;
  }

  private dateRule(w: Written, at: PathItem[], purpose: 'expiry' | 'purge', inRules = false): DateRule {
    const names = ['date', 'after_run', 'after_expiry', 'run_date', 'next', 'from', 'end_of_year', 'term_calendar', ...(inRules ? [] : ['rules'])];
    const kinds = names.filter((k) => w[k] !== undefined);
    const listed = `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
    if (kinds.length !== 1) {
      this.problem(at, kinds.length ? `give one of ${listed}, not ${kinds.join(' and ')}` : `say how the date is set: ${listed}`);
    }
    const otherwise = w.otherwise === undefined ? undefined : this.dateRule(w.otherwise, [...at, 'otherwise'], purpose);
    if (w.month_day !== undefined && w.end_of_year === undefined) this.problem([...at, 'month_day'], 'month_day goes with end_of_year');
    if (w.format !== undefined && w.from === undefined) this.problem([...at, 'format'], 'format goes with from');
    if (w.after_expiry !== undefined) {
      if (purpose === 'expiry') this.problem([...at, 'after_expiry'], 'after_expiry is for purge dates; an expiry date counts from the run date (after_run)', true);
      const [amount, unit] = String(w.after_expiry).split(' ');
      return { kind: 'after_expiry', amount: Number(amount), unit: unit!.replace(/s$/, '') as 'day', otherwise };
    }
    if (w.run_date !== undefined) return { kind: 'run_date', otherwise };
    if (w.next !== undefined) {
      const next = w.next as Written;
      if (!isRealDate(`2000-${next.month_day}`)) this.problem([...at, 'next', 'month_day'], `${next.month_day} is not a month and day`);
      if (next.from !== undefined && !isRealDate(`2000-${next.from}`)) this.problem([...at, 'next', 'from'], `${next.from} is not a month and day`);
      return { kind: 'next', monthDay: String(next.month_day), years: next.years ?? 1, ...(next.from !== undefined ? { from: String(next.from) } : {}), otherwise };
    }
    if (w.rules !== undefined) {
      const rules = (w.rules as Written[]).map((item, i) => ({
        ...(item.name !== undefined ? { name: String(item.name) } : {}),
        when: this.conditions(item.when, [...at, 'rules', i, 'when']),
        rule: this.dateRule(item, [...at, 'rules', i], purpose, true),
      }));
      return { kind: 'rules', rules, otherwise };
    }
    if (w.date !== undefined) {
      if (!isRealDate(w.date)) this.problem([...at, 'date'], `${w.date} is not a date`);
      return { kind: 'fixed', date: w.date, otherwise };
    }
    if (w.after_run !== undefined) {
      const [amount, unit] = String(w.after_run).split(' ');
      return { kind: 'after_run', amount: Number(amount), unit: unit!.replace(/s$/, '') as 'day', otherwise };
    }
    if (w.from !== undefined) {
      const value = this.value({ from: w.from, format: w.format ?? 'YYYY-MM-DD' }, at);
      return { kind: 'column', value, otherwise };
    }
    if (w.end_of_year !== undefined) {
      const monthDay = w.month_day ?? '12-31';
      if (!isRealDate(`2000-${monthDay}`)) this.problem([...at, 'month_day'], `${monthDay} is not a month and day`);
      return { kind: 'end_of_year', column: String(w.end_of_year), monthDay, otherwise };
    }
    const terms = (w.term_calendar ?? []) as { name?: string; from: string; to: string; expires: string }[];
    terms.forEach((term, i) => {
      for (const key of ['from', 'to', 'expires'] as const) if (!isRealDate(term[key])) this.problem([...at, 'term_calendar', i, key], `${term[key]} is not a date`);
      if (term.from > term.to) this.problem([...at, 'term_calendar', i], `the term starts (${term.from}) after it ends (${term.to})`);
    });
    return { kind: 'term_calendar', terms, otherwise };
  }

  /** A constant code must be one of allowed_codes[kind], when the mapping lists them. */
  private code(kind: AllowedCodeKind, value: unknown, at: PathItem[], key = false): void {
    const allowed = this.allowed[kind];
    if (!allowed || allowed.has(String(value))) return;
    const closest = closestOf(String(value), [...allowed]);
    this.problem(at, `"${value}" is not in allowed_codes.${kind}${closest ? `; did you mean "${closest}"?` : ''}`, key);
  }

  /** The codes a value can produce that are known now (constants, map values, the unknown fallback). */
  private codesOfValue(kind: AllowedCodeKind, v: ValueExpr, at: PathItem[]): void {
    if (v.source.kind === 'constant' && !v.map) this.code(kind, v.source.value, at);
    if (v.map) {
      for (const code of new Set(v.map.entries.values())) this.code(kind, code, [...at, 'map']);
    }
    if (v.unknown && v.unknown !== 'keep') this.code(kind, v.unknown, [...at, 'unknown']);
    if (v.source.kind === 'rules') v.source.rules.forEach((rule, i) => this.codesOfValue(kind, rule.value, [...at, 'rules', i, 'value']));
  }
}

/** The value keys of an item that also has its own keys (id_type, email_type, ...). */
function pickValue(spec: Written): Written {
  const keys = ['from', 'template', 'value', 'rules', 'otherwise', 'trim', 'strip_prefix', 'case', 'map', 'unknown', 'boolean', 'format', 'required', 'truncate'];
  keys.push('replace', 'must_match', 'split', 'substring', 'pad', 'prefix', 'on_unfit', 'phone', 'unless_same_as', 'ignore_case');
  // A key left out stays undefined, as value() reads it.
  return Object.fromEntries(keys.map((k) => [k, spec[k]]));
}

function inlineTable(o: Record<string, unknown>, name: string): Table {
  return { name, origin: 'inline', entries: new Map(Object.entries(o).map(([k, v]) => [tableKey(k), String(v)])) };
}

function columnsOf(source: Source): string[] {
  if (source.kind === 'column') return source.columns;
  if (source.kind === 'template') return source.parts.flatMap((p) => ('column' in p ? [p.column] : []));
  if (source.kind === 'rules') return [...new Set(source.rules.flatMap((r) => [...r.when.flatMap((c) => conditionColumns(c)), ...r.value.columns]))];
  return [];
}

/**
 * A date format (YYYY, MM and DD, with separators or none) as a regular expression and the order
 * of its parts. The schema's pattern for format (shape.ts) lets none through without all three.
 */
function dateFormat(pattern: string): DateFormat {
  // Stryker disable next-line ObjectLiteral: every format has YYYY, MM and DD (the schema), so each is set below
  const order = { year: 0, month: 0, day: 0 };
  let group = 0;
  const regexText = pattern.replace(/YYYY|MM|DD|[.*+?^${}()|[\]\\/]/g, (token) => {
    if (token === 'YYYY') return (order.year = ++group), '(\\d{4})';
    if (token === 'MM') return (order.month = ++group), '(\\d{1,2})';
    if (token === 'DD') return (order.day = ++group), '(\\d{1,2})';
    return '\\' + token;
  });
  // Without separators, digits cannot be told apart: use fixed widths.
  const compact = !/[./ -]/.test(pattern);
  return { pattern, regex: new RegExp(`^${compact ? regexText.replace(/\\d\{1,2\}/g, '\\d{2}') : regexText}$`), order };
}

const DATE_OPS = ['before', 'after', 'on_or_before', 'on_or_after'] as const;

/** A file-name glob (* any characters, ? one) as a regular expression; compared without case, as file systems of exports often are. */
function globRegex(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
}

/** YYYY-MM-DD of a day that exists (shared/dates.ts decides, as it does for the rows). */
export function isRealDate(text: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  return m !== null && isValidYmd(Number(m[1]), Number(m[2]), Number(m[3]));
}
