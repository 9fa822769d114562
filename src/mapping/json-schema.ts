// Writes schemas/mapping.schema.json, the JSON Schema editors use to complete and check mapping
// files, from shape.ts, the same object the runtime check uses; a test fails when the file and
// shape.ts drift apart. Run after a change to shape.ts:
//   node dist/src/mapping/json-schema.js --write     (or --check: exit 1 when the file is stale)
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MAPPING_JSON_SCHEMA } from '../shared/paths.js';
import { mappingSchema } from './shape.js';

/** The schema file's text: shape.ts as JSON, two-space indented, ending in a newline. */
export function mappingJsonSchemaText(): string {
  return JSON.stringify(mappingSchema, null, 2) + '\n';
}

export function isMappingJsonSchemaCurrent(file = MAPPING_JSON_SCHEMA): boolean {
  try {
    return readFileSync(file, 'utf8') === mappingJsonSchemaText();
  } catch {
    return false;
  }
}

export function writeMappingJsonSchema(file = MAPPING_JSON_SCHEMA): void {
  const temporary = `${file}.partial`;
  writeFileSync(temporary, mappingJsonSchemaText());
  renameSync(temporary, file);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--write')) {
    writeMappingJsonSchema();
    process.stdout.write(`wrote ${MAPPING_JSON_SCHEMA}\n`);
  } else if (process.argv.includes('--check')) {
    const current = isMappingJsonSchemaCurrent();
    process.stdout.write(current ? `${MAPPING_JSON_SCHEMA} is current\n` : `${MAPPING_JSON_SCHEMA} is stale: run node dist/src/mapping/json-schema.js --write\n`);
    process.exitCode = current ? 0 : 1;
  } else {
    process.stdout.write(mappingJsonSchemaText());
  }
}
