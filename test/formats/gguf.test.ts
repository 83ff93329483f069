import t, { type Test } from 'tap';
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, existsSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLlavaMedError } from '../../lib/errors.js';
import {
  GgufWriter, GgufValueType as V, GgmlType, readGgufHeader, readGgufTensorData, tensorByteSize,
  ggufString, ggufNumber, ggufU32, ggufBool, ggufArray, ggufStringArray, ggufNumberArray, ggufTensor,
  ggmlBlockSize, ggmlTypeSize, type GgufHeader,
} from '../../lib/formats/gguf.js';

const dir = mkdtempSync(join(tmpdir(), 'llava-gguf-'));
t.teardown(() => { /* tmp files are tiny; leave them for post-mortem debugging */ });
let seq = 0;
const tmp = (name = 'f.gguf') => join(dir, `${seq++}-${name}`);

/** Little-endian byte builder for hand-crafted (often invalid) files. */
class Raw {
  parts: Buffer[] = [];
  u32(v: number) { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); this.parts.push(b); return this; }
  i32(v: number) { const b = Buffer.alloc(4); b.writeInt32LE(v); this.parts.push(b); return this; }
  u64(v: bigint | number) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.parts.push(b); return this; }
  i64(v: bigint | number) { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(v)); this.parts.push(b); return this; }
  str(s: string) { const b = Buffer.from(s); this.u64(b.length); this.parts.push(b); return this; }
  bytes(b: Buffer) { this.parts.push(b); return this; }
  get length() { return this.parts.reduce((n, p) => n + p.length, 0); }
  pad(a = 32) { const n = (a - (this.length % a)) % a; this.parts.push(Buffer.alloc(n)); return this; }
  build() { return Buffer.concat(this.parts); }
  head(nTensors: number | bigint, nKv: number | bigint, version = 3) { this.bytes(Buffer.from('GGUF')).u32(version).i64(nTensors).i64(nKv); return this; }
  kvU32(k: string, v: number) { return this.str(k).i32(V.UINT32).u32(v); }
  tensor(name: string, ne: (number | bigint)[], type: number, offset: number | bigint) {
    this.str(name).u32(ne.length); for (const d of ne) this.i64(d); return this.i32(type).u64(offset);
  }
}

async function expectCode(t: Test, file: string, code: string, msg: RegExp | undefined, what: string) {
  try {
    await readGgufHeader(file);
    t.fail(`${what}: expected ${code} but the file was accepted`);
  } catch (e) {
    t.ok(isLlavaMedError(e), `${what}: typed error (${(e as Error).message})`);
    t.equal((e as { code?: string }).code, code, `${what}: ${code}`);
    if (msg) t.match((e as Error).message, msg, `${what}: message`);
  }
}

function writeRaw(b: Buffer, name = 'raw.gguf') { const p = tmp(name); writeFileSync(p, b); return p; }

t.test('tensorByteSize and type table', async (t) => {
  t.equal(tensorByteSize(GgmlType.F32, [4, 3]), 48);
  t.equal(tensorByteSize(GgmlType.F16, [4096, 32000]), 4096 * 32000 * 2);
  t.equal(tensorByteSize(GgmlType.Q8_0, [64, 2]), 4 * 34);
  t.equal(tensorByteSize(GgmlType.Q4_K, [256, 10]), 10 * 144);
  t.equal(tensorByteSize(GgmlType.Q6_K, [512]), 2 * 210);
  t.equal(tensorByteSize(GgmlType.Q4_0, [32]), 18);
  t.equal(tensorByteSize(GgmlType.BF16, [3]), 6);
  t.equal(ggmlBlockSize(GgmlType.Q5_K), 256);
  t.equal(ggmlTypeSize(GgmlType.Q5_K), 176);
  t.equal(ggmlTypeSize(GgmlType.Q2_K), 84);
  t.equal(ggmlTypeSize(GgmlType.Q3_K), 110);
  t.throws(() => tensorByteSize(GgmlType.Q8_0, [33]), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => tensorByteSize(4 as GgmlType, [32]), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => tensorByteSize(GgmlType.F32, [2 ** 40, 2 ** 40]), { code: 'ERR_INVALID_ARGUMENT' });
});

