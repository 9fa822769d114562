// The shape of a mapping file, as a JSON Schema. This object is the one source of truth: the
// runtime check (ajv, in load.ts) uses it, and `schemas/mapping.schema.json`, which editors use
// to complete and check mapping files, is written from it by src/config/json-schema.ts
// (node dist/src/config/json-schema.js --write); a test keeps the two in step.

type Schema = Record<string, unknown>;

const text = { type: 'string', minLength: 1 } as const;
const code = { type: 'string', minLength: 1, maxLength: 255 } as const;
const isoDate = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'A date as YYYY-MM-DD.' } as const;
const columnList = {
  description: 'A column, or a list of columns: the first that is not empty is used (a fallback chain).',
  oneOf: [text, { type: 'array', items: text, minItems: 1 }],
};

/** Keys that describe where a value comes from and how it is cleaned; shared by every value. */
const valueKeys: Record<string, Schema> = {
  from: columnList,
  template: { type: 'string', description: 'Text with {column} placeholders, e.g. "{netid}@example.edu". {run_date} is the run date.' },
  value: { type: ['string', 'number', 'boolean'], description: 'A constant.' },
  rules: {
    type: 'array',
    description: 'Ordered rules: the first whose conditions hold gives the value.',
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['value'],
      properties: {
        name: text,
        when: { $ref: '#/definitions/conditions' },
        value: { $ref: '#/definitions/value' },
      },
    },
  },
  otherwise: { $ref: '#/definitions/value', description: 'The value when the source is empty or no rule holds.' },
  trim: { type: 'boolean', description: 'Remove surrounding spaces (default true).' },
  strip_prefix: { type: 'string', description: 'Remove this text from the start of the value, when it is there.' },
  case: { enum: ['upper', 'lower'], description: 'Change the value to upper or lower case.' },
  map: {
    description: 'Translate the value: a table name (see tables) or inline code → value pairs.',
    oneOf: [text, { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } }],
  },
  unknown: {
    type: 'string',
    description:
      'What a value the map does not know becomes: a code (counted in the report), or "keep" to pass it unchanged. Without it, an unknown value rejects the row.',
  },
  boolean: {
    type: 'object',
    description: 'Read the value as yes/no (y, yes, true, 1 / n, no, false, 0, any case) and write these values.',
    additionalProperties: false,
    required: ['true', 'false'],
    properties: { true: text, false: text },
  },
  format: {
    type: 'string',
    description: 'How dates are written in the column, e.g. MM/DD/YYYY, DD.MM.YYYY, YYYYMMDD, YYYY-MM-DD.',
    pattern: '^(?=.*YYYY)(?=.*MM)(?=.*DD)[YMD./ -]+$',
  },
  replace: {
    description:
      'Rewrite the value with a regular expression: { pattern, with } ($1, $2 ... in "with" are the groups), or a list of them applied in order. Every match is replaced.',
    oneOf: [{ $ref: '#/definitions/replacement' }, { type: 'array', items: { $ref: '#/definitions/replacement' }, minItems: 1 }],
  },
  must_match: { type: 'boolean', description: 'With replace: a value that no pattern matches is unfit (see on_unfit).' },
  split: {
    type: 'object',
    additionalProperties: false,
    required: ['part'],
    description: 'Cut the value into parts and take one: part 1 is the first, -1 the last. Parts are separated by "by" (default: spaces).',
    properties: {
      by: { type: 'string', minLength: 1, description: 'The text between parts (default: one or more spaces).' },
      part: { type: 'integer', not: { const: 0 }, description: '1 for the first part, 2 for the second, -1 for the last.' },
    },
  },
  substring: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    description: 'Take part of the value: { first: N }, { last: N }, or { start: N, length: M } (start 1 is the first character). A value too short is unfit (see on_unfit).',
    properties: {
      first: { type: 'integer', minimum: 1 },
      last: { type: 'integer', minimum: 1 },
      start: { type: 'integer', minimum: 1 },
      length: { type: 'integer', minimum: 1 },
    },
  },
  pad: {
    type: 'object',
    additionalProperties: false,
    required: ['width'],
    description: 'Pad the value to a width with a character (default "0", on the left). A longer value is left as it is.',
    properties: {
      width: { type: 'integer', minimum: 1, maximum: 255 },
      with: { type: 'string', minLength: 1, maxLength: 1 },
      side: { enum: ['left', 'right'] },
    },
  },
  prefix: { type: 'string', description: 'Text put before the value (after every other change), e.g. a fixed prefix before a substring.' },
  on_unfit: {
    enum: ['keep', 'drop', 'reject'],
    description:
      'A value that replace (with must_match), split or substring cannot handle: keep it as it was, drop it with a warning, or reject the row (default).',
  },
  phone: {
    type: 'object',
    additionalProperties: false,
    required: ['region'],
    description: 'Read the value as a phone number (libphonenumber) and write it in one form.',
    properties: {
      format: { enum: ['e164', 'national', 'international'], description: 'e164: +15105551234; national: (510) 555-1234; international: +1 510 555 1234 (default e164).' },
      region: { type: 'string', pattern: '^[A-Z]{2}$', description: 'The country of numbers written without a country code, e.g. US, GB, DE.' },
      on_invalid: { enum: ['keep', 'drop', 'reject'], description: 'A value that is not a phone number: keep it as written, drop it with a warning, or reject the row (default).' },
    },
  },
  unless_same_as: {
    $ref: '#/definitions/value',
    description:
      'Leave the value out when it equals this column (a plain name), template ("{first} {last}") or value (an object): e.g. a preferred name only when it is not the legal name.',
  },
  ignore_case: { type: 'boolean', description: 'With unless_same_as: compare without case.' },
  required: { type: 'boolean', description: 'An empty value rejects the row.' },
  truncate: { type: 'boolean', description: "Cut a value longer than Alma's limit (with a warning) instead of rejecting the row." },
};

