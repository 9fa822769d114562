// A child process that validates batches of users against the XSD, so that libxml2's parse and
// validation (the largest cost of a run) use another core while the main process reads, maps and
// writes. A process, not a worker thread: libxmljs2's native module cannot be loaded by two
// threads of one process ("Module did not self-register").
import { AlmaSchema, type XmlProblem } from './validate.js';

export interface BatchRequest {
  id: number;
  /** The document as text, or as UTF-8 bytes (how the pipeline sends it). */
  xml: string | Uint8Array;
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
process.on('message', ({ id, xml: sent }: BatchRequest) => {
  let response: BatchResponse;
  const xml = typeof sent === 'string' || Buffer.isBuffer(sent) ? sent : Buffer.from(sent.buffer, sent.byteOffset, sent.byteLength);
  try {
    response = { id, problems: schema.isValid(xml) ? [] : schema.check(xml).problems };
  } catch (error) {
    response = { id, problems: [], error: error instanceof Error ? error.message : String(error) };
  }
  process.send!(response);
  collect();
});
process.on('disconnect', () => process.exit(0));
