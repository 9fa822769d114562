// The mapping core: one CSV row in, one Alma user (or the reasons it cannot be one) out.
// Pure: no files, no clock, no network. The run date comes in as an argument. A mapping is
// compiled once per input file, against that file's header, so that each row costs only
// array look-ups.
import { emptyUser, maxLengthOf, type Address, type AlmaUser } from '../shared/alma.js';
import type { RowProblem, RowWarning } from '../shared/errors.js';
import { addPeriod, dayOfYearFrom, isValidYmd, ymd } from '../shared/dates.js';
import { formatPhone } from './phone.js';
import { conditionColumns, tableKey, type AllowedCodeKind, type Condition, type DateFormat, type DateRule, type Mapping, type Source, type Table, type ValueExpr } from './model.js';

export type MapResult = MappedUser | RejectedRow;

export interface MappedUser {
  ok: true;
  user: AlmaUser;
  /** The rule that chose the user group (its name), or "default". */
  groupRule: string;
  warnings: RowWarning[];
}

export interface RejectedRow {
  ok: false;
  /** The primary id when it could be read, for the report. */
  primary_id?: string;
  problems: RowProblem[];
  warnings: RowWarning[];
  /** For explain: the values that no user group rule maps ("level = XX"). */
  unmappedGroup?: string;
  /**
   * Set when the row was left out on purpose by the mapping's skip list: the rule's name. A
   * skipped row has no problems; it is counted as skipped, not rejected.
   */
  skipped?: string;
}

export interface RowMapper {
  /** The file's columns that the mapping reads but the header lacks (they read as empty). */
  readonly absentColumns: string[];
  map(values: string[]): MapResult;
  /** A record as read: rejected whole when it has more or fewer fields than the header, else map(). */
  mapRecord(values: string[]): MapResult;
  /** Only the primary id, as cheaply as possible (the merge index needs no more). */
  primaryId(values: string[]): string | undefined;
  /** How many identifier values the row gives (at most what its user will carry): sizes the index of identifiers. */
  identifierCount(values: string[]): number;
}

/** A row with more or fewer fields than the header: rejected whole, its fields may be shifted. */
function raggedRow(found: number, expected: number, primaryId: string | undefined): MapResult {
  const problem: RowProblem = { code: 'ragged_row', message: `The row has ${found} field${found === 1 ? '' : 's'} but the header has ${expected}; a field may hold an unquoted comma or line break` };
  return { ok: false, primary_id: primaryId, problems: [problem], warnings: [] };
}

/** XML 1.0 forbids these characters (C0 controls but tab/LF/CR, U+FFFE/U+FFFF, lone surrogates). */
const FORBIDDEN_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|\p{Cs}/gu;
const HAS_FORBIDDEN_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|\p{Cs}/u;

/**
 * Characters nobody sees or can type at a login: zero-width spaces and joiners, the word joiner,
 * the byte order mark, and the bidirectional controls. In an id they make two ids that look
 * alike differ (Alma would hold a user nobody can find or sign in as).
 */
const INVISIBLE = /[\u061C\u200B-\u200F\u202A-\u202E\u2060\u2066-\u2069\uFEFF]/;
const INVISIBLE_NAMES: Record<string, string> = {
  '\u061C': 'ARABIC LETTER MARK',
  '\u200B': 'ZERO WIDTH SPACE',
  '\u200C': 'ZERO WIDTH NON-JOINER',
  '\u200D': 'ZERO WIDTH JOINER',
  '\u200E': 'LEFT-TO-RIGHT MARK',
  '\u200F': 'RIGHT-TO-LEFT MARK',
  '\u202A': 'LEFT-TO-RIGHT EMBEDDING',
  '\u202B': 'RIGHT-TO-LEFT EMBEDDING',
  '\u202C': 'POP DIRECTIONAL FORMATTING',
  '\u202D': 'LEFT-TO-RIGHT OVERRIDE',
  '\u202E': 'RIGHT-TO-LEFT OVERRIDE',
  '\u2060': 'WORD JOINER',
  '\u2066': 'LEFT-TO-RIGHT ISOLATE',
  '\u2067': 'RIGHT-TO-LEFT ISOLATE',
  '\u2068': 'FIRST STRONG ISOLATE',
  '\u2069': 'POP DIRECTIONAL ISOLATE',
  '\uFEFF': 'ZERO WIDTH NO-BREAK SPACE (byte order mark)',
};

/** The problem of an id that holds an invisible character, naming the column and the first such character; undefined for most ids. */
export function invisibleCharacter(value: string, column: string): RowProblem | undefined {
  const m = INVISIBLE.exec(value);
  if (!m) return undefined;
  const ch = m[0];
  const code = 'U+' + ch.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
  const shown = value.replace(new RegExp(INVISIBLE.source, 'g'), (c) => `<U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}>`);
  return {
    code: 'invisible_character',
    message: `Field (${column}) holds an invisible character, ${code} ${INVISIBLE_NAMES[ch]}, at character ${m.index + 1}: '${shown}' (nobody can see or type it at a login; remove it in the SIS)`,
    column,
    value: shown,
  };
}

const SURROGATE = /[\uD800-\uDFFF]/;
const SPACES = /\s+/;

const TRUE_WORDS = new Set(['y', 'yes', 'true', '1']);
const FALSE_WORDS = new Set(['n', 'no', 'false', '0']);

