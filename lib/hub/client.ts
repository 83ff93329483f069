/**
 * A Hugging Face Hub download client: resolve a revision to a commit and its file list, then
 * download files into the huggingface_hub (Python) cache with resume, verification and locks.
 *
 * Why not @huggingface/hub: its downloadFileToCacheDir (2.17) restarts `.incomplete` files from
 * zero instead of resuming them, checks no hash, has no retries, takes no lock, writes a
 * console.debug line to stdout per file (a library must not), and files snapshots under the
 * last commit that touched each file rather than the revision's commit, so its cache and
 * Python's disagree. The two Hub endpoints used here are plain HTTP on Node's fetch.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, statfs, lstat, readlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import lockfile from 'proper-lockfile';
import { LlavaMedError, llavaError, throwIfAborted } from '../errors.js';
import { COMMIT_RE, RepoCache, checkRepoId, checkRepoPath } from './cache.js';
import { hubSettings, type HubSettings } from './env.js';
import { DEFAULT_RETRY, hubFetch, Retryable, withRetries, type HttpContext, type RetryEvent, type RetryPolicy } from './http.js';

/** How the Hub is reached: settings default to the `HF_*` environment variables (see {@link hubSettings}). */
export interface HubOptions extends Partial<HubSettings> {
  /** Files downloaded at once (default 4). */
  concurrency?: number;
  /** Retry policy for 429 / 5xx / dropped connections; each field has a default. */
  retry?: Partial<RetryPolicy>;
  /** A body that sends nothing for this long is dropped and resumed (default 60 s). */
  stallTimeoutMs?: number;
  /** Aborts: the call rejects with `ERR_ABORTED`. */
  signal?: AbortSignal;
  /** Called before each retry. */
  onRetry?: (e: RetryEvent) => void;
  /** For tests: the fetch to use (default: Node's). */
  fetch?: typeof fetch;
  /** Environment to read HF_* settings from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** A file of a repository snapshot. */
export interface RepoFile {
  /** Path inside the repository (`/`-separated). */
  path: string;
  /** Size in bytes. */
  size: number;
  /** The cache blob name: the LFS sha256, or the git blob sha1 of a small (non-LFS) file. */
  etag: string;
  /** Set for LFS files: the content's sha256. */
  sha256?: string;
}

/** A repository resolved at one commit, with its file list. */
export interface RepoSnapshot {
  /** Repository id (`owner/name`). */
  repo: string;
  /** What was asked for: a branch, tag or commit. */
  revision: string;
  /** The commit it resolved to. */
  commit: string;
  /** Its files. */
  files: RepoFile[];
  /** True when it was read from the cache without the network (HF_HUB_OFFLINE). */
  offline: boolean;
}

/** Progress of {@link downloadFiles}. */
export interface DownloadProgress {
  /** Always 'download'. */
  phase: 'download';
  /** The repository id. */
  repo: string;
  /** The file that just moved (empty at the start). */
  file: string;
  /** Bytes downloaded or found in the cache so far. */
  bytesDone: number;
  /** Bytes of all requested files. */
  bytesTotal: number;
  /** Files finished. */
  filesDone: number;
  /** Files requested. */
  filesTotal: number;
}

/** What {@link downloadFiles} did. */
export interface DownloadResult {
  /** snapshots/<commit>: a folder with the requested files (links into blobs/). */
  dir: string;
  /** Bytes fetched over the network this time. */
  bytesFetched: number;
  /** Files that were already in the cache. */
  reused: number;
}

interface Resolved {
  settings: HubSettings;
  http: HttpContext;
  concurrency: number;
  stallTimeoutMs: number;
}

const USER_AGENT = 'llava-med (node; +huggingface_hub-compatible cache)';

function resolveOptions(o: HubOptions = {}): Resolved {
  const s = { ...hubSettings(o.env), ...Object.fromEntries(Object.entries(o).filter(([k, v]) => v !== undefined && ['endpoint', 'token', 'cacheDir', 'offline'].includes(k))) } as HubSettings;
  s.endpoint = s.endpoint.replace(/\/+$/, '');
  let origin: string;
  try {
    origin = new URL(s.endpoint).origin;
  } catch {
    throw llavaError('ERR_INVALID_ARGUMENT', `HF_ENDPOINT ${JSON.stringify(s.endpoint)} is not a URL.`);
  }
  return {
    settings: s,
    http: { fetch: o.fetch ?? fetch, origin, token: s.token, retry: { ...DEFAULT_RETRY, ...o.retry }, signal: o.signal, onRetry: o.onRetry, userAgent: USER_AGENT },
    concurrency: Math.max(1, o.concurrency ?? 4),
    stallTimeoutMs: o.stallTimeoutMs ?? 60_000,
  };
}

function repoUrl(endpoint: string, repo: string): string {
  return `${endpoint}/${repo}`;
}

/** The one line a person needs when the Hub says no. */
async function hubRefusal(res: Response, r: Resolved, repo: string, what: string): Promise<never> {
  const code = res.headers.get('x-error-code') ?? '';
  const body = await res.text().catch(() => '');
  const page = repoUrl(r.settings.endpoint, repo);
  const gated = code === 'GatedRepo' || /gated|restricted|accept/i.test(body);
  if (res.status === 401 || res.status === 403) {
    if (code === 'RepoNotFound') throw llavaError('ERR_HUB_NOT_FOUND', `${repo} was not found on ${r.settings.endpoint} (or it is private: set HF_TOKEN).`);
    if (gated) {
      throw llavaError(
        'ERR_HUB_AUTH',
        r.settings.token
          ? `${repo} is gated and your token has no access yet: accept its licence at ${page} (logged in as the token's owner), then run the command again.`
          : `${repo} is gated: accept its licence at ${page}, then set HF_TOKEN to a read token from ${r.settings.endpoint}/settings/tokens (or run \`huggingface-cli login\`).`,
      );
    }
    throw llavaError(
      'ERR_HUB_AUTH',
      r.settings.token
        ? `${r.settings.endpoint} refused the token for ${what} (HTTP ${res.status}): check HF_TOKEN or the token file.`
        : `${what} needs a login (HTTP ${res.status}): set HF_TOKEN to a read token from ${r.settings.endpoint}/settings/tokens.`,
    );
  }
  if (res.status === 404) {
    if (code === 'RevisionNotFound') throw llavaError('ERR_HUB_NOT_FOUND', `${what}: no such branch, tag or commit in ${repo}.`);
    if (code === 'EntryNotFound') throw llavaError('ERR_HUB_NOT_FOUND', `${what}: no such file in ${repo}.`);
    throw llavaError('ERR_HUB_NOT_FOUND', `${what}: not found on ${r.settings.endpoint} (check the repository name; a private repository needs HF_TOKEN).`);
  }
  throw llavaError('ERR_HUB_NETWORK', `${what}: unexpected HTTP ${res.status} from ${r.settings.endpoint}.`);
}

interface ApiSibling {
  rfilename: string;
  size?: number;
  blobId?: string;
  lfs?: { sha256?: string; oid?: string; size?: number };
}

function parseInfo(repo: string, body: unknown): { commit: string; files: RepoFile[] } {
  const b = body as { sha?: unknown; siblings?: unknown };
  if (typeof b?.sha !== 'string' || !COMMIT_RE.test(b.sha) || !Array.isArray(b.siblings)) {
    throw llavaError('ERR_HUB_NETWORK', `${repo}: the Hub's model info has no commit or file list (is HF_ENDPOINT a Hugging Face Hub?).`);
  }
  const files = (b.siblings as ApiSibling[]).map((s): RepoFile => {
    checkRepoPath(s.rfilename);
    const sha256 = s.lfs?.sha256 ?? s.lfs?.oid;
    const size = s.lfs?.size ?? s.size;
    const etag = sha256 ?? s.blobId;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || typeof etag !== 'string') {
      throw llavaError('ERR_HUB_NETWORK', `${repo}: the Hub listed ${s.rfilename} without a size or hash (request model info with blobs=true).`);
    }
    return { path: s.rfilename, size, etag: etag.toLowerCase(), ...(sha256 ? { sha256: sha256.toLowerCase() } : {}) };
  });
  return { commit: b.sha, files };
}

