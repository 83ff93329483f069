/**
 * lib/formats/file-read.ts: files opened by path must be regular files, opened without blocking, read
 * with a size limit and abortably. A FIFO without a writer used to block open() on a libuv pool thread
 * forever (stalling every fs call of the host), and /dev/zero grew memory without end.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LlavaMedError } from '../../lib/errors.js';
import { openRegularFile, readRegularFile, readTextFile } from '../../lib/formats/file-read.js';

const CHILD = fileURLToPath(new URL('./file-read-child.ts', import.meta.url));

function mkfifo(path: string): void {
  const r = spawnSync('mkfifo', [path]);
  if (r.status !== 0) throw new Error(`mkfifo failed: ${r.stderr}`);
}

async function errOf(p: Promise<unknown>): Promise<LlavaMedError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  if (!(e instanceof LlavaMedError)) throw new Error(`expected a LlavaMedError, got ${e === undefined ? 'success' : String(e)}`);
  return e;
}

t.test('regular files are read whole; size limit, abort between chunks', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'llava-fr-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const f = join(dir, 'a.bin');
  const data = Buffer.alloc(9 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131) & 255;
  await writeFile(f, data);
  t.ok((await readRegularFile(f)).equals(data), 'a 9 MiB file (three chunks) reads back byte for byte');
  await writeFile(join(dir, 't.json'), 'héllo');
  t.equal(await readTextFile(join(dir, 't.json')), 'héllo', 'text is UTF-8');
  t.equal(await readTextFile(join(dir, 'empty'), {}).catch((e: LlavaMedError) => e.code), 'ERR_FILE_NOT_FOUND', 'missing file');

  const big = await errOf(readRegularFile(f, { maxBytes: data.length - 1, what: 'Image file', tooLargeCode: 'ERR_IMAGE_TOO_LARGE' }));
  t.equal(big.code, 'ERR_IMAGE_TOO_LARGE', 'over maxBytes: the caller\'s code');
  t.match(big.message, /9437184 bytes, over the limit of 9437183/, 'the message gives both sizes');
  t.ok((await readRegularFile(f, { maxBytes: data.length })).equals(data), 'exactly maxBytes is accepted');

  // A signal that turns aborted after two checks: the read stops between chunks, not at the end.
  let checks = 0;
  const signal = { get aborted() { return ++checks > 2; }, reason: new Error('stop') } as unknown as AbortSignal;
  const ab = await errOf(readRegularFile(f, { signal }));
  t.equal(ab.code, 'ERR_ABORTED', 'aborted mid-read');
  t.equal(checks, 3, 'aborted at the second chunk, before the third was read');
  const pre = new AbortController();
  pre.abort();
  t.equal((await errOf(readRegularFile(f, { signal: pre.signal }))).code, 'ERR_ABORTED', 'an aborted signal reads nothing');
});

t.test('FIFOs, devices, directories and sockets are refused, naming the kind', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'llava-fr-'));
  const fifo = join(dir, 'fifo');
  mkfifo(fifo);
  const sock = join(dir, 'sock');
  const server = createServer();
  await new Promise<void>((r) => server.listen(sock, r));
  t.teardown(async () => {
    server.close();
    await rm(dir, { recursive: true, force: true });
  });
  const cases: [string, string, RegExp][] = [
    ['FIFO', fifo, /is a FIFO \(named pipe\), not a regular file/],
    ['/dev/zero', '/dev/zero', /is a character device/],
    ['/dev/urandom', '/dev/urandom', /is a character device/],
    ['directory', dir, /is a directory/],
    ['socket', sock, /is a socket/],
  ];
  for (const [name, p, re] of cases) {
    const e = await errOf(readRegularFile(p, { what: 'Image file' }));
    t.equal(e.code, 'ERR_INVALID_ARGUMENT', `${name}: ERR_INVALID_ARGUMENT`);
    t.match(e.message, re, `${name}: the message names what it is`);
    t.equal((await errOf(openRegularFile(p, { notRegularCode: 'ERR_NOT_GGUF' }))).code, 'ERR_NOT_GGUF', `${name}: the caller's code`);
  }
});

t.test('no reader blocks the libuv pool on a FIFO or a device (child with one pool thread)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'llava-fr-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const fifo = join(dir, 'fifo');
  mkfifo(fifo);
  const regular = join(dir, 'regular.txt');
  await writeFile(regular, 'hello');
  // A folder whose index, tokenizer.model and config.json are FIFOs.
  const fifoDir = join(dir, 'hf');
  await mkdir(fifoDir);
  for (const n of ['model.safetensors.index.json', 'tokenizer.model', 'config.json']) mkfifo(join(fifoDir, n));
  const result = join(dir, 'result.json');
  const env: NodeJS.ProcessEnv = { ...process.env, UV_THREADPOOL_SIZE: '1' };
  delete env.NODE_OPTIONS;
  // The TS loader tap runs this file with (tsx, package.json tap.node-arg; or @tapjs/typescript's ts-node).
  const loader = process.execArgv.filter((a) => /^--import=tsx$|@tapjs\/typescript/.test(a) || a.startsWith('--enable-source-maps'));
  const child = spawn(process.execPath, [...loader, CHILD, result, fifo, regular, fifoDir], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // Not a timing assertion: a generous guard so a hang fails the test instead of stalling the suite.
  const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code, sig] = await new Promise<[number | null, string | null]>((r) => child.on('exit', (c, s) => r([c, s])));
  clearTimeout(guard);
  const steps = JSON.parse(await readFile(result, 'utf8').catch(() => '[]')) as { name: string; code?: string; message?: string; ok?: boolean }[];
  t.equal(sig, null, `the child was not killed by the hang guard (last step: ${steps.at(-1)?.name ?? 'none'})`);
  t.equal(code, 0, `the child exited cleanly ${stderr.slice(-2000)}`);
  const readers = steps.slice(0, -1);
  t.equal(readers.length, 15, 'every reader ran');
  for (const s of readers) {
    t.notOk(s.ok, `${s.name}: refused`);
    t.ok(s.code !== undefined && s.code !== 'ERR_NATIVE', `${s.name}: a typed error (${s.code}: ${s.message})`);
    // The checkpoint-folder probe looks for regular files only, so a FIFO index counts as absent.
    t.match(s.message ?? '', s.name.startsWith('openHfCheckpoint') ? /holds no model\.safetensors/ : /not a regular file/, `${s.name}: says why`);
  }
  t.same(steps.at(-1), { name: 'fs.readFile(regular)', ok: true }, 'an unrelated fs.readFile still completes afterwards');
});
