/**
 * Temporary output files that never outlive their writer for long.
 *
 * Every output (GGUF from convert and quantize, checkpoint shards, eval files) is written under a
 * hidden temporary name next to the target and renamed into place when complete; every exit path
 * that can run code removes it. A process killed with SIGKILL (or a power cut) runs no code, so the
 * name carries the owner's pid: `.<target name>.llava-med-<pid>-<12 hex>.tmp`. Before writing into a
 * folder, `sweepStaleTemps` removes the temporaries of that folder whose owner is no longer alive.
 * It is conservative: only names of exactly this pattern, only regular files for `.tmp` and real
 * folders for `.partial` (never symlinks, never followed), only when `kill(pid, 0)` says the pid does not exist (a live process with a reused pid
 * keeps its file until it is gone too).
 */
import { randomBytes } from 'node:crypto';
import { lstat, readdir, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const PATTERN = /^\..+\.llava-med-(\d{1,10})-[0-9a-f]{12}\.(tmp|partial)$/;

/**
 * A fresh temporary name next to `target`, owned by `pid` (default: this process). `.tmp` names are
 * files; `.partial` names are folders being filled (foldDelta's output).
 */
export function tempPathFor(target: string, pid: number = process.pid, kind: 'tmp' | 'partial' = 'tmp'): string {
  return join(dirname(target), `.${basename(target)}.llava-med-${pid}-${randomBytes(6).toString('hex')}.${kind}`);
}

/** The owner pid of a temporary name made by tempPathFor, or undefined for any other name. */
export function tempOwner(name: string): number | undefined {
  const m = PATTERN.exec(basename(name));
  return m ? Number(m[1]) : undefined;
}

/** Whether a process with this pid exists (EPERM: it exists but belongs to another user). */
export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove the temporaries in `dir` left by llava-med processes that died. Never throws: a folder that
 * cannot be listed, or a file that vanished meanwhile, is simply skipped. Returns the removed paths.
 */
export async function sweepStaleTemps(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = tempOwner(name);
    if (pid === undefined || pidAlive(pid)) continue;
    const p = join(dir, name);
    try {
      const st = await lstat(p); // never follows a symlink
      if (name.endsWith('.tmp') && st.isFile()) await unlink(p);
      else if (name.endsWith('.partial') && st.isDirectory()) await rm(p, { recursive: true, force: true });
      else continue;
      removed.push(p);
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
}