/** Lists a snapshot folder already in the cache (offline mode). */
async function snapshotFromCache(cache: RepoCache, repo: string, revision: string): Promise<RepoSnapshot | undefined> {
  const commit = await cache.readRef(revision);
  if (!commit) return undefined;
  const root = cache.snapshotDir(commit);
  const files: RepoFile[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(p, rel);
      else if (!e.name.endsWith('.tmp')) {
        const st = await stat(p).catch(() => undefined);
        if (!st) continue; // dangling link: the blob was deleted
        const target = (await lstat(p)).isSymbolicLink() ? basename(await readlink(p)) : '';
        const etag = /^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(target) ? target : '';
        files.push({ path: rel, size: st.size, etag, ...(etag.length === 64 ? { sha256: etag } : {}) });
      }
    }
  };
  try {
    await walk(root, '');
  } catch {
    return undefined;
  }
  return { repo, revision, commit, files, offline: true };
}

/** Resolves a revision (branch, tag or commit; default main) to its commit and file list. */
export async function resolveRepo(repo: string, revision = 'main', o: HubOptions = {}): Promise<RepoSnapshot> {
  checkRepoId(repo);
  if (typeof revision !== 'string' || revision.length === 0 || /\.\.|^\/|\/$/.test(revision)) {
    throw llavaError('ERR_INVALID_ARGUMENT', `revision ${JSON.stringify(revision)} is not a branch, tag or commit.`);
  }
  const r = resolveOptions(o);
  const cache = new RepoCache(r.settings.cacheDir, repo);
  if (r.settings.offline) {
    const snap = await snapshotFromCache(cache, repo, revision);
    if (!snap) {
      throw llavaError('ERR_HUB_NOT_FOUND', `HF_HUB_OFFLINE is set and ${repo}@${revision} is not in the cache at ${r.settings.cacheDir}; unset HF_HUB_OFFLINE to download it.`);
    }
    return snap;
  }
  const url = `${r.settings.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
  const what = `${repo}@${revision}`;
  const info = await withRetries(r.http, what, async () => {
    const { res } = await hubFetch(r.http, url, { headers: { accept: 'application/json' } });
    if (!res.ok) return hubRefusal(res, r, repo, what);
    try {
      return await res.json();
    } catch (e) {
      throw new Retryable(`unreadable model info (${(e as Error).message})`);
    }
  });
  const { commit, files } = parseInfo(repo, info);
  return { repo, revision, commit, files, offline: false };
}

/** Free bytes on the file system that will hold `dir` (its nearest existing ancestor). */
export async function freeBytes(dir: string): Promise<number> {
  let d = dir;
  for (;;) {
    try {
      const s = await statfs(d);
      return s.bavail * s.bsize;
    } catch (e) {
      const parent = dirname(d);
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || parent === d) throw e;
      d = parent;
    }
  }
}

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

/** The git blob id of a small file: sha1("blob <size>\0" + content). */
function gitBlobHash(size: number): Hash {
  return createHash('sha1').update(`blob ${size}\0`);
}

class StallError extends Error {}

interface FileJob {
  snap: RepoSnapshot;
  file: RepoFile;
  cache: RepoCache;
  /** Called with each chunk's length. */
  onBytes: (n: number) => void;
}

/** Hashes what an `.incomplete` file already holds (once, before resuming after it). */
async function hashPrefix(path: string, hash: Hash, signal?: AbortSignal): Promise<void> {
  for await (const chunk of createReadStream(path, { signal })) hash.update(chunk as Buffer);
}

async function fileSize(p: string): Promise<number | undefined> {
  return stat(p).then(
    (s) => s.size,
    () => undefined,
  );
}

/**
 * Downloads one file into blobs/<etag> and links it into the snapshot. The bytes go to
 * blobs/<etag>.incomplete, hashed as they arrive; only a complete file with the Hub's hash is
 * renamed to its final name. A cut connection keeps the `.incomplete` and the next try resumes it
 * with a Range request.
 */
async function downloadOne(r: Resolved, job: FileJob): Promise<'fetched' | 'reused'> {
  const { snap, file, cache } = job;
  const blob = cache.blob(file.etag);
  const label = `${snap.repo}/${file.path}`;
  if ((await fileSize(blob)) === file.size) {
    await cache.link(snap.commit, file.path, file.etag);
    job.onBytes(file.size);
    return 'reused';
  }
  const lockPath = cache.lockFile(file.etag);
  await mkdir(dirname(lockPath), { recursive: true });
  await mkdir(dirname(blob), { recursive: true });
  // Another pull of the same file (this process or another) holds the lock: wait for it, then reuse its blob.
  const release = await withRetries({ ...r.http, retry: { ...r.http.retry, retries: 10_000, baseDelayMs: 200, maxDelayMs: 2000 }, onRetry: undefined }, label, async () => {
    try {
      // A lost lock (event loop blocked past `stale`) is not fatal: blobs are content-addressed and
      // hash-checked, and proper-lockfile's default handler would throw from a timer.
      return await lockfile.lock(blob, { lockfilePath: lockPath, stale: 30_000, update: 5_000, realpath: false, onCompromised: () => undefined });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ELOCKED') throw new Retryable('locked by another download');
      throw e;
    }
  });
  try {
    if ((await fileSize(blob)) === file.size) {
      await cache.link(snap.commit, file.path, file.etag);
      job.onBytes(file.size);
      return 'reused';
    }
    const incomplete = `${blob}.incomplete`;
    const url = `${r.settings.endpoint}/${snap.repo}/resolve/${snap.commit}/${file.path.split('/').map(encodeURIComponent).join('/')}`;
    let hashFailures = 0;
    let counted = 0; // bytes reported to onBytes for this file
    const report = (total: number) => {
      if (total > counted) job.onBytes(total - counted);
      counted = Math.max(counted, total);
    };
    await withRetries(r.http, label, async () => {
      let offset = (await fileSize(incomplete)) ?? 0;
      if (offset > file.size) {
        await rm(incomplete, { force: true });
        offset = 0;
      }
      const hash = file.sha256 ? createHash('sha256') : gitBlobHash(file.size);
      if (offset > 0) {
        await hashPrefix(incomplete, hash, r.http.signal).catch((e: unknown) => {
          throwIfAborted(r.http.signal, 'download');
          throw e;
        });
      }
      report(offset);
      // One controller per request, aborted by the stall timer or by the caller's signal. (Not
      // AbortSignal.any: on Node 20 a fetch body waiting on a combined signal sometimes never saw the
      // abort — measured: 1 hang in ~12 aborted downloads.)
      const stall = new AbortController();
      const request = new AbortController();
      const signal = request.signal;
      const onUserAbort = () => request.abort(r.http.signal?.reason);
      r.http.signal?.addEventListener('abort', onUserAbort, { once: true });
      if (r.http.signal?.aborted) onUserAbort();
      stall.signal.addEventListener('abort', () => request.abort(stall.signal.reason), { once: true });
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => stall.abort(new StallError(`no data for ${r.stallTimeoutMs / 1000} s`)), r.stallTimeoutMs);
      };
      arm();
      let fh: Awaited<ReturnType<typeof open>> | undefined;
      try {
        const { res, first } = await hubFetch(r.http, url, { headers: offset > 0 ? { range: `bytes=${offset}-` } : {}, signal });
        if (res.status === 416 && offset > 0) {
          // The server has nothing past our offset: start over rather than trust the partial file.
          await res.body?.cancel().catch(() => undefined);
          await rm(incomplete, { force: true });
          throw new Retryable('range not satisfiable; restarting the file', 0);
        }
        if (!res.ok) return await hubRefusal(res, r, snap.repo, label);
        const servedCommit = first.get('x-repo-commit');
        if (servedCommit && servedCommit !== snap.commit) {
          await res.body?.cancel().catch(() => undefined);
          throw llavaError('ERR_HUB_INTEGRITY', `${label}: asked for commit ${snap.commit} but ${r.settings.endpoint} answered with commit ${servedCommit}; a mirror (HF_ENDPOINT) that ignores revisions cannot be used for pinned downloads.`);
        }
        const linked = (first.get('x-linked-etag') ?? first.get('etag') ?? '').replace(/^W\//, '').replace(/"/g, '').toLowerCase();
        if (file.sha256 && linked && /^[0-9a-f]{64}$/.test(linked) && linked !== file.sha256) {
          await res.body?.cancel().catch(() => undefined);
          throw llavaError('ERR_HUB_INTEGRITY', `${label}: the Hub's file listing says sha256 ${file.sha256} but the download is announced as ${linked}; the repository changed while downloading: run the command again.`);
        }
        let start = offset;
        if (res.status === 206) {
          const m = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
          if (!m || Number(m[1]) !== offset) {
            await res.body?.cancel().catch(() => undefined);
            await rm(incomplete, { force: true });
            throw new Retryable(`server answered a different range (${res.headers.get('content-range')}); restarting the file`, 0);
          }
        } else if (offset > 0) {
          // 200: the whole file again (no Range support): restart the hash and the file.
          start = 0;
          hash.destroy?.();
          return await receive(res, 0, file.sha256 ? createHash('sha256') : gitBlobHash(file.size));
        }
        return await receive(res, start, hash);

        async function receive(res: Response, at: number, h: Hash): Promise<void> {
          fh = await open(incomplete, at === 0 ? 'w' : 'a');
          let got = at;
          report(got);
          if (!res.body) throw new Retryable('empty response body');
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            arm();
            got += chunk.length;
            if (got > file.size) {
              await fh.close();
              fh = undefined;
              await rm(incomplete, { force: true });
              throw llavaError('ERR_HUB_INTEGRITY', `${label}: the server sent more than the ${file.size} bytes the Hub announced; the partial file was deleted. Run the command again; if it repeats, the mirror (HF_ENDPOINT) serves a different file.`);
            }
            h.update(chunk);
            await fh.write(chunk);
            report(got);
          }
          await fh.sync();
          await fh.close();
          fh = undefined;
          if (got < file.size) throw new Retryable(`connection closed after ${got} of ${file.size} bytes`, 0);
          const digest = h.digest('hex');
          const expected = file.sha256 ?? file.etag;
          if (digest !== expected) {
            await rm(incomplete, { force: true });
            counted = 0;
            if (++hashFailures < 2) throw new Retryable(`${file.sha256 ? 'sha256' : 'git hash'} mismatch; downloading again`, 0);
            throw llavaError('ERR_HUB_INTEGRITY', `${label}: downloaded ${file.sha256 ? 'sha256' : 'git blob hash'} ${digest} is not the Hub's ${expected} (twice); the file was deleted. If you use a mirror (HF_ENDPOINT), it serves a different file.`);
          }
          await rename(incomplete, blob);
        }
      } catch (e) {
        if (e instanceof StallError || stall.signal.aborted) {
          if (r.http.signal?.aborted) throw llavaError('ERR_ABORTED', 'The download was aborted.', r.http.signal.reason);
          throw new Retryable(`no data for ${r.stallTimeoutMs / 1000} s`);
        }
        if (r.http.signal?.aborted) throw llavaError('ERR_ABORTED', 'The download was aborted (run the command again to resume).', r.http.signal.reason);
        if (e instanceof Retryable || e instanceof LlavaMedError) throw e;
        const errno = e as NodeJS.ErrnoException;
        if (errno.code === 'ENOSPC') throw llavaError('ERR_DISK_SPACE', `${label}: the disk holding ${r.settings.cacheDir} is full; free some space and run the command again to resume.`, e);
        if (errno.syscall !== undefined) throw e; // a local file-system error, not the network
        // A body that broke off mid-stream (socket reset, truncated chunked encoding).
        const cause = (e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : '';
        throw new Retryable(`connection dropped (${(e as Error).message}${cause ? `: ${cause}` : ''})`);
      } finally {
        clearTimeout(timer);
        r.http.signal?.removeEventListener('abort', onUserAbort);
        await fh?.close().catch(() => undefined);
      }
    });
    await cache.link(snap.commit, file.path, file.etag);
    return 'fetched';
  } finally {
    await release().catch(() => undefined);
  }
}

