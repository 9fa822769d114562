// A folder on a tiny tmpfs, to fill the disk for real (ENOSPC), as a night with a full disk would.
// Mounting needs root: where it is not allowed the test skips with skipForTool, which fails in CI,
// where the tests run as root.
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';
import { makeTempDir } from './tmp.js';
import { skipForTool } from './tools.js';

function smallDisk(kilobytes: number): { dir: string; dispose: () => void } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const dir = makeTempDir('sis2alma-small-disk-');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${kilobytes}k`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return { dir, dispose: () => void spawnSync('umount', [dir]) };
}

/** Runs `body` with a folder on a tmpfs of `kilobytes`, unmounted after; skips (fails in CI) where none can be mounted. */
export async function onSmallDisk(t: TestContext, kilobytes: number, body: (dir: string) => Promise<void>): Promise<void> {
  const disk = smallDisk(kilobytes);
  if (!disk) return skipForTool(t, 'cannot mount a small tmpfs here (needs root)');
  try {
    await body(disk.dir);
  } finally {
    disk.dispose();
  }
}
