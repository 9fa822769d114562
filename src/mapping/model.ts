// The mapping as the pipeline uses it: checked and normalised from what the librarian wrote
// (the written form is described by shape.ts). Every shorthand is spelled out here, tables are
// loaded, regular expressions compiled, so the mapping core never has to guess or read a file.

export interface Mapping {
  /** Path of the mapping file and its SHA-256, for provenance. */
  file: string;
  sha256: string;
  source: string;
  requiredColumns: string[];
  /** Columns with no Alma SIS field, with the librarian's reason. */
  unusedColumns: Record<string, string>;
  delimiter: string;
  /** Columns that never leave the input (a password): not in the rejects file, the report or a log. */
  sensitiveColumns: string[];
  /** More rows of one primary id than this are a broken export: every one of them is rejected. */
  maxRowsPerPerson: number;
  tables: Map<string, Table>;
  allowedCodes: AllowedCodes;
  fields: FieldSpec[];
  userGroup: GroupPolicy;
  /** How one person's several rows become one user. */
  merge: MergePolicy;
  /** Rows left out on purpose (a retiree, an expired job): the first rule whose conditions hold names why. */
  skip: RowRule[];
  /** Rows rejected on a condition, with the mapping's own message. */
  reject: RejectRule[];
  expiry: Map<string, DateRule>;
  defaultExpiry?: DateRule;
  /** The purge date per user group, and for the others (days_after_expiry is a default of after_expiry in days). */
  purge: Map<string, DateRule>;
  defaultPurge?: DateRule;
  identifiers: IdentifierSpec[];
  emails: EmailSpec[];
  phones: PhoneSpec[];
  addresses: AddressSpec[];
  statistics: StatisticSpec[];
  notes: NoteSpec[];
  blocks: BlockSpec[];
  rsLibraries: ValueExpr[];
  libraryNotices: LibraryNoticeSpec[];
}

export interface Table {
  name: string;
  /** Where it came from: "inline" or the CSV file's path. */
  origin: string;
  /** Keys are compared without case and surrounding space. */
  entries: Map<string, string>;
}

/** How table keys and codes are compared: without case and surrounding space. */
export function tableKey(code: string): string {
  // Stryker disable next-line MethodExpression: every key is made here on both sides (a table's entries as it loads, a value as it is looked up), so upper case pairs the same keys
  return code.trim().toLowerCase();
}

export type AllowedCodeKind = 'user_group' | 'id_type' | 'email_type' | 'phone_type' | 'address_type' | 'statistic_category' | 'note_type';
export type AllowedCodes = Partial<Record<AllowedCodeKind, Set<string>>>;

export type Source =
  | { kind: 'column'; columns: string[] }
  | { kind: 'template'; parts: TemplatePart[] }
  | { kind: 'constant'; value: string }
  | { kind: 'rules'; rules: ValueRule[] };

export type TemplatePart = { text: string } | { column: string } | { runDate: true };

export interface ValueRule {
  name?: string;
  when: Condition[];
  value: ValueExpr;
}

export interface ValueExpr {
  source: Source;
  trim: boolean;
  stripPrefix?: string;
  case?: 'upper' | 'lower';
  map?: Table;
  /** A value the map does not know: undefined → reject the row; 'keep' → pass it; else this code (counted). */
  unknown?: string;
  boolean?: { true: string; false: string };
  dateFormat?: DateFormat;
  /** Reformatting, applied in this order after strip_prefix: replace, split, substring, pad (then case, map, ...). */
  replace?: Replacement[];
  /** With replace: a value that no pattern matches is unfit. */
  mustMatch?: boolean;
  split?: { by?: string; part: number };
  /** 0-based start (negative: from the end), length (undefined: to the end), and the characters a value needs. */
  substring?: { start: number; length?: number; needs: number };
  pad?: { width: number; with: string; side: 'left' | 'right' };
  /** What a value replace, split or substring cannot handle becomes. */
  onUnfit: 'keep' | 'drop' | 'reject';
  phone?: PhoneFormat;
  prefix?: string;
  /** The value is left out when it equals this one. */
  unlessSameAs?: { value: ValueExpr; ignoreCase: boolean };
  required: boolean;
  truncate: boolean;
  otherwise?: ValueExpr;
  /** Columns this value reads, for messages ("Field (emailaddress) ...") and for explain. */
  columns: string[];
}

export interface Replacement {
  pattern: string;
  /** Global, for the replacing; `test` is the same pattern without the g flag, to tell whether it matches. */
  regex: RegExp;
  test: RegExp;
  with: string;
}

export interface PhoneFormat {
  format: 'e164' | 'national' | 'international';
  /** ISO 3166 country code of numbers written without a country code. */
  region: string;
  onInvalid: 'keep' | 'drop' | 'reject';
}

export interface DateFormat {
  pattern: string;
  regex: RegExp;
  /** Index of the year, month and day groups in regex. */
  order: { year: number; month: number; day: number };
}

export type ConditionTest =
  | { kind: 'equals'; values: string[] }
  | { kind: 'matches'; regex: RegExp; source: string }
  | { kind: 'empty'; empty: boolean }
  | { kind: 'is'; is: boolean }
  | { kind: 'in_table'; table: Table }
  /** The column's date against a bound: the run date or a fixed YYYY-MM-DD. */
  | { kind: 'date'; compare: DateComparison[]; format: DateFormat; notADate: 'reject' | 'holds' | 'fails' }
  /** The column against another column of the same row. */
  | { kind: 'equals_column'; other: string; ignoreCase: boolean };

