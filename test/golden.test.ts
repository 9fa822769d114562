// Golden files: each folder in test/golden holds a case (case.json: mapping, inputs, extra
// arguments), and expected.xml, what the XML files in the zip must be, byte for byte, after the
// provenance comment (which names the tool version) is normalised. The run time is fixed with
// --now. Set UPDATE_GOLDEN=1 to rewrite expected files after a reviewed change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { readZip } from './helpers/zip.js';
import { REPO_ROOT, problemsAgainstBoth } from './helpers/schemas.js';
import { makeTempDir } from './helpers/tmp.js';

const GOLDEN = path.join(REPO_ROOT, 'test', 'golden');
const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli.js');
const NOW = '2026-11-21T02:00:00';
const PROVENANCE = /<!-- Written by sis2alma (\S+) at (\S+) with mapping (\S+) \(sha256 ([0-9a-f]{64})\); file (\d+) -->/;

interface Case {
  about: string;
  mapping: string;
  inputs: string[];
  args?: string[];
}

for (const name of readdirSync(GOLDEN)) {
  const dir = path.join(GOLDEN, name);
  if (!existsSync(path.join(dir, 'case.json'))) continue;
  const spec = JSON.parse(readFileSync(path.join(dir, 'case.json'), 'utf8')) as Case;

  test(`golden ${name}: ${spec.about}`, async () => {
    const out = makeTempDir(`sis2alma-golden-${name}-`);
    const mapping = path.resolve(dir, spec.mapping);
    execFileSync('node', [CLI, 'convert', '--mapping', mapping, ...spec.inputs.flatMap((i) => ['--input', path.resolve(dir, i)]), '--out', out, '--now', NOW, '--quiet', ...(spec.args ?? [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const zips = readdirSync(out).filter((f) => f.endsWith('.zip'));
    assert.equal(zips.length, 1, `one zip in ${readdirSync(out).join(', ')}`);
    const entries = await readZip(path.join(out, zips[0]!));
    let combined = '';
    for (const entry of entries) {
      const m = PROVENANCE.exec(entry.text);
      assert.ok(m, `${entry.name} opens with the provenance comment`);
      assert.equal(m[2], new Date(NOW).toISOString(), 'the run time');
      assert.equal(m[3], path.basename(mapping), 'the mapping file');
      assert.equal(m[4], createHash('sha256').update(readFileSync(mapping)).digest('hex'), "the mapping's SHA-256");
      assert.deepEqual(problemsAgainstBoth(entry.text), [], `${entry.name} validates against both schemas`);
      combined += `<!-- entry ${entry.name} -->\n` + entry.text.replace(PROVENANCE, '<!-- provenance -->');
    }
    const report = JSON.parse(readFileSync(path.join(out, zips[0]!.replace(/\.zip$/, '.report.json')), 'utf8'));
    const { rows, users, merged, rejected, skipped } = report.counts;
    assert.equal(rows, users + merged + rejected + skipped, 'every row is accounted for');
    combined += `<!-- details ${JSON.stringify(report.details ?? {}, Object.keys(report.details ?? {}).sort((a, b) => Number(a) - Number(b)))} -->\n`;

    const expectedFile = path.join(dir, 'expected.xml');
    if (process.env.UPDATE_GOLDEN) writeFileSync(expectedFile, combined);
    assert.equal(combined, readFileSync(expectedFile, 'utf8'));
  });
}