const EMAIL = /^[^\s@"(),:;<>[\]\\]+@[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?)+$/u;

/** Reads a yes/no value in the forms SIS exports use; undefined when it is neither. */
export function parseBoolean(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (TRUE_WORDS.has(t)) return true;
  if (FALSE_WORDS.has(t)) return false;
  return undefined;
}

export function isWellFormedEmail(text: string): boolean {
  return text.length <= 254 && EMAIL.test(text);
}

class RowContext {
  problems: RowProblem[] = [];
  warnings: RowWarning[] = [];
  /** The column the value being evaluated came from: in a fallback chain, the one that had a value, so that messages name it. */
  column?: string;
  constructor(
    /** The row's cells; replaced by a cleaned copy when a cell holds characters XML forbids. */
    public values: string[],
    readonly runDate: string,
  ) {}
}

/** A condition compiled for one file: what it costs a row is its column look-ups. */
type Check = (ctx: RowContext) => boolean;
const ALWAYS: Check = () => true;
// Stryker disable next-line ArrowFunction: undefined fails a check as false does
const NEVER: Check = () => false;

/** Every check holds. */
function allOf(checks: Check[]): Check {
  return (ctx) => {
    for (const g of checks) if (!g(ctx)) return false;
    return true;
  };
}

/** Some check holds. */
function anyOf(checks: Check[]): Check {
  return (ctx) => {
    for (const g of checks) if (g(ctx)) return true;
    return false;
  };
}

/** A date in a column, as YYYY-MM-DD; undefined when the text is not a date in the format. */
function parseDate(format: DateFormat, raw: string): string | undefined {
  const m = format.regex.exec(raw);
  if (!m) return undefined;
  const o = format.order;
  const [y, mo, d] = [Number(m[o.year]), Number(m[o.month]), Number(m[o.day])];
  return isValidYmd(y, mo, d) ? ymd(y, mo, d) : undefined;
}

/**
 * Compiles a mapping for one input file. `inputFile` (its path or name) decides the mapping's
 * input_file conditions once, here, so that they cost a row nothing.
 */
export function compileMapping(mapping: Mapping, header: string[], runDate: string, inputFile = ''): RowMapper {
  // Stryker disable next-line Regex: the leftmost match starts at 0 with or without ^, .* taking all it can
  const inputName = inputFile.replace(/^.*[\\/]/, '');
  const index = new Map<string, number>();
  header.forEach((name, i) => {
    if (!index.has(name)) index.set(name, i);
  });
  const absent = new Set<string>();
  const col = (name: string): number => {
    const i = index.get(name);
    if (i === undefined) {
      absent.add(name);
      return -1;
    }
    return i;
  };
  // Resolve every column reference once, so that evaluating a row is array look-ups only.
  const columnIndex = new Map<string, number>();
  const resolve = (name: string) => {
    // Stryker disable next-line ConditionalExpression: resolving a column again gives the same index (absent is a set)
    if (!columnIndex.has(name)) columnIndex.set(name, col(name));
  };
  visitColumns(mapping, resolve);

  const cell = (ctx: RowContext, column: string): string => {
    // Stryker disable next-line UnaryOperator: visitColumns resolved every column a row reads, so the fallback is never taken
    const i = columnIndex.get(column) ?? -1;
    // Stryker disable next-line ConditionalExpression: values[-1] is undefined, read as '' all the same
    return i < 0 ? '' : (ctx.values[i] ?? '');
  };

  const evaluate = (expr: ValueExpr, ctx: RowContext, label?: string): string | undefined => {
    ctx.column = undefined;
    let raw = source(expr.source, ctx, expr, label);
    // For rules: the column of the value the rule that held read (undefined when none held).
    // Stryker disable next-line ConditionalExpression: ruleColumn is read for rules only
    const ruleColumn = expr.source.kind === 'rules' ? ctx.column : undefined;
    // The column the value came from: for a fallback chain the one that had a value, for rules the
    // one the held rule's value read (else the first column the rules name); a template's first.
    const column = ctx.column ?? expr.columns[0];
    // Stryker disable next-line StringLiteral: without a label only unless_same_as (on a context whose problems are not kept) and a date from a column (which names it) are evaluated
    const name = column ?? label ?? 'value';
    if (raw !== undefined && expr.trim) raw = raw.trim();
    if (!raw) return none(expr, ctx, label, column, ruleColumn);
    if (expr.stripPrefix && raw.startsWith(expr.stripPrefix)) raw = raw.slice(expr.stripPrefix.length);
    // Stryker disable next-line ConditionalExpression: reshape() without replace, split, substring or pad returns the value as it came
    if (expr.replace || expr.split || expr.substring || expr.pad) {
      raw = reshape(expr, raw, ctx, name, column);
      if (raw === undefined) return undefined;
    }
    // A value that strip_prefix, replace, split or substring left empty or blank ('n/a' with its
    // letters removed, the space of 'a b') is empty: the otherwise, or required, decides, as for an
    // empty cell. (pad leaves a value that had a character never blank.)
    // Stryker disable next-line ConditionalExpression: pad alone never leaves a value blank, so checking it too changes nothing
    if (expr.stripPrefix || expr.replace || expr.split || expr.substring) {
      if (expr.trim) raw = raw.trim();
      if (!raw) return none(expr, ctx, label, column, ruleColumn);
    }
    if (expr.case === 'upper') raw = raw.toUpperCase();
    else if (expr.case === 'lower') raw = raw.toLowerCase();
    if (expr.boolean) {
      const b = parseBoolean(raw);
      if (b === undefined) {
        ctx.problems.push({ code: 'bad_boolean', message: `Field (${name}) is not a yes/no value: '${raw}' (expected y, yes, true, 1, n, no, false or 0)`, column, value: raw });
        return undefined;
      }
      return b ? expr.boolean.true : expr.boolean.false;
    }
    if (expr.map) {
      const mapped = expr.map.entries.get(tableKey(raw));
      if (mapped !== undefined) raw = mapped;
      else if (expr.unknown === 'keep') {
        /* passed unchanged, as the mapping says */
      } else if (expr.unknown !== undefined) {
        ctx.warnings.push({ kind: 'unknown_code', message: `Field (${name}) value '${raw}' is not in ${tableName(expr.map)}; ${expr.unknown} used`, column, value: raw });
        raw = expr.unknown;
      } else {
        ctx.problems.push({ code: 'bad_value', message: `Field (${name}) has a value the mapping does not know: '${raw}' (not in ${tableName(expr.map)})`, column, value: raw });
        return undefined;
      }
    }
    if (expr.dateFormat) {
      const date = parseDate(expr.dateFormat, raw);
      if (date === undefined) {
        ctx.problems.push({ code: 'bad_date', message: `Field (${name}) is not a date in the form ${expr.dateFormat.pattern}: '${raw}'`, column, value: raw });
        return undefined;
      }
      raw = date;
    }
    if (expr.phone) {
      const phone = formatPhone(raw, expr.phone);
      if (phone !== undefined) raw = phone;
      else if (expr.phone.onInvalid === 'drop') {
        ctx.warnings.push({ kind: 'invalid_phone_dropped', message: `Field (${name}) is not a phone number (region ${expr.phone.region}) and was left out: '${raw}'`, column, value: raw });
        return undefined;
      } else if (expr.phone.onInvalid === 'reject') {
        ctx.problems.push({ code: 'bad_phone', message: `Field (${name}) is not a phone number (region ${expr.phone.region}): '${raw}'`, column, value: raw });
        return undefined;
      }
    }
    if (expr.prefix) raw = expr.prefix + raw;
    if (expr.unlessSameAs) {
      // The value compared with is only read: what it cannot be (a missing part) is no problem of the row's.
      const other = evaluate(expr.unlessSameAs.value, new RowContext(ctx.values, ctx.runDate));
      if (other !== undefined && (expr.unlessSameAs.ignoreCase ? other.toLowerCase() === raw.toLowerCase() : other === raw)) raw = undefined;
    }
    ctx.column = column;
    return raw;
  };

  /**
   * An empty value (a cell, or what strip_prefix or replace left): the otherwise, or a problem
   * when the value is required. A function of its own, not a closure made for every value.
   */
  const none = (expr: ValueExpr, ctx: RowContext, label: string | undefined, column: string | undefined, ruleColumn: string | undefined): string | undefined => {
    if (expr.otherwise) return evaluate(expr.otherwise, ctx, label);
    ctx.column = column;
    // A value from rules names the column of the rule's value that was empty (the inner
    // evaluate left it in ctx.column), not the column its first condition tested.
    const empty = expr.source.kind === 'rules' ? (ruleColumn ?? label ?? nameOf(expr, label)) : nameOf(expr, label);
    if (expr.required) ctx.problems.push({ code: 'missing_value', message: `Field (${empty}) is required but empty`, column: expr.source.kind === 'rules' ? ruleColumn : expr.columns[0] });
    return undefined;
  };

  /** replace, split, substring and pad, in that order; a value they cannot handle gets the mapping's on_unfit. */
  const reshape = (expr: ValueExpr, value: string, ctx: RowContext, name: string, column: string | undefined): string | undefined => {
    let raw = value;
    const unfit = (why: string): boolean => {
      if (expr.onUnfit === 'keep') return true;
      if (expr.onUnfit === 'drop') ctx.warnings.push({ kind: 'unfit_value_dropped', message: `Field (${name}) ${why} and was left out: '${raw}'`, column, value: raw });
      else ctx.problems.push({ code: 'unfit_value', message: `Field (${name}) ${why}: '${raw}'`, column, value: raw });
      return false;
    };
    if (expr.replace) {
      let matched = false;
      for (const r of expr.replace) {
        if (!r.test.test(raw)) continue;
        matched = true;
        raw = raw.replace(r.regex, r.with);
      }
      if (!matched && expr.mustMatch && !unfit(`matches none of the patterns of replace`)) return undefined;
    }
    if (expr.split) {
      const parts = expr.split.by === undefined ? raw.split(SPACES) : raw.split(expr.split.by);
      // Stryker disable next-line EqualityOperator: part 0 is refused by mapping check, so > 0 and >= 0 agree
      const part = parts[expr.split.part > 0 ? expr.split.part - 1 : parts.length + expr.split.part];
      // Stryker disable next-line ConditionalExpression,MethodExpression: evaluate() trims a split value again
      const trimmed = part !== undefined && expr.trim ? part.trim() : part;
      if (trimmed) raw = trimmed;
      else if (!unfit(`has no part ${expr.split.part} when split by ${expr.split.by === undefined ? 'spaces' : `'${expr.split.by}'`}`)) return undefined;
    }
    if (expr.substring) {
      const { start, length, needs } = expr.substring;
      // Characters, not UTF-16 units, so that a cut never falls inside an emoji.
      const chars = SURROGATE.test(raw) ? [...raw] : raw;
      if (chars.length >= needs) {
        const end = length === undefined ? undefined : start + length;
        raw = typeof chars === 'string' ? chars.slice(start, end) : chars.slice(start, end).join('');
      } else if (!unfit(`is too short for substring (it needs ${needs} characters)`)) return undefined;
    }
    if (expr.pad) {
      // The width counts characters, and the fill is one character (an emoji too), never half of one.
      const missing = expr.pad.width - (SURROGATE.test(raw) ? [...raw].length : raw.length);
      // Stryker disable next-line EqualityOperator: with nothing missing the fill repeated 0 times is empty
      if (missing > 0) raw = expr.pad.side === 'left' ? expr.pad.with.repeat(missing) + raw : raw + expr.pad.with.repeat(missing);
    }
    return raw;
  };

  const source = (s: Source, ctx: RowContext, expr: ValueExpr, label: string | undefined): string | undefined => {
    switch (s.kind) {
      case 'column':
        for (const column of s.columns) {
          const v = cell(ctx, column);
          if (expr.trim ? v.trim() : v) {
            ctx.column = column;
            return v;
          }
        }
        return undefined;
      case 'constant':
        return s.value;
      case 'template': {
        // A template with an empty column gives nothing at all, so that "{netid}@example.edu"
        // never becomes "@example.edu".
        let out = '';
        for (const part of s.parts) {
          if ('text' in part) out += part.text;
          else if ('runDate' in part) out += ctx.runDate;
          else {
            const v = cell(ctx, part.column).trim();
            if (!v) return undefined;
            out += v;
          }
        }
        return out;
      }
      case 'rules':
        // The rule's value is named by the field, as the rules are.
        for (const rule of s.rules) if (holds(rule.when, ctx)) return evaluate(rule.value, ctx, label);
        ctx.column = undefined;
        return undefined;
    }
  };

  /** One test on a column, as the mapping wrote it (before any not). */
  const test = (column: string, t: Extract<Condition, { column: string }>['test'], ctx: RowContext): boolean => {
    const v = cell(ctx, column).trim();
    switch (t.kind) {
      case 'equals':
        return t.values.some((x) => x.toLowerCase() === v.toLowerCase());
      case 'matches':
        return t.regex.test(v);
      case 'empty':
        return (v === '') === t.empty;
      case 'in_table':
        return t.table.entries.has(tableKey(v));
      case 'equals_column': {
        // An empty cell (or a column this file lacks) equals nothing, not even another empty one:
        // nothing was compared. A filled one never equals an empty one anyway.
        if (v === '') return false;
        const w = cell(ctx, t.other).trim();
        return t.ignoreCase ? v.toLowerCase() === w.toLowerCase() : v === w;
      }
      case 'date': {
        // An empty cell (or a column this file lacks) has no date: the test does not hold.
        if (v === '') return false;
        const date = parseDate(t.format, v);
        if (date === undefined) {
          if (t.notADate !== 'reject') return t.notADate === 'holds';
          if (!ctx.problems.some((p) => p.column === column && p.code === 'bad_date'))
            ctx.problems.push({ code: 'bad_date', message: `Field (${column}) is not a date in the form ${t.format.pattern}: '${v}'`, column, value: v });
          return false;
        }
        for (const { op, bound } of t.compare) {
          const b = bound === 'run_date' ? runDate : bound;
          if (op === 'before' ? !(date < b) : op === 'after' ? !(date > b) : op === 'on_or_before' ? !(date <= b) : !(date >= b)) return false;
        }
        return true;
      }
      case 'is': {
        // An empty cell (or a column this file lacks) is neither yes nor no: the condition does
        // not hold, and the row is not rejected for it, as an empty yes/no value is not.
        if (v === '') return false;
        const b = parseBoolean(v);
        if (b === undefined) {
          // A second test of the column tells the same message, which dedupe() drops.
          ctx.problems.push({ code: 'bad_boolean', message: `Field (${column}) is not a yes/no value: '${v}' (expected y, yes, true, 1, n, no, false or 0)`, column, value: v });
          return false;
        }
        return b === t.is;
      }
    }
  };

  // Conditions are compiled on first use and kept: an input_file condition is decided here, for
  // the file, and an all/any/not of decided parts is decided with them.
  const checks = new Map<Condition | Condition[], Check>();
  const compileOne = (c: Condition): Check => {
    switch (c.kind) {
      case undefined:
      // Stryker disable next-line StringLiteral: load writes a column's test without a kind (undefined, the case above); 'test' is there for the type
      case 'test': {
        const { column, test: t, negate } = c;
        return negate ? (ctx) => !test(column, t, ctx) : (ctx) => test(column, t, ctx);
      }
      case 'all':
        return checkAll(c.conditions);
      case 'not': {
        const inner = checkAll(c.conditions);
        return inner === ALWAYS ? NEVER : inner === NEVER ? ALWAYS : (ctx) => !inner(ctx);
      }
      case 'any': {
        const parts = c.conditions.map(checkOne);
        // Shortcuts for decided parts (input_file): the loop would give the same answers.
        if (parts.includes(ALWAYS)) return ALWAYS;
        const open = parts.filter((f) => f !== NEVER);
        if (open.length === 0) return NEVER;
        if (open.length === 1) return open[0]!;
        return anyOf(open);
      }
      case 'input_file':
        return c.regexes.some((r) => r.test(inputName)) ? ALWAYS : NEVER;
    }
  };
  const checkOne = (c: Condition): Check => {
    let f = checks.get(c);
    if (!f) checks.set(c, (f = compileOne(c)));
    return f;
  };
  function checkAll(list: Condition[]): Check {
    let f = checks.get(list);
    if (f) return f;
    const parts = list.map(checkOne);
    const open = parts.filter((g) => g !== ALWAYS);
    f = parts.includes(NEVER) ? NEVER : open.length === 0 ? ALWAYS : open.length === 1 ? open[0]! : allOf(open);
    checks.set(list, f);
    return f;
  }
  /** Every condition of the list holds (an empty list always does). */
  const holds = (conditions: Condition[], ctx: RowContext): boolean => checkAll(conditions)(ctx);

  const allowed = (kind: AllowedCodeKind, code: string, ctx: RowContext, column?: string): boolean => {
    const codes = mapping.allowedCodes[kind];
    if (!codes || codes.has(code)) return true;
    ctx.problems.push({ code: 'code_not_allowed', message: `${kind} '${code}' is not one of the codes this Alma has (allowed_codes.${kind})`, column, value: code });
    // Stryker disable next-line BooleanLiteral: the problem rejects the row whatever is written into it
    return false;
  };

  /** Sets a text field, holding it to Alma's length limit. */
  const fit = (field: string, value: string | undefined, expr: ValueExpr | undefined, ctx: RowContext): string | undefined => {
    if (value === undefined) return undefined;
    const limit = maxLengthOf(field);
    if (value.length <= limit) return value;
    // Alma (and its XSD) count characters, not UTF-16 units: an emoji is one character, and a cut
    // must never fall between the two halves of one (that would write U+FFFD).
    const chars = [...value];
    if (chars.length <= limit) return value;
    const column = expr?.columns[0];
    if (expr?.truncate) {
      ctx.warnings.push({ kind: 'truncated', message: `Field (${column ?? field}) was cut to ${limit} characters for ${field}`, column, value: chars.slice(0, 40).join('') });
      return chars.slice(0, limit).join('');
    }
    ctx.problems.push({ code: 'too_long', message: `Field (${column ?? field}) is ${chars.length} characters; Alma takes at most ${limit} for ${field}`, column, value: chars.slice(0, 40).join('') + '...' });
    return undefined;
  };

  /** The group of a row, the rule that gave it and the column it came from (or the columns no rule knew). */
  // Each rule's conditions, compiled, with the columns each reads; and the column a rule's group is named by.
  const groupRules = mapping.userGroup.rules.map((rule) => ({
    rule,
    when: rule.when.map((c) => ({ check: checkOne(c), columns: conditionColumns(c) })),
    // The column the code was read from, or the one whose test chose a fixed code.
    // Stryker disable next-line ArrowFunction: the column names only a group allowed_codes refuses, and a fixed group is checked against them when the mapping is loaded
    column: rule.group.columns[0] ?? rule.when.flatMap((c) => conditionColumns(c)).pop(),
  }));

  const pickGroup = (ctx: RowContext): { group?: string; rule: string; column?: string; unmapped?: string } => {
    const looked: string[] = [];
    for (const { rule, when, column } of groupRules) {
      // Conditions are tested in order, as holds() does; only the columns tested up to the first
      // that fails explain why the rule did not apply.
      let applies = true;
      for (const c of when) {
        for (const name of c.columns) looked.push(name);
        if (!c.check(ctx)) {
          applies = false;
          break;
        }
      }
      if (!applies) continue;
      // A rule whose group comes through a table applies only when the table knows the value;
      // otherwise the next rule gets its turn.
      const probe = new RowContext(ctx.values, ctx.runDate);
      // Stryker disable next-line StringLiteral: the label names a problem or a dropped value in the probe, which are kept only when the group has a value and no problem
      const group = evaluate(rule.group, probe, 'user_group');
      looked.push(...rule.group.columns);
      if (group && probe.problems.length === 0) {
        ctx.warnings.push(...probe.warnings);
        return { group, rule: rule.name, column };
      }
    }
    if (mapping.userGroup.default) return { group: mapping.userGroup.default, rule: 'default' };
    // Columns with a value name what no rule knows; empty ones (often columns of another export)
    // are named only when every column is empty.
    const unique = [...new Set(looked)];
    const filled = unique.filter((c) => cell(ctx, c).trim() !== '');
    const named = filled.length ? filled : unique;
    const unmapped = named.map((c) => `${c} = '${cell(ctx, c).trim()}'`).join(', ');
    return { rule: 'none', column: named[0], unmapped };
  };

  const nextDates = new Map<DateRule, string>();
  const dateOf = (rule: DateRule | undefined, ctx: RowContext, expiry?: string): string | undefined => {
    if (!rule) return undefined;
    let date: string | undefined;
    switch (rule.kind) {
      case 'fixed':
        date = rule.date;
        break;
      case 'after_run':
        date = addPeriod(ctx.runDate, rule);
        break;
      case 'column':
        date = evaluate(rule.value, ctx);
        break;
      case 'end_of_year': {
        const text = cell(ctx, rule.column).trim();
        if (!text) break;
        if (!/^\d{4}$/.test(text)) {
          ctx.problems.push({ code: 'bad_integer', message: `Field (${rule.column}) is not a year: '${text}'`, column: rule.column, value: text });
          return undefined;
        }
        date = `${text}-${rule.monthDay}`;
        break;
      }
      case 'term_calendar':
        date = rule.terms.find((t) => t.from <= ctx.runDate && ctx.runDate <= t.to)?.expires;
        break;
      case 'after_expiry':
        if (expiry) date = addPeriod(expiry, rule);
        break;
      case 'run_date':
        date = ctx.runDate;
        break;
      case 'next':
        // The same for every row of the run: computed once.
        date = nextDates.get(rule);
        if (date === undefined) nextDates.set(rule, (date = dayOfYearFrom(ctx.runDate, rule)));
        break;
      case 'rules':
        for (const r of rule.rules)
          if (holds(r.when, ctx)) {
            date = dateOf(r.rule, ctx, expiry);
            break;
          }
        break;
    }
    return date ?? dateOf(rule.otherwise, ctx, expiry);
  };

  const invisible = (value: string, column: string, ctx: RowContext): void => {
    const problem = invisibleCharacter(value, column);
    if (problem) ctx.problems.push(problem);
  };

  const primaryField = mapping.fields.find((f) => f.field === 'primary_id')!;
  const primaryColumn = primaryField.value.columns[0];
  // The column an empty primary id is named by. Rules name none: their columns are those their
  // conditions test, which have values (that no rule held is why the id is empty).
  const emptyPrimary = primaryField.value.source.kind === 'rules' ? undefined : primaryColumn;

  // Rules that never hold for this file are left out (a shortcut: such a check does nothing either).
  const skips = mapping.skip.map((rule) => ({ name: rule.name, check: checkAll(rule.when) })).filter((r) => r.check !== NEVER);
  const rejects = mapping.reject
    .map((rule) => ({ rule, check: checkAll(rule.when), column: rule.when.flatMap((c) => conditionColumns(c))[0] }))
    .filter((r) => r.check !== NEVER);

  const map = (values: string[]): MapResult => {
    const ctx = new RowContext(values, runDate);
    cleanCells(values, header, ctx);
    // The skip list first: a row left out on purpose is not checked further.
    for (const { name, check } of skips) {
      if (!check(ctx)) continue;
      const probe = new RowContext(ctx.values, runDate);
      // Stryker disable next-line StringLiteral: the label names only the probe's problems, which are not kept
      const id = evaluate(primaryField.value, probe, 'primary_id');
      return { ok: false, skipped: name, ...(id && !probe.problems.length ? { primary_id: id } : {}), problems: [], warnings: ctx.warnings };
    }
    for (const { rule, check, column } of rejects) {
      if (check(ctx)) ctx.problems.push({ code: 'rejected_by_rule', message: `${rule.message} (reject rule "${rule.name}")`, ...(column ? { column, value: cell(ctx, column).trim() } : {}) });
    }
    // Stryker disable next-line StringLiteral: primary_id is always among the fields, and set below
    const user = emptyUser('');
    const fields = user as unknown as Record<string, string | undefined>;
    for (const { field, value } of mapping.fields) {
      fields[field] = fit(field, evaluate(value, ctx, field), value, ctx);
      if (field === 'primary_id' && fields[field]) invisible(fields[field]!, ctx.column ?? value.columns[0] ?? field, ctx);
    }
    if (!user.primary_id && !ctx.problems.some((p) => p.column === primaryColumn)) {
      ctx.problems.push({ code: 'missing_value', message: `Field (${emptyPrimary ?? 'primary_id'}) is empty: a user needs a primary id`, column: emptyPrimary });
    }

    const { group, rule, column, unmapped } = pickGroup(ctx);
    const omitted = !group && mapping.userGroup.unmapped === 'omit';
    if (group) {
      if (allowed('user_group', group, ctx, column)) user.user_group = group;
    } else if (omitted) {
      ctx.warnings.push({ kind: 'user_group_omitted', message: `No user group rule maps this row (${unmapped}); written without a user group, so Alma keeps the group the user has`, column, value: unmapped });
    } else {
      ctx.problems.push({ code: 'no_user_group', message: `No user group rule maps this row (${unmapped})`, column, value: unmapped });
    }

    // A user without a group gets the default expiry, if the mapping has one.
    if (user.user_group || omitted) {
      user.expiry_date = dateOf(user.user_group ? (mapping.expiry.get(user.user_group) ?? mapping.defaultExpiry) : mapping.defaultExpiry, ctx);
      if (user.expiry_date && user.expiry_date < runDate)
        ctx.warnings.push({ kind: 'expiry_in_past', message: `expiry date ${user.expiry_date} is before the run date ${runDate}`, value: user.expiry_date });
      user.purge_date = dateOf((user.user_group ? mapping.purge.get(user.user_group) : undefined) ?? mapping.defaultPurge, ctx, user.expiry_date);
    }

    for (const spec of mapping.identifiers) {
      const value = fit('value', evaluate(spec.value, ctx, spec.id_type), spec.value, ctx);
      if (value) invisible(value, ctx.column ?? spec.value.columns[0] ?? spec.id_type, ctx);
      if (!value) continue;
      const note = spec.note && fit('note', evaluate(spec.note, ctx, 'note'), spec.note, ctx);
      const status = spec.status && fit('status', evaluate(spec.status, ctx, 'status'), spec.status, ctx);
      user.user_identifiers.push({ id_type: spec.id_type, value, ...(note ? { note } : {}), ...(status ? { status } : {}) });
    }
    for (const spec of mapping.emails) {
      const address = evaluate(spec.value, ctx, spec.email_type);
      if (!address) continue;
      if (!isWellFormedEmail(address)) {
        const column = ctx.column ?? spec.value.columns[0] ?? spec.email_type;
        if (spec.onInvalid === 'drop') ctx.warnings.push({ kind: 'invalid_email_dropped', message: `Field (${column}) is not a well-formed email address and was left out: '${address}'`, column, value: address });
        else ctx.problems.push({ code: 'bad_email', message: `Field (${column}) is not a well-formed email address: '${address}'`, column, value: address });
        continue;
      }
      user.contact_info.emails.push({ preferred: spec.preferred, email_address: address, ...(spec.description ? { description: spec.description } : {}), email_types: [spec.email_type] });
    }
    for (const spec of mapping.phones) {
      const number = fit('phone_number', evaluate(spec.value, ctx, spec.phone_type), spec.value, ctx);
      if (number) user.contact_info.phones.push({ preferred: spec.preferred, ...(spec.preferred_sms ? { preferred_sms: true } : {}), phone_number: number, phone_types: [spec.phone_type] });
    }
    for (const spec of mapping.addresses) {
      const address: Address = { preferred: spec.preferred, address_types: [spec.address_type] };
      const parts = address as unknown as Record<string, string | undefined>;
      for (const [part, expr] of Object.entries(spec.parts)) {
        const v = fit(part, evaluate(expr, ctx, part), expr, ctx);
        if (v) parts[part] = v;
      }
      if (spec.start_date) address.start_date = evaluate(spec.start_date, ctx, 'start_date');
      if (spec.end_date) address.end_date = evaluate(spec.end_date, ctx, 'end_date');
      // An address needs its first line; without it the row simply has no such address.
      if (address.line1) user.contact_info.addresses.push(address);
    }
    for (const spec of mapping.statistics) {
      const category = evaluate(spec.statistic_category, ctx, 'statistic_category');
      if (!category || !allowed('statistic_category', category, ctx, spec.statistic_category.columns[0])) continue;
      user.user_statistics.push({ statistic_category: category, ...(spec.category_type ? { category_type: spec.category_type } : {}), ...(spec.statistic_note ? { statistic_note: spec.statistic_note } : {}) });
    }
    for (const spec of mapping.notes) {
      let text = '';
      let complete = true;
      for (const part of spec.note_text) {
        if ('text' in part) text += part.text;
        else if ('runDate' in part) text += runDate;
        else {
          const v = cell(ctx, part.column).trim();
          if (!v) complete = false;
          text += v;
        }
      }
      const fitted = complete ? fit('note_text', text, undefined, ctx) : undefined;
      if (fitted) user.user_notes.push({ note_type: spec.note_type, note_text: fitted, user_viewable: spec.user_viewable, popup_note: spec.popup_note });
    }

    for (const spec of mapping.blocks) {
      const description = fit('block_description', evaluate(spec.block_description, ctx, 'block_description'), spec.block_description, ctx);
      if (!description) continue;
      const note = spec.block_note && fit('block_note', evaluate(spec.block_note, ctx, 'block_note'), spec.block_note, ctx);
      (user.user_blocks ??= []).push({
        ...(spec.block_type ? { block_type: spec.block_type } : {}),
        block_description: description,
        ...(spec.block_status ? { block_status: spec.block_status } : {}),
        ...(note ? { block_note: note } : {}),
      });
    }
    for (const expr of mapping.rsLibraries) {
      const code = fit('rs_library', evaluate(expr, ctx, 'rs_library'), expr, ctx);
      if (code && !(user.rs_libraries ??= []).includes(code)) user.rs_libraries.push(code);
    }
    for (const spec of mapping.libraryNotices) {
      const text = evaluate(spec.value, ctx, spec.code);
      if (!text) continue;
      const value = parseBoolean(text);
      if (value === undefined) {
        const column = ctx.column ?? spec.value.columns[0] ?? spec.code;
        ctx.problems.push({ code: 'bad_boolean', message: `Field (${column}) is not a yes/no value: '${text}' (expected y, yes, true, 1, n, no, false or 0)`, column, value: text });
        continue;
      }
      (user.library_notices ??= []).push({ code: spec.code, value });
    }

    enforceAlmaRulesWithinUser(user, ctx.warnings);

    if (ctx.problems.length) return { ok: false, primary_id: user.primary_id || undefined, problems: dedupe(ctx.problems), warnings: ctx.warnings, unmappedGroup: omitted ? undefined : unmapped };
    return { ok: true, user, groupRule: rule, warnings: ctx.warnings };
  };

  const primaryId = (values: string[]): string | undefined => {
    const ctx = new RowContext(values, runDate);
    // Stryker disable next-line StringLiteral: the label names the field in problems, which primaryId() does not return
    const id = evaluate(primaryField.value, ctx, 'primary_id');
    return ctx.problems.length ? undefined : id?.replace(FORBIDDEN_XML, '') || undefined;
  };

  const identifierCount = (values: string[]): number => {
    const ctx = new RowContext(values, runDate);
    let n = 0;
    for (const spec of mapping.identifiers) if (evaluate(spec.value, ctx, spec.id_type)) n++;
    return n;
  };

  const mapRecord = (values: string[]): MapResult => (values.length !== header.length ? raggedRow(values.length, header.length, primaryId(values)) : map(values));
  return { absentColumns: [...absent], map, mapRecord, primaryId, identifierCount };
}

/** Removes characters XML 1.0 forbids from every cell (in a copy: the row stays as it came in), with one warning per cell. */
function cleanCells(values: string[], header: string[], ctx: RowContext): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!HAS_FORBIDDEN_XML.test(v)) continue;
    const cleaned = v.replace(FORBIDDEN_XML, '');
    const removed = [...v].filter((ch) => HAS_FORBIDDEN_XML.test(ch));
    const codes = [...new Set(removed.map((ch) => 'U+' + ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')))];
    ctx.warnings.push({
      kind: 'stripped_characters',
      message: `Field (${header[i] ?? `#${i + 1}`}) had ${removed.length} character(s) that XML cannot carry (${codes.join(', ')}); removed`,
      column: header[i],
    });
    if (ctx.values === values) ctx.values = values.slice();
    ctx.values[i] = cleaned;
  }
}

/**
 * Alma's rules inside one user: an identifier value may not repeat the primary id or another
 * identifier of the same user (Alma compares them without case), and at most one address, email
 * and phone is preferred; when any exist, exactly one is.
 */
export function enforceAlmaRulesWithinUser(user: AlmaUser, warnings: RowWarning[]): void {
  // A row without a primary id is rejected anyway; its identifiers are still checked against each other.
  const seen = new Map<string, string>(user.primary_id ? [[user.primary_id.toLowerCase(), 'primary_id']] : []);
  user.user_identifiers = user.user_identifiers.filter((id) => {
    const key = id.value.toLowerCase();
    const holder = seen.get(key);
    if (holder === undefined) {
      seen.set(key, id.id_type);
      return true;
    }
    if (holder !== id.id_type || holder === 'primary_id')
      warnings.push({ kind: 'duplicate_identifier', message: `identifier ${id.id_type} '${id.value}' repeats this user's ${holder} and was left out`, value: id.value });
    return false;
  });
  for (const list of [user.contact_info.addresses, user.contact_info.emails, user.contact_info.phones] as { preferred: boolean }[][]) {
    if (list.length === 0) continue;
    const first = list.findIndex((x) => x.preferred);
    list.forEach((x, i) => (x.preferred = i === (first < 0 ? 0 : first)));
  }
}

/** A named table by its name; a map written inline by where it stands in the mapping. */
function tableName(table: Table): string {
  return table.origin === 'inline' && table.name.endsWith('.map') ? `the map at ${table.name.slice(0, -'.map'.length)}` : `table ${table.name}`;
}

function nameOf(expr: ValueExpr, label?: string): string {
  // Stryker disable next-line StringLiteral: without a label only unless_same_as (on a context whose problems are not kept) and a date from a column (which names it) are evaluated
  return expr.columns[0] ?? label ?? 'value';
}

function dedupe(problems: RowProblem[]): RowProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => (seen.has(p.message) ? false : (seen.add(p.message), true)));
}