export type DateComparisonOp = 'before' | 'after' | 'on_or_before' | 'on_or_after';
export interface DateComparison {
  op: DateComparisonOp;
  /** A YYYY-MM-DD date, or 'run_date'. */
  bound: string;
}

/**
 * A condition is a tree: a test on a column, or all / any / not of conditions, or which input file
 * the row came from (decided once per file, when the mapping is compiled). A list of conditions
 * (a rule's `when`) holds when every one holds.
 */
export type Condition =
  | { kind?: 'test'; column: string; test: ConditionTest; negate?: boolean }
  | { kind: 'all'; conditions: Condition[] }
  | { kind: 'any'; conditions: Condition[] }
  | { kind: 'not'; conditions: Condition[] }
  | { kind: 'input_file'; patterns: string[]; regexes: RegExp[] };

/** The columns a condition reads, in the order it reads them. */
export function conditionColumns(c: Condition, out: string[] = []): string[] {
  switch (c.kind) {
    case undefined:
    // Stryker disable next-line StringLiteral: load writes a column's test without a kind (undefined, the case above); 'test' is there for the type
    case 'test':
      out.push(c.column);
      if (c.test.kind === 'equals_column') out.push(c.test.other);
      return out;
    case 'all':
    case 'any':
    case 'not':
      for (const x of c.conditions) conditionColumns(x, out);
      return out;
    case 'input_file':
      return out;
  }
}

/** A rule of the top-level skip list. */
export interface RowRule {
  name: string;
  when: Condition[];
}

/** A rule of the top-level reject list. */
export interface RejectRule extends RowRule {
  message: string;
}

export interface FieldSpec {
  field: string;
  value: ValueExpr;
}

export interface GroupRule {
  name: string;
  when: Condition[];
  group: ValueExpr;
}

export interface GroupPolicy {
  rules: GroupRule[];
  default?: string;
  /** Group code → rank; lower wins. Groups not listed rank after all listed ones. */
  priority: Map<string, number>;
  exceptions: { name: string; groups: string[]; group: string }[];
  /** A row no rule maps (and no default): rejected, or written without a user group (Alma keeps the group it has). */
  unmapped?: 'reject' | 'omit';
}

/**
 * combine (the default): the winning row's values first, the other rows fill its empty fields and
 * add their lists. first_wins_whole: the winning row is the user; the others are dropped.
 */
export interface MergePolicy {
  policy: 'combine' | 'first_wins_whole';
  /** Input file names (without folder), first wins; empty: by group priority. */
  order: string[];
}

// Stryker disable next-line ObjectLiteral,StringLiteral,ArrayDeclaration: only 'first_wins_whole' changes a merge, and `order` is read only under it: no policy, an empty one or another order all merge as 'combine' does
export const DEFAULT_MERGE: MergePolicy = { policy: 'combine', order: [] };

export type DateRule =
  | { kind: 'fixed'; date: string; otherwise?: DateRule }
  | { kind: 'after_run'; amount: number; unit: 'day' | 'week' | 'month' | 'year'; otherwise?: DateRule }
  | { kind: 'column'; value: ValueExpr; otherwise?: DateRule }
  | { kind: 'end_of_year'; column: string; monthDay: string; otherwise?: DateRule }
  | { kind: 'term_calendar'; terms: { name?: string; from: string; to: string; expires: string }[]; otherwise?: DateRule }
  | { kind: 'after_expiry'; amount: number; unit: 'day' | 'week' | 'month' | 'year'; otherwise?: DateRule }
  | { kind: 'run_date'; otherwise?: DateRule }
  /** monthDay (MM-DD) in the run year + years, one year more once the run date reaches from (MM-DD). */
  | { kind: 'next'; monthDay: string; years: number; from?: string; otherwise?: DateRule }
  /** The first rule whose conditions hold gives the date; otherwise when none does (or it gives none). */
  | { kind: 'rules'; rules: { name?: string; when: Condition[]; rule: DateRule }[]; otherwise?: DateRule };

export interface IdentifierSpec {
  id_type: string;
  note?: ValueExpr;
  status?: ValueExpr;
  value: ValueExpr;
}

export interface BlockSpec {
  block_type?: string;
  block_description: ValueExpr;
  block_status?: 'Active' | 'Inactive';
  block_note?: ValueExpr;
}

export interface LibraryNoticeSpec {
  code: string;
  /** Read as yes/no. */
  value: ValueExpr;
}

export interface EmailSpec {
  email_type: string;
  preferred: boolean;
  description?: string;
  onInvalid: 'reject' | 'drop';
  value: ValueExpr;
}

export interface PhoneSpec {
  phone_type: string;
  preferred: boolean;
  preferred_sms: boolean;
  value: ValueExpr;
}

export const ADDRESS_PARTS = ['line1', 'line2', 'line3', 'line4', 'line5', 'city', 'state_province', 'postal_code', 'country', 'address_note'] as const;
export type AddressPart = (typeof ADDRESS_PARTS)[number];

export interface AddressSpec {
  address_type: string;
  preferred: boolean;
  parts: Partial<Record<AddressPart, ValueExpr>>;
  /** Dates, each with a date format (YYYY-MM-DD unless the mapping gives one). */
  start_date?: ValueExpr;
  end_date?: ValueExpr;
}

export interface StatisticSpec {
  statistic_category: ValueExpr;
  category_type?: string;
  statistic_note?: string;
}

export interface NoteSpec {
  note_type: string;
  note_text: TemplatePart[];
  user_viewable: boolean;
  popup_note: boolean;
}