const valueObject: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: valueKeys,
};

/** A value: a template string ("{column}", "CONSTANT", "{a}-{b}"), or an object with valueKeys. */
const value: Schema = {
  description: 'A value: a text with {column} placeholders, or an object (from, template, value, rules, map, format, ...).',
  oneOf: [{ type: ['string', 'number', 'boolean'] }, valueObject],
};

function withValue(extra: Record<string, Schema>, required: string[] = []): Schema {
  return { type: 'object', additionalProperties: false, required, properties: { ...extra, ...valueKeys } };
}

const dateBound = {
  type: 'string',
  pattern: '^(run_date|\\d{4}-\\d{2}-\\d{2})$',
  description: 'run_date (the date of the run) or a date as YYYY-MM-DD.',
} as const;

const conditionTest: Schema = {
  description:
    'A test on a column: a text (equals, ignoring case), a list (one of), true/false (a yes/no column), or an object with equals, not_equals, in, not_in, matches, not_matches, empty, is, in_table, a date comparison (before, after, on_or_before, on_or_after) or equals_column.',
  oneOf: [
    { type: ['string', 'number', 'boolean'] },
    { type: 'array', items: { type: ['string', 'number'] }, minItems: 1 },
    {
      type: 'object',
      additionalProperties: false,
      minProperties: 1,
      properties: {
        equals: { type: ['string', 'number'], description: 'The value, ignoring case.' },
        not_equals: { type: ['string', 'number'], description: 'Anything but this value (ignoring case); an empty cell is not equal.' },
        one_of: { type: 'array', items: { type: ['string', 'number'] }, minItems: 1 },
        in: { type: 'array', items: { type: ['string', 'number'] }, minItems: 1, description: 'One of these values, ignoring case (as one_of).' },
        not_in: { type: 'array', items: { type: ['string', 'number'] }, minItems: 1, description: 'None of these values, ignoring case.' },
        matches: { type: 'string', description: 'A regular expression the whole value must match.' },
        not_matches: { type: 'string', description: 'A regular expression the whole value must not match.' },
        empty: { type: 'boolean' },
        is: { type: 'boolean', description: 'The column read as yes/no.' },
        in_table: text,
        before: { ...dateBound, description: 'The column holds a date before this one: run_date or YYYY-MM-DD.' },
        after: { ...dateBound, description: 'The column holds a date after this one: run_date or YYYY-MM-DD.' },
        on_or_before: { ...dateBound, description: 'The column holds a date on or before this one: run_date or YYYY-MM-DD.' },
        on_or_after: { ...dateBound, description: 'The column holds a date on or after this one: run_date or YYYY-MM-DD.' },
        format: { ...valueKeys.format, description: 'With a date comparison: how the column writes dates (default YYYY-MM-DD).' },
        not_a_date: {
          enum: ['reject', 'holds', 'fails'],
          description: 'With a date comparison: a cell that is not a date rejects the row (default), or the test holds, or fails. An empty cell never holds.',
        },
        equals_column: { ...text, description: 'The same value as this other column of the row.' },
        not_equals_column: { ...text, description: 'Not the same value as this other column of the row.' },
        ignore_case: { type: 'boolean', description: 'With equals_column or not_equals_column: compare without case (default: case counts).' },
      },
    },
  ],
};

