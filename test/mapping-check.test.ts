// `sis2alma mapping check` and the editor JSON Schema: the shipped mappings pass, each broken
// fixture in test/fixtures/mapping/broken/ is reported with its file:line:column, YAML path and
// the librarian's message (the closest key for a typo), and schemas/mapping.schema.json stays in
// step with src/mapping/shape.ts.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { checkMappingFiles } from '../src/commands/mapping.js';
import { jsonSchemaText, staleJsonSchemas } from '../src/config/json-schema.js';
import { mappingSchema } from '../src/mapping/shape.js';
import { EXIT_CODES } from '../src/shared/errors.js';
import { MAPPING_JSON_SCHEMA, PACKAGE_ROOT } from '../src/shared/paths.js';
import { runMappingCommand } from './helpers/mapping-command.js';

const BROKEN = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'mapping', 'broken');
const SHIPPED = ['infiniti.yaml', 'university.yaml'].map((name) => path.join(PACKAGE_ROOT, 'mappings', name));
const CLI = path.join(PACKAGE_ROOT, 'dist', 'src', 'cli.js');

const run = runMappingCommand;

describe('the shipped mappings', () => {
  for (const file of SHIPPED) {
    test(`${path.basename(file)} passes mapping check without warnings`, async () => {
      const result = await checkMappingFiles([file]);
      assert.deepEqual(result.files[0]!.problems, []);
      assert.deepEqual(result.files[0]!.warnings, []);
      assert.equal(result.exitCode, EXIT_CODES.ok);
      const { lines, exitCode } = await run(['mapping', 'check', file]);
      assert.deepEqual(lines, [`${file}: valid`]);
      assert.equal(exitCode, 0);
    });
  }
});

