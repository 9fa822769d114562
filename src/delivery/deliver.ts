// Delivery: puts zips where Alma's Users SYNCHRONIZE job picks them up, on its own schedule.
// Alma loads any zip it finds in that folder, so three rules hold here:
//  - a zip appears under its final name only when it is whole (upload as `.part`, check the size
//    on the server, then rename);
//  - zips of an earlier run that Alma has not processed yet are found before uploading, so Alma never
//    loads two generations out of order (policy `stale`: report, rename to `.stale`, or stop);
//  - the server is who the config says it is (host key pinned; nothing ever trusts any key).
// Two targets sit behind one interface: `sftp` (ssh2-sftp-client) and `dir` (a local or mounted folder).
// This file is the delivery loop (stale zips, `.part` and rename, retries with backoff); the
// targets are sftp.ts and dir.ts behind target.ts's interface.
import { statSync } from 'node:fs';
import path from 'node:path';
import { RunError } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/log.js';
import { onStop, stopping } from '../shared/on-stop.js';
import type { Progress } from '../shared/progress.js';
import type { DeliveryConfig } from '../config/run-config.js';
import { DeliveryError, firstLine, formatSeconds, type DeliverySession, type DeliveryTarget } from './target.js';
import { DirTarget } from './dir.js';
import { SftpTarget } from './sftp.js';

/** Suffix of a zip still being uploaded: Alma loads `.zip` files only, so it never takes a partial one. */
export const PART_SUFFIX = '.part';
/** The log event of the warning that lists the zips Alma has not processed yet (serve leaves it out: the list grows). */
export const STALE_ZIPS_EVENT = 'stale_zips';
/** Suffix given to a zip of an earlier run that Alma has not processed, with `stale: rename`. */
export const STALE_SUFFIX = '.stale';

export interface DeliveredFile {
  /** The local zip. */
  file: string;
  /** Where it went, without credentials: `sftp://user@host:port` or `dir`. */
  target: string;
  remote_path: string;
}

export interface DeliveryResult {
  delivered: DeliveredFile[];
  /** Zips found waiting in the remote folder before this delivery (names only). */
  stale: string[];
  /** Those of them renamed to `.stale`. */
  renamed: string[];
}

export interface DeliverOptions {
  log?: Logger;
  /** Check the connection and the remote folder, report stale zips, upload nothing. */
  dryRun?: boolean;
  /** Bytes of `file` sent so far in the current attempt. */
  onProgress?: (file: string, sent: number, total: number) => void;
  /** Told of each zip's upload as a stage of bytes (a retry starts the count again). */
  progress?: Progress;
  /** How to wait between attempts (tests may shorten it; the config's delays are used as given). */
  sleep?: (ms: number) => Promise<void>;
}

export function createTarget(config: DeliveryConfig): DeliveryTarget {
  return config.target === 'dir' ? new DirTarget(config) : new SftpTarget(config);
}

/**
 * Delivers zips in the order given, each atomically, retrying with backoff when the connection
 * fails. Before the first upload it looks for zips Alma has not processed yet and applies the
 * `stale` policy. Throws DeliveryError (a RunError) when a zip cannot be delivered.
 */
export async function deliverZips(config: DeliveryConfig, zips: string[], options: DeliverOptions = {}): Promise<DeliveryResult> {
  return deliverTo(createTarget(config), config, zips, options);
}

