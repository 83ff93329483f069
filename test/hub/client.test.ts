/**
 * The Hub client against the stand-in Hub (test/helpers/hub-server.ts): the huggingface_hub cache
 * layout, reuse of a cache Python made, settings from the environment, and every fault of the
 * issue — each survived or reported as one typed error, never a file under a final name that is
 * not the Hub's file.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { downloadFiles, resolveRepo, snapshotDownload, type HubOptions } from '../../lib/hub/index.js';
import { hubSettings } from '../../lib/hub/env.js';
import type { RetryEvent } from '../../lib/hub/http.js';
import { HubServer, gitBlobId, sha256, type HubFile } from '../helpers/hub-server.js';

let hub: HubServer;
let root = '';
t.before(async () => {
  hub = await HubServer.start();
  root = await mkdtemp(join(tmpdir(), 'llava-med-hub-'));
});
t.teardown(async () => {
  await hub.close();
  await rm(root, { recursive: true, force: true });
});

let n = 0;
/** A fresh cache folder and options pointing at the stand-in Hub. */
function opts(extra: HubOptions = {}): HubOptions & { cacheDir: string } {
  return { endpoint: hub.url, cacheDir: join(root, `cache-${++n}`), token: undefined, offline: false, env: {}, retry: { baseDelayMs: 5, maxDelayMs: 20 }, ...extra };
}

const CONFIG = Buffer.from('{"model_type": "llava_mistral"}\n');
function repoFiles(seed: number): HubFile[] {
  const r = createHash('sha256').update(String(seed)).digest();
  return [
    { path: 'config.json', data: CONFIG },
    { path: 'model-00001-of-00002.safetensors', data: Buffer.concat([r, randomBytes(300_000)]) },
    { path: 'model-00002-of-00002.safetensors', data: randomBytes(120_000) },
    { path: 'sub/dir/tokenizer.model', data: randomBytes(5_000) },
  ];
}
let repoN = 0;
function newRepo(o: { gated?: boolean } = {}): { repo: string; files: HubFile[]; commit: string } {
  const repo = `org/model-${++repoN}`;
  const files = repoFiles(repoN);
  return { repo, files, commit: hub.addRepo(repo, files, o) };
}
const big = (f: HubFile[]) => f.find((x) => x.path === 'model-00001-of-00002.safetensors')!;
const blobsDir = (cache: string, repo: string) => join(cache, `models--${repo.replace('/', '--')}`, 'blobs');

t.test('downloads into the huggingface_hub cache layout', async (t) => {
  const { repo, files, commit } = newRepo();
  const o = opts({ token: hub.goodToken });
  const r = await snapshotDownload(repo, o);
  const top = join(o.cacheDir, 'models--org--model-1');
  t.equal(r.snapshot.commit, commit, 'the revision resolves to the Hub commit');
  t.equal(r.dir, join(top, 'snapshots', commit));
  t.equal(readFileSync(join(top, 'refs', 'main'), 'utf8'), commit, 'refs/main holds the commit, no newline (as Python writes it)');
  for (const f of files) {
    const p = join(r.dir, ...f.path.split('/'));
    t.ok(lstatSync(p).isSymbolicLink(), `${f.path} is a symlink`);
    const etag = /\.(safetensors|model)$/.test(f.path) ? sha256(f.data) : gitBlobId(f.data);
    const depth = f.path.split('/').length - 1;
    t.equal(readlinkSync(p), `${'../'.repeat(depth + 2)}blobs/${etag}`, `${f.path} links relatively to blobs/<${etag.length === 64 ? 'sha256' : 'git sha1'}>`);
    t.ok(readFileSync(p).equals(f.data), `${f.path} content`);
  }
  t.same((await readdir(join(top, 'blobs'))).sort(), files.map((f) => (/\.(safetensors|model)$/.test(f.path) ? sha256(f.data) : gitBlobId(f.data))).sort(), 'blobs/ holds exactly the files, no .incomplete');
  t.equal(r.bytesFetched, files.reduce((a, f) => a + f.data.length, 0));
  const cdn = hub.requests.filter((q) => q.server === 'cdn');
  t.ok(cdn.length >= 3, 'LFS files came from the second host');
  t.ok(cdn.every((q) => q.auth === undefined), 'the token is never sent to the CDN host');
  t.ok(hub.requests.filter((q) => q.server === 'hub').every((q) => q.auth === `Bearer ${hub.goodToken}`), 'the token is sent to the Hub');
});

