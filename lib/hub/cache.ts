/**
 * The cache layout of huggingface_hub (Python), so files either tool downloaded are reused by the other:
 *
 *   <cache>/models--<org>--<name>/
 *     blobs/<etag>                 file contents; etag = the LFS sha256, or the git blob sha1 of small files
 *     blobs/<etag>.incomplete      a download in progress (resumed with an HTTP Range request)
 *     refs/<revision>              the commit hash a branch or tag pointed to when last resolved
 *     snapshots/<commit>/<path>    relative symlink to ../../blobs/<etag> (a copy where links are refused)
 *   <cache>/.locks/models--<org>--<name>/<etag>.lock   (Python's filelock; ours: <etag>.llava-med.lock)
 */
import { constants } from 'node:fs';
import { copyFile, lstat, mkdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { llavaError } from '../errors.js';

export const COMMIT_RE = /^[0-9a-f]{40}$/;

/** `owner/name` (or a legacy one-part name), as the Hub accepts them. */
export function checkRepoId(repo: string): void {
  if (typeof repo !== 'string' || !/^(?:[\w.-]+\/)?[\w.-]+$/.test(repo) || /(^|\/)\.\.?($|\/)|--|\.\./.test(repo)) {
    throw llavaError('ERR_INVALID_ARGUMENT', `${JSON.stringify(repo)} is not a Hugging Face repository id (owner/name).`);
  }
}

/** A file path inside a repository: relative, no `..`, no backslashes. */
export function checkRepoPath(p: string): void {
  if (typeof p !== 'string' || p.length === 0 || p.startsWith('/') || p.includes('\\') || p.split('/').some((s) => s === '..' || s === '.' || s === '')) {
    throw llavaError('ERR_HUB_INTEGRITY', `The Hub listed a file with an unsafe path ${JSON.stringify(p)}; refusing it.`);
  }
}

export function repoFolderName(repo: string): string {
  return `models--${repo.split('/').join('--')}`;
}

export class RepoCache {
  readonly dir: string;
  constructor(
    readonly cacheDir: string,
    readonly repo: string,
  ) {
    checkRepoId(repo);
    this.dir = join(cacheDir, repoFolderName(repo));
  }

  blob(etag: string): string {
    if (!/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(etag)) throw llavaError('ERR_HUB_INTEGRITY', `${this.repo}: the Hub gave an unexpected file hash ${JSON.stringify(etag)}.`);
    return join(this.dir, 'blobs', etag);
  }

  snapshotDir(commit: string): string {
    return join(this.dir, 'snapshots', commit);
  }

  snapshotFile(commit: string, path: string): string {
    checkRepoPath(path);
    return join(this.snapshotDir(commit), ...path.split('/'));
  }

  lockFile(etag: string): string {
    return join(this.cacheDir, '.locks', repoFolderName(this.repo), `${etag}.llava-med.lock`);
  }

  /** The commit a revision points to in the cache (a commit hash points to itself). */
  async readRef(revision: string): Promise<string | undefined> {
    if (COMMIT_RE.test(revision)) return revision;
    try {
      const c = (await readFile(join(this.dir, 'refs', ...revision.split('/')), 'utf8')).trim();
      return COMMIT_RE.test(c) ? c : undefined;
    } catch {
      return undefined;
    }
  }

  async writeRef(revision: string, commit: string): Promise<void> {
    if (COMMIT_RE.test(revision) || revision.split('/').some((s) => s === '..' || s === '')) return;
    const p = join(this.dir, 'refs', ...revision.split('/'));
    await mkdir(dirname(p), { recursive: true });
    const tmp = `${p}.${process.pid}.tmp`;
    await writeFile(tmp, commit);
    await rename(tmp, p);
  }

  /** Points snapshots/<commit>/<path> at the blob: a relative symlink as Python makes, a copy where links fail. */
  async link(commit: string, path: string, etag: string): Promise<string> {
    const dest = this.snapshotFile(commit, path);
    const blob = this.blob(etag);
    await mkdir(dirname(dest), { recursive: true });
    const target = relative(dirname(dest), blob).split(sep).join('/');
    const cur = await lstat(dest).catch(() => undefined);
    if (cur?.isSymbolicLink() && (await readlink(dest)) === target) return dest;
    if (cur) await rm(dest, { force: true });
    const tmp = `${dest}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    try {
      await symlink(target, tmp);
    } catch {
      await copyFile(blob, tmp, constants.COPYFILE_FICLONE);
    }
    await rename(tmp, dest);
    return dest;
  }

  /** Size of the snapshot file if it exists and resolves to a whole blob (a dangling link does not count). */
  async snapshotSize(commit: string, path: string): Promise<number | undefined> {
    try {
      return (await stat(this.snapshotFile(commit, path))).size;
    } catch {
      return undefined;
    }
  }
}