/**
 * Downloads `files` (default: all) of a resolved snapshot into the cache, `concurrency` at a time,
 * after checking that the disk can hold what is missing. Returns the snapshot folder.
 */
export async function downloadFiles(
  snap: RepoSnapshot,
  o: HubOptions & { files?: readonly RepoFile[]; onProgress?: (p: DownloadProgress) => void } = {},
): Promise<DownloadResult> {
  const r = resolveOptions(o);
  const cache = new RepoCache(r.settings.cacheDir, snap.repo);
  const files = [...(o.files ?? snap.files)].sort((a, b) => b.size - a.size);
  for (const f of files) checkRepoPath(f.path);
  const dir = cache.snapshotDir(snap.commit);
  if (snap.offline || r.settings.offline) {
    const missing = [];
    for (const f of files) if ((await cache.snapshotSize(snap.commit, f.path)) === undefined) missing.push(f.path);
    if (missing.length > 0) {
      throw llavaError('ERR_HUB_NOT_FOUND', `HF_HUB_OFFLINE is set and ${snap.repo}@${snap.commit.slice(0, 10)} lacks ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''} in the cache; unset HF_HUB_OFFLINE to download.`);
    }
    return { dir, bytesFetched: 0, reused: files.length };
  }
  throwIfAborted(r.http.signal, 'download');
  let need = 0;
  for (const f of files) {
    const have = (await fileSize(cache.blob(f.etag))) === f.size ? f.size : ((await fileSize(`${cache.blob(f.etag)}.incomplete`)) ?? 0);
    need += Math.max(0, f.size - have);
  }
  if (need > 0) {
    const free = await freeBytes(cache.dir);
    // A small margin: the file system needs some room of its own, and a full disk helps nobody.
    const margin = Math.min(1e9, need * 0.02);
    if (need + margin > free) {
      throw llavaError('ERR_DISK_SPACE', `${snap.repo} needs ${formatBytes(need)} more in ${r.settings.cacheDir} but only ${formatBytes(free)} is free: free some space or set HF_HUB_CACHE to a bigger disk.`);
    }
  }
  const bytesTotal = files.reduce((a, f) => a + f.size, 0);
  let bytesDone = 0;
  let filesDone = 0;
  let bytesFetched = 0;
  let reused = 0;
  const progress = (file: string) => o.onProgress?.({ phase: 'download', repo: snap.repo, file, bytesDone, bytesTotal, filesDone, filesTotal: files.length });
  progress('');
  await mkdir(dir, { recursive: true });
  // Files are taken in list order; after a failure no new file starts, the ones in flight finish.
  // When several fail, the error reported is that of the first in list order, not of the first to
  // fail: an error message must not depend on timing (the lowest failing index is always attempted).
  let next = 0;
  const errors = new Map<number, unknown>();
  const worker = async () => {
    while (next < files.length && errors.size === 0) {
      const index = next++;
      const file = files[index]!;
      let mine = 0;
      try {
        const how = await downloadOne(r, {
          snap, file, cache,
          onBytes: (n) => {
            mine += n;
            bytesDone += n;
            progress(file.path);
          },
        });
        if (how === 'reused') reused++;
        else bytesFetched += file.size;
        // A re-download after a bad hash counted some bytes twice: settle on the file's size.
        bytesDone += file.size - mine;
        filesDone++;
        progress(file.path);
      } catch (e) {
        errors.set(index, e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(r.concurrency, files.length) }, worker));
  if (errors.size > 0) throw errors.get(Math.min(...errors.keys()));
  if (!COMMIT_RE.test(snap.revision)) await cache.writeRef(snap.revision, snap.commit);
  return { dir, bytesFetched, reused };
}

/** Resolve + download in one call: the snapshot folder of `repo@revision` holding the files `select` keeps. */
export async function snapshotDownload(
  repo: string,
  o: HubOptions & { revision?: string; select?: (f: RepoFile) => boolean; onProgress?: (p: DownloadProgress) => void } = {},
): Promise<DownloadResult & {
  /** The resolved snapshot. */
  snapshot: RepoSnapshot;
}> {
  const snapshot = await resolveRepo(repo, o.revision, o);
  const files = o.select ? snapshot.files.filter(o.select) : snapshot.files;
  return { ...(await downloadFiles(snapshot, { ...o, files })), snapshot };
}