t.test('reuses a cache that Python made, and its own: nothing downloaded twice', async (t) => {
  const { repo, files, commit } = newRepo();
  const o = opts();
  // What huggingface_hub writes: blobs named by etag, relative links, refs/main.
  const top = join(o.cacheDir, `models--${repo.replace('/', '--')}`);
  await mkdir(join(top, 'blobs'), { recursive: true });
  await mkdir(join(top, 'refs'), { recursive: true });
  await writeFile(join(top, 'refs', 'main'), commit);
  for (const f of files) {
    const etag = /\.(safetensors|model)$/.test(f.path) ? sha256(f.data) : gitBlobId(f.data);
    await writeFile(join(top, 'blobs', etag), f.data);
    const link = join(top, 'snapshots', commit, ...f.path.split('/'));
    await mkdir(join(link, '..'), { recursive: true });
    await symlink(`${'../'.repeat(f.path.split('/').length + 1)}blobs/${etag}`, link);
  }
  const before = hub.requests.length;
  const r = await snapshotDownload(repo, o);
  const fetched = hub.requests.slice(before).filter((q) => q.path.includes('/resolve/') || q.server === 'cdn');
  t.same(fetched, [], 'no file requested');
  t.equal(r.reused, files.length);
  t.equal(r.bytesFetched, 0);
  const again = await snapshotDownload(repo, o);
  t.equal(again.bytesFetched, 0, 'a second download fetches nothing');
});

t.test('settings come from the environment as huggingface_hub reads them', async (t) => {
  const tokenDir = join(root, 'hfhome');
  await mkdir(tokenDir, { recursive: true });
  await writeFile(join(tokenDir, 'token'), 'hf_from_file\n');
  t.same(hubSettings({ HOME: '/h', XDG_CACHE_HOME: '/x' }).cacheDir, '/x/huggingface/hub');
  t.same(hubSettings({ HF_HOME: tokenDir }), { endpoint: 'https://huggingface.co', token: 'hf_from_file', cacheDir: join(tokenDir, 'hub'), offline: false }, 'HF_HOME: cache and token file');
  t.equal(hubSettings({ HF_HOME: tokenDir, HF_TOKEN: 'hf_env' }).token, 'hf_env', 'HF_TOKEN wins over the token file');
  t.equal(hubSettings({ HF_HOME: tokenDir, HF_HUB_CACHE: '/c' }).cacheDir, '/c', 'HF_HUB_CACHE wins over HF_HOME');
  t.equal(hubSettings({ HF_ENDPOINT: 'http://mirror.local/' }).endpoint, 'http://mirror.local', 'HF_ENDPOINT, trailing slash dropped');
  for (const v of ['1', 'ON', 'yes', 'True']) t.equal(hubSettings({ HF_HUB_OFFLINE: v }).offline, true, `HF_HUB_OFFLINE=${v}`);
  t.equal(hubSettings({ HF_HUB_OFFLINE: '0' }).offline, false);

  // Through the client: HF_ENDPOINT + HF_HUB_CACHE + HF_TOKEN from `env`.
  const { repo } = newRepo({ gated: true });
  const cache = join(root, 'env-cache');
  const r = await snapshotDownload(repo, { env: { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, HF_TOKEN: hub.goodToken } });
  t.ok(r.dir.startsWith(cache), 'downloaded into HF_HUB_CACHE with the token from HF_TOKEN');
});

t.test('HF_HUB_OFFLINE: answers from the cache without a request, or says what is missing', async (t) => {
  const { repo, files, commit } = newRepo();
  const o = opts();
  await snapshotDownload(repo, o);
  const before = hub.requests.length;
  const snap = await resolveRepo(repo, 'main', { ...o, offline: true });
  t.equal(snap.commit, commit);
  t.same(snap.files.map((f) => f.path).sort(), files.map((f) => f.path).sort());
  const r = await downloadFiles(snap, { ...o, offline: true });
  t.equal(r.bytesFetched, 0);
  await t.rejects(resolveRepo(repo, 'v2', { ...o, offline: true }), { code: 'ERR_HUB_NOT_FOUND', message: /HF_HUB_OFFLINE/ });
  await t.rejects(resolveRepo('org/absent', 'main', { ...o, offline: true }), { code: 'ERR_HUB_NOT_FOUND' });
  t.equal(hub.requests.length, before, 'offline mode sent no request');
});

