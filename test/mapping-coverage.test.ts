// Alma's user record as the SIS load takes it, each part mapped through convert(): cataloger_level,
// an address's start and end dates (through the date formats), an identifier's note and status,
// blocks, resource sharing libraries and library notices. The XML written must pass both schemas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { convert } from '../src/pipeline/convert.js';
import { checkMappingText, formatProblem } from '../src/mapping/load.js';
import { makeTempDir } from './helpers/tmp.js';
import { readZip } from './helpers/zip.js';
import { problemsAgainstBoth } from './helpers/schemas.js';

const NOW = '2026-09-01T12:00:00Z';

const MAPPING = `source: coverage
fields:
  primary_id: "{id}"
  last_name: "{last}"
  cataloger_level: { from: cat_level }
user_group:
  rules:
    - group: STAFF
addresses:
  - address_type: home
    line1: "{street}"
    start_date: { from: moved_in, format: MM/DD/YYYY }
    end_date: "{moved_out}"
identifiers:
  - id_type: BARCODE
    from: barcode
    note: "card issued {issued}"
    status: { from: card_status, map: { A: ACTIVE, L: LOST } }
user_blocks:
  - block_type: GENERAL
    block_description: { from: hold, map: { BURSAR: "03" } , unknown: keep }
    block_status: Active
    block_note: "hold from the SIS: {hold}"
rs_libraries:
  - "{home_library}"
  - { value: MAIN }
library_notices:
  - code: BorrowingActivityLetter
    from: notices_opt_in
`;

const CSV = `id,last,cat_level,street,moved_in,moved_out,barcode,issued,card_status,hold,home_library,notices_opt_in
c1,Lovelace,01,1 Main St,09/01/2025,2026-06-30,2900001,2025-08-15,A,BURSAR,LAW,yes
c2,Hopper,,2 Elm St,,,2900002,,,,,
c3,Turing,,3 Oak St,31/12/2025,,2900003,,,,,maybe
`;

async function run(mapping = MAPPING, csv = CSV) {
  const dir = makeTempDir('sis2alma-coverage-');
  writeFileSync(path.join(dir, 'mapping.yaml'), mapping);
  writeFileSync(path.join(dir, 'rows.csv'), csv);
  const result = await convert({ mappingFile: path.join(dir, 'mapping.yaml'), inputs: [path.join(dir, 'rows.csv')], outDir: path.join(dir, 'out'), now: new Date(NOW), guards: { maxRejected: '100%' } });
  const xml = (await Promise.all(result.zips.map(readZip))).flat().map((e) => e.text).join('');
  return { result, xml, details: JSON.parse(readFileSync(result.reportFile.replace(/\.report\.json$/, '.report.json'), 'utf8')) };
}

/** The XML of one user, from <user> to </user>. */
function userIn(xml: string, id: string): string {
  const m = new RegExp(`  <user>\\n    <primary_id>${id}</primary_id>\\n[\\s\\S]*?  </user>\\n`).exec(xml);
  assert.ok(m, `no user ${id} in\n${xml}`);
  return m[0];
}

