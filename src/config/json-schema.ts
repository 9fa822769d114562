// Writes the JSON Schemas editors use to complete and check the four YAML files
// (schemas/mapping.schema.json, mapping-test.schema.json, run-config.schema.json,
// serve-config.schema.json) from the same objects the runtime checks use (mapping/shape.ts,
// mapping/test-shape.ts, config/shape.ts); a test fails when a file
// and its object drift apart. Run after a change to either:
//   node dist/src/config/json-schema.js --write     (or --check: exit 1 when a file is stale)
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MAPPING_JSON_SCHEMA, MAPPING_TEST_JSON_SCHEMA, RUN_CONFIG_JSON_SCHEMA, SERVE_CONFIG_JSON_SCHEMA } from '../shared/paths.js';
import { mappingSchema } from '../mapping/shape.js';
import { mappingTestSchema } from '../mapping/test-shape.js';
import { runConfigSchema, serveConfigSchema } from './shape.js';

export const EDITOR_SCHEMAS: ReadonlyArray<{ file: string; schema: object }> = [
  { file: MAPPING_JSON_SCHEMA, schema: mappingSchema },
  { file: MAPPING_TEST_JSON_SCHEMA, schema: mappingTestSchema },
  { file: RUN_CONFIG_JSON_SCHEMA, schema: runConfigSchema },
  { file: SERVE_CONFIG_JSON_SCHEMA, schema: serveConfigSchema },
];

/** A schema file's text: the object as JSON, two-space indented, ending in a newline. */
export function jsonSchemaText(schema: object): string {
  return JSON.stringify(schema, null, 2) + '\n';
}

/** The schema files that are missing or differ from their objects. */
export function staleJsonSchemas(): string[] {
  return EDITOR_SCHEMAS.filter(({ file, schema }) => {
    try {
      return readFileSync(file, 'utf8') !== jsonSchemaText(schema);
    } catch {
      return true;
    }
  }).map(({ file }) => file);
}

export function writeJsonSchemas(): void {
  for (const { file, schema } of EDITOR_SCHEMAS) {
    const temporary = `${file}.partial`;
    writeFileSync(temporary, jsonSchemaText(schema));
    renameSync(temporary, file);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--write')) {
    writeJsonSchemas();
    for (const { file } of EDITOR_SCHEMAS) process.stdout.write(`wrote ${file}\n`);
  } else {
    const stale = staleJsonSchemas();
    for (const { file } of EDITOR_SCHEMAS) process.stdout.write(stale.includes(file) ? `${file} is stale: run node dist/src/config/json-schema.js --write\n` : `${file} is current\n`);
    process.exitCode = stale.length ? 1 : 0;
  }
}
