// The project's schema must take every field the SIS load takes: users that Ex Libris' own
// rest_users.xsd accepts, with each element Alma tags "sis", go through both schemas. (Our
// stricter value rules, each with its reason, are tested in validate.test.ts; these users keep
// to them: no empty element, plain dates, true/false, segment_type External.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { schemas } from './helpers/schemas.js';

const doc = (...users: string[]) => `<?xml version="1.0" encoding="UTF-8"?>\n<users>\n${users.map((u) => `<user>\n<primary_id>c1</primary_id>\n${u}\n</user>`).join('\n')}\n</users>\n`;

// One user for each part of the record the SIS load takes; together, every "sis" element.
const SIS_USERS: Record<string, string> = {
  'the user fields': `<first_name>Ada</first_name><middle_name>B</middle_name><last_name>Lovelace</last_name><pin_number>1234</pin_number>
<user_title desc="Doctor">DR</user_title><job_category desc="Faculty">FAC</job_category><job_description>Professor</job_description>
<gender>FEMALE</gender><user_group desc="Faculty">FACULTY</user_group><campus_code desc="Main">MAIN</campus_code><web_site_url>https://example.edu/ada</web_site_url>
<cataloger_level desc="Level 1">01</cataloger_level><preferred_language>en</preferred_language><birth_date>1990-12-10</birth_date>
<expiry_date>2027-06-30</expiry_date><purge_date>2028-06-30</purge_date><status>ACTIVE</status>
<pref_first_name>Ada</pref_first_name><pref_middle_name>B</pref_middle_name><pref_last_name>King</pref_last_name><pref_name_suffix>PhD</pref_name_suffix>`,
  'an address with its dates': `<contact_info><addresses><address preferred="true" segment_type="External"><line1>1 Main St</line1><line2>a</line2><line3>b</line3><line4>c</line4><line5>d</line5>
<city>Springfield</city><state_province>IL</state_province><postal_code>62701</postal_code><country desc="United States">USA</country><address_note>term address</address_note>
<start_date>2025-09-01</start_date><end_date>2026-06-30</end_date><address_types><address_type desc="School">school</address_type></address_types></address></addresses>
<emails><email preferred="true" segment_type="External"><email_address>ada@example.edu</email_address><description>campus</description><email_types><email_type>school</email_type></email_types></email></emails>
<phones><phone preferred="true" preferred_sms="true" segment_type="External"><phone_number>555-555-5555</phone_number><phone_types><phone_type>mobile</phone_type></phone_types></phone></phones></contact_info>`,
  'an identifier with its note and status': `<user_identifiers><user_identifier segment_type="External"><id_type desc="Barcode">BARCODE</id_type><value>2900001</value><note>from the card office</note><status>ACTIVE</status></user_identifier></user_identifiers>`,
  'a block': `<user_blocks><user_block segment_type="External"><block_type desc="General">GENERAL</block_type><block_description desc="Unpaid fees">03</block_description><block_status>Active</block_status><block_note>bursar hold</block_note></user_block></user_blocks>`,
  'a note and a statistic': `<user_notes><user_note segment_type="External"><note_type>REGISTAR</note_type><note_text>From the SIS</note_text><user_viewable>false</user_viewable><popup_note>false</popup_note></user_note></user_notes>
<user_statistics><user_statistic segment_type="External"><statistic_category desc="History">HIST</statistic_category><category_type>DEPT</category_type><statistic_note>major</statistic_note></user_statistic></user_statistics>`,
  'resource sharing libraries and library notices': `<rs_libraries><rs_library><code desc="Main library">MAIN</code></rs_library><rs_library><code>LAW</code></rs_library></rs_libraries>
<library_notices><library_notice><code desc="Borrowing activity">BorrowingActivityLetter</code><value>true</value></library_notice></library_notices>`,
};

for (const [what, user] of Object.entries(SIS_USERS)) {
  test(`a user Ex Libris' schema takes for the SIS load passes ours too: ${what}`, () => {
    const { project, exlibris } = schemas();
    const xml = doc(user);
    assert.deepEqual(exlibris.validate(xml), [], 'the fixture must be valid against Ex Libris\' schema');
    assert.deepEqual(project.validate(xml), []);
  });
}

test('one user with every SIS field at once passes both schemas', () => {
  const { project, exlibris } = schemas();
  const xml = doc(Object.values(SIS_USERS).join('\n'));
  assert.deepEqual(exlibris.validate(xml), []);
  assert.deepEqual(project.validate(xml), []);
});

test('what the SIS load does not take is still refused by ours, while Ex Libris\' takes it', () => {
  const { project, exlibris } = schemas();
  const cases: [string, string][] = [
    ['researcher', '<researcher><researcher_first_name>Ada</researcher_first_name></researcher>'],
    ['created_date', '<user_blocks><user_block><block_description>03</block_description><created_date>2025-01-01T00:00:00Z</created_date></user_block></user_blocks>'],
    ['user_roles', '<user_roles><user_role><role_type>200</role_type></user_role></user_roles>'],
  ];
  for (const [element, user] of cases) {
    const xml = doc(user);
    assert.deepEqual(
      project.validate(xml).map((p) => p.message.split(':')[0]),
      [`Element '${element}'`],
      element,
    );
    if (element !== 'researcher') assert.deepEqual(exlibris.validate(xml), [], element);
  }
});
