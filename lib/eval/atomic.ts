/**
 * Whole-file writes that never leave a partial file behind: write a temp file next to the
 * target, fsync it, rename over the target. On any error the temp file is removed.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { sweepStaleTemps, tempPathFor } from '../formats/temp-files.js';

/**
 * Writes `data` to `target` through a fsynced temp file renamed over it: readers see the old file or the
 * new one, never a partial one. Rejects with the file system's error (the temp file removed).
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  await sweepStaleTemps(dirname(target));
  const tmp = tempPathFor(target);
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}