/** Every column a mapping reads, so that a compiled mapping can resolve them once. */
export function visitColumns(mapping: Mapping, visit: (column: string) => void): void {
  const value = (v: ValueExpr | undefined) => {
    if (!v) return;
    v.columns.forEach(visit);
    if (v.source.kind === 'rules')
      for (const r of v.source.rules) {
        r.when.forEach((c) => conditionColumns(c).forEach(visit));
        value(r.value);
      }
    value(v.otherwise);
    value(v.unlessSameAs?.value);
  };
  const date = (r: DateRule | undefined): void => {
    if (!r) return;
    if (r.kind === 'column') value(r.value);
    if (r.kind === 'end_of_year') visit(r.column);
    if (r.kind === 'rules')
      for (const item of r.rules) {
        item.when.forEach((c) => conditionColumns(c).forEach(visit));
        date(item.rule);
      }
    date(r.otherwise);
  };
  mapping.fields.forEach((f) => value(f.value));
  for (const rule of mapping.userGroup.rules) {
    rule.when.forEach((c) => conditionColumns(c).forEach(visit));
    value(rule.group);
  }
  for (const rule of [...mapping.skip, ...mapping.reject]) rule.when.forEach((c) => conditionColumns(c).forEach(visit));
  mapping.expiry.forEach((r) => date(r));
  date(mapping.defaultExpiry);
  mapping.purge.forEach((r) => date(r));
  date(mapping.defaultPurge);
  mapping.identifiers.forEach((s) => {
    value(s.value);
    value(s.note);
    value(s.status);
  });
  mapping.emails.forEach((s) => value(s.value));
  mapping.phones.forEach((s) => value(s.value));
  mapping.addresses.forEach((s) => {
    Object.values(s.parts).forEach(value);
    value(s.start_date);
    value(s.end_date);
  });
  mapping.blocks.forEach((b) => {
    value(b.block_description);
    value(b.block_note);
  });
  mapping.rsLibraries.forEach(value);
  mapping.libraryNotices.forEach((n) => value(n.value));
  mapping.statistics.forEach((s) => value(s.statistic_category));
  mapping.notes.forEach((n) => n.note_text.forEach((p) => 'column' in p && visit(p.column)));
}

