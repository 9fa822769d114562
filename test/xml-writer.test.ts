// The XML writer's exact output, byte for byte, for the cases a silent change would get wrong:
// escaping, empty values left out, the order inside contact_info, attributes, the provenance
// comment. test/xml.test.ts holds the fast writer to xmlbuilder2's; this holds both to what Alma
// must receive (its generator never makes an empty string, so the "left out when empty" rule of
// the tree is pinned here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import libxml from 'libxmljs2';
import type { AlmaUser } from '../src/shared/alma.js';
import { userXml, userTree, usersDocument, identifiersXml, provenanceComment, XML_DECLARATION, USERS_OPEN, USERS_CLOSE } from '../src/pipeline/xml.js';
import { userXmlReference } from '../src/pipeline/xml-reference.js';

function user(fields: Partial<AlmaUser>): AlmaUser {
  return { primary_id: 'p1', contact_info: { addresses: [], emails: [], phones: [] }, user_identifiers: [], user_notes: [], user_statistics: [], ...fields };
}

/** Both writers, which must agree. */
function both(u: AlmaUser): string {
  const fast = userXml(u);
  assert.equal(userXmlReference(u), fast, 'xmlbuilder2 writes the same');
  return fast;
}

test('&, < and > are escaped in text; quotes, apostrophes, tabs, CR and C1 controls are written as they are', () => {
  assert.equal(userXml(user({ last_name: 'a&b<c>d' })), '  <user>\n    <primary_id>p1</primary_id>\n    <last_name>a&amp;b&lt;c&gt;d</last_name>\n  </user>\n');
  assert.equal(userXml(user({ last_name: '&&<<>>' })), '  <user>\n    <primary_id>p1</primary_id>\n    <last_name>&amp;&amp;&lt;&lt;&gt;&gt;</last_name>\n  </user>\n');
  assert.equal(userXml(user({ last_name: '&' })), '  <user>\n    <primary_id>p1</primary_id>\n    <last_name>&amp;</last_name>\n  </user>\n');
  assert.equal(userXml(user({ last_name: '<' })), '  <user>\n    <primary_id>p1</primary_id>\n    <last_name>&lt;</last_name>\n  </user>\n');
  assert.equal(userXml(user({ last_name: '>' })), '  <user>\n    <primary_id>p1</primary_id>\n    <last_name>&gt;</last_name>\n  </user>\n');
  assert.equal(userXml(user({ last_name: `O'Neil "Jr"\tx\ry\u0085z` })), `  <user>\n    <primary_id>p1</primary_id>\n    <last_name>O'Neil "Jr"\tx\ry\u0085z</last_name>\n  </user>\n`);
});

test(']]> is written as ]]&gt; (a literal ]]> is not allowed in XML text)', () => {
  const xml = both(user({ first_name: 'a]]>b' }));
  assert.equal(xml, '  <user>\n    <primary_id>p1</primary_id>\n    <first_name>a]]&gt;b</first_name>\n  </user>\n');
});

test('text that looks like an entity reference is escaped, not passed through', () => {
  const cases: [string, string][] = [
    ['AT&T;', 'AT&amp;T;'],
    ['&amp;', '&amp;amp;'],
    ['&#65;', '&amp;#65;'],
    ['&lt;tag&gt;', '&amp;lt;tag&amp;gt;'],
  ];
  for (const [value, written] of cases) {
    const xml = userXml(user({ primary_id: value }));
    assert.equal(xml, `  <user>\n    <primary_id>${written}</primary_id>\n  </user>\n`);
    assert.equal(libxml.parseXml(xml).get<libxml.Element>('//primary_id')!.text(), value);
  }
});

