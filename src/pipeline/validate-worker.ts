// A child process that validates batches of users against the XSD, so that libxml2's parse and
// validation (the largest cost of a run) use another core while the main process reads, maps and
// writes. A process, not a worker thread: libxmljs2's native module cannot be loaded by two
// threads of one process ("Module did not self-register").
import { readFileSync } from 'node:fs';
import { AlmaSchema, type XmlProblem } from './validate.js';

export interface BatchRequest {
  id: number;
  /** The file that holds the <users> document, as UTF-8. */
  file: string;
}
export interface BatchResponse {
  id: number;
  problems: XmlProblem[];
  error?: string;
}

// libxml2's documents live outside V8's heap, which V8 does not see growing: without a nudge, the
// process holds hundreds of megabytes of parsed batches before it collects them. Started with
// --expose-gc, it collects after every batch and its memory stays flat (bench/RESULTS.md).
const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});

const schemaPath = process.argv[2]!;
const schema = AlmaSchema.load(schemaPath);
process.on('message', ({ id, file }: BatchRequest) => {
  let response: BatchResponse;
  try {
    const xml = readFileSync(file);
    response = { id, problems: schema.isValid(xml) ? [] : schema.check(xml).problems };
  } catch (error) {
    response = { id, problems: [], error: error instanceof Error ? error.message : String(error) };
  }
  process.send!(response);
  collect();
});
process.on('disconnect', () => process.exit(0));
