// What a delivery target is, whichever it is: one interface for the SFTP server and the folder
// (sftp.ts, dir.ts), so that the delivery loop (deliver.ts) treats both alike, and the error a
// failed step throws, which says whether a retry may succeed.
import { RunError } from '../shared/errors.js';

/** A failed delivery step. `transient` says a retry may succeed (the connection, not the request, failed). */
export class DeliveryError extends RunError {
  readonly transient: boolean;
  constructor(code: 'delivery_failed' | 'host_key_rejected', message: string, transient: boolean, file?: string) {
    super(code, message, file ? { file } : {});
    this.transient = transient;
  }
}

export interface RemoteFile {
  name: string;
  size: number;
}

/** One open connection to a target. Names are relative to the target's folder. */
export interface DeliverySession {
  list(): Promise<RemoteFile[]>;
  /** Writes `local` under `name`, replacing any file of that name. */
  write(local: string, name: string, onProgress?: (sent: number) => void): Promise<void>;
  /** The size of `name`, or undefined when it does not exist. */
  size(name: string): Promise<number | undefined>;
  /** Deletes `name` if it exists. */
  remove(name: string): Promise<void>;
  /** Renames, replacing any file under the new name. */
  rename(from: string, to: string): Promise<void>;
  close(): Promise<void>;
  /** Drops the connection at once, with whatever is in flight (a run stopped by a signal). */
  abort?(): void;
}

export interface DeliveryTarget {
  /** For reports and messages; never holds a credential. */
  readonly label: string;
  remotePath(name: string): string;
  /** With dryRun, changes nothing on the target (not even a missing folder with create_dir). */
  open(options?: { dryRun?: boolean }): Promise<DeliverySession>;
}

export function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]!.replace(/^(_?[a-zA-Z]+(->)?: )+/, '');
}

export function formatSeconds(ms: number): string {
  // Stryker disable next-line EqualityOperator: at 1000 ms both precisions print "1 s"
  return `${Number((ms / 1000).toFixed(ms < 1000 ? 2 : 1))} s`;
}