test('escaping applies in every kind of text: identifiers, notes, statistics, contact details and type codes', () => {
  const xml = both(
    user({
      primary_id: 'a&1',
      contact_info: {
        addresses: [{ preferred: true, line1: 'l&1', city: 'c<1', address_types: ['t>1'] }],
        emails: [{ preferred: true, email_address: 'e&1', description: 'd<1', email_types: ['t&2'] }],
        phones: [{ preferred: true, phone_number: 'p>1', phone_types: ['t<3'] }],
      },
      user_identifiers: [{ id_type: 'i&1', value: 'v<1', note: 'n>1' }],
      user_notes: [{ note_type: 'nt&', note_text: 'nx<', user_viewable: true, popup_note: false }],
      user_statistics: [{ statistic_category: 'sc&', category_type: 'ct<', statistic_note: 'sn>' }],
    }),
  );
  for (const raw of ['a&1', 'l&1', 'c<1', 't>1', 'e&1', 'd<1', 't&2', 'p>1', 't<3', 'i&1', 'v<1', 'n>1', 'nt&', 'nx<', 'sc&', 'ct<', 'sn>']) {
    const escaped = raw.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;');
    assert.ok(xml.includes(`>${escaped}</`), `${raw} written as ${escaped}`);
  }
  for (const [, text] of xml.matchAll(/>([^<\n]*)</g)) assert.doesNotMatch(text!, /&(?!amp;|lt;|gt;)|>/, 'no raw & or > left in text');
});

test('a whole user with every list: exact XML, contact_info in the order addresses, emails, phones', () => {
  const u = user({
    primary_id: 'jdoe',
    first_name: 'Jane',
    last_name: 'Doe',
    user_group: 'STAFF',
    expiry_date: '2027-11-21',
    contact_info: {
      addresses: [
        { preferred: true, line1: '1 Main St', line2: 'Apt 2', line3: 'l3', line4: 'l4', line5: 'l5', city: 'Springfield', state_province: 'IL', postal_code: '62701', country: 'USA', address_note: 'office', start_date: '2020-01-01', end_date: '2030-01-01', address_types: ['work', 'home'] },
        { preferred: false, line1: '2 Side St', address_types: ['home'] },
      ],
      emails: [
        { preferred: false, email_address: 'j@home.example', email_types: ['personal'] },
        { preferred: true, email_address: 'j@work.example', description: 'work', email_types: ['work'] },
      ],
      phones: [
        { preferred: true, phone_number: '555 0100', phone_types: ['office'] },
        { preferred: false, preferred_sms: true, phone_number: '555 0101', phone_types: ['mobile'] },
        { preferred: false, preferred_sms: false, phone_number: '555 0102', phone_types: ['home'] },
      ],
    },
    user_identifiers: [
      { id_type: 'BARCODE', value: 'B1', note: 'card' },
      { id_type: 'UNIV_ID', value: 'U1' },
    ],
    user_notes: [
      { note_type: 'OTHER', note_text: 'one', user_viewable: true, popup_note: false },
      { note_type: 'CIRC', note_text: 'two', user_viewable: false, popup_note: true },
    ],
    user_statistics: [
      { statistic_category: 'HIST', category_type: 'DEPT', statistic_note: 'sis' },
      { statistic_category: 'MATH' },
    ],
    pref_first_name: 'Janie',
    pref_middle_name: 'Q',
    pref_last_name: 'D',
    pref_name_suffix: 'PhD',
  });
  const expected = [
    '  <user>',
    '    <primary_id>jdoe</primary_id>',
    '    <first_name>Jane</first_name>',
    '    <last_name>Doe</last_name>',
    '    <user_group>STAFF</user_group>',
    '    <expiry_date>2027-11-21</expiry_date>',
    '    <contact_info>',
    '      <addresses>',
    '        <address preferred="true" segment_type="External">',
    '          <line1>1 Main St</line1>',
    '          <line2>Apt 2</line2>',
    '          <line3>l3</line3>',
    '          <line4>l4</line4>',
    '          <line5>l5</line5>',
    '          <city>Springfield</city>',
    '          <state_province>IL</state_province>',
    '          <postal_code>62701</postal_code>',
    '          <country>USA</country>',
    '          <address_note>office</address_note>',
    '          <start_date>2020-01-01</start_date>',
    '          <end_date>2030-01-01</end_date>',
    '          <address_types>',
    '            <address_type>work</address_type>',
    '            <address_type>home</address_type>',
    '          </address_types>',
    '        </address>',
    '        <address preferred="false" segment_type="External">',
    '          <line1>2 Side St</line1>',
    '          <address_types>',
    '            <address_type>home</address_type>',
    '          </address_types>',
    '        </address>',
    '      </addresses>',
    '      <emails>',
    '        <email preferred="false" segment_type="External">',
    '          <email_address>j@home.example</email_address>',
    '          <email_types>',
    '            <email_type>personal</email_type>',
    '          </email_types>',
    '        </email>',
    '        <email preferred="true" segment_type="External">',
    '          <email_address>j@work.example</email_address>',
    '          <description>work</description>',
    '          <email_types>',
    '            <email_type>work</email_type>',
    '          </email_types>',
    '        </email>',
    '      </emails>',
    '      <phones>',
    '        <phone preferred="true" segment_type="External">',
    '          <phone_number>555 0100</phone_number>',
    '          <phone_types>',
    '            <phone_type>office</phone_type>',
    '          </phone_types>',
    '        </phone>',
    '        <phone preferred="false" preferred_sms="true" segment_type="External">',
    '          <phone_number>555 0101</phone_number>',
    '          <phone_types>',
    '            <phone_type>mobile</phone_type>',
    '          </phone_types>',
    '        </phone>',
    '        <phone preferred="false" preferred_sms="false" segment_type="External">',
    '          <phone_number>555 0102</phone_number>',
    '          <phone_types>',
    '            <phone_type>home</phone_type>',
    '          </phone_types>',
    '        </phone>',
    '      </phones>',
    '    </contact_info>',
    '    <user_identifiers>',
    '      <user_identifier segment_type="External">',
    '        <id_type>BARCODE</id_type>',
    '        <value>B1</value>',
    '        <note>card</note>',
    '      </user_identifier>',
    '      <user_identifier segment_type="External">',
    '        <id_type>UNIV_ID</id_type>',
    '        <value>U1</value>',
    '      </user_identifier>',
    '    </user_identifiers>',
    '    <user_notes>',
    '      <user_note segment_type="External">',
    '        <note_type>OTHER</note_type>',
    '        <note_text>one</note_text>',
    '        <user_viewable>true</user_viewable>',
    '        <popup_note>false</popup_note>',
    '      </user_note>',
    '      <user_note segment_type="External">',
    '        <note_type>CIRC</note_type>',
    '        <note_text>two</note_text>',
    '        <user_viewable>false</user_viewable>',
    '        <popup_note>true</popup_note>',
    '      </user_note>',
    '    </user_notes>',
    '    <user_statistics>',
    '      <user_statistic segment_type="External">',
    '        <statistic_category>HIST</statistic_category>',
    '        <category_type>DEPT</category_type>',
    '        <statistic_note>sis</statistic_note>',
    '      </user_statistic>',
    '      <user_statistic segment_type="External">',
    '        <statistic_category>MATH</statistic_category>',
    '      </user_statistic>',
    '    </user_statistics>',
    '    <pref_first_name>Janie</pref_first_name>',
    '    <pref_middle_name>Q</pref_middle_name>',
    '    <pref_last_name>D</pref_last_name>',
    '    <pref_name_suffix>PhD</pref_name_suffix>',
    '  </user>',
    '',
  ].join('\n');
  assert.equal(both(u), expected);
});

