import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  f32ToF16, f16ToF32, f32ToBf16, bf16ToF32, f32ToF16Buffer, f16BufferToF32, bf16BufferToF32,
  f32ToBf16Buffer, quantizeQ8_0, dequantizeQ8_0,
} from '../../lib/formats/half.js';

const hex = (n: number) => '0x' + n.toString(16).padStart(4, '0');

t.test('f32 -> f16 hand cases: ties to even, subnormals, overflow, specials', async (t) => {
  const cases: [number, number][] = [
    [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.1, 0x2e66],
    [65504, 0x7bff], [65519.99, 0x7bff],
    [65520, 0x7c00], // exact tie between 65504 and 65536 (inf): the even one is inf
    [1e6, 0x7c00], [-1e6, 0xfc00], [Infinity, 0x7c00], [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie between 0 and 1 ulp -> even (0)
    [2 ** -25 * (1 + 2 ** -23), 0x0001], // just above the tie
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 -> 2
    [5 * 2 ** -25, 0x0002], // tie between 2 and 3 -> 2
    [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10 -> even
    [1 + 3 * 2 ** -11, 0x3c02], // tie between 1+2^-10 and 1+2^-9 -> even (0x3c02)
    [(1023.5 / 1024) * 2 ** -14, 0x0400], // rounds up from subnormal into the smallest normal
    [1e-10, 0x0000], [-1e-10, 0x8000],
  ];
  for (const [x, want] of cases) t.equal(hex(f32ToF16(x)), hex(want), `f16(${x})`);
  t.equal(hex(f32ToF16(NaN)), '0x7e00', 'quiet NaN keeps its payload top bit');
  t.ok(Number.isNaN(f16ToF32(0x7e00)));
  t.equal(f16ToF32(0x7c00), Infinity);
  t.equal(f16ToF32(0x0001), 2 ** -24);
  t.equal(f16ToF32(0xfbff), -65504);
  t.ok(Object.is(f16ToF32(0x8000), -0));
});

t.test('f16 -> f32 -> f16 is the identity for all 65536 patterns', async (t) => {
  const all = Buffer.alloc(65536 * 2);
  for (let h = 0; h < 65536; h++) all.writeUInt16LE(h, 2 * h);
  const f = f16BufferToF32(all);
  const back = f32ToF16Buffer(f);
  t.ok(back.equals(all), 'bulk round trip preserves every bit pattern, NaN payloads included');
  let bad = 0;
  for (let h = 0; h < 65536; h++) {
    const v = f16ToF32(h);
    if (!Number.isNaN(v) && f32ToF16(v) !== h) bad++;
  }
  t.equal(bad, 0, 'scalar round trip');
});

t.test('bf16 hand cases', async (t) => {
  t.equal(hex(f32ToBf16(1)), '0x3f80');
  t.equal(hex(f32ToBf16(-2)), '0xc000');
  // 1 + 2^-8 is a tie between 1 and 1+2^-7 -> even (1)
  t.equal(hex(f32ToBf16(1 + 2 ** -8)), '0x3f80');
  // 1 + 3*2^-8 is a tie between 1+2^-7 and 1+2^-6 -> even (0x3f82)
  t.equal(hex(f32ToBf16(1 + 3 * 2 ** -8)), '0x3f82');
  t.equal(hex(f32ToBf16(3.4028234663852886e38)), '0x7f80', 'max float rounds to inf');
  t.equal(hex(f32ToBf16(NaN)), '0x7fc0');
  t.equal(bf16ToF32(0x3f80), 1);
  t.equal(bf16ToF32(0xff80), -Infinity);
  // A signalling NaN must come out quiet (not rounded into infinity).
  const sn = Buffer.from(new Uint32Array([0x7f800001]).buffer);
  const out = f32ToBf16Buffer(new Float32Array(sn.buffer, sn.byteOffset, 1));
  t.equal(hex(out.readUInt16LE(0)), '0x7fc0');
});

t.test('odd byte lengths and bad Q8_0 sizes are typed errors', async (t) => {
  t.throws(() => f16BufferToF32(Buffer.alloc(3)), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => bf16BufferToF32(Buffer.alloc(5)), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => quantizeQ8_0(new Float32Array(31)), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => dequantizeQ8_0(Buffer.alloc(33)), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('Q8_0 hand cases', async (t) => {
  const x = new Float32Array(32);
  x[0] = 127; x[1] = -63.5; x[2] = 0.5; x[3] = -0.5; x[4] = 1.49;
  const q = quantizeQ8_0(x);
  t.equal(q.length, 34);
  t.equal(hex(q.readUInt16LE(0)), hex(f32ToF16(1)), 'd = 127/127 = 1');
  t.equal(q.readInt8(2), 127);
  t.equal(q.readInt8(3), -64, '-63.5 rounds away from zero');
  t.equal(q.readInt8(4), 1, '0.5 rounds away from zero');
  t.equal(q.readInt8(5), -1);
  t.equal(q.readInt8(6), 1);
  const z = quantizeQ8_0(new Float32Array(64));
  t.ok(z.equals(Buffer.alloc(68)), 'zeros: d = 0 and q = 0');
  const back = dequantizeQ8_0(q);
  t.equal(back[0], 127);
  t.equal(back[2], 1);
});

t.test('bit-exact against numpy astype(float16), gguf-py BF16 and gguf-py Q8_0', async (t) => {
  // Produced by scripts/fixtures/make-half-fixtures.py (numpy + deps/llama.cpp/gguf-py).
  const buf = readFileSync(new URL('../fixtures/formats/half-ref.bin', import.meta.url));
  let o = 0;
  const n = buf.readUInt32LE(o); o += 4;
  const x = new Float32Array(buf.buffer.slice(buf.byteOffset + o, buf.byteOffset + o + 4 * n)); o += 4 * n;
  const f16 = buf.subarray(o, o + 2 * n); o += 2 * n;
  const bf16 = buf.subarray(o, o + 2 * n); o += 2 * n;
  const m = buf.readUInt32LE(o); o += 4;
  const q8in = new Float32Array(buf.buffer.slice(buf.byteOffset + o, buf.byteOffset + o + 128 * m)); o += 128 * m;
  const q8 = buf.subarray(o, o + 34 * m); o += 34 * m;
  t.equal(o, buf.length, 'fixture fully consumed');

  const gotF16 = f32ToF16Buffer(x);
  const gotBf16 = f32ToBf16Buffer(x);
  let badF16 = 0, badBf16 = 0;
  for (let i = 0; i < n; i++) {
    if (gotF16.readUInt16LE(2 * i) !== f16.readUInt16LE(2 * i)) badF16++;
    if (gotBf16.readUInt16LE(2 * i) !== bf16.readUInt16LE(2 * i)) badBf16++;
  }
  t.equal(badF16, 0, `${n} f16 conversions match numpy`);
  t.equal(badBf16, 0, `${n} bf16 conversions match gguf-py`);
  t.ok(quantizeQ8_0(q8in).equals(q8), `${m} Q8_0 blocks match gguf-py`);

  // Decoding is exact: bf16 bytes -> f32 equals the bf16 pattern shifted up.
  const dec = new Uint32Array(bf16BufferToF32(bf16).buffer);
  let badDec = 0;
  for (let i = 0; i < n; i++) if (dec[i] !== bf16.readUInt16LE(2 * i) * 65536) badDec++;
  t.equal(badDec, 0);
});