t.test('a connection cut mid-file is resumed with a Range request', async (t) => {
  const { repo, files } = newRepo();
  const o = opts();
  const f = big(files);
  hub.fault(repo, f.path, { kind: 'cut', at: 100_000 });
  const retries: RetryEvent[] = [];
  const r = await snapshotDownload(repo, { ...o, onRetry: (e) => retries.push(e) });
  t.ok(readFileSync(join(r.dir, f.path)).equals(f.data), 'the file is complete and right');
  const gets = hub.downloads(repo, f.path).filter((q) => q.server === 'cdn');
  t.equal(gets.length, 2);
  t.equal(gets[1].range, 'bytes=100000-', 'the second request resumes at the cut');
  t.equal(retries.length, 1);
});

t.test('a server that ignores Range on resume: the file restarts from zero, still right', async (t) => {
  const { repo, files } = newRepo();
  const f = big(files);
  hub.fault(repo, f.path, { kind: 'cut', at: 50_000 }, { kind: 'no-range' });
  const r = await snapshotDownload(repo, opts());
  t.ok(readFileSync(join(r.dir, f.path)).equals(f.data));
});

t.test('a wrong sha256 is refused and downloaded again; twice wrong is an error naming the file', async (t) => {
  const { repo, files } = newRepo();
  const f = big(files);
  hub.fault(repo, f.path, { kind: 'corrupt' });
  const o = opts();
  const r = await snapshotDownload(repo, o);
  t.ok(readFileSync(join(r.dir, f.path)).equals(f.data), 'second download is right');
  t.equal(hub.downloads(repo, f.path).filter((q) => q.server === 'cdn').length, 2, 'downloaded twice');

  const b = newRepo();
  const bf = big(b.files);
  hub.fault(b.repo, bf.path, { kind: 'corrupt' }, { kind: 'corrupt' });
  const o2 = opts();
  await t.rejects(snapshotDownload(b.repo, o2), { code: 'ERR_HUB_INTEGRITY', message: new RegExp(`${b.repo}/${bf.path}: downloaded sha256 [0-9a-f]{64} is not the Hub's ${sha256(bf.data)}`) });
  const blobs = await readdir(blobsDir(o2.cacheDir, b.repo));
  t.notOk(blobs.includes(sha256(bf.data)), 'no blob under the final name');
  t.notOk(blobs.some((x) => x.endsWith('.incomplete') && x.startsWith(sha256(bf.data))), 'the bad bytes are deleted');
});

t.test('a small (non-LFS) file is checked against its git blob id', async (t) => {
  const { repo, files } = newRepo();
  hub.fault(repo, 'config.json', { kind: 'corrupt' }, { kind: 'corrupt' });
  const o = opts();
  await t.rejects(snapshotDownload(repo, o), { code: 'ERR_HUB_INTEGRITY', message: new RegExp(`config.json: downloaded git blob hash [0-9a-f]{40} is not the Hub's ${gitBlobId(files[0].data)}`) });
});

t.test('429 with Retry-After is waited out; 503 twice then 200 succeeds', async (t) => {
  const { repo, files } = newRepo();
  const f = big(files);
  hub.fault(repo, f.path, { kind: 'status', status: 429, retryAfter: '1' });
  hub.fault(repo, 'config.json', { kind: 'status', status: 503 }, { kind: 'status', status: 503 });
  const retries: RetryEvent[] = [];
  const r = await snapshotDownload(repo, { ...opts(), onRetry: (e) => retries.push(e) });
  t.ok(readFileSync(join(r.dir, f.path)).equals(f.data));
  t.ok(readFileSync(join(r.dir, 'config.json')).equals(files[0].data));
  const rl = retries.filter((e) => /429/.test(e.reason));
  t.equal(rl.length, 1);
  t.equal(rl[0].delayMs, 1000, 'Retry-After: 1 → waits 1000 ms');
  t.equal(retries.filter((e) => /503/.test(e.reason)).length, 2, 'two retries for the two 503s');
});

t.test('5xx that never ends: one clear network error after the retries', async (t) => {
  const { repo } = newRepo();
  for (let i = 0; i < 3; i++) hub.fault(repo, '@api', { kind: 'status', status: 500 });
  await t.rejects(resolveRepo(repo, 'main', { ...opts(), retry: { retries: 2, baseDelayMs: 1 } }), { code: 'ERR_HUB_NETWORK', message: /HTTP 500.*gave up after 3 tries/ });
  t.equal(hub.pendingFaults(repo, '@api'), 0, 'tried exactly 3 times');
  hub.fault(repo, '@api', { kind: 'status', status: 429, retryAfter: '3600' });
  await t.rejects(resolveRepo(repo, 'main', opts()), { code: 'ERR_HUB_NETWORK', message: /wait 3600 s/ }, 'an hour-long Retry-After is reported, not waited');
});

