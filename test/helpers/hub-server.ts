/**
 * A stand-in Hugging Face Hub on 127.0.0.1 for the download tests, speaking the parts of the Hub the
 * client uses, as the real one does:
 *   GET  /api/models/{repo}/revision/{rev}?blobs=true   commit sha + siblings (size, blobId, lfs.sha256)
 *   GET|HEAD /{repo}/resolve/{rev}/{path}               small files: 200 with ETag (git blob sha1);
 *        LFS files: 302 to a second server (another origin, like the CDN) with X-Linked-Etag (sha256),
 *        X-Linked-Size and X-Repo-Commit; both honour Range (206 / 416).
 *   Errors with X-Error-Code as the Hub sends them: RepoNotFound (401 without a token), GatedRepo (401/403),
 *   RevisionNotFound / EntryNotFound (404).
 * Faults are queued per file (or per repo for the API) and each is used once, in order.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readdir, readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, relative, sep } from 'node:path';

export type Fault =
  /** Answer with this status instead (with Retry-After when given). */
  | { kind: 'status'; status: number; retryAfter?: string }
  /** Send `at` bytes of the body (announcing the full length), then cut the connection. */
  | { kind: 'cut'; at: number }
  /** Flip one byte of the body (a wrong sha256). */
  | { kind: 'corrupt' }
  /** Send `extra` bytes more than announced (chunked, no Content-Length). */
  | { kind: 'oversize'; extra: number }
  /** Send `at` bytes, then nothing (the connection stays open). */
  | { kind: 'stall'; at: number }
  /** The resolve URL redirects to itself forever. */
  | { kind: 'redirect-loop' }
  /** Ignore the Range header (200 with the whole file). */
  | { kind: 'no-range' }
  /** Wait `ms` before answering normally. */
  | { kind: 'delay'; ms: number }
  /** The resolve answer names another commit in X-Repo-Commit (a mirror ignoring revisions). */
  | { kind: 'wrong-commit' };

export interface HubFile {
  path: string;
  data: Buffer;
  /** Default: by extension, as the Hub's default .gitattributes does. */
  lfs?: boolean;
}

export interface RequestLog {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  range?: string;
  auth?: string;
}

interface StoredFile {
  path: string;
  data: Buffer;
  lfs: boolean;
  sha256: string;
  blobId: string;
}

interface StoredRepo {
  commit: string;
  files: Map<string, StoredFile>;
  /** Every commit's files (older commits stay reachable by tag or hash). */
  commits: Map<string, Map<string, StoredFile>>;
  gated: boolean;
  refs: Map<string, string>;
  /** What the listing announces instead of the truth (to test lies). */
  announce: Map<string, { size?: number; sha256?: string }>;
}

const LFS_EXT = /\.(bin|safetensors|gguf|model|pt|pth|h5|msgpack|onnx|ckpt)$/;

export function gitBlobId(data: Buffer): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads every file under `dir` as HubFiles (paths `/`-separated). */
export async function filesFromDir(dir: string): Promise<HubFile[]> {
  const out: HubFile[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push({ path: relative(dir, p).split(sep).join('/'), data: await readFile(p) });
    }
  };
  await walk(dir);
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

export class HubServer {
  readonly requests: RequestLog[] = [];
  /** The token that opens gated repos. */
  readonly goodToken = 'hf_test_token';
  private readonly repos = new Map<string, StoredRepo>();
  private readonly faults = new Map<string, Fault[]>();
  private readonly hanging = new Set<ServerResponse>();
  private hub!: Server;
  private cdn!: Server;
  url = '';
  cdnUrl = '';

  static async start(): Promise<HubServer> {
    const s = new HubServer();
    s.hub = createServer((q, r) => s.onHub(q, r));
    s.cdn = createServer((q, r) => s.onCdn(q, r));
    for (const srv of [s.hub, s.cdn]) await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
    s.url = `http://127.0.0.1:${(s.hub.address() as AddressInfo).port}`;
    s.cdnUrl = `http://127.0.0.1:${(s.cdn.address() as AddressInfo).port}`;
    return s;
  }

  async close(): Promise<void> {
    for (const r of this.hanging) r.destroy();
    for (const srv of [this.hub, this.cdn]) {
      srv.closeAllConnections();
      await new Promise<void>((res) => srv.close(() => res()));
    }
  }

