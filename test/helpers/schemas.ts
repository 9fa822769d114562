// The two schemas every XML file the tool writes must pass: the project's own and Ex Libris'
// published rest_users.xsd (read from ../shared beside the repository, never copied into it).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AlmaSchema } from '../../src/pipeline/validate.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const EXLIBRIS_XSD = path.resolve(REPO_ROOT, '../shared/reference/alma/rest_users.xsd');

let cached: { project: AlmaSchema; exlibris: AlmaSchema } | undefined;

export function schemas(): { project: AlmaSchema; exlibris: AlmaSchema } {
  cached ??= { project: AlmaSchema.load(), exlibris: AlmaSchema.load(EXLIBRIS_XSD) };
  return cached;
}

/** Problems of one XML text against both schemas, as readable lines ([] when it passes both). */
export function problemsAgainstBoth(xml: string): string[] {
  const { project, exlibris } = schemas();
  return [
    ...project.validate(xml).map((p) => `project xsd line ${p.line}: ${p.message}`),
    ...exlibris.validate(xml).map((p) => `Ex Libris xsd line ${p.line}: ${p.message}`),
  ];
}