test('every SIS part of the user record is written from the mapping, in Alma order, valid against both schemas', async () => {
  const { result, xml } = await run();
  assert.equal(result.report.counts.users, 2);
  assert.deepEqual(problemsAgainstBoth(xml), []);
  assert.equal(
    userIn(xml, 'c1'),
    [
      '  <user>',
      '    <primary_id>c1</primary_id>',
      '    <last_name>Lovelace</last_name>',
      '    <user_group>STAFF</user_group>',
      '    <cataloger_level>01</cataloger_level>',
      '    <contact_info>',
      '      <addresses>',
      '        <address preferred="true" segment_type="External">',
      '          <line1>1 Main St</line1>',
      '          <start_date>2025-09-01</start_date>',
      '          <end_date>2026-06-30</end_date>',
      '          <address_types>',
      '            <address_type>home</address_type>',
      '          </address_types>',
      '        </address>',
      '      </addresses>',
      '    </contact_info>',
      '    <user_identifiers>',
      '      <user_identifier segment_type="External">',
      '        <id_type>BARCODE</id_type>',
      '        <value>2900001</value>',
      '        <note>card issued 2025-08-15</note>',
      '        <status>ACTIVE</status>',
      '      </user_identifier>',
      '    </user_identifiers>',
      '    <user_blocks>',
      '      <user_block segment_type="External">',
      '        <block_type>GENERAL</block_type>',
      '        <block_description>03</block_description>',
      '        <block_status>Active</block_status>',
      '        <block_note>hold from the SIS: BURSAR</block_note>',
      '      </user_block>',
      '    </user_blocks>',
      '    <rs_libraries>',
      '      <rs_library>',
      '        <code>LAW</code>',
      '      </rs_library>',
      '      <rs_library>',
      '        <code>MAIN</code>',
      '      </rs_library>',
      '    </rs_libraries>',
      '    <library_notices>',
      '      <library_notice>',
      '        <code>BorrowingActivityLetter</code>',
      '        <value>true</value>',
      '      </library_notice>',
      '    </library_notices>',
      '  </user>',
      '',
    ].join('\n'),
  );
  // Empty values leave each part out: no dates, no note, no status, no block, no notice.
  const c2 = userIn(xml, 'c2');
  assert.doesNotMatch(c2, /cataloger_level|start_date|end_date|<note>|<status>|user_blocks|library_notices/);
  assert.match(c2, /<rs_libraries>\n {6}<rs_library>\n {8}<code>MAIN<\/code>\n {6}<\/rs_library>\n {4}<\/rs_libraries>/);
});

test('a start date not in its format and a notice that is not yes/no reject the row, naming column and value', async () => {
  const { result } = await run();
  assert.equal(result.report.counts.rejected, 1);
  const rejects = readFileSync(result.rejectsFile!, 'utf8');
  assert.match(rejects, /Field \(moved_in\) is not a date in the form MM\/DD\/YYYY: '31\/12\/2025'/);
  assert.match(rejects, /Field \(notices_opt_in\) is not a yes\/no value: 'maybe'/);
});

test('an address date without a format is read as YYYY-MM-DD', async () => {
  const { result } = await run(MAPPING, 'id,last,street,moved_out\nc1,Lovelace,1 Main St,30.06.2026\n');
  assert.equal(result.report.counts.rejected, 1);
  assert.match(readFileSync(result.rejectsFile!, 'utf8'), /Field \(moved_out\) is not a date in the form YYYY-MM-DD: '30\.06\.2026'/);
});

test('mapping check: the new parts are checked with file:line:column', () => {
  const text = MAPPING.replace('block_status: Active', 'block_status: Activ').replace('  - code: BorrowingActivityLetter\n    from: notices_opt_in', '  - code: BorrowingActivityLetter\n    from: notices_opt_in\n    boolean: { true: Y, false: N }');
  const problems = checkMappingText(text, 'm.yaml').problems.map(formatProblem);
  assert.deepEqual(problems, [
    'm.yaml:22:19: user_blocks[0].block_status: expected one of "Active", "Inactive", found "Activ"',
    "m.yaml:28:5: library_notices[0]: a library notice's value is read as yes/no already: leave out boolean and map",
  ]);
});

test('a user whose identifier (with a note and status) is another user\'s loses it, the rest of the block as written', async () => {
  // c2 carries c1's barcode: the first row keeps it, c2's is left out; c2's other identifier stays whole.
  const mapping = MAPPING.replace('identifiers:\n', 'identifiers:\n  - { id_type: UNIV_ID, template: "U-{id}", note: "from the SIS", status: ACTIVE }\n');
  const csv = 'id,last,barcode,issued,card_status\nc1,Lovelace,2900001,2025-08-15,A\nc2,Hopper,2900001,2025-08-16,L\n';
  const { result, xml } = await run(mapping, csv);
  assert.deepEqual([result.report.counts.users, result.report.counts.rejected], [2, 0]);
  assert.deepEqual(problemsAgainstBoth(xml), []);
  assert.match(
    userIn(xml, 'c2'),
    /<user_identifiers>\n {6}<user_identifier segment_type="External">\n {8}<id_type>UNIV_ID<\/id_type>\n {8}<value>U-c2<\/value>\n {8}<note>from the SIS<\/note>\n {8}<status>ACTIVE<\/status>\n {6}<\/user_identifier>\n {4}<\/user_identifiers>\n/,
  );
  assert.deepEqual(Object.keys(result.report.warnings as object), ['duplicate_identifier']);
});