test('contact_info holds only the kinds there are, still in the order addresses, emails, phones', () => {
  const address = { preferred: true, line1: 'A', address_types: ['home'] };
  const email = { preferred: true, email_address: 'e@x', email_types: ['work'] };
  const phone = { preferred: true, phone_number: '1', phone_types: ['home'] };
  const kinds = (c: AlmaUser['contact_info']) => [...both(user({ contact_info: c })).matchAll(/^ {4,6}<(contact_info|addresses|emails|phones)>/gm)].map((m) => m[1]);
  assert.deepEqual(kinds({ addresses: [address], emails: [], phones: [] }), ['contact_info', 'addresses']);
  assert.deepEqual(kinds({ addresses: [], emails: [email], phones: [] }), ['contact_info', 'emails']);
  assert.deepEqual(kinds({ addresses: [], emails: [], phones: [phone] }), ['contact_info', 'phones']);
  assert.deepEqual(kinds({ addresses: [], emails: [email], phones: [phone] }), ['contact_info', 'emails', 'phones']);
  assert.deepEqual(kinds({ addresses: [address], emails: [], phones: [phone] }), ['contact_info', 'addresses', 'phones']);
  assert.deepEqual(kinds({ addresses: [address], emails: [email], phones: [] }), ['contact_info', 'addresses', 'emails']);
  assert.deepEqual(kinds({ addresses: [], emails: [], phones: [] }), []);
});