  /** Publishes `files` as a new commit of `repo` on `main` (and on `tags`). Returns the commit. */
  addRepo(repo: string, files: HubFile[], o: { gated?: boolean; tags?: string[] } = {}): string {
    const stored = new Map<string, StoredFile>();
    const h = createHash('sha1').update(repo);
    for (const f of files) {
      const sf = { path: f.path, data: f.data, lfs: f.lfs ?? LFS_EXT.test(f.path), sha256: sha256(f.data), blobId: gitBlobId(f.data) };
      stored.set(f.path, sf);
      h.update(f.path).update(sf.blobId);
    }
    const commit = h.digest('hex');
    const prev = this.repos.get(repo);
    const refs = prev?.refs ?? new Map<string, string>();
    refs.set('main', commit);
    for (const t of o.tags ?? []) refs.set(t, commit);
    const commits = prev?.commits ?? new Map<string, Map<string, StoredFile>>();
    commits.set(commit, stored);
    this.repos.set(repo, { commit, files: stored, commits, gated: o.gated ?? false, refs, announce: prev?.announce ?? new Map() });
    return commit;
  }

  /** Make the listing announce a different size or sha256 for a file. */
  announce(repo: string, path: string, a: { size?: number; sha256?: string }): void {
    this.repos.get(repo)!.announce.set(path, a);
  }

  /** Queue faults for the next requests of a file (`repo` + `path`), or of the model-info API (`path` = '@api'). */
  fault(repo: string, path: string, ...faults: Fault[]): void {
    const k = `${repo}\n${path}`;
    this.faults.set(k, [...(this.faults.get(k) ?? []), ...faults]);
  }

  pendingFaults(repo: string, path: string): number {
    return this.faults.get(`${repo}\n${path}`)?.length ?? 0;
  }

  /** Full-body or ranged GETs of a file's content seen so far (either server). */
  downloads(repo: string, path: string): RequestLog[] {
    return this.requests.filter((r) => {
      const p = decodeURIComponent(r.path.split('?')[0]);
      return r.method === 'GET' && (p.includes('/resolve/') || r.server === 'cdn') && p.includes(`/${repo}/`) && p.endsWith(`/${path}`);
    });
  }

  private nextFault(repo: string, path: string): Fault | undefined {
    const q = this.faults.get(`${repo}\n${path}`);
    return q?.shift();
  }

  private log(server: 'hub' | 'cdn', q: IncomingMessage): void {
    this.requests.push({ server, method: q.method ?? 'GET', path: q.url ?? '', range: q.headers.range, auth: q.headers.authorization });
  }

  private authorized(q: IncomingMessage): boolean {
    return q.headers.authorization === `Bearer ${this.goodToken}`;
  }

  private refuse(r: ServerResponse, status: number, code: string, message: string): void {
    r.writeHead(status, { 'content-type': 'application/json', 'x-error-code': code, 'x-error-message': message });
    r.end(JSON.stringify({ error: message }));
  }

