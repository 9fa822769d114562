// The shape of the run config and of the serve config, as JSON Schemas. These objects are the one
// definition of the two files' keys, types and defaults: the runtime check (ajv, through
// shared/yaml-check.ts) uses them, and schemas/run-config.schema.json and serve-config.schema.json,
// which editors use, are written from them by src/config/json-schema.ts (a test keeps them in step).
// What a schema cannot say (files exist and are private, secrets are set, one login method)
// config.ts and serve.ts check afterwards.

type Schema = Record<string, unknown>;

const text = { type: 'string', minLength: 1 } as const;
const file = (description: string): Schema => ({ ...text, description });
/** A value that names where a secret is: never repeated in a message, as someone may have written the secret itself. */
const secretName = (description: string): Schema => ({ ...text, writeOnly: true, description });

/** Defaults the schemas state and the normalising code applies. */
export const DEFAULTS = {
  port: 22,
  retries: 3,
  retryDelaySeconds: 30,
  timeoutSeconds: 30,
  keepDays: 30,
  stale: 'stop' as 'report' | 'rename' | 'stop',
};

/** The guards against the last delivered night: loose enough for a quick start, tight enough to stop a broken export. */
export const CHANGE_GUARD_DEFAULTS = {
  maxDepartures: '5%',
  maxGroupChanges: '10%',
  maxFieldLoss: '5%',
  maxNewUsers: '25%',
};

export const DEFAULT_DEPARTURE_NOTE = 'No longer in the SIS feed as of {run_date}';

export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  maxRequestBytes: 100 * 1024 * 1024,
  requestTimeoutSeconds: 300,
  maxRejected: '100%',
};

const countOrShare = (description: string, fallback: string): Schema => ({
  type: ['integer', 'string'],
  minimum: 0,
  pattern: '^\\s*(\\d+(\\.\\d+)?%|\\d+)\\s*$',
  default: fallback,
  description,
});

/** The kinds of value the run state records (src/state/user-record.ts), that max_field_loss may name; and identifier:TYPE. */
export const FIELD_LOSS_KINDS = ['email', 'address', 'phone', 'statistics', 'notes'] as const;

const fieldLossLimit = (description: string): Schema => ({ type: ['integer', 'string'], minimum: 0, pattern: '^\\s*(\\d+(\\.\\d+)?%|\\d+)\\s*$', description });

/** max_field_loss: one limit for every kind, or a limit per kind with a default for the others. */
const maxFieldLoss: Schema = {
  description:
    'Stop when more users would lose a kind of value Alma deletes when it is absent: a count or a share of those who had it, for each kind; or a limit per kind, e.g. { default: "10%", email: "2%", address: 500, "identifier:BARCODE": "1%" } (kinds: email, address, phone, statistics, notes, identifier:TYPE; a kind not named uses default).',
  default: CHANGE_GUARD_DEFAULTS.maxFieldLoss,
  oneOf: [
    fieldLossLimit('a count (25) or a share ("5%") of those who had the value'),
    {
      type: 'object',
      additionalProperties: false,
      properties: {
        default: { ...fieldLossLimit('The limit for every kind not named here.'), default: CHANGE_GUARD_DEFAULTS.maxFieldLoss },
        ...Object.fromEntries(FIELD_LOSS_KINDS.map((kind) => [kind, fieldLossLimit(`The limit for users who lose their ${kind === 'statistics' || kind === 'notes' ? `${kind}` : `${kind}${kind === 'address' ? 'es' : 's'}`}.`)])),
      },
      patternProperties: { '^identifier:\\S+$': { ...fieldLossLimit('The limit for one identifier type, e.g. identifier:BARCODE.'), title: 'identifier:TYPE' } },
    },
  ],
};

/** Guards against the last delivered night (the run state): a count or a share, as max_rejected. */
const changeGuards: Record<string, Schema> = {
  max_departures: countOrShare('Stop when more people of the last delivered night are missing from tonight\'s feed: a count or a share of them.', CHANGE_GUARD_DEFAULTS.maxDepartures),
  max_group_changes: countOrShare('Stop when more users would change user group: a count or a share of the users known from the last night.', CHANGE_GUARD_DEFAULTS.maxGroupChanges),
  max_field_loss: maxFieldLoss,
  max_new_users: countOrShare('Stop when more users are new: a count or a share of the people of the last delivered night.', CHANGE_GUARD_DEFAULTS.maxNewUsers),
  accept_changes_on: {
    type: 'string',
    pattern: '^\\d{4}-\\d{2}-\\d{2}$',
    description:
      'A date (YYYY-MM-DD): the run of that date (local) delivers its changes though they trip the guards against the last night, as --accept-changes does; on any other date the line is ignored (and run warns that it is stale).',
  },
};