t.test('gated, missing and wrong names: one line saying what to do', async (t) => {
  const { repo } = newRepo({ gated: true });
  await t.rejects(resolveRepo(repo, 'main', opts()), { code: 'ERR_HUB_AUTH', message: new RegExp(`${repo} is gated: accept its licence at ${hub.url}/${repo}, then set HF_TOKEN`) });
  await t.rejects(resolveRepo(repo, 'main', opts({ token: 'hf_wrong' })), { code: 'ERR_HUB_AUTH', message: /accept its licence/ });
  const ok = await resolveRepo(repo, 'main', opts({ token: hub.goodToken }));
  t.equal(ok.files.length, 4, 'with the token the listing comes');
  await t.rejects(resolveRepo('org/nothing-here', 'main', opts()), { code: 'ERR_HUB_NOT_FOUND', message: /org\/nothing-here was not found/ });
  await t.rejects(resolveRepo(repo, 'v9', opts({ token: hub.goodToken })), { code: 'ERR_HUB_NOT_FOUND', message: /no such branch, tag or commit/ });
  await t.rejects(resolveRepo('../etc', 'main', opts()), { code: 'ERR_INVALID_ARGUMENT' });
  for (const e of [await resolveRepo(repo, 'main', opts()).catch((x: Error) => x)]) t.notMatch((e as Error).message, /\n/, 'one line');
});

t.test('two files fail: the error is that of the first file in download order, not of the first to fail', async (t) => {
  const { repo, files } = newRepo();
  const f = big(files); // the largest file: the first one taken
  // The big file fails late (three 503s, 150 ms apart), config.json (the last one taken) at once.
  hub.fault(repo, f.path, ...Array.from({ length: 3 }, () => ({ kind: 'status', status: 503 }) as const));
  hub.fault(repo, 'config.json', { kind: 'status', status: 404 });
  const o = opts({ retry: { retries: 2, baseDelayMs: 150, maxDelayMs: 150 } });
  await t.rejects(snapshotDownload(repo, o), { code: 'ERR_HUB_NETWORK', message: new RegExp(`${f.path}.*HTTP 503.*gave up after 3 tries`) });
  t.equal(hub.pendingFaults(repo, 'config.json'), 0, 'config.json was tried (and failed first)');
});

t.test('a redirect loop is one error, nothing written', async (t) => {
  const { repo, files } = newRepo();
  const f = big(files);
  hub.fault(repo, f.path, { kind: 'redirect-loop' });
  const o = opts();
  await t.rejects(snapshotDownload(repo, o), { code: 'ERR_HUB_NETWORK', message: /redirect loop/ });
  t.notOk(existsSync(join(blobsDir(o.cacheDir, repo), sha256(f.data))));
});

t.test('a body larger than announced is refused and deleted', async (t) => {
  const { repo, files } = newRepo();
  const f = big(files);
  hub.fault(repo, f.path, { kind: 'oversize', extra: 4096 });
  const o = opts();
  await t.rejects(snapshotDownload(repo, o), { code: 'ERR_HUB_INTEGRITY', message: new RegExp(`${f.path}: the server sent more than the ${f.data.length} bytes`) });
  const blobs = await readdir(blobsDir(o.cacheDir, repo)).catch(() => []);
  t.notOk(blobs.some((b) => b.startsWith(sha256(f.data))), 'neither the blob nor an .incomplete is left');
});

t.test('a stalled body is dropped after the stall timeout and resumed', async (t) => {
  const { repo, files } = newRepo();
  const f = big(files);
  hub.fault(repo, f.path, { kind: 'stall', at: 70_000 });
  const r = await snapshotDownload(repo, { ...opts(), stallTimeoutMs: 300 });
  t.ok(readFileSync(join(r.dir, f.path)).equals(f.data));
  const gets = hub.downloads(repo, f.path).filter((q) => q.server === 'cdn');
  t.equal(gets.at(-1)?.range, 'bytes=70000-');
});