  /** The repo and commit for a request, or undefined after answering with the Hub's error. */
  private lookup(q: IncomingMessage, r: ServerResponse, repo: string, rev: string): { repo: StoredRepo; commit: string; files: Map<string, StoredFile> } | undefined {
    const stored = this.repos.get(repo);
    if (!stored) {
      if (this.authorized(q)) this.refuse(r, 404, 'RepoNotFound', 'Repository not found');
      else this.refuse(r, 401, 'RepoNotFound', 'Repository not found');
      return undefined;
    }
    if (stored.gated && !this.authorized(q)) {
      if (q.headers.authorization) this.refuse(r, 403, 'GatedRepo', `Access to model ${repo} is restricted and you are not in the authorized list.`);
      else this.refuse(r, 401, 'GatedRepo', `Access to model ${repo} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
      return undefined;
    }
    const commit = stored.refs.get(rev) ?? (stored.commits.has(rev) ? rev : undefined);
    if (!commit) {
      this.refuse(r, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      return undefined;
    }
    return { repo: stored, commit, files: stored.commits.get(commit)! };
  }

  private onHub(q: IncomingMessage, r: ServerResponse): void {
    this.log('hub', q);
    const u = new URL(q.url ?? '/', this.url);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(u.pathname);
    if (api) {
      const repo = decodeURIComponent(api[1]);
      const f = this.nextFault(repo, '@api');
      if (f?.kind === 'status') return this.status(r, f);
      const found = this.lookup(q, r, repo, decodeURIComponent(api[2]));
      if (!found) return;
      const siblings = [...found.files.values()].map((sf) => {
        const a = found.repo.announce.get(sf.path) ?? {};
        return {
          rfilename: sf.path,
          size: sf.lfs ? (a.size ?? sf.data.length) : (a.size ?? sf.data.length),
          blobId: sf.blobId,
          ...(sf.lfs ? { lfs: { sha256: a.sha256 ?? sf.sha256, size: a.size ?? sf.data.length, pointerSize: 134 } } : {}),
        };
      });
      r.writeHead(200, { 'content-type': 'application/json' });
      r.end(JSON.stringify({ _id: 'x', id: repo, sha: found.commit, gated: found.repo.gated ? 'auto' : false, private: false, siblings }));
      return;
    }
    const res = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(u.pathname);
    if (!res) return this.refuse(r, 404, 'EntryNotFound', 'not found');
    const repo = decodeURIComponent(res[1]);
    const path = decodeURIComponent(res[3]);
    const found = this.lookup(q, r, repo, decodeURIComponent(res[2]));
    if (!found) return;
    const sf = found.files.get(path);
    if (!sf) return this.refuse(r, 404, 'EntryNotFound', `${path} does not exist on "${res[2]}"`);
    // Status and redirect faults are the Hub's; body faults of LFS files wait for the CDN.
    const peek = this.faults.get(`${repo}\n${path}`)?.[0];
    const f = !sf.lfs || peek?.kind === 'status' || peek?.kind === 'redirect-loop' || peek?.kind === 'wrong-commit' ? this.nextFault(repo, path) : undefined;
    if (f?.kind === 'status') return this.status(r, f);
    if (f?.kind === 'redirect-loop') {
      r.writeHead(302, { location: u.pathname });
      r.end();
      return;
    }
    const common = { 'x-repo-commit': f?.kind === 'wrong-commit' ? '0'.repeat(40) : found.commit };
    if (sf.lfs) {
      r.writeHead(302, {
        ...common,
        location: `${this.cdnUrl}/repos/${sf.sha256}/${encodeURIComponent(repo)}/${path.split('/').map(encodeURIComponent).join('/')}?X-Amz-Signature=stand-in`,
        'x-linked-etag': `"${sf.sha256}"`,
        'x-linked-size': String(sf.data.length),
        etag: `"${sf.blobId}"`,
      });
      r.end();
      return;
    }
    this.body(q, r, sf.data, { ...common, etag: `"${sf.blobId}"` }, f);
  }

  private onCdn(q: IncomingMessage, r: ServerResponse): void {
    this.log('cdn', q);
    const u = new URL(q.url ?? '/', this.cdnUrl);
    const m = /^\/repos\/([0-9a-f]{64})\/([^/]+)\/(.+)$/.exec(u.pathname);
    const repo = m ? decodeURIComponent(m[2]) : '';
    const path = m ? m[3].split('/').map(decodeURIComponent).join('/') : '';
    const sf = [...(this.repos.get(repo)?.commits.values() ?? [])].map((c) => c.get(path)).find((f) => f?.sha256 === m?.[1]);
    if (!m || !sf) {
      r.writeHead(404);
      r.end();
      return;
    }
    this.body(q, r, sf.data, { etag: `"${sf.sha256}"` }, this.nextFault(repo, path));
  }

  private status(r: ServerResponse, f: { status: number; retryAfter?: string }): void {
    r.writeHead(f.status, f.retryAfter !== undefined ? { 'retry-after': f.retryAfter } : {});
    r.end(`status ${f.status}`);
  }

  /** Serves `data` honouring Range, with a fault applied. */
  private body(q: IncomingMessage, r: ServerResponse, data: Buffer, headers: Record<string, string>, f: Fault | undefined): void {
    if (f?.kind === 'status') return this.status(r, f);
    if (f?.kind === 'delay') {
      setTimeout(() => this.body(q, r, data, headers, undefined), f.ms);
      return;
    }
    let start = 0;
    let end = data.length - 1;
    let status = 200;
    const range = f?.kind === 'no-range' ? undefined : q.headers.range;
    if (range) {
      const m = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!m || Number(m[1]) >= data.length) {
        r.writeHead(416, { 'content-range': `bytes */${data.length}` });
        r.end();
        return;
      }
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), data.length - 1) : data.length - 1;
      status = 206;
    }
    let part = data.subarray(start, end + 1);
    if (f?.kind === 'corrupt') {
      part = Buffer.from(part);
      part[part.length >> 1] ^= 0xff;
    }
    const h: Record<string, string> = { ...headers, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    if (status === 206) h['content-range'] = `bytes ${start}-${end}/${data.length}`;
    if (f?.kind === 'oversize') {
      r.writeHead(status, h); // chunked: no length to hold the server to
      if (q.method === 'HEAD') return void r.end();
      r.write(part);
      r.end(Buffer.alloc(f.extra, 7));
      return;
    }
    h['content-length'] = String(part.length);
    r.writeHead(status, h);
    if (q.method === 'HEAD') return void r.end();
    if (f?.kind === 'cut') {
      r.write(part.subarray(0, f.at), () => setTimeout(() => r.socket?.destroy(), 20));
      return;
    }
    if (f?.kind === 'stall') {
      this.hanging.add(r);
      r.write(part.subarray(0, f.at));
      r.on('close', () => this.hanging.delete(r));
      return;
    }
    r.end(part);
  }
}