// [line, column, path, message] for each problem, in file order.
const broken: Array<{ fixture: string; problems: Array<[number, number, string, string | RegExp]> }> = [
  {
    fixture: 'unknown-keys.yaml',
    problems: [
      [5, 3, 'fields.frist_name', 'unknown key "frist_name"; did you mean "first_name"?'],
      [10, 3, 'user_group.priorty', 'unknown key "priorty"; did you mean "priority"?'],
      [13, 5, 'emails[0].form', 'unknown key "form"; did you mean "from"?'],
    ],
  },
  {
    fixture: 'wrong-types.yaml',
    problems: [
      [8, 13, 'user_group.priority', 'expected a list, found "PATRON"'],
      [10, 22, 'purge.days_after_expiry', 'expected a whole number, found "soon"'],
      [14, 17, 'emails[0].on_invalid', 'expected one of "reject", "drop", found "ignore"'],
    ],
  },
  {
    fixture: 'bad-forms.yaml',
    problems: [
      [5, 37, 'fields.birth_date.format', /^"DD-MM" is not in the expected form \(How dates are written in the column, e\.g\. MM\/DD\/YYYY/],
      [10, 25, 'expiry.default.after_run', /^"1 yaer" is not in the expected form \(A number and day\(s\), week\(s\), month\(s\) or year\(s\) after the run date/],
    ],
  },
  {
    fixture: 'bad-values.yaml',
    problems: [
      [4, 16, 'tables.departments', /^cannot read table file .*missing-departments\.csv: ENOENT$/],
      [9, 35, 'user_group.rules[0].when.program.matches', /^not a valid regular expression: .*Unterminated group/],
      [15, 54, 'expiry.GRAD.term_calendar[0].expires', '2027-02-30 is not a date'],
      [17, 44, 'statistics[0].statistic_category.map', 'no table named "departmens"; did you mean "departments"?'],
    ],
  },
  {
    fixture: 'key-and-code.yaml',
    problems: [
      [10, 12, 'user_group.default', '"VISITOR" is not in allowed_codes.user_group'],
      [13, 3, 'fields.frist_name', 'unknown key "frist_name"; did you mean "first_name"?'],
    ],
  },
  { fixture: 'duplicate-key.yaml', problems: [[6, 3, '', 'YAML: Map keys must be unique']] },
  // The YAML parser notices an unclosed quote only at the end of the file.
  { fixture: 'yaml-syntax.yaml', problems: [[8, 1, '', 'YAML: Missing closing "quote']] },
  {
    fixture: 'missing-parts.yaml',
    problems: [
      [2, 1, '', 'missing "user_group"'],
      [4, 3, 'fields', 'missing "primary_id"'],
    ],
  },
];

describe('mapping check on broken mappings', () => {
  for (const { fixture, problems } of broken) {
    test(`${fixture}: every problem with line, column and path`, async () => {
      const file = path.join(BROKEN, fixture);
      const result = await checkMappingFiles([file]);
      assert.equal(result.exitCode, EXIT_CODES.mapping_invalid);
      assert.equal(result.files[0]!.valid, false);
      const found = result.files[0]!.problems;
      assert.equal(found.length, problems.length, found.join('\n'));
      problems.forEach(([line, column, where, message], i) => {
        const prefix = `${file}:${line}:${column}: ${where ? where + ': ' : ''}`;
        assert.ok(found[i]!.startsWith(prefix), `expected ${prefix}..., found ${found[i]}`);
        const rest = found[i]!.slice(prefix.length);
        if (typeof message === 'string') assert.equal(rest, message);
        else assert.match(rest, message);
      });
    });
  }

  test('the command prints each problem and a summary line, and ends with exit code 3', async () => {
    const file = path.join(BROKEN, 'unknown-keys.yaml');
    const { lines, exitCode } = await run(['mapping', 'check', file]);
    assert.equal(exitCode, 3);
    assert.deepEqual(lines, [
      `${file}:5:3: fields.frist_name: unknown key "frist_name"; did you mean "first_name"?`,
      `${file}:10:3: user_group.priorty: unknown key "priorty"; did you mean "priority"?`,
      `${file}:13:5: emails[0].form: unknown key "form"; did you mean "from"?`,
      `${file}:2:1: no purge block: Alma never purges a user without a purge date; add one, e.g. purge: { default: { after_expiry: 1 year } } (warning)`,
      `${file}: 3 problem(s); the mapping cannot be used until they are fixed`,
    ]);
  });

  test('several files: each is reported; one bad file makes the exit code 3', async () => {
    const good = SHIPPED[0]!;
    const bad = path.join(BROKEN, 'duplicate-key.yaml');
    const { lines, exitCode } = await run(['mapping', 'check', good, bad, '--json']);
    assert.equal(exitCode, 3);
    const files = JSON.parse(lines.join('\n')) as { file: string; valid: boolean; problems: string[] }[];
    assert.deepEqual(
      files.map((f) => [f.file, f.valid, f.problems.length]),
      [
        [good, true, 0],
        [bad, false, 1],
      ],
    );
  });

  test('a file that cannot be read is a problem, not a crash', async () => {
    const missing = path.join(BROKEN, 'no-such-mapping.yaml');
    const { lines, exitCode } = await run(['mapping', 'check', missing]);
    assert.equal(exitCode, 3);
    assert.equal(lines[0], `cannot read mapping file ${missing}: ENOENT`);
  });
});

describe('schemas/mapping.schema.json', () => {
  test('is the JSON of shape.ts, the schema the runtime check uses (run json-schema.js --write after a change)', () => {
    assert.equal(readFileSync(MAPPING_JSON_SCHEMA, 'utf8'), jsonSchemaText(mappingSchema));
    assert.ok(!staleJsonSchemas().includes(MAPPING_JSON_SCHEMA));
  });

  test('an editor using it accepts the shipped mappings and flags the unknown keys the check names', () => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(MAPPING_JSON_SCHEMA, 'utf8')) as object);
    for (const file of SHIPPED) assert.equal(validate(parseYaml(readFileSync(file, 'utf8'))), true, `${file}: ${JSON.stringify(validate.errors)}`);
    assert.equal(validate(parseYaml(readFileSync(path.join(BROKEN, 'unknown-keys.yaml'), 'utf8'))), false);
    const extras = (validate.errors ?? []).filter((e) => e.keyword === 'additionalProperties').map((e) => `${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty}`);
    assert.deepEqual(extras.sort(), ['/emails/0/form', '/fields/frist_name', '/user_group/priorty']);
  });

  test('the shipped mappings point editors at it', () => {
    for (const file of SHIPPED) assert.match(readFileSync(file, 'utf8'), /^# yaml-language-server: \$schema=\.\.\/schemas\/mapping\.schema\.json$/m);
  });
});

describe('sis2alma mapping check (CLI)', () => {
  test('exit code 0 for the shipped mappings, 3 for a broken one, with file:line:column', () => {
    const ok = spawnSync(process.execPath, [CLI, 'mapping', 'check', ...SHIPPED], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    const bad = spawnSync(process.execPath, [CLI, 'mapping', 'check', path.join(BROKEN, 'wrong-types.yaml')], { encoding: 'utf8' });
    assert.equal(bad.status, 3);
    assert.match(bad.stdout, /wrong-types\.yaml:8:13: user_group\.priority: expected a list, found "PATRON"/);
  });
});