/** The words that are not columns in a `when`; a column of one of these names is written `column:NAME`. */
export const CONDITION_WORDS = ['not', 'all', 'any', 'input_file'] as const;

const conditionWords: Record<string, Schema> = {
  not: { $ref: '#/definitions/conditions', description: 'Holds when these conditions do not (all together).' },
  all: { type: 'array', minItems: 1, items: { $ref: '#/definitions/conditions' }, description: 'Holds when every item holds.' },
  any: { type: 'array', minItems: 1, items: { $ref: '#/definitions/conditions' }, description: 'Holds when at least one item holds.' },
  input_file: {
    description: 'The row comes from this input file: its name without the folder (employees.csv), or a glob (staff-*.csv); or a list of them.',
    oneOf: [text, { type: 'array', items: text, minItems: 1 }],
  },
};

const conditionMap: Schema = {
  type: 'object',
  description:
    'Every test must hold: column: test, and any of not, all, any, input_file. A column named like one of those words is written column:NAME (e.g. "column:any": yes).',
  properties: conditionWords,
  additionalProperties: conditionTest,
};

// One schema for both forms (a mapping, or a list of mappings), not a oneOf: properties apply to
// a mapping and items to a list, so that a mistake inside is reported once, where it is.
const conditions: Schema = {
  type: ['object', 'array'],
  description:
    'Conditions: column: test pairs that must all hold, with not, all, any and input_file (a column named like one of those words is written column:NAME); or a list of such mappings, all of which must hold.',
  properties: conditionWords,
  additionalProperties: conditionTest,
  minItems: 1,
  items: conditionMap,
};

const rowRule = (extra: Record<string, Schema>, required: string[], description: string): Schema => ({
  type: 'array',
  description,
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'when', ...required],
    properties: { name: { ...text, description: 'Names the rule in the report and in explain.' }, when: { $ref: '#/definitions/conditions' }, ...extra },
  },
});

const period = { type: 'string', pattern: '^\\d+ (day|days|week|weeks|month|months|year|years)$' } as const;
const monthDay = { type: 'string', pattern: '^\\d{2}-\\d{2}$' } as const;

/** The ways of setting a date; a date rule has one of them (and a date rules item has one beside its when). */
const dateKinds: Record<string, Schema> = {
  date: isoDate,
  after_run: { ...period, description: 'A number and day(s), week(s), month(s) or year(s) after the run date, e.g. "1 year", "6 months".' },
  after_expiry: { ...period, description: 'For purge dates: a number and day(s), week(s), month(s) or year(s) after the expiry date, e.g. "1 year".' },
  run_date: { enum: [true], description: 'The run date itself (e.g. a cancelled registration expires today).' },
  next: {
    type: 'object',
    additionalProperties: false,
    required: ['month_day'],
    description:
      'A day of the year counted from the run date: month_day in the run year plus years; once the run date reaches from (MM-DD), one year more. E.g. { month_day: 10-31, years: 1, from: 07-01 }.',
    properties: {
      month_day: { ...monthDay, description: 'The day, MM-DD.' },
      years: { type: 'integer', minimum: 0, description: 'Years after the run year (default 1).' },
      from: { ...monthDay, description: 'From this day of the year (MM-DD) on, one year more.' },
    },
  },
};

/** Every key of a date rule but rules; a rules item has these beside its name and when. */
const dateRuleKeys: Record<string, Schema> = {
  ...dateKinds,
  from: columnList,
  format: valueKeys.format!,
  end_of_year: { ...text, description: 'A column holding a year (e.g. graduation year): the date is the end of that year.' },
  month_day: { type: 'string', pattern: '^\\d{2}-\\d{2}$', description: 'With end_of_year: the day that ends the year, MM-DD (default 12-31).' },
  term_calendar: {
    type: 'array',
    minItems: 1,
    items: {
      type: 'object',
      additionalProperties: false,
      required: ['from', 'to', 'expires'],
      properties: { name: text, from: isoDate, to: isoDate, expires: isoDate },
    },
  },
  otherwise: { $ref: '#/definitions/date_rule' },
};

const dateRule: Schema = {
  type: 'object',
  additionalProperties: false,
  description:
    'How a date is set: date (fixed), after_run ("1 year", "6 months", "30 days"), after_expiry (purge), run_date, next (a day of the year from the run date), from + format (a column), end_of_year (a column holding a year), term_calendar (by run date), rules (by condition); otherwise for when it gives nothing.',
  properties: {
    ...dateRuleKeys,
    rules: {
      type: 'array',
      minItems: 1,
      description: 'Ordered: the first whose when holds gives the date (when it gives none, the otherwise beside rules does).',
      items: { type: 'object', additionalProperties: false, properties: { name: text, when: { $ref: '#/definitions/conditions' }, ...dateRuleKeys } },
    },
  },
};

