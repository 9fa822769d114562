// A folder on a tiny tmpfs, to fill the disk for real (ENOSPC), as a night with a full disk would.
// Mounting needs root: undefined where it is not allowed (a test then skips with skipForTool,
// which fails in CI, where the tests run as root).
import { spawnSync } from 'node:child_process';
import { makeTempDir } from './tmp.js';

export function smallDisk(kilobytes: number): { dir: string; dispose: () => void } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const dir = makeTempDir('sis2alma-small-disk-');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${kilobytes}k`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return { dir, dispose: () => void spawnSync('umount', [dir]) };
}
