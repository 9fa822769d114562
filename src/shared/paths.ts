import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { readFileSync } from 'node:fs';

/** The package's root folder (where package.json, schemas/ and mappings/ are), from src/shared/ or dist/src/shared/. */
export const PACKAGE_ROOT: string = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'sis2alma') return dir;
    } catch {
      /* not here: go up */
    }
    dir = path.dirname(dir);
  }
  throw new Error('sis2alma: cannot find the package root');
})();

export const TOOL_VERSION: string = (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

export const PROJECT_XSD = path.join(PACKAGE_ROOT, 'schemas', 'alma_users.xsd');
export const MAPPING_JSON_SCHEMA = path.join(PACKAGE_ROOT, 'schemas', 'mapping.schema.json');
export const MAPPING_TEST_JSON_SCHEMA = path.join(PACKAGE_ROOT, 'schemas', 'mapping-test.schema.json');
export const RUN_CONFIG_JSON_SCHEMA = path.join(PACKAGE_ROOT, 'schemas', 'run-config.schema.json');
export const SERVE_CONFIG_JSON_SCHEMA = path.join(PACKAGE_ROOT, 'schemas', 'serve-config.schema.json');