const guards = (maxRejectedDefault?: string, againstLastNight = true): Schema => ({
  type: 'object',
  additionalProperties: false,
  description: 'When one trips, nothing is delivered.',
  properties: {
    max_rejected: {
      type: ['integer', 'string'],
      minimum: 0,
      pattern: '^\\s*(\\d+(\\.\\d+)?%|\\d+)\\s*$',
      description: 'Stop when more rows are rejected: a count (25) or a share of all rows ("5%").',
      ...(maxRejectedDefault ? { default: maxRejectedDefault } : {}),
    },
    min_users: { type: 'integer', minimum: 0, description: 'Stop when fewer users would be written.' },
    ...(againstLastNight ? changeGuards : {}),
  },
});

const deliveryCommon: Record<string, Schema> = {
  retries: { type: 'integer', minimum: 0, maximum: 20, default: DEFAULTS.retries, description: 'Extra attempts after a lost connection, refused connection or timeout.' },
  retry_delay_seconds: { type: 'number', minimum: 0, default: DEFAULTS.retryDelaySeconds, description: 'Wait before the first retry, doubled before each next one.' },
  stale: {
    enum: ['stop', 'rename', 'report'],
    default: DEFAULTS.stale,
    description: 'Zips of an earlier run still waiting in the remote folder: stop (fail the run), rename (to NAME.zip.stale, which Alma skips) or report (leave them, warn).',
  },
};

const FINGERPRINT = '(SHA256:[A-Za-z0-9+/]{43}=?|MD5:([0-9a-fA-F]{2}:){15}[0-9a-fA-F]{2})';
const fingerprint: Schema = {
  type: 'string',
  pattern: `(^|\\s)${FINGERPRINT}(\\s|$)`,
  description: 'a fingerprint like SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8, or a whole line of ssh-keygen -lf',
};

const sftpDelivery: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['host', 'username', 'remote_dir'],
  properties: {
    target: { const: 'sftp' },
    host: { ...text, description: 'The SFTP server.' },
    port: { type: 'integer', minimum: 1, maximum: 65535, default: DEFAULTS.port },
    username: { ...text, description: 'The account.' },
    private_key_file: file('A private key (OpenSSH or PEM format, mode 600).'),
    passphrase_env: secretName('The environment variable holding the private key\'s passphrase.'),
    passphrase_file: file('A file (mode 600) holding the private key\'s passphrase.'),
    password_env: secretName('The environment variable holding the password.'),
    password_file: file('A file (mode 600) holding the password.'),
    host_key: {
      description: "The server's host key fingerprint as ssh-keygen -lf prints it, a list of them, or a whole ssh-keygen -lf line.",
      oneOf: [fingerprint, { type: 'array', items: fingerprint, minItems: 1 }],
    },
    known_hosts: file('A known_hosts file that holds the server\'s key.'),
    remote_dir: { ...text, description: 'The folder Alma reads, e.g. /production/users.' },
    timeout_seconds: { type: 'number', minimum: 0.1, default: DEFAULTS.timeoutSeconds, description: 'How long to wait for the server.' },
    ...deliveryCommon,
  },
};

const dirDelivery: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['dir'],
  properties: {
    target: { const: 'dir' },
    dir: { ...text, description: "The folder Alma's server reads." },
    create_dir: { type: 'boolean', default: false, description: 'Make the folder if it is missing (off: for a mounted share, a missing folder should stop the run).' },
    ...deliveryCommon,
  },
};

const delivery: Schema = {
  type: 'object',
  required: ['target'],
  description: 'Where the zips go (target: sftp or target: dir).',
  properties: { target: { enum: ['sftp', 'dir'], description: 'sftp (a server) or dir (a local or mounted folder).' } },
  allOf: [
    { if: { required: ['target'], properties: { target: { const: 'sftp' } } }, then: sftpDelivery },
    { if: { required: ['target'], properties: { target: { const: 'dir' } } }, then: dirDelivery },
  ],
};

