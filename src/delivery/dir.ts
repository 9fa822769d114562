// The `dir` target: a local or mounted folder. A copy is flushed to disk before the delivery loop
// renames it into view.
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import type { DirDeliveryConfig } from '../config/run-config.js';
import { DeliveryError, firstLine, type DeliverySession, type DeliveryTarget, type RemoteFile } from './target.js';

export class DirTarget implements DeliveryTarget {
  readonly label: string;
  constructor(private readonly config: DirDeliveryConfig) {
    this.label = `dir ${config.dir}`;
  }
  remotePath(name: string): string {
    return path.join(this.config.dir, name);
  }
  async open(options: { dryRun?: boolean } = {}): Promise<DeliverySession> {
    const dir = this.config.dir;
    const fail = (error: unknown, action: string, file: string): never => {
      throw classifyLocalError(error, action, file);
    };
    if (this.config.createDir) {
      if (options.dryRun && !existsSync(dir)) return { list: async () => [], write: async () => {}, size: async () => undefined, remove: async () => {}, rename: async () => {}, close: async () => {} };
      // EEXIST: something that is not a folder holds the name; the check below says so.
      await fsp.mkdir(dir, { recursive: true }).catch((e) => ((e as NodeJS.ErrnoException).code === 'EEXIST' ? undefined : fail(e, 'create folder', dir)));
    }
    const st = await fsp.stat(dir).catch((e) => fail(e, 'open folder', dir));
    if (!st.isDirectory()) throw new DeliveryError('delivery_failed', `delivery folder ${dir} is not a folder`, false);
    return {
      list: async () => {
        const entries = await fsp.readdir(dir, { withFileTypes: true }).catch((e) => fail(e, 'list', dir));
        const out: RemoteFile[] = [];
        for (const e of entries) if (e.isFile()) out.push({ name: e.name, size: (await fsp.stat(path.join(dir, e.name))).size });
        return out;
      },
      write: async (local, name, onProgress) => {
        const dest = path.join(dir, name);
        try {
          await fsp.copyFile(local, dest);
          // A mounted share may keep data in cache; flush before the rename makes it visible.
          const handle = await fsp.open(dest, 'r+');
          try {
            await handle.sync();
          } finally {
            await handle.close();
          }
          onProgress?.((await fsp.stat(dest)).size);
        } catch (error) {
          // Leave no partial copy behind on a full disk; Alma would ignore it, but it holds space.
          await fsp.rm(dest, { force: true }).catch(() => {});
          fail(error, 'write', dest);
        }
      },
      size: async (name) => (await fsp.stat(path.join(dir, name)).catch(() => undefined))?.size,
      remove: async (name) => {
        await fsp.rm(path.join(dir, name), { force: true }).catch((e) => fail(e, 'remove', path.join(dir, name)));
      },
      rename: async (from, to) => {
        await fsp.rename(path.join(dir, from), path.join(dir, to)).catch((e) => fail(e, 'rename', path.join(dir, from)));
      },
      close: async () => {},
    };
  }
}

function classifyLocalError(error: unknown, action: string, file: string): DeliveryError {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return new DeliveryError('delivery_failed', action === 'open folder' || action === 'list' ? `delivery folder ${file} does not exist` : `cannot ${action} ${file}: it does not exist`, false);
    case 'EACCES':
    case 'EPERM':
      return new DeliveryError('delivery_failed', `permission denied: cannot ${action} ${file}`, false);
    case 'ENOSPC':
    case 'EDQUOT':
      return new DeliveryError('delivery_failed', `no space left: cannot ${action} ${file} (disk full or quota reached)`, false);
    case 'EROFS':
      return new DeliveryError('delivery_failed', `cannot ${action} ${file}: the file system is read-only`, false);
    default:
      // A mounted share that went away for a moment may come back.
      return new DeliveryError('delivery_failed', `cannot ${action} ${file}: ${firstLine(error)}`, code === 'EIO' || code === 'ESTALE' || code === 'ETIMEDOUT');
  }
}