async function writeSample(path: string, opts: { alignment?: number } = {}) {
  const w = await GgufWriter.create(path, opts);
  w.addString('general.architecture', 'llama');
  w.addU32('llama.block_count', 2);
  w.addArray('tokenizer.ggml.tokens', V.STRING, ['<unk>', '<s>', '▁hé']);
  const a = new Float32Array([1, 2, 3, 4, 5, 6]);
  const b = Buffer.alloc(tensorByteSize(GgmlType.F16, [32, 2]), 7); // 128 bytes: a multiple of the alignment
  w.addTensorInfo('a', GgmlType.F32, [3, 2]);
  w.addTensorInfo('b', GgmlType.F16, [32, 2]);
  await w.writeHeader();
  await w.writeTensor('a', Buffer.from(a.buffer));
  await w.writeTensor('b', b);
  await w.finish();
  return { a, b };
}

t.test('round trip of every value type, arrays, tensors', async (t) => {
  const p = tmp();
  const w = await GgufWriter.create(p);
  w.addU8('u8', 255).addI8('i8', -128).addU16('u16', 65535).addI16('i16', -32768)
    .addU32('u32', 0xffffffff).addI32('i32', -0x80000000).addF32('f32', 0.15625).addBool('t', true).addBool('f', false)
    .addString('s', 'héllo ✓ 𝔘').addString('empty', '').addU64('u64', 2n ** 64n - 1n).addI64('i64', -(2n ** 63n))
    .addF64('f64', Math.PI);
  w.addArray('a.u8', V.UINT8, [0, 1, 255]);
  w.addArray('a.i8', V.INT8, [-1, 127]);
  w.addArray('a.u16', V.UINT16, [1, 65535]);
  w.addArray('a.i16', V.INT16, [-2]);
  w.addArray('a.u32', V.UINT32, [4000000000]);
  w.addArray('a.i32', V.INT32, [23, -5]);
  w.addArray('a.f32', V.FLOAT32, [0.5, -1.25]);
  w.addArray('a.bool', V.BOOL, [true, false, true]);
  w.addArray('a.str', V.STRING, ['x', '', 'ζ']);
  w.addArray('a.u64', V.UINT64, [1n, 2n ** 63n]);
  w.addArray('a.i64', V.INT64, [-1n]);
  w.addArray('a.f64', V.FLOAT64, [1e300]);
  w.addArray('a.empty', V.INT32, []);
  const q = Buffer.alloc(tensorByteSize(GgmlType.Q8_0, [64, 1]));
  for (let i = 0; i < q.length; i++) q[i] = i & 0xff;
  w.addTensorInfo('q', GgmlType.Q8_0, [64, 1]);
  w.addTensorInfo('v', GgmlType.F32, [5]);
  w.addTensorInfo('z', GgmlType.F32, [0, 3]); // zero elements is legal in ggml
  const progress: number[] = [];
  await w.writeHeader();
  await w.writeTensor('q', q);
  // streamed in chunks
  const v = Buffer.from(new Float32Array([1, 2, 3, 4, 5]).buffer);
  await w.writeTensor('v', [v.subarray(0, 7), v.subarray(7)]);
  await w.writeTensor('z', Buffer.alloc(0));
  await w.finish();
  t.same(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temp file left');

  const h = await readGgufHeader(p);
  t.equal(h.version, 3);
  t.equal(h.alignment, 32);
  t.equal(ggufNumber(h, 'u8'), 255);
  t.equal(ggufNumber(h, 'i8'), -128);
  t.equal(ggufNumber(h, 'u16'), 65535);
  t.equal(ggufNumber(h, 'i16'), -32768);
  t.equal(ggufU32(h, 'u32'), 0xffffffff);
  t.equal(ggufNumber(h, 'i32'), -0x80000000);
  t.equal(ggufNumber(h, 'f32'), 0.15625);
  t.equal(ggufBool(h, 't'), true);
  t.equal(ggufBool(h, 'f'), false);
  t.equal(ggufString(h, 's'), 'héllo ✓ 𝔘');
  t.equal(ggufString(h, 'empty'), '');
  t.equal(h.kv.get('u64')!.value, 2n ** 64n - 1n);
  t.equal(h.kv.get('i64')!.value, -(2n ** 63n));
  t.throws(() => ggufNumber(h, 'u64'), { code: 'ERR_GGUF_CORRUPT' }, 'unsafe 64-bit value is not silently rounded');
  t.equal(ggufNumber(h, 'f64'), Math.PI);
  t.same(ggufNumberArray(h, 'a.u8'), [0, 1, 255]);
  t.same(ggufNumberArray(h, 'a.i8'), [-1, 127]);
  t.same(ggufNumberArray(h, 'a.u16'), [1, 65535]);
  t.same(ggufNumberArray(h, 'a.i16'), [-2]);
  t.same(ggufNumberArray(h, 'a.u32', V.UINT32), [4000000000]);
  t.same(ggufNumberArray(h, 'a.i32', V.INT32), [23, -5]);
  t.same(ggufNumberArray(h, 'a.f32'), [0.5, -1.25]);
  t.same(ggufArray(h, 'a.bool', V.BOOL), [true, false, true]);
  t.same(ggufStringArray(h, 'a.str'), ['x', '', 'ζ']);
  t.same(ggufArray(h, 'a.u64'), [1n, 2n ** 63n]);
  t.same(ggufArray(h, 'a.i64'), [-1n]);
  t.same(ggufNumberArray(h, 'a.f64'), [1e300]);
  t.same(ggufArray(h, 'a.empty', V.INT32), []);
  t.equal(h.kv.get('a.empty')!.elemType, V.INT32);

  t.equal(h.tensors.length, 3);
  const tq = ggufTensor(h, 'q');
  t.same(tq.shape, [64, 1]);
  t.equal(tq.type, GgmlType.Q8_0);
  t.equal(tq.byteSize, 68);
  t.equal(tq.offset, h.dataOffset);
  t.equal(h.dataOffset % 32, 0);
  t.equal(ggufTensor(h, 'v').offset, h.dataOffset + 96, 'offsets are padded running sums');
  t.ok((await readGgufTensorData(h, 'q')).equals(q));
  t.ok((await readGgufTensorData(h, 'v')).equals(v));
  t.equal((await readGgufTensorData(h, 'z')).length, 0);
  t.same(progress, []);

  // typed accessor errors
  t.throws(() => ggufString(h, 'u8'), { code: 'ERR_GGUF_CORRUPT', message: /'u8' must be STRING but is UINT8/ });
  t.throws(() => ggufString(h, 'nope'), { code: 'ERR_GGUF_CORRUPT', message: /'nope' is missing/ });
  t.throws(() => ggufU32(h, 'i32'), { code: 'ERR_GGUF_CORRUPT' });
  t.throws(() => ggufStringArray(h, 'a.i32'), { code: 'ERR_GGUF_CORRUPT', message: /ARRAY of STRING but is ARRAY of INT32/ });
  t.throws(() => ggufBool(h, 'a.bool'), { code: 'ERR_GGUF_CORRUPT' });
  t.throws(() => ggufTensor(h, 'missing'), { code: 'ERR_GGUF_CORRUPT' });
});

t.test('custom alignment and progress callback', async (t) => {
  const p = tmp();
  const seen: { name: string; bytesWritten: number; totalBytes: number }[] = [];
  const w = await GgufWriter.create(p, { alignment: 64, onTensor: (x) => seen.push(x) });
  w.addTensorInfo('x', GgmlType.F32, [3]);
  w.addTensorInfo('y', GgmlType.F32, [20]);
  await w.writeHeader();
  await w.writeTensor('x', Buffer.alloc(12));
  await w.writeTensor('y', Buffer.alloc(80));
  await w.finish();
  const h = await readGgufHeader(p);
  t.equal(h.alignment, 64);
  t.equal(ggufU32(h, 'general.alignment'), 64);
  t.equal(h.dataOffset % 64, 0);
  t.equal(h.tensors[1]!.offset - h.tensors[0]!.offset, 64);
  t.same(seen.map((s) => [s.name, s.bytesWritten, s.totalBytes]), [['x', 64, 192], ['y', 192, 192]]);
  t.equal(readFileSync(p).length, h.dataOffset + 192);
});

t.test('writer misuse is refused and leaves nothing behind', async (t) => {
  const p = tmp('misuse.gguf');
  const w = await GgufWriter.create(p);
  t.throws(() => w.addU8('x', 256), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => w.addI32('x', 1.5), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => w.addString('x', 3 as unknown as string), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => w.addArray('x', V.ARRAY, []), { code: 'ERR_INVALID_ARGUMENT' }, 'nested arrays');
  t.throws(() => w.addKv('general.alignment', V.INT32, 32), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => w.addU32('general.alignment', 48), { code: 'ERR_INVALID_ARGUMENT' });
  w.addU32('k', 1);
  t.throws(() => w.addU32('k', 2), { code: 'ERR_INVALID_ARGUMENT' }, 'duplicate key');
  t.throws(() => w.addTensorInfo('x'.repeat(64), GgmlType.F32, [1]), { code: 'ERR_INVALID_ARGUMENT' }, 'long name');
  t.throws(() => w.addTensorInfo('x', GgmlType.F32, [1, 1, 1, 1, 1]), { code: 'ERR_INVALID_ARGUMENT' }, '5 dims');
  t.throws(() => w.addTensorInfo('x', GgmlType.Q8_0, [31]), { code: 'ERR_INVALID_ARGUMENT' }, 'block size');
  w.addTensorInfo('a', GgmlType.F32, [2]);
  w.addTensorInfo('b', GgmlType.F32, [2]);
  t.throws(() => w.addTensorInfo('a', GgmlType.F32, [2]), { code: 'ERR_INVALID_ARGUMENT' }, 'duplicate tensor');
  await t.rejects(w.writeTensor('a', Buffer.alloc(8)), { code: 'ERR_INVALID_ARGUMENT' }, 'before header');
  await w.writeHeader();
  t.throws(() => w.addU32('late', 1), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(w.writeTensor('b', Buffer.alloc(8)), { code: 'ERR_INVALID_ARGUMENT', message: /expected tensor 'a'/ });
  await t.rejects(w.writeTensor('a', Buffer.alloc(7)), { code: 'ERR_INVALID_ARGUMENT', message: /must be 8 bytes/ });
  await w.writeTensor('a', Buffer.alloc(8));
  await t.rejects(w.finish(), { code: 'ERR_INVALID_ARGUMENT', message: /never written.*'b'/ });
  t.notOk(existsSync(p), 'no output file');
  t.same(readdirSync(dir).filter((f) => f.includes('misuse')), [], 'temp file removed');

  const p2 = tmp('aborted.gguf');
  const w2 = await GgufWriter.create(p2);
  await w2.writeHeader();
  await w2.abort();
  await w2.abort();
  t.same(readdirSync(dir).filter((f) => f.includes('aborted')), [], 'abort removes the temp file');

  const p3 = tmp('chunks.gguf');
  const w3 = await GgufWriter.create(p3);
  w3.addTensorInfo('a', GgmlType.F32, [2]);
  await w3.writeHeader();
  await t.rejects(w3.writeTensor('a', [Buffer.alloc(4), Buffer.alloc(8)]), { code: 'ERR_INVALID_ARGUMENT' }, 'too many chunked bytes');
  t.same(readdirSync(dir).filter((f) => f.includes('chunks')), [], 'failed chunked write removes the temp file');

  await t.rejects(GgufWriter.create(join(dir, 'no-such-dir', 'x.gguf')), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('reads the real llama.cpp vocab file ggml-vocab-llama-spm.gguf', async (t) => {
  const p = new URL('../../deps/llama.cpp/models/ggml-vocab-llama-spm.gguf', import.meta.url).pathname;
  const h = await readGgufHeader(p);
  t.equal(h.version, 3);
  t.equal(ggufString(h, 'general.architecture'), 'llama');
  t.equal(ggufString(h, 'tokenizer.ggml.model'), 'llama');
  const tokens = ggufStringArray(h, 'tokenizer.ggml.tokens');
  t.equal(tokens.length, 32000);
  t.same([tokens[0], tokens[1], tokens[2], tokens[3], tokens[259], tokens[1000], tokens[31999]],
    ['<unk>', '<s>', '</s>', '<0x00>', '▁▁', 'ied', '给']);
  const scores = ggufNumberArray(h, 'tokenizer.ggml.scores', V.FLOAT32);
  t.equal(scores.length, 32000);
  t.equal(scores[1000], -741);
  t.equal(ggufNumberArray(h, 'tokenizer.ggml.token_type', V.INT32).length, 32000);
  t.equal(ggufU32(h, 'tokenizer.ggml.bos_token_id'), 1);
  t.equal(ggufBool(h, 'tokenizer.ggml.add_bos_token'), true);
  t.equal(ggufNumber(h, 'llama.vocab_size'), 32000);
  t.equal(h.tensors.length, 0);
  t.equal(h.fileSize, readFileSync(p).length);
});

t.test('not a GGUF file', async (t) => {
  await expectCode(t, writeRaw(Buffer.from('GGML\x03\0\0\0'), 'magic.gguf'), 'ERR_NOT_GGUF', /is not a GGUF file \(starts with "GGML"/, 'bad magic');
  await expectCode(t, writeRaw(Buffer.from('hello, I am a text file renamed to .gguf\n'), 'text.gguf'), 'ERR_NOT_GGUF', /starts with "hell"/, 'text file');
  await expectCode(t, writeRaw(Buffer.alloc(0), 'empty.gguf'), 'ERR_NOT_GGUF', /empty/, 'empty file');
  await expectCode(t, writeRaw(Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0]), 'zip.gguf'), 'ERR_NOT_GGUF', /ZIP archive, e.g. a PyTorch/, 'zip');
  await expectCode(t, writeRaw(Buffer.from([0x80, 0x02, 0xff, 0x01]), 'pkl.gguf'), 'ERR_NOT_GGUF', /bytes 80 02 ff 01: a Python pickle/, 'pickle');
  await expectCode(t, writeRaw(Buffer.from([1, 2, 3, 0xfe]), 'bin.gguf'), 'ERR_NOT_GGUF', /bytes 01 02 03 fe/, 'binary');
  await t.rejects(readGgufHeader(join(dir, 'does-not-exist.gguf')), { code: 'ERR_FILE_NOT_FOUND' });
  await t.rejects(readGgufHeader(dir), { code: 'ERR_NOT_GGUF' }, 'a directory');
});

t.test('hand-crafted bad headers (modelled on test-gguf.cpp)', async (t) => {
  const C = 'ERR_GGUF_CORRUPT';
  const cases: [string, Buffer, RegExp][] = [
    ['version 0', new Raw().head(0, 0, 0).build(), /version 0/],
    ['version 1', new Raw().head(0, 0, 1).build(), /version 1/],
    ['future version', new Raw().head(0, 0, 4).build(), /version 4/],
    ['big-endian version', new Raw().head(0, 0, 0x03000000).build(), /big-endian/],
    ['n_tensors -1', new Raw().head(-1, 0).build(), /tensor count -1/],
    ['n_kv -1', new Raw().head(0, -1).build(), /key\/value count -1/],
    ['huge n_kv', new Raw().head(0, 2n ** 62n).build(), /key\/value count/],
    ['n_kv beyond file', new Raw().head(0, 1000).build(), /cannot fit/],
    ['huge key size', new Raw().head(0, 1).u64(2n ** 63n).bytes(Buffer.alloc(16)).build(), /key 0 claims/],
    ['empty key', new Raw().head(0, 1).str('').i32(V.UINT8).bytes(Buffer.alloc(8)).build(), /key 0 is empty/],
    ['bad value type', new Raw().head(0, 1).str('k').i32(13).bytes(Buffer.alloc(8)).build(), /invalid value type 13/],
    ['negative value type', new Raw().head(0, 1).str('k').i32(-1).bytes(Buffer.alloc(8)).build(), /invalid value type -1/],
    ['duplicate key', new Raw().head(0, 2).kvU32('k', 1).kvU32('k', 2).build(), /duplicate key 'k'/],
    ['huge string length', new Raw().head(0, 1).str('k').i32(V.STRING).u64(2n ** 40n).bytes(Buffer.alloc(16)).build(), /claims 1099511627776 bytes/],
    ['string past EOF', new Raw().head(0, 1).str('k').i32(V.STRING).u64(100).bytes(Buffer.from('abc')).build(), /only 3 remain/],
    ['nested array', new Raw().head(0, 1).str('k').i32(V.ARRAY).i32(V.ARRAY).u64(1).bytes(Buffer.alloc(16)).build(), /nested array/],
    ['array bad elem type', new Raw().head(0, 1).str('k').i32(V.ARRAY).i32(99).u64(1).bytes(Buffer.alloc(16)).build(), /invalid element type 99/],
    ['huge array count', new Raw().head(0, 1).str('k').i32(V.ARRAY).i32(V.UINT8).u64(2n ** 60n).bytes(Buffer.alloc(16)).build(), /limit/],
    ['array count beyond file', new Raw().head(0, 1).str('k').i32(V.ARRAY).i32(V.INT32).u64(1000).bytes(Buffer.alloc(16)).build(), /only 16 bytes remain/],
    ['string array beyond file', new Raw().head(0, 1).str('k').i32(V.ARRAY).i32(V.STRING).u64(3).str('a').build(), /claims 3 elements/],
    ['alignment wrong type', new Raw().head(0, 1).str('general.alignment').i32(V.INT32).i32(32).build(), /must be UINT32 but is INT32/],
    ['alignment 0', new Raw().head(0, 1).kvU32('general.alignment', 0).build(), /not a power of two/],
    ['alignment 3', new Raw().head(0, 1).kvU32('general.alignment', 3).build(), /not a power of two/],
    ['alignment 2^31', new Raw().head(0, 1).kvU32('general.alignment', 2 ** 31).build(), /not a power of two/],
    ['tensor name too long', new Raw().head(1, 0).tensor('x'.repeat(64), [1], 0, 0).pad().bytes(Buffer.alloc(32)).build(), /name of tensor 0 claims 64 bytes/],
    ['n_dims 5', new Raw().head(1, 0).tensor('t', [1, 1, 1, 1, 1], 0, 0).pad().bytes(Buffer.alloc(32)).build(), /5 dimensions/],
    ['negative ne', new Raw().head(1, 0).tensor('t', [-1], 0, 0).pad().bytes(Buffer.alloc(32)).build(), /negative/],
    ['ne product overflow', new Raw().head(1, 0).tensor('t', [2n ** 32n, 2n ** 32n], 0, 0).pad().bytes(Buffer.alloc(32)).build(), /overflows int64/],
    ['bytes beyond file', new Raw().head(1, 0).tensor('t', [2n ** 20n, 2n ** 20n], 0, 0).pad().bytes(Buffer.alloc(32)).build(), /outside the file/],
    ['bad ggml type', new Raw().head(1, 0).tensor('t', [1], 4, 0).pad().bytes(Buffer.alloc(32)).build(), /unknown ggml type 4/],
    ['type out of range', new Raw().head(1, 0).tensor('t', [1], 43, 0).pad().bytes(Buffer.alloc(32)).build(), /unknown ggml type 43/],
    ['ne[0] not a block multiple', new Raw().head(1, 0).tensor('t', [33], GgmlType.Q8_0, 0).pad().bytes(Buffer.alloc(64)).build(), /not a multiple of the block size 32/],
    ['misaligned offset', new Raw().head(2, 0).tensor('a', [1], 0, 0).tensor('b', [1], 0, 4).pad().bytes(Buffer.alloc(64)).build(), /offset 4 is not a multiple of the alignment 32/],
    ['offset not the running sum', new Raw().head(2, 0).tensor('a', [1], 0, 0).tensor('b', [1], 0, 64).pad().bytes(Buffer.alloc(128)).build(), /has offset 64, expected 32/],
    ['first offset not 0', new Raw().head(1, 0).tensor('a', [1], 0, 32).pad().bytes(Buffer.alloc(128)).build(), /expected 0/],
    ['duplicate tensor name', new Raw().head(2, 0).tensor('a', [1], 0, 0).tensor('a', [1], 0, 32).pad().bytes(Buffer.alloc(64)).build(), /duplicate tensor name 'a'/],
    ['data not enough', new Raw().head(1, 0).tensor('a', [16], 0, 0).pad().bytes(Buffer.alloc(60)).build(), /'a' data .* outside the file/],
    ['inconsistent custom align', new Raw().head(2, 1).kvU32('general.alignment', 64).tensor('a', [1], 0, 0).tensor('b', [1], 0, 32).pad(64).bytes(Buffer.alloc(128)).build(), /offset 32 is not a multiple of the alignment 64/],
    ['data section past EOF', new Raw().head(1, 0).tensor('a', [0], 0, 0).build(), /data section would start/],
  ];
  for (const [what, buf, re] of cases) await expectCode(t, writeRaw(buf), C, re, what);

  // test-gguf.cpp's success cases: zero-dim tensor and custom alignment load fine.
  const okZero = new Raw().head(1, 0).tensor('z', [0, 4], 0, 0).pad().build();
  const hz = await readGgufHeader(writeRaw(okZero));
  t.equal(hz.tensors[0]!.byteSize, 0);
  const okAlign = new Raw().head(2, 1).kvU32('general.alignment', 64).tensor('a', [1], 0, 0).tensor('b', [1], 0, 64).pad(64).bytes(Buffer.alloc(68)).build();
  const ha = await readGgufHeader(writeRaw(okAlign));
  t.equal(ha.alignment, 64);
  t.equal(ha.tensors[1]!.offset, ha.dataOffset + 64);
  // Caps are options: a legal but over-cap file is refused when the caller asks for less.
  await t.rejects(readGgufHeader(writeRaw(new Raw().head(0, 2).kvU32('a', 1).kvU32('b', 2).build()), { maxKv: 1 }), { code: C });
});

t.test('a file truncated at every offset is refused with a typed error', async (t) => {
  const p = tmp('whole.gguf');
  await writeSample(p);
  const whole = readFileSync(p);
  const h = await readGgufHeader(p);
  t.equal(h.tensors.at(-1)!.offset + h.tensors.at(-1)!.byteSize, whole.length, 'no trailing padding: every cut loses data');
  let ok = 0;
  const cut = tmp('cut.gguf');
  for (let n = 0; n < whole.length; n++) {
    writeFileSync(cut, whole.subarray(0, n));
    try {
      await readGgufHeader(cut);
      t.fail(`truncated at ${n} was accepted`);
    } catch (e) {
      const want = n < 4 ? 'ERR_NOT_GGUF' : 'ERR_GGUF_CORRUPT';
      if (isLlavaMedError(e, want)) ok++;
      else t.fail(`truncated at ${n}: ${String(e)}`);
    }
  }
  t.equal(ok, whole.length, `${whole.length} truncations all refused`);
});

t.test('random corruption of the header never escapes as an untyped error', async (t) => {
  const p = tmp('base.gguf');
  await writeSample(p);
  const whole = readFileSync(p);
  const h: GgufHeader = await readGgufHeader(p);
  const headerLen = h.dataOffset;
  let rng = 12345;
  const rand = (n: number) => { rng = (rng * 1103515245 + 12345) & 0x7fffffff; return rng % n; };
  const m = tmp('mut.gguf');
  let accepted = 0, refused = 0;
  const specials = [0n, 1n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n];
  const started = Date.now();
  for (let i = 0; i < 400; i++) {
    const b = Buffer.from(whole);
    if (i % 2) {
      for (let k = 1 + rand(8); k > 0; k--) b[4 + rand(headerLen - 4)] = rand(256);
    } else {
      const at = 4 + rand(headerLen - 12);
      b.writeBigUInt64LE(specials[rand(specials.length)]!, at);
    }
    writeFileSync(m, b);
    try { await readGgufHeader(m); accepted++; } catch (e) {
      if (isLlavaMedError(e, 'ERR_GGUF_CORRUPT') || isLlavaMedError(e, 'ERR_NOT_GGUF')) refused++;
      else t.fail(`mutation ${i}: untyped ${String(e)}`);
    }
  }
  t.equal(accepted + refused, 400);
  t.ok(refused > 100, `most mutations refused (${refused})`);
  t.ok(Date.now() - started < 30000, 'no mutation hangs the reader');
});

t.test('reader is bounded: a header claiming a giant array is refused before allocating', async (t) => {
  // 2^24 UINT64 elements would be 128 MiB; the file has 16 bytes after the count.
  const p = writeRaw(new Raw().head(0, 1).str('k').i32(V.ARRAY).i32(V.UINT64).u64(2 ** 24).bytes(Buffer.alloc(16)).build());
  const before = process.memoryUsage().arrayBuffers;
  await expectCode(t, p, 'ERR_GGUF_CORRUPT', /only 16 bytes remain/, 'giant array');
  t.ok(process.memoryUsage().arrayBuffers - before < 64 << 20, 'no giant allocation');
  // copy of the real vocab renamed: still readable (name does not matter, content does)
  const real = new URL('../../deps/llama.cpp/models/ggml-vocab-llama-spm.gguf', import.meta.url).pathname;
  const renamed = tmp('vocab.bin');
  copyFileSync(real, renamed);
  t.equal((await readGgufHeader(renamed)).kv.size, 22);
});

t.test('string-array elements: each length is checked against the limit and the file (the buffered fast path too)', async (t) => {
  // a vocabulary-like array, the bad element in the middle so the reader is in its per-element fast path
  const arr = (third: (r: Raw) => Raw) => third(new Raw().head(0, 1).str('tokenizer.ggml.tokens').i32(V.ARRAY).i32(V.STRING).u64(5).str('a').str('bb')).str('d').str('e').bytes(Buffer.alloc(64));
  const ok = writeRaw(arr((r) => r.str('ccc')).build(), 'arr-ok.gguf');
  t.same((await readGgufHeader(ok)).kv.get('tokenizer.ggml.tokens')?.value, ['a', 'bb', 'ccc', 'd', 'e'], 'a well-formed array reads back');
  try {
    await readGgufHeader(ok, { maxStringBytes: 2 });
    t.fail('an element over maxStringBytes was accepted');
  } catch (e) {
    t.equal((e as { code?: string }).code, 'ERR_GGUF_CORRUPT');
    t.match((e as Error).message, /element 2 of 'tokenizer.ggml.tokens' claims 3 bytes, more than the limit of 2/, 'the element over the limit is named');
  }
  // 2^32 + 1: the low 32 bits alone (1) would fit
  await expectCode(t, writeRaw(arr((r) => r.u64(2n ** 32n + 1n).bytes(Buffer.from('c'))).build(), 'arr-hi.gguf'), 'ERR_GGUF_CORRUPT', /element 2 of 'tokenizer.ggml.tokens' claims 4294967297 bytes, more than the limit/, 'length with the high word set');
  // within the limit but past the end of the file
  await expectCode(t, writeRaw(new Raw().head(0, 1).str('k').i32(V.ARRAY).i32(V.STRING).u64(2).str('a').u64(1000).bytes(Buffer.from('xyz')).build(), 'arr-end.gguf'), 'ERR_GGUF_CORRUPT', /element 1 of 'k' claims 1000 bytes but only 3 remain/, 'length past the end of the file');
});

t.test('compactArrays: the same values and the same errors, without a JS value per element', async (t) => {
  // llama.cpp's own LLaMA SentencePiece vocabulary file: 32000 tokens, scores and types.
  const { SPM_VOCAB_PATH: model } = await import('../helpers/tiny-gguf.js');
  const keys = ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type'];
  const plain = await readGgufHeader(model);
  const compact = await readGgufHeader(model, { compactArrays: keys });
  for (const k of keys) {
    const [a, b] = [plain.kv.get(k)!, compact.kv.get(k)!];
    t.equal(a.compact, undefined, `${k}: not compact unless asked`);
    t.ok(b.compact, `${k}: compact`);
    t.equal(b.compact!.length, (a.value as unknown[]).length, `${k}: length`);
    t.equal(b.elemType, a.elemType, `${k}: element type`);
    t.same(b.value, a.value, `${k}: value decodes to what the plain read gives`);
  }
  const tokens = plain.kv.get('tokenizer.ggml.tokens')!.value as string[];
  t.ok(tokens.length >= 32000, `a real vocabulary (${tokens.length} tokens)`);
  const c = compact.kv.get('tokenizer.ggml.tokens')!.compact!;
  t.same(c.data, Buffer.concat(tokens.map((s) => Buffer.from(s))), 'token bytes back to back');
  t.equal(c.offsets![tokens.length], c.data.length, 'the last offset is the end');
  t.same(compact.kv.get('llama.block_count'), plain.kv.get('llama.block_count'), 'other keys as before');

  // Hostile arrays: compact reading stops with the plain reader's error.
  const arr = (elems: (r: Raw) => void, count: number) => {
    const r = new Raw().head(0, 1).str('tokenizer.ggml.tokens').i32(V.ARRAY).i32(V.STRING).u64(count);
    elems(r);
    return r.build();
  };
  const cases: [string, Buffer, Record<string, number>][] = [
    ['a string longer than the file', arr((r) => r.str('a').str('bb').u64(1000).bytes(Buffer.from('ccc')), 3), {}],
    ['a string over maxStringBytes', arr((r) => r.str('a').str('bb').str('x'.repeat(40)), 3), { maxStringBytes: 16 }],
    ['truncated inside a string', arr((r) => r.str('a').u64(10).bytes(Buffer.from('abc')), 2), {}],
    ['more elements than bytes', arr((r) => r.str('a'), 1000), {}],
    ['more elements than the limit', arr((r) => r.str('a').str('b').str('c'), 3), { maxArrayLength: 2 }],
  ];
  for (const [what, bytes, limits] of cases) {
    const f = tmp('compact.gguf');
    writeFileSync(f, bytes);
    const err = async (o: object) => readGgufHeader(f, o).then(() => undefined, (e: Error & { code?: string }) => `${e.code}: ${e.message}`);
    const [a, b] = [await err(limits), await err({ ...limits, compactArrays: ['tokenizer.ggml.tokens'] })];
    t.match(a, /^ERR_GGUF_CORRUPT: /, `${what}: refused`);
    t.equal(b, a, `${what}: the same error when compact`);
  }
});
