// Errors are data: a closed list of codes, a message a librarian or operator understands, and the
// context (file, row, column, value) attached as fields. Two kinds exist:
//  - RunError stops the run (a bad file, mapping, config, schema, guard or delivery); one top-level
//    handler in cli.ts turns its code into the documented exit code.
//  - RowProblem rejects one row (or warns about it) and the run goes on.

/** Why a whole run stopped. Each maps to one exit code (see EXIT_CODES and the README). */
export type RunErrorCode =
  | 'usage' // the command line is wrong
  | 'mapping_invalid' // the mapping file cannot be used
  | 'config_invalid' // the run config cannot be used
  | 'input_unreadable' // an input file is missing or cannot be read
  | 'input_invalid' // an input file is not a usable CSV (encoding, missing columns, broken quoting)
  | 'input_changed' // an input file changed between the two readings (an export still being written)
  | 'schema_invalid' // the XSD cannot be loaded
  | 'output_failed' // the output folder cannot be written
  | 'guard_tripped' // a guard stopped a bad run from being delivered
  | 'delivery_failed' // the upload did not complete
  | 'host_key_rejected' // the server's host key is unknown or changed
  | 'xml_invalid' // `validate` found problems in an Alma user file
  | 'busy' // another run holds the lock
  | 'state_invalid'; // the run state cannot be read, is of a newer version, or belongs to another source

export const EXIT_CODES: Readonly<Record<RunErrorCode | 'ok' | 'internal', number>> = {
  ok: 0,
  internal: 1,
  usage: 2,
  mapping_invalid: 3,
  config_invalid: 3,
  input_unreadable: 4,
  input_invalid: 4,
  input_changed: 4,
  schema_invalid: 3,
  output_failed: 8,
  guard_tripped: 5,
  delivery_failed: 6,
  // Its own code: a wrapper that retries on 6 must not retry against a changed host key.
  host_key_rejected: 10,
  xml_invalid: 7,
  busy: 9,
  state_invalid: 11,
};

export interface ErrorContext {
  file?: string;
  row?: number;
  line?: number;
  column?: string | number;
  value?: string;
}

export class RunError extends Error {
  readonly code: RunErrorCode;
  readonly context: ErrorContext;
  constructor(code: RunErrorCode, message: string, context: ErrorContext = {}) {
    super(message);
    this.name = 'RunError';
    this.code = code;
    this.context = context;
  }
  get exitCode(): number {
    return EXIT_CODES[this.code];
  }
}

/** Why a row was rejected. */
export type RowProblemCode =
  | 'missing_value' // a required value is empty
  | 'bad_email'
  | 'bad_phone' // not a phone number, where the mapping's phone: says on_invalid: reject
  | 'unfit_value' // a value replace (must_match), split or substring cannot handle, where on_unfit is reject
  | 'bad_date'
  | 'bad_integer'
  | 'bad_boolean'
  | 'bad_value' // a value the mapping has no translation for
  | 'too_long'
  | 'code_not_allowed' // a code outside the mapping's allowed_codes
  | 'no_user_group' // no user group rule matched and there is no default
  | 'ragged_row' // a row with more or fewer fields than the header
  | 'too_many_rows' // more rows share the primary id than one person has (max_rows_per_person): a broken export
  | 'rejected_by_rule' // a rule of the mapping's reject list holds: its own message says why
  | 'invisible_character' // a primary id or identifier holds a character nobody can see or type (U+200B, bidi controls, ...)
  | 'schema_invalid'; // the user failed XSD validation

/** Things that happened to a row that was still written. */
export type WarningKind =
  | 'stripped_characters' // characters XML 1.0 forbids were removed
  | 'truncated' // a value over Alma's limit was cut where the mapping allows it
  | 'duplicate_identifier' // an identifier that repeats another (of this user or of another user) was dropped
  | 'expiry_in_past'
  | 'unknown_code' // a value the map did not know fell back to the mapping's named code
  | 'extra_preferred' // more than one preferred address/email/phone: only the first kept it
  | 'invalid_email_dropped'
  | 'user_group_omitted' // no user group rule maps the row, and the mapping says unmapped: omit
  | 'invalid_phone_dropped' // phone: on_invalid: drop
  | 'unfit_value_dropped'; // on_unfit: drop

export interface RowProblem {
  code: RowProblemCode;
  message: string;
  column?: string;
  value?: string;
}

export interface RowWarning {
  kind: WarningKind;
  message: string;
  column?: string;
  value?: string;
}

export function describeContext(ctx: ErrorContext): string {
  const parts: string[] = [];
  if (ctx.file) parts.push(ctx.file);
  if (ctx.row !== undefined) parts.push(`row ${ctx.row}`);
  if (ctx.line !== undefined) parts.push(`line ${ctx.line}`);
  if (ctx.column !== undefined) parts.push(`column ${ctx.column}`);
  return parts.join(', ');
}