const codeList = { type: 'array', items: code, minItems: 1, uniqueItems: true };

export const mappingSchema: Schema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://sis2alma.example/schemas/mapping.schema.json',
  title: 'sis2alma mapping file',
  description: 'How rows of one SIS export become Alma users. Field names are Alma user v2 names.',
  type: 'object',
  additionalProperties: false,
  required: ['source', 'fields', 'user_group'],
  definitions: {
    value,
    conditions,
    date_rule: dateRule,
    replacement: {
      type: 'object',
      additionalProperties: false,
      required: ['pattern', 'with'],
      properties: {
        pattern: { type: 'string', minLength: 1, description: 'A regular expression; (...) makes a group.' },
        with: { type: 'string', description: 'The replacement; $1, $2 ... are the groups of the pattern.' },
      },
    },
  },
  properties: {
    source: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]*$', description: 'A short name for this SIS source; it names the output files.' },
    description: { type: 'string' },
    input: {
      type: 'object',
      additionalProperties: false,
      properties: {
        required_columns: { type: 'array', items: text, uniqueItems: true, description: 'A file without one of these columns is refused before any row is read.' },
        unused_columns: {
          type: 'object',
          additionalProperties: { type: 'string' },
          description: 'Columns that have no Alma SIS field, each with the reason; said once in the report.',
        },
        delimiter: { type: 'string', minLength: 1, maxLength: 1 },
        sensitive_columns: {
          type: 'array',
          items: text,
          uniqueItems: true,
          description: 'Columns that hold secrets (a password): never copied to the rejects file, the report or a log, and never read by the mapping.',
        },
        max_rows_per_person: {
          type: 'integer',
          minimum: 1,
          description: 'More rows than this with one primary id is a broken export, not a person: every such row is rejected (default 20).',
        },
      },
    },
    tables: {
      type: 'object',
      description: 'Lookup tables: inline code → value pairs, or the name of a CSV file beside the mapping (first column the code, second the value).',
      additionalProperties: {
        oneOf: [{ type: 'string', pattern: '\\.csv$' }, { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } }],
      },
    },
    allowed_codes: {
      type: 'object',
      additionalProperties: false,
      description: "The codes that exist in your Alma's code tables; a value outside them rejects the row.",
      properties: {
        user_group: codeList,
        id_type: codeList,
        email_type: codeList,
        phone_type: codeList,
        address_type: codeList,
        statistic_category: codeList,
        note_type: codeList,
      },
    },
    user_group: {
      type: 'object',
      additionalProperties: false,
      required: ['rules'],
      properties: {
        rules: {
          type: 'array',
          minItems: 1,
          description: 'Ordered: the first rule whose conditions hold (and whose group has a value) decides the group.',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['group'],
            properties: { name: text, when: { $ref: '#/definitions/conditions' }, group: { $ref: '#/definitions/value' } },
          },
        },
        default: { ...code, description: 'The group of a row that no rule maps. Without it, such a row is rejected (or see unmapped).' },
        unmapped: {
          enum: ['reject', 'omit'],
          description: 'A row no rule maps and no default: reject it (the default), or omit: write the user without a user group (Alma keeps the group the user has), with a warning.',
        },
        priority: {
          ...codeList,
          description: 'When one person has several rows, the group listed first wins (among the rows that are active).',
        },
        exceptions: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'groups', 'group'],
            properties: {
              name: text,
              groups: { ...codeList, description: 'A person who has all of these groups...' },
              group: { ...code, description: '...gets this group.' },
            },
          },
        },
      },
    },
    merge: {
      type: 'object',
      additionalProperties: false,
      description: "How one person's several rows (in one export or several) become one user.",
      properties: {
        policy: {
          enum: ['combine', 'first_wins_whole'],
          description:
            "combine (default): the winning row's values first; the other rows fill its empty fields and add their identifiers, emails, phones, addresses... first_wins_whole: the winning row is the user as it is; the person's other rows are dropped (counted as merged).",
        },
        order: {
          type: 'array',
          items: text,
          minItems: 1,
          uniqueItems: true,
          description: 'With first_wins_whole: input file names (without folder), the first wins; files not listed come after. Without it, the user group priority decides.',
        },
      },
    },
    fields: {
      type: 'object',
      additionalProperties: false,
      required: ['primary_id'],
      properties: Object.fromEntries(
        [
          'primary_id',
          'first_name',
          'middle_name',
          'last_name',
          'pref_first_name',
          'pref_middle_name',
          'pref_last_name',
          'pref_name_suffix',
          'user_title',
          'gender',
          'birth_date',
          'job_category',
          'job_description',
          'campus_code',
          'preferred_language',
          'web_site_url',
          'cataloger_level',
          'pin_number',
          'status',
        ].map((name) => [name, { $ref: '#/definitions/value' }]),
      ),
    },
    skip: rowRule({}, [], 'Rows left out on purpose (a retiree, an expired job): the first rule whose conditions hold skips the row, counted as skipped by its name; not a rejection.'),
    reject: rowRule(
      { message: { ...text, description: 'Why, as the rejects file and the report say it.' } },
      ['message'],
      'Rows rejected on a condition, with your own message (e.g. a student without a registration term).',
    ),
    expiry: {
      type: 'object',
      description: 'The expiry date per user group (by group code), and a default for the others.',
      additionalProperties: { $ref: '#/definitions/date_rule' },
    },
    purge: {
      type: 'object',
      description:
        'The purge date: per user group (by group code) and a default for the others, each a date rule (after_expiry: "1 year", from a column, rules, ...); or days_after_expiry for every group.',
      properties: { days_after_expiry: { type: 'integer', minimum: 0, description: 'The purge date is this many days after the expiry date, for every group.' } },
      additionalProperties: { $ref: '#/definitions/date_rule' },
    },
    identifiers: {
      type: 'array',
      items: withValue(
        {
          id_type: code,
          note: { $ref: '#/definitions/value', description: "The identifier's note: a text with {column} placeholders, or a value object." },
          status: { $ref: '#/definitions/value', description: "The identifier's status (e.g. ACTIVE): a text with {column} placeholders, or a value object." },
        },
        ['id_type'],
      ),
    },
    emails: {
      type: 'array',
      items: withValue(
        {
          email_type: code,
          preferred: { type: 'boolean' },
          description: { type: 'string' },
          on_invalid: { enum: ['reject', 'drop'], description: 'A malformed address rejects the row (default) or is dropped with a warning.' },
        },
        ['email_type'],
      ),
    },
    phones: {
      type: 'array',
      items: withValue({ phone_type: code, preferred: { type: 'boolean' }, preferred_sms: { type: 'boolean' } }, ['phone_type']),
    },
    addresses: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['address_type', 'line1'],
        properties: {
          address_type: code,
          preferred: { type: 'boolean' },
          ...Object.fromEntries(
            ['line1', 'line2', 'line3', 'line4', 'line5', 'city', 'state_province', 'postal_code', 'country', 'address_note'].map((name) => [
              name,
              { $ref: '#/definitions/value' },
            ]),
          ),
          start_date: { $ref: '#/definitions/value', description: 'When the address starts to hold: a date (YYYY-MM-DD unless the value gives a format).' },
          end_date: { $ref: '#/definitions/value', description: 'When the address stops holding: a date (YYYY-MM-DD unless the value gives a format).' },
        },
      },
    },
    statistics: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['statistic_category'],
        properties: {
          statistic_category: { $ref: '#/definitions/value', description: 'The category code; use map + unknown to fall back to a named code.' },
          category_type: code,
          statistic_note: { type: 'string' },
        },
      },
    },
    user_blocks: {
      type: 'array',
      description: "Blocks the SIS sets: each is written when its block_description has a value. On synchronization they replace the user's external blocks.",
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['block_description'],
        properties: {
          block_type: { ...code, description: "A code of Alma's User Block Types table (Alma's default: GENERAL)." },
          block_description: { $ref: '#/definitions/value', description: "A code of Alma's User Block Description table; empty: no block." },
          block_status: { enum: ['Active', 'Inactive'], description: "Alma's default: Active." },
          block_note: { $ref: '#/definitions/value', description: 'A note: a text with {column} placeholders, or a value object.' },
        },
      },
    },
    rs_libraries: {
      type: 'array',
      description: "The user's resource sharing libraries: each a value giving a library code (empty: none). Alma keeps the list it has when a file has none.",
      items: { $ref: '#/definitions/value' },
    },
    library_notices: {
      type: 'array',
      description: "Library notices the user opted in to or out of: a code of Alma's Library Notices Opt In Display table and a yes/no value.",
      items: withValue({ code }, ['code']),
    },
    notes: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['note_type', 'note_text'],
        properties: {
          note_type: code,
          note_text: { type: 'string', minLength: 1, description: 'Text with {column} and {run_date} placeholders.' },
          user_viewable: { type: 'boolean' },
          popup_note: { type: 'boolean' },
        },
      },
    },
  },
};
