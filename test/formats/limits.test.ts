/**
 * Bounded resources for untrusted checkpoints: zip entries are inflated only within limits (declared
 * size, 200:1 ratio, 2 GiB cap, data.pkl 64 MiB), the unpickler bounds its memo, stack, container
 * elements and built bytes, and a tensor view must fit its storage before anything is allocated.
 * Before: a 1 MB .bin whose data.pkl inflated to 1 GiB was inflated in full (7 s, 2.17 GB peak).
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import { LlavaMedError } from '../../lib/errors.js';
import { openTorchZip, writeTorchZip } from '../../lib/formats/torch.js';
import { MAX_PLAIN_DEPTH, pickleToPlain, unpickle } from '../../lib/formats/unpickle.js';

const dir = mkdtempSync(join(tmpdir(), 'llava-limits-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A zip with the given entries; `deflate` entries are compressed, `declare` overrides the declared size. */
function zipOf(entries: { name: string; data: Buffer; deflate?: boolean; declare?: number }[]): Buffer {
  const body: Buffer[] = [];
  const cd: Buffer[] = [];
  let off = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const stored = e.deflate ? deflateRawSync(e.data, { level: 1 }) : e.data;
    const size = e.declare ?? e.data.length;
    const lfh = Buffer.alloc(30);
    lfh.writeUInt32LE(0x04034b50, 0); lfh.writeUInt16LE(20, 4); lfh.writeUInt16LE(e.deflate ? 8 : 0, 8);
    lfh.writeUInt32LE(crc32(e.data), 14); lfh.writeUInt32LE(stored.length, 18); lfh.writeUInt32LE(size, 22); lfh.writeUInt16LE(name.length, 26);
    const cdh = Buffer.alloc(46);
    cdh.writeUInt32LE(0x02014b50, 0); cdh.writeUInt16LE(e.deflate ? 8 : 0, 10);
    cdh.writeUInt32LE(crc32(e.data), 16); cdh.writeUInt32LE(stored.length, 20); cdh.writeUInt32LE(size, 24); cdh.writeUInt16LE(name.length, 28);
    cdh.writeUInt32LE(off, 42);
    body.push(lfh, name, stored);
    cd.push(cdh, name);
    off += 30 + name.length + stored.length;
  }
  const cdLen = cd.reduce((n, b) => n + b.length, 0);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0); eocd.writeUInt16LE(entries.length, 8); eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cdLen, 12); eocd.writeUInt32LE(off, 16);
  return Buffer.concat([...body, ...cd, eocd]);
}

async function errOf(p: Promise<unknown> | (() => unknown)): Promise<LlavaMedError> {
  const e = await (typeof p === 'function' ? Promise.resolve().then(p) : p).then(() => undefined, (x: unknown) => x);
  if (!(e instanceof LlavaMedError)) throw new Error(`expected a LlavaMedError, got ${e === undefined ? 'success' : String(e)}`);
  return e;
}

const EMPTY_DICT_PKL = Buffer.from([0x80, 0x02, 0x7d, 0x2e]);

t.test('zip: a data.pkl bomb is refused from its declared sizes, before inflating', async (t) => {
  // 48 MiB of zeros deflate to ~200 KB: within the 64 MiB data.pkl limit, but ~240:1.
  const zeros = Buffer.alloc(48 << 20);
  const p = join(dir, 'bomb.bin');
  writeFileSync(p, zipOf([{ name: 'archive/data.pkl', data: zeros, deflate: true }]));
  const before = process.memoryUsage().arrayBuffers;
  const e = await errOf(openTorchZip(p));
  t.equal(e.code, 'ERR_FORMAT');
  t.match(e.message, /would inflate \d+ bytes to 50331648 \(over 200:1\): a zip bomb/, 'refused for its ratio');
  t.ok(process.memoryUsage().arrayBuffers - before < 16 << 20, 'the 48 MiB were never allocated');

  // Over the data.pkl limit (64 MiB) whatever the ratio: random bytes barely compress.
  const big = join(dir, 'big-pkl.bin');
  writeFileSync(big, zipOf([{ name: 'archive/data.pkl', data: Buffer.alloc(1024), deflate: true, declare: (64 << 20) + 1 }]));
  const e2 = await errOf(openTorchZip(big));
  t.match(e2.message, /is 67108865 bytes, over the 67108864-byte limit/, 'data.pkl over 64 MiB is refused');

  // An entry that lies about its size stops at the declared size.
  const liar = join(dir, 'liar.bin');
  writeFileSync(liar, zipOf([{ name: 'archive/data.pkl', data: Buffer.concat([EMPTY_DICT_PKL, Buffer.alloc(100_000)]), deflate: true, declare: 4000 }]));
  t.match((await errOf(openTorchZip(liar))).message, /does not inflate/, 'more data than declared: refused');

  const ok = join(dir, 'ok.bin');
  writeFileSync(ok, zipOf([{ name: 'archive/data.pkl', data: EMPTY_DICT_PKL, deflate: true }]));
  const r = await openTorchZip(ok);
  t.same(r.names(), [], 'a normal deflated data.pkl still reads');
  await r.close();
  // Stored entries must hold what they declare.
  const st = join(dir, 'stored-liar.bin');
  writeFileSync(st, zipOf([{ name: 'archive/data.pkl', data: EMPTY_DICT_PKL, declare: 1 << 20 }]));
  t.match((await errOf(openTorchZip(st))).message, /stored entry 'archive\/data.pkl' declares 1048576 bytes but holds 4/);
});