export async function deliverTo(target: DeliveryTarget, config: DeliveryConfig, zips: string[], options: DeliverOptions = {}): Promise<DeliveryResult> {
  const log = options.log ?? silentLogger;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const result: DeliveryResult = { delivered: [], stale: [], renamed: [] };
  const sizes = new Map<string, number>();
  for (const zip of zips) {
    const st = statSync(zip, { throwIfNoEntry: false });
    if (!st || !st.isFile()) throw new RunError('input_unreadable', `zip ${zip} does not exist`, { file: zip });
    sizes.set(zip, st.size);
  }

  let session: DeliverySession | undefined;
  let staleChecked = false;
  const closeSession = async () => {
    const s = session;
    session = undefined;
    if (s) await s.close().catch(() => {});
  };
  // Each step below is safe to repeat after a lost connection: a retry lists nothing twice, and
  // an upload restarts its `.part` file from the beginning.
  // Set by a signal (src/shared/on-stop.ts): no step starts after it, no retry, no rename. A
  // signal that came before this upload registered its undo step (convert was ending) is seen
  // through stopping(): the undo steps have already run, and no new one would.
  let stopped = false;
  const halted = () => stopped || stopping() !== undefined;
  const withRetries = async (what: string, step: (s: DeliverySession) => Promise<void>) => {
    for (let attempt = 0; ; attempt++) {
      // Equivalent: without this check the check below throws right after the open, which changes
      // nothing; after a signal only stop()'s own line is written, so these words reach no one.
      // Stryker disable next-line ConditionalExpression,StringLiteral: see above
      if (halted()) throw new Error('stopped by a signal');
      try {
        session ??= await target.open({ dryRun: options.dryRun ?? false });
        // Stryker disable next-line StringLiteral: after a signal only stop()'s own line is written
        if (halted()) throw new Error('stopped by a signal');
        await step(session);
        return;
      } catch (error) {
        await closeSession();
        const failure = error instanceof RunError ? error : new DeliveryError('delivery_failed', `${what} at ${target.label} failed: ${firstLine(error)}`, false);
        const transient = failure instanceof DeliveryError && failure.transient;
        if (!transient || attempt >= config.retries) {
          // Stryker disable next-line BooleanLiteral: the error leaves withRetries, and nothing else reads `transient`
          if (transient && config.retries > 0) throw new DeliveryError(failure.code as 'delivery_failed', `${failure.message} (gave up after ${config.retries + 1} attempts)`, false);
          throw failure;
        }
        const delay = config.retryDelayMs * 2 ** attempt;
        log.warn(`${failure.message}; retry ${attempt + 1} of ${config.retries} in ${formatSeconds(delay)}`);
        await sleep(delay);
      }
    }
  };

  try {
    await withRetries('listing the remote folder', async (s) => {
      if (staleChecked) return;
      await handleStale(s, target, config, result, log, options.dryRun ?? false);
      staleChecked = true;
    });
    if (options.dryRun) return result;

    for (const zip of zips) {
      const name = path.basename(zip);
      const part = name + PART_SUFFIX;
      const total = sizes.get(zip)!;
      // Stopped mid-upload: the upload's connection is dropped, so it writes no more, and a new
      // one removes the `.part`, which would otherwise hold the server's space until a later run.
      const forgetPart = onStop(async () => {
        stopped = true;
        session?.abort?.();
        session = undefined;
        try {
          const s = await target.open();
          try {
            // A signal during the rename: the .part is already the zip, and nothing is left behind.
            await s.remove(part).catch(async (error: unknown) => {
              if ((await s.size(part).catch(() => 0)) !== undefined) throw error;
            });
          } finally {
            await s.close();
          }
        } catch (error) {
          throw new Error(`${target.label}:${target.remotePath(part)} (${firstLine(error)})`);
        }
      });
      const stage = options.progress?.stage(`upload ${name}`, 'bytes', total);
      const onSent = options.onProgress || stage ? (sent: number) => (options.onProgress?.(zip, sent, total), stage?.update(sent)) : undefined;
      try {
        await withRetries(`uploading ${name}`, async (s) => {
          await s.write(zip, part, onSent);
          // The last line of defence against a partial file under the final name: whatever the
          // transfer reported, the server must hold every byte before the rename.
          const seen = await s.size(part);
          if (seen === undefined) throw new DeliveryError('delivery_failed', `${target.remotePath(part)} was gone from ${target.label} right after the upload`, true);
          if (seen !== total) {
            await s.remove(part).catch(() => {});
            throw new DeliveryError('delivery_failed', `${target.label} kept only ${seen} of ${total} bytes of ${target.remotePath(part)} (the disk there may be full or a quota reached)`, false);
          }
          // Stryker disable next-line StringLiteral: after a signal only stop()'s own line is written
          if (halted()) throw new Error('stopped by a signal');
          await s.rename(part, name).catch(async (error: unknown) => {
            // The final name is taken by something that cannot be replaced (a folder): the
            // `.part` would only hold the server's space. A lost connection cannot remove it; the
            // retry starts the upload again anyway.
            await s.remove(part).catch(() => {});
            throw error;
          });
        });
      } finally {
        forgetPart();
      }
      stage?.end(total);
      result.delivered.push({ file: zip, target: target.label, remote_path: target.remotePath(name) });
      log.info(`delivered ${name} to ${target.label} as ${target.remotePath(name)}`);
    }
    return result;
  } finally {
    await closeSession();
  }
}

async function handleStale(s: DeliverySession, target: DeliveryTarget, config: DeliveryConfig, result: DeliveryResult, log: Logger, dryRun: boolean): Promise<void> {
  const files = await s.list();
  // Alma renames what it has processed, so any `.zip` still here is waiting for its next job run.
  const waiting = files.filter((f) => f.name.toLowerCase().endsWith('.zip')).map((f) => f.name).sort();
  result.stale = waiting;
  const leftovers = files.filter((f) => f.name.toLowerCase().endsWith('.zip' + PART_SUFFIX)).map((f) => f.name).sort();
  if (leftovers.length > 0) log.warn(`${target.label}:${target.remotePath('')} holds partial uploads of earlier runs, which Alma ignores: ${leftovers.join(', ')}`);
  if (waiting.length === 0) return;
  const list = waiting.join(', ');
  const where = `${target.label}:${target.remotePath('')}`;
  if (config.stale === 'stop') {
    throw new DeliveryError('delivery_failed', `${where} still holds ${waiting.length} zip(s) Alma has not processed: ${list}; stopped so Alma does not load two generations (stale: stop)`, false);
  }
  if (config.stale === 'report' || dryRun) {
    log.warn(`${where} still holds ${waiting.length} zip(s) Alma has not processed: ${list}${dryRun && config.stale === 'rename' ? ' (would rename them to .stale)' : ' (left in place: stale: report)'}`, { event: STALE_ZIPS_EVENT });
    return;
  }
  const taken = new Set(files.map((f) => f.name));
  for (const name of waiting) {
    const aside = freeName(name, taken);
    await s.rename(name, aside);
    taken.add(aside);
    result.renamed.push(name);
    log.warn(`renamed ${target.remotePath(name)} on ${target.label} to ${aside}: Alma had not processed it`);
  }
}

/**
 * The name a waiting zip is moved aside to: `X.zip.stale`, or `X.zip.2.stale`, `X.zip.3.stale`...
 * when an earlier run moved a zip of the same name aside already (a rename would replace it).
 */
function freeName(name: string, taken: Set<string>): string {
  if (!taken.has(name + STALE_SUFFIX)) return name + STALE_SUFFIX;
  for (let n = 2; ; n++) if (!taken.has(`${name}.${n}${STALE_SUFFIX}`)) return `${name}.${n}${STALE_SUFFIX}`;
}