const runProperties: Record<string, Schema> = {
  mapping: file('The mapping file.'),
  inputs: {
    description: 'The CSV file (or list of files) to convert, together.',
    oneOf: [text, { type: 'array', items: text, minItems: 1 }],
  },
  encoding: { ...text, default: 'utf-8', description: 'The encoding of the CSV files.' },
  output_dir: file('Where the XML, zips, report and rejected rows go; holds the lock file.'),
  archive: {
    type: 'object',
    additionalProperties: false,
    properties: {
      dir: file('The archive (default <output_dir>/archive).'),
      keep_days: { type: 'integer', minimum: 1, default: DEFAULTS.keepDays, description: 'Days an archive folder is kept.' },
    },
  },
  guards: guards(),
  state: {
    type: 'object',
    additionalProperties: false,
    description: 'The run state: what was last delivered for each person, so that each night is checked against the last (state.db, mode 600).',
    properties: {
      dir: file('The folder of state.db (default <output_dir>/state); one folder per run config.'),
      enabled: { type: 'boolean', default: true, description: 'false: keep no state, and check no guard against the last night.' },
      mode: { enum: ['full', 'delta'], default: 'full', description: 'full: send every user each night; delta: send only new, changed and returned users (and departures).' },
      full_every: {
        description: 'With mode: delta, the nights that send everyone: a day of the week (sunday) or a number of days since the last full run.',
        oneOf: [{ enum: ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] }, { type: 'integer', minimum: 1 }],
      },
    },
  },
  departures: {
    type: 'object',
    additionalProperties: false,
    required: ['action'],
    description: 'Send people who have left the feed once more, with their whole last delivered record: expired on the run date, or INACTIVE, with a note. Only on a healthy night; needs the run state.',
    properties: {
      action: { enum: ['expire', 'inactivate'], description: 'expire: expiry date = the run date; inactivate: status INACTIVE.' },
      after_missing_runs: { type: 'integer', minimum: 1, default: 1, description: 'Nights a person must be missing from the feed (tonight included) before their departure is sent.' },
      note: { type: 'string', default: DEFAULT_DEPARTURE_NOTE, description: 'The external note added to the user; {run_date} and {last_seen} are filled in; empty: no note.' },
    },
  },
  delivery,
};

export const runConfigSchema: Schema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://sis2alma.example/schemas/run-config.schema.json',
  title: 'sis2alma run config',
  description: 'What `sis2alma run` converts and where it delivers. Relative paths are read from this file\'s folder. No secret goes in this file.',
  type: 'object',
  additionalProperties: false,
  required: ['mapping', 'inputs', 'output_dir', 'delivery'],
  properties: runProperties,
};

const serveSection: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['accounts'],
  description: "The push endpoint's settings (host, port, accounts).",
  properties: {
    host: { ...text, default: SERVE_DEFAULTS.host, description: 'The address to listen on.' },
    port: { type: 'integer', minimum: 0, maximum: 65535, default: SERVE_DEFAULTS.port },
    tls: {
      type: 'object',
      additionalProperties: false,
      required: ['cert_file', 'key_file'],
      description: 'HTTPS done by sis2alma itself.',
      properties: {
        cert_file: file('The certificate chain (PEM).'),
        key_file: file('The private key (PEM, mode 600).'),
      },
    },
    accounts: {
      type: 'array',
      minItems: 1,
      description: 'at least one { username, password_hash } (make the hash with `sis2alma passwd`)',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['username', 'password_hash'],
        properties: {
          // Basic auth sends `name:password`, so a colon in the name would make it unreachable.
          // writeOnly: a name with a colon is most likely `user:password` pasted from curl's -u, and
          // the message that refuses it must not print the password (at start, and on every reload).
          username: { type: 'string', pattern: '^[^:]+$', writeOnly: true, description: 'a name without a colon' },
          password_hash: { ...text, writeOnly: true, description: 'A hash from `sis2alma passwd`: scrypt$32768$8$1$<salt>$<hash>.' },
        },
      },
    },
    max_request_bytes: {
      type: ['integer', 'string'],
      default: '100MB',
      description: 'The largest request taken: a count of bytes, or with KB/MB/GB (in 1024s); at least 1KB.',
    },
    request_timeout_seconds: { type: 'number', minimum: 1, maximum: 86400, default: SERVE_DEFAULTS.requestTimeoutSeconds, description: 'Time to receive one upload.' },
    mapping: file('Another mapping for pushes than the top-level mapping.'),
    source: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', description: 'names the output files: letters, digits, - and _ only' },
    guards: guards(SERVE_DEFAULTS.maxRejected, false),
    trust_proxy: { type: 'boolean', default: false, description: 'Take the client address from X-Forwarded-For (only behind a reverse proxy that sets it).' },
  },
};

export const serveConfigSchema: Schema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://sis2alma.example/schemas/serve-config.schema.json',
  title: 'sis2alma serve config',
  description: 'A run config with a serve: section, for `sis2alma serve`; inputs: is not needed (the pushed file is the input).',
  type: 'object',
  additionalProperties: false,
  required: ['output_dir', 'delivery', 'serve'],
  properties: { ...runProperties, serve: serveSection },
  // The mapping may be named in the serve section instead.
  if: { required: ['serve'], properties: { serve: { required: ['mapping'] } } },
  else: { required: ['mapping'] },
};
