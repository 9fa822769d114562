// What convert tells a wing above it about the users it writes, without knowing that wing: the
// run state (src/state/) compares each night's users with the last delivered night through this.
// Convert calls it; the pipeline never imports the code behind it.
import { hash } from 'node:crypto';
import type { Counts, GuardTrip } from './report.js';

/**
 * A user's fingerprint: the SHA-1 of its XML as delivered, base64url (27 characters). The XML
 * holds the primary id, so that two people never share one. crypto.hash, one call and no Hash
 * object: 1.6 µs a user of 2.4 KB against 2.6 µs for createHash().update().digest()
 * (bench/RESULTS.md, seventh session).
 */
export function fingerprintOf(xml: Uint8Array): string {
  return hash('sha1', xml, 'base64url');
}

/** The length of a fingerprint's text. */
export const FINGERPRINT_CHARS = 27;

/**
 * Told of every final user, in the order they go into the zip: after the merge of multi-role
 * people, Alma's rules across users and the XSD check, as the XML that is delivered.
 */
export interface UserSink {
  /** Before the first row is read: the run's source (the output files' name) and mapping. It may refuse the run (throw RunError). */
  begin(run: { source: string; mappingFile: string; mappingSha256: string }): void;
  /**
   * One user as it goes into the zip. `xml` is the user's element as written (the bytes are
   * reused after the call: copy what is kept); `rows` the labels of the rows it was made from
   * (more than one for a merged person); `groupRule` the name of the mapping's user group rule
   * that chose its group ("default" for the mapping's default); `merge`, for a merged person, why
   * the winning row won. It answers false to leave the user out of the zip (a delta night sends
   * only the users that changed); the user is still counted and its row reported. `fingerprint`
   * is fingerprintOf(xml), when the sink asked for fingerprints and the mapping thread that wrote
   * the user computed it.
   */
  written(xml: Uint8Array, rows: readonly string[], groupRule: string, merge?: string, fingerprint?: string): boolean;
  /**
   * Whether the mapping threads should compute each user's fingerprint as they write it: that
   * work is then spread over the threads, off the thread that calls written().
   */
  readonly fingerprints?: boolean;
  /** After the last user, before the guards are checked: what goes into the report, and the guards that trip. */
  finish(counts: Counts): SinkVerdict;
}

export interface SinkVerdict {
  /** Added to report.json under this key. */
  key: string;
  report: Record<string, unknown>;
  /** Guards the sink trips; the first becomes the report's `guard`. Empty when none trips. */
  trips: GuardTrip[];
  /** A sentence added to the report's summary. */
  summary: string;
}
