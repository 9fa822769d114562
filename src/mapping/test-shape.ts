// The shape of a mapping test file (`sis2alma mapping test FILE.yaml`), as a JSON Schema: example
// rows, next to the mapping, and the Alma values the librarian expects of them. As with the
// mapping's own shape (shape.ts), this object is the one source of truth: the runtime check
// (review/mapping-test.ts) uses it, and `schemas/mapping-test.schema.json` is written from it by
// src/config/json-schema.ts.

type Schema = Record<string, unknown>;

const text = { type: 'string', minLength: 1 } as const;

/** The user's own fields a case can expect, by their Alma names. */
export const USER_TEXT_FIELDS = [
  'primary_id',
  'first_name',
  'middle_name',
  'last_name',
  'pin_number',
  'user_title',
  'job_category',
  'job_description',
  'gender',
  'user_group',
  'campus_code',
  'web_site_url',
  'cataloger_level',
  'preferred_language',
  'birth_date',
  'expiry_date',
  'purge_date',
  'status',
  'pref_first_name',
  'pref_middle_name',
  'pref_last_name',
  'pref_name_suffix',
] as const;

const scalar = { type: ['string', 'number', 'boolean'] } as const;
const textList = (description: string): Schema => ({ type: 'array', items: { type: ['string', 'number'] }, description });

const expectObject: Schema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  description: 'What the rows must give: the user\'s fields, its contacts and identifiers, or that a row is rejected or skipped.',
  properties: {
    ...Object.fromEntries(
      USER_TEXT_FIELDS.map((field) => [field, { type: ['string', 'number', 'null'], description: `The user's ${field}; null (or ~) expects none.` }]),
    ),
    emails: textList('Every email address of the user, in order ([] expects none).'),
    phones: textList('Every phone number of the user, in order ([] expects none).'),
    addresses: textList("The first line (line1) of each of the user's addresses, in order."),
    identifiers: {
      type: 'object',
      description: 'Identifier values by id_type, e.g. { BARCODE: "2900001" }; a list when the user has several of a type; null (or ~) expects none. Types not named are not checked.',
      additionalProperties: { oneOf: [{ type: ['string', 'number', 'null'] }, { type: 'array', items: { type: ['string', 'number'] } }] },
    },
    statistics: textList("The user's statistic categories, in order."),
    notes: textList("The text of each of the user's notes, in order."),
    rs_libraries: textList("The user's resource sharing library codes, in order."),
    warnings: {
      type: 'array',
      items: text,
      uniqueItems: true,
      description: 'Every kind of warning the rows get (e.g. invalid_email_dropped, unknown_code); [] expects none.',
    },
    rejected: {
      type: ['boolean', 'string'],
      description: 'true: a row is rejected; a text: a row is rejected and its reason contains this text.',
    },
    skipped: {
      type: ['boolean', 'string'],
      description: "true: a row is skipped by a skip rule; a text: by the rule of this name.",
    },
  },
};

export const mappingTestSchema: Schema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://sis2alma.example/schemas/mapping-test.schema.json',
  title: 'sis2alma mapping test file',
  description: 'Example rows and the Alma values they must give, checked by `sis2alma mapping test`.',
  type: 'object',
  additionalProperties: false,
  required: ['mapping', 'cases'],
  properties: {
    mapping: { ...text, description: 'The mapping file, relative to this file.' },
    description: { type: 'string' },
    run_date: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'YYYY-MM-DD: the date the cases run as; default today' },
    cases: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'rows', 'expect'],
        properties: {
          name: { ...text, description: 'What the case shows; printed when it fails.' },
          rows: {
            type: 'array',
            minItems: 1,
            description: 'Rows as the exports give them (column: value); `file` names the export a row comes from (default input.csv). Quote ids with leading zeros: "007".',
            items: {
              type: 'object',
              minProperties: 1,
              properties: { file: { ...text, description: 'The export the row comes from, by file name (as merge.order names it).' } },
              additionalProperties: { oneOf: [scalar, { type: 'null' }] },
            },
          },
          expect: {
            description: 'What the rows must give: a mapping of fields, or "skipped" or "rejected".',
            // if/then/else rather than oneOf: a mistake is reported against the form that was written only.
            type: ['string', 'object'],
            if: { type: 'string' },
            then: { enum: ['skipped', 'rejected'] },
            else: expectObject,
          },
        },
      },
    },
  },
};