t.test('zip: a deflated storage bomb is refused when the tensor is read', async (t) => {
  // A real state dict (writeTorchZip), then its storage re-zipped deflated: 8 MiB of zeros.
  const src = join(dir, 'src.bin');
  await writeTorchZip(src, [{ name: 'w', dtype: 'F32', shape: [2048, 1024], data: new Float32Array(2048 * 1024) }]);
  const r0 = await openTorchZip(src);
  await r0.close();
  const { readZipDirectory, readZipEntry } = await import('../../lib/formats/zip.js');
  const { open } = await import('node:fs/promises');
  const fh = await open(src, 'r');
  const size = (await fh.stat()).size;
  const entries = await readZipDirectory(fh, size, src);
  const files = [];
  for (const [name, e] of entries) files.push({ name, data: await readZipEntry(fh, size, e, src, 1 << 30), deflate: name.endsWith('data/0') });
  await fh.close();
  const p = join(dir, 'storage-bomb.bin');
  writeFileSync(p, zipOf(files));
  const r = await openTorchZip(p);
  t.teardown(() => r.close());
  const e = await errOf(r.get('w').readRaw());
  t.match(e.message, /over 200:1\): a zip bomb/, 'the storage is refused for its ratio');
});

t.test('torch: a tensor view larger than its storage is refused at open, before any allocation', async (t) => {
  const p = join(dir, 'view.bin');
  await writeTorchZip(p, [{ name: 'w', dtype: 'F32', shape: [4, 4], data: new Float32Array(16).fill(1) }]);
  // Patch the storage's declared numel in data.pkl (stored, uncompressed): 'cpu' then BININT1 16 -> 8.
  const buf = (await import('node:fs')).readFileSync(p);
  const at = buf.indexOf(Buffer.concat([Buffer.from([0x58, 3, 0, 0, 0]), Buffer.from('cpu'), Buffer.from([0x4b, 16])]));
  t.ok(at > 0, 'found the storage numel');
  buf[at + 9] = 8;
  writeFileSync(p, buf);
  const e = await errOf(openTorchZip(p));
  t.equal(e.code, 'ERR_FORMAT');
  t.match(e.message, /tensor 'w' \[4, 4\] at offset 0 needs 16 elements of storage '0', which has 8/);
});

// ---- the unpickler ----
const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const ustr = (s: string) => Buffer.concat([Buffer.from([0x58]), u32(Buffer.byteLength(s)), Buffer.from(s)]);
const ops = (...parts: (number[] | Buffer | string)[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.isBuffer(p) ? p : Buffer.from(p))));

t.test('unpickle: a list copied again and again through an allowed global hits the element limit', async (t) => {
  // l = [None] * 500_000 (memo 0), then builtins.list(l) 50 times: 25M elements from ~0.5 MB of pickle.
  const appends: Buffer[] = [];
  for (let i = 0; i < 500; i++) appends.push(Buffer.from([0x28]), Buffer.alloc(1000, 0x4e), Buffer.from([0x65]));
  const copy = ops('cbuiltins\nlist\n', [0x68, 0, 0x85, 0x52, 0x30]);
  const pkl = ops([0x80, 2, 0x5d, 0x71, 0], ...appends, ...Array.from({ length: 50 }, () => copy), [0x2e]);
  const e = await errOf(() => unpickle(pkl));
  t.equal(e.code, 'ERR_FORMAT');
  t.match(e.message, /more than 20000000 container elements/);
  t.equal((unpickle(ops([0x80, 2, 0x5d, 0x71, 0], ...appends.slice(0, 30), copy.subarray(0, copy.length - 1), [0x2e])) as unknown[]).length, 10_000, 'a few copies are fine');
});

t.test('unpickle: stack, memo and built bytes are bounded', async (t) => {
  const deep = ops([0x80, 2], Buffer.alloc(1_000_001, 0x4e), [0x2e]);
  t.match((await errOf(() => unpickle(deep))).message, /stack holds more than 1000000 values/, '1M+1 values on the stack');
  const memo = ops([0x80, 4, 0x4e], Buffer.alloc(11, 0x94), [0x2e]);
  t.match((await errOf(() => unpickle(memo, { maxMemo: 10 }))).message, /more than 10 memo entries/, 'memo limit');
  t.equal(unpickle(ops([0x80, 4, 0x4e], Buffer.alloc(10, 0x94), [0x2e]), { maxMemo: 10 }), null, 'at the memo limit: fine');
  // One 1 MiB string turned into bytes 100 times through _codecs.encode: 100 MiB from ~1 MiB of pickle.
  const enc = ops('c_codecs\nencode\n', [0x68, 0], ustr('latin1'), [0x86, 0x52, 0x30]);
  const bytesBomb = ops([0x80, 2], ustr('a'.repeat(1 << 20)), [0x71, 0], ...Array.from({ length: 100 }, () => enc), [0x2e]);
  t.match((await errOf(() => unpickle(bytesBomb))).message, /globals build more than \d+ bytes/, 'built bytes limit');
});

t.test('pickleToPlain: nesting deeper than the limit is a typed error, not a stack overflow', async (t) => {
  const n = MAX_PLAIN_DEPTH + 5;
  // [[[...]]]: n EMPTY_LISTs, then n-1 APPENDs.
  const pkl = ops([0x80, 2], Buffer.alloc(n, 0x5d), Buffer.alloc(n - 1, 0x61), [0x2e]);
  const v = unpickle(pkl);
  const e = await errOf(() => pickleToPlain(v));
  t.equal(e.code, 'ERR_FORMAT');
  t.match(e.message, /nests containers more than 1000 deep/);
  let x: unknown = [];
  for (let i = 0; i < 100_000; i++) x = [x];
  t.equal((await errOf(() => pickleToPlain(x))).code, 'ERR_FORMAT', '100k deep: still typed');
});