test('preferred is written as given on each address, email and phone; preferred_sms only when set', () => {
  const xml = both(
    user({
      contact_info: {
        addresses: [{ preferred: false, line1: 'A', address_types: ['home'] }, { preferred: true, line1: 'B', address_types: ['work'] }],
        emails: [{ preferred: true, email_address: 'a@x', email_types: ['work'] }, { preferred: false, email_address: 'b@x', email_types: ['personal'] }],
        phones: [{ preferred: false, phone_number: '1', phone_types: ['home'] }, { preferred: true, preferred_sms: true, phone_number: '2', phone_types: ['mobile'] }],
      },
    }),
  );
  const attributes = [...xml.matchAll(/<(address|email|phone) ([^>]*)>/g)].map((m) => `${m[1]} ${m[2]}`);
  assert.deepEqual(attributes, [
    'address preferred="false" segment_type="External"',
    'address preferred="true" segment_type="External"',
    'email preferred="true" segment_type="External"',
    'email preferred="false" segment_type="External"',
    'phone preferred="false" segment_type="External"',
    'phone preferred="true" preferred_sms="true" segment_type="External"',
  ]);
});

test('every optional value that is empty is left out, in both writers and in the tree', () => {
  const blank = {
    first_name: '', middle_name: '', last_name: '', pin_number: '', user_title: '', job_category: '', job_description: '', gender: '', user_group: '', campus_code: '',
    web_site_url: '', preferred_language: '', birth_date: '', expiry_date: '', purge_date: '', status: '', pref_first_name: '', pref_middle_name: '', pref_last_name: '', pref_name_suffix: '',
  };
  const u = user({
    ...blank,
    contact_info: {
      addresses: [{ preferred: true, line1: '', line2: '', line3: '', line4: '', line5: '', city: '', state_province: '', postal_code: '', country: '', address_note: '', start_date: '', end_date: '', address_types: ['home'] }],
      emails: [{ preferred: true, email_address: '', description: '', email_types: ['work'] }],
      phones: [{ preferred: true, phone_number: '', phone_types: ['home'] }],
    },
    user_identifiers: [{ id_type: 'BARCODE', value: 'B1', note: '' }],
    user_notes: [{ note_type: '', note_text: '', user_viewable: false, popup_note: false }],
    user_statistics: [{ statistic_category: 'HIST', category_type: '', statistic_note: '' }],
  });
  const xml = both(u);
  assert.doesNotMatch(xml, /<(\w+)><\/\1>|<\w+\/>/, 'no element written empty');
  const leaves = [...xml.matchAll(/<(\w+)>[^<\n]+<\/\1>/g)].map((m) => m[0]);
  assert.deepEqual(leaves, [
    '<primary_id>p1</primary_id>', '<address_type>home</address_type>', '<email_type>work</email_type>', '<phone_type>home</phone_type>',
    '<id_type>BARCODE</id_type>', '<value>B1</value>', '<user_viewable>false</user_viewable>', '<popup_note>false</popup_note>', '<statistic_category>HIST</statistic_category>',
  ]);

  // The tree the reference serialises: no leaf with empty text at all.
  const texts: string[] = [];
  const walk = (e: ReturnType<typeof userTree>): void => {
    if (e.text !== undefined) texts.push(`${e.name}=${e.text}`);
    for (const c of e.children ?? []) walk(c);
  };
  walk(userTree(u));
  assert.deepEqual(texts, ['primary_id=p1', 'address_type=home', 'email_type=work', 'phone_type=home', 'id_type=BARCODE', 'value=B1', 'user_viewable=false', 'popup_note=false', 'statistic_category=HIST']);
});

test('the tree: names, attributes and children as the reference serialises them', () => {
  const tree = userTree(
    user({
      last_name: 'Doe',
      contact_info: { addresses: [], emails: [], phones: [{ preferred: true, preferred_sms: false, phone_number: '1', phone_types: ['home'] }] },
      user_identifiers: [{ id_type: 'BARCODE', value: 'B1' }],
    }),
  );
  assert.deepEqual(tree, {
    name: 'user',
    children: [
      { name: 'primary_id', text: 'p1' },
      { name: 'last_name', text: 'Doe' },
      {
        name: 'contact_info',
        children: [
          {
            name: 'phones',
            children: [
              {
                name: 'phone',
                attributes: [['preferred', 'true'], ['preferred_sms', 'false'], ['segment_type', 'External']],
                children: [{ name: 'phone_number', text: '1' }, { name: 'phone_types', children: [{ name: 'phone_type', text: 'home' }] }],
              },
            ],
          },
        ],
      },
      { name: 'user_identifiers', children: [{ name: 'user_identifier', attributes: [['segment_type', 'External']], children: [{ name: 'id_type', text: 'BARCODE' }, { name: 'value', text: 'B1' }] }] },
    ],
  });
});

