import t from 'tap';
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSafetensors, writeSafetensors } from '../../lib/formats/safetensors.js';
import { f32ToF16Buffer, f32ToBf16Buffer } from '../../lib/formats/half.js';

const dir = mkdtempSync(join(tmpdir(), 'llava-st-'));
let seq = 0;
const tmp = (name = 'x.safetensors') => join(dir, `${seq++}-${name}`);

/** Build a safetensors file by hand from a header object and a data buffer. */
function craft(header: unknown, data: Buffer, rawHeader?: string): string {
  const json = Buffer.from(rawHeader ?? JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const p = tmp();
  writeFileSync(p, Buffer.concat([len, json, data]));
  return p;
}

t.test('reads a hand-made file (layout from the spec) with every float dtype and metadata', async (t) => {
  const a = new Float32Array([1, -2, 3.5, 0.25, 1e-3, 7]);
  const f16 = f32ToF16Buffer(new Float32Array([1, 0.5, -2, 65504]));
  const bf = f32ToBf16Buffer(new Float32Array([3, -0.5]));
  const f64 = Buffer.from(new Float64Array([Math.PI]).buffer);
  const i64 = Buffer.alloc(16); i64.writeBigInt64LE(-5n, 0); i64.writeBigInt64LE(7n, 8);
  const data = Buffer.concat([Buffer.from(a.buffer), f16, bf, f64, i64]);
  let o = 0;
  const at = (n: number) => { const r = [o, o + n]; o += n; return r; };
  const header = {
    __metadata__: { format: 'pt' },
    'w.f32': { dtype: 'F32', shape: [2, 3], data_offsets: at(24) },
    'w.f16': { dtype: 'F16', shape: [4], data_offsets: at(8) },
    'w.bf16': { dtype: 'BF16', shape: [2, 1], data_offsets: at(4) },
    'w.f64': { dtype: 'F64', shape: [], data_offsets: at(8) },
    'ids': { dtype: 'I64', shape: [2], data_offsets: at(16) },
  };
  const r = await openSafetensors(craft(header, data));
  t.same(r.names().sort(), ['ids', 'w.bf16', 'w.f16', 'w.f32', 'w.f64']);
  t.same(r.metadata, { format: 'pt' });
  const w = r.get('w.f32');
  t.equal(w.dtype, 'F32');
  t.same(w.shape, [2, 3]);
  t.equal(w.byteLength, 24);
  t.same([...(await w.readF32())], [...a]);
  t.same([...(await r.get('w.f16').readF32())], [1, 0.5, -2, 65504]);
  t.same([...(await r.get('w.bf16').readF32())], [3, -0.5]);
  t.same([...(await r.get('w.f64').readF32())], [Math.fround(Math.PI)]);
  t.ok((await r.get('ids').readRaw()).equals(i64));
  await t.rejects(r.get('ids').readF32(), { code: 'ERR_FORMAT', message: /I64/ });
  t.throws(() => r.get('nope'), { code: 'ERR_FORMAT', message: /'nope'/ });
  t.ok(r.has('ids'));
  t.notOk(r.has('nope'));
  await r.close();
  await t.rejects(r.get('w.f32').readRaw(), { code: 'ERR_DISPOSED' });
});

t.test('write then read round trip (float arrays encoded, raw bytes kept), header padded to 8', async (t) => {
  const p = tmp('rt.safetensors');
  const vals = new Float32Array([0.1, 0.2, -3, 4]);
  await writeSafetensors(p, [
    { name: 'a', dtype: 'F32', shape: [2, 2], data: vals },
    { name: 'b', dtype: 'F16', shape: [4], data: vals },
    { name: 'c', dtype: 'BF16', shape: [1, 4], data: vals },
    { name: 'd', dtype: 'U8', shape: [3], data: Buffer.from([1, 2, 3]) },
    { name: 'e', dtype: 'F64', shape: [2], data: new Float64Array([1.5, -2]) },
  ], { note: 'hi' });
  const raw = readFileSync(p);
  const hlen = Number(raw.readBigUInt64LE(0));
  t.equal(hlen % 8, 0, 'header length is a multiple of 8');
  t.equal(raw.length, 8 + hlen + 16 + 8 + 8 + 3 + 16);
  t.same(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  const r = await openSafetensors(p);
  t.same(r.metadata, { note: 'hi' });
  t.same([...(await r.get('a').readF32())], [...vals]);
  t.ok((await r.get('b').readRaw()).equals(f32ToF16Buffer(vals)));
  t.ok((await r.get('c').readRaw()).equals(f32ToBf16Buffer(vals)));
  t.same([...(await r.get('d').readRaw())], [1, 2, 3]);
  t.same([...(await r.get('e').readF32())], [1.5, -2]);
  t.same(r.get('c').shape, [1, 4]);
  await r.close();
});

t.test('writer refuses bad input and leaves no file', async (t) => {
  const p = tmp('bad.safetensors');
  await t.rejects(writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [3], data: new Float32Array(2) }]), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(writeSafetensors(p, [{ name: 'a', dtype: 'F32', shape: [1], data: Buffer.alloc(3) }]), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(writeSafetensors(p, [{ name: 'a', dtype: 'I32', shape: [1], data: new Float32Array(1) }]), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(writeSafetensors(p, [
    { name: 'a', dtype: 'F32', shape: [1], data: new Float32Array(1) },
    { name: 'a', dtype: 'F32', shape: [1], data: new Float32Array(1) },
  ]), { code: 'ERR_INVALID_ARGUMENT', message: /twice/ });
  t.notOk(existsSync(p));
  t.same(readdirSync(dir).filter((f) => f.includes('bad.safetensors')), []);
});

t.test('hostile or broken files give ERR_FORMAT naming the problem', async (t) => {
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const data = Buffer.alloc(8);
  const cases: [string, string, RegExp][] = [
    ['tiny file', (() => { const p = tmp(); writeFileSync(p, Buffer.alloc(5)); return p; })(), /only 5 bytes/],
    ['huge header length', (() => { const p = tmp(); const b = Buffer.alloc(16); b.writeBigUInt64LE(2n ** 63n); writeFileSync(p, b); return p; })(), /limit/],
    ['header past EOF', (() => { const p = tmp(); const b = Buffer.alloc(16); b.writeBigUInt64LE(1000n); writeFileSync(p, b); return p; })(), /truncated/],
    ['not JSON', craft(null, data, '{not json'), /not valid JSON/],
    ['JSON array', craft(null, data, '[1,2]'), /not a JSON object/],
    ['unknown dtype', craft({ a: { dtype: 'F8_E4M3', shape: [8], data_offsets: [0, 8] } }, data), /dtype F8_E4M3/],
    ['negative dim', craft({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, data), /invalid shape/],
    ['offsets out of file', craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, Buffer.alloc(4)), /outside the data section/],
    ['size mismatch', craft({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data), /needs 12 bytes/],
    ['overlap', craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, data), /overlapping/],
    ['trailing bytes', craft(ok, Buffer.alloc(12)), /data section is 12/],
    ['bad metadata', craft({ ...ok, __metadata__: { x: 1 } }, data), /not a string/],
    ['reversed offsets', craft({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, data), /outside/],
  ];
  for (const [what, p, re] of cases) {
    await t.rejects(openSafetensors(p), { code: 'ERR_FORMAT', message: re }, what);
  }
  await t.rejects(openSafetensors(join(dir, 'missing.safetensors')), { code: 'ERR_FILE_NOT_FOUND' });
  const r = await openSafetensors(craft(ok, data));
  t.same(r.names(), ['a']);
  await r.close();
});