t.test('abort (Ctrl-C) leaves a resumable .incomplete, never a final file; the next run resumes', async (t) => {
  const { repo, files } = newRepo();
  const f = big(files);
  hub.fault(repo, f.path, { kind: 'stall', at: 80_000 });
  const o = opts();
  const ac = new AbortController();
  // One file at a time (largest first), so the progress total is the big file's own count.
  // The stall timer is far away: only the abort itself can end the first download.
  const p = snapshotDownload(repo, { ...o, concurrency: 1, stallTimeoutMs: 600_000, signal: ac.signal, onProgress: (pr) => pr.bytesDone >= 80_000 && pr.file === f.path && ac.abort() });
  await t.rejects(p, { code: 'ERR_ABORTED' });
  const blob = join(blobsDir(o.cacheDir, repo), sha256(f.data));
  t.notOk(existsSync(blob), 'no final blob');
  t.equal(readFileSync(`${blob}.incomplete`).length, 80_000, 'the received bytes are kept');
  const r = await snapshotDownload(repo, o);
  t.ok(readFileSync(join(r.dir, f.path)).equals(f.data));
  t.equal(hub.downloads(repo, f.path).at(-1)?.range, 'bytes=80000-', 'resumed where the abort left it');
});

t.test('not enough disk: refused before any download', async (t) => {
  const { repo, files } = newRepo();
  hub.announce(repo, big(files).path, { size: 1e15 });
  const before = hub.requests.length;
  await t.rejects(snapshotDownload(repo, opts()), { code: 'ERR_DISK_SPACE', message: /needs 1000000\.0 GB more .* set HF_HUB_CACHE/ });
  t.same(hub.requests.slice(before).filter((q) => q.path.includes('/resolve/')), [], 'no file requested');
});

t.test('the listing and the resolve headers disagree on the sha256: refused before the body', async (t) => {
  const { repo, files } = newRepo();
  hub.announce(repo, big(files).path, { sha256: 'a'.repeat(64) });
  await t.rejects(snapshotDownload(repo, opts()), { code: 'ERR_HUB_INTEGRITY', message: /announced as/ });
});

t.test('two downloads of the same files at once: one fetches, the other waits and reuses', async (t) => {
  const { repo, files } = newRepo();
  const f = big(files);
  hub.fault(repo, f.path, { kind: 'delay', ms: 500 });
  const o = opts();
  const [a, b] = await Promise.all([snapshotDownload(repo, o), snapshotDownload(repo, o)]);
  t.ok(readFileSync(join(a.dir, f.path)).equals(f.data));
  t.equal(a.dir, b.dir);
  t.equal(hub.downloads(repo, f.path).filter((q) => q.server === 'cdn').length, 1, 'the big file was fetched once');
  t.equal(a.bytesFetched + b.bytesFetched, files.reduce((s, x) => s + x.data.length, 0), 'every byte fetched once in total');
});

t.test('revision pinning: a tag resolves to its commit and gets a ref; a commit is used as is', async (t) => {
  const repo = 'org/pinned';
  const first = hub.addRepo(repo, repoFiles(101), { tags: ['v1.0'] });
  const second = hub.addRepo(repo, repoFiles(102));
  t.not(first, second);
  const o = opts();
  const byTag = await snapshotDownload(repo, { ...o, revision: 'v1.0' });
  t.equal(byTag.snapshot.commit, first, 'the tag still points at the first commit');
  t.equal(readFileSync(join(o.cacheDir, 'models--org--pinned', 'refs', 'v1.0'), 'utf8'), first, 'refs/v1.0');
  const main = await resolveRepo(repo, 'main', o);
  t.equal(main.commit, second, 'main moved on');
  const byCommit = await snapshotDownload(repo, { ...o, revision: first });
  t.equal(byCommit.bytesFetched, 0, 'the pinned commit is already in the cache');
  t.same((await readdir(join(o.cacheDir, 'models--org--pinned', 'refs'))).sort(), ['v1.0'], 'a commit hash writes no ref');
  t.ok(hub.downloads(repo, 'config.json').every((q) => q.path.includes(`/resolve/${first}/`)), 'files are fetched by commit, not by branch name');
});

t.test('a mirror that answers with another commit than the one asked for is refused', async (t) => {
  const { repo, files } = newRepo();
  hub.fault(repo, big(files).path, { kind: 'wrong-commit' });
  const o = opts();
  await t.rejects(snapshotDownload(repo, o), { code: 'ERR_HUB_INTEGRITY', message: /answered with commit 0{40}/ });
  t.notOk(existsSync(join(blobsDir(o.cacheDir, repo), sha256(big(files).data))), 'nothing under the final name');
});