test('identifiersXml: nothing for no identifiers, the block as userXml writes it otherwise', () => {
  assert.equal(identifiersXml([]), '');
  const ids = [{ id_type: 'BARCODE', value: 'B&1' }, { id_type: 'UNIV_ID', value: 'U1', note: 'n' }];
  const block = identifiersXml(ids);
  assert.equal(
    block,
    '    <user_identifiers>\n' +
      '      <user_identifier segment_type="External">\n        <id_type>BARCODE</id_type>\n        <value>B&amp;1</value>\n      </user_identifier>\n' +
      '      <user_identifier segment_type="External">\n        <id_type>UNIV_ID</id_type>\n        <value>U1</value>\n        <note>n</note>\n      </user_identifier>\n' +
      '    </user_identifiers>\n',
  );
  assert.ok(userXml(user({ user_identifiers: ids })).includes(block));
});

test('usersDocument: declaration, optional provenance, <users> around each user in order', () => {
  assert.equal(XML_DECLARATION, '<?xml version="1.0" encoding="UTF-8"?>\n');
  assert.equal(USERS_OPEN, '<users>\n');
  assert.equal(USERS_CLOSE, '</users>\n');
  assert.equal(usersDocument([]), '<?xml version="1.0" encoding="UTF-8"?>\n<users>\n</users>\n');
  assert.equal(
    usersDocument([user({ primary_id: 'a' }), user({ primary_id: 'b' })]),
    '<?xml version="1.0" encoding="UTF-8"?>\n<users>\n  <user>\n    <primary_id>a</primary_id>\n  </user>\n  <user>\n    <primary_id>b</primary_id>\n  </user>\n</users>\n',
  );
  const provenance = { tool: 'sis2alma', version: '1.2.3', mappingFile: 'm.yaml', mappingSha256: 'abc', runTime: '2026-11-21T02:00:00.000Z' };
  assert.equal(
    usersDocument([user({ primary_id: 'a' })], provenance),
    '<?xml version="1.0" encoding="UTF-8"?>\n<!-- Written by sis2alma 1.2.3 at 2026-11-21T02:00:00.000Z with mapping m.yaml (sha256 abc) -->\n<users>\n  <user>\n    <primary_id>a</primary_id>\n  </user>\n</users>\n',
  );
});

test('provenanceComment: names tool, version, time, mapping and its hash, and the part when there is one', () => {
  const p = { tool: 'sis2alma', version: '1.2.3', mappingFile: 'm.yaml', mappingSha256: 'abc', runTime: 'T' };
  assert.equal(provenanceComment(p), '<!-- Written by sis2alma 1.2.3 at T with mapping m.yaml (sha256 abc) -->\n');
  assert.equal(provenanceComment({ ...p, part: 'file 2' }), '<!-- Written by sis2alma 1.2.3 at T with mapping m.yaml (sha256 abc); file 2 -->\n');
  assert.equal(provenanceComment({ ...p, part: '' }), '<!-- Written by sis2alma 1.2.3 at T with mapping m.yaml (sha256 abc) -->\n');
});

test('provenanceComment: "--" in a name does not end up in the comment', () => {
  const p = { tool: 'sis2alma', version: '1.2.3', mappingFile: 'a--b--c.yaml', mappingSha256: 'abc', runTime: 'T' };
  assert.equal(provenanceComment(p), '<!-- Written by sis2alma 1.2.3 at T with mapping a- -b- -c.yaml (sha256 abc) -->\n');
  assert.doesNotThrow(() => libxml.parseXml(usersDocument([], p)));
});

test('provenanceComment: a comment stays well-formed whatever the mapping file is called (three dashes and more)', () => {
  for (const mappingFile of ['a---b.yaml', 'a----b.yaml', 'end-.yaml-']) {
    const p = { tool: 'sis2alma', version: '1.2.3', mappingFile, mappingSha256: 'abc', runTime: 'T' };
    assert.doesNotMatch(provenanceComment(p).slice(4, -4), /--/, mappingFile);
    assert.doesNotThrow(() => libxml.parseXml(usersDocument([], p)), mappingFile);
  }
});
