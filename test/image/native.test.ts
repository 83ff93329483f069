// native/image.cpp directly: byte-identical to the former TypeScript implementation (which matched
// Pillow, see pillow-parity.test.ts) on cases the Pillow fixtures do not cover, and the argument
// re-checks that keep a wrong call from crashing the process.
import t from 'tap';
import { createHash } from 'node:crypto';
import { loadAddon } from '../../lib/engine/binding.js';
import type { NativeImageSpec } from '../../lib/engine/native-types.js';

const addon = loadAddon();

type Case = [width: number, height: number, channels: number, convert: NativeImageSpec['convert'], geometry: NativeImageSpec['geometry'], imageSize?: number, pad?: [number, number, number]];
const G = 114;
const RGBP: [number, number, number] = [122, 116, 104];
const K: [number, number, number] = [0, 0, 0];
// Up- and downscales, extreme aspect ratios, a short side already at imageSize (crop only, odd
// excess), 1-pixel images, every conversion and channel count sharp hands over.
const CASES: Case[] = [
  [97, 61, 3, 'rgb', 'v0', 40], [20, 33, 3, 'rgb', 'v0', 77], [50, 50, 3, 'rgb', 'v0', 31], [640, 480, 3, 'rgb', 'v0', 224],
  [1000, 17, 3, 'rgb', 'v0', 224], [225, 224, 3, 'rgb', 'v0', 224], [224, 226, 3, 'rgb', 'v0', 224], [7, 3, 3, 'rgb', 'v0', 28],
  [1, 9, 3, 'rgb', 'v0', 3], [31, 50, 3, 'rgb', 'v1.5', 60, RGBP], [37, 501, 3, 'rgb', 'v1.5', 336, RGBP], [17, 1000, 3, 'rgb', 'v1.5', 56, RGBP],
  [300, 301, 3, 'rgb', 'v1.5', 300, RGBP], [1, 1, 3, 'rgb', 'v1.5', 5, RGBP], [9, 1, 3, 'rgb', 'v1.5', 4, [1, 2, 3]], [336, 336, 3, 'rgb', 'v1.5', 336, RGBP],
  [130, 170, 4, 'rgb', 'v1.5', 336, RGBP], [250, 180, 1, 'rgb', 'v1.5', 336, [G, G, G]], [33, 20, 2, 'rgb', 'v0', 16], [29, 31, 4, 'rgb', 'none'],
  [13, 7, 1, 'rgb', 'none'], [13, 7, 2, 'rgb', 'none'], [96, 61, 3, 'high16', 'v0', 224], [40, 30, 2, 'high16', 'v1.5', 32, [G, G, G]],
  [21, 11, 4, 'high16', 'none'], [120, 90, 1, 'clip16', 'v1.5', 336, [G, G, G]], [19, 23, 1, 'clip16', 'none'], [200, 150, 4, 'cmyk', 'v1.5', 336, K],
  [45, 23, 4, 'cmyk', 'v0', 20], [23, 45, 5, 'cmyk', 'none'],
];

// First 16 hex digits of the SHA-256 of the output of the TypeScript implementation this replaced
// (lib/image/pillow-bicubic.ts, clip-processor.ts, expand-square.ts, load.ts at commit eafa151).
const EXPECTED: Record<string, string> = {
  '97x61x3 rgb v0 40': 'dbd99a657e2eba80',
  '20x33x3 rgb v0 77': '7a673fd2259cb3d2',
  '50x50x3 rgb v0 31': '8b8bf0c707d26dc6',
  '640x480x3 rgb v0 224': 'd8dc8b2ce932595e',
  '1000x17x3 rgb v0 224': '4ba0477f7f3312a4',
  '225x224x3 rgb v0 224': 'd0231585f6d29d8a',
  '224x226x3 rgb v0 224': '86fdac2462b3e41d',
  '7x3x3 rgb v0 28': 'fde5178fe6c32152',
  '1x9x3 rgb v0 3': '827463f56795dd9e',
  '31x50x3 rgb v1.5 60': 'a95832b4fd6f2a43',
  '37x501x3 rgb v1.5 336': '6846ddcaddef2460',
  '17x1000x3 rgb v1.5 56': 'a63ea8dc4c306147',
  '300x301x3 rgb v1.5 300': 'f36bc7ac95f7f1a2',
  '1x1x3 rgb v1.5 5': '39267c485387dffb',
  '9x1x3 rgb v1.5 4': '74511506097f50e2',
  '336x336x3 rgb v1.5 336': 'd2410aea4fe6a4aa',
  '130x170x4 rgb v1.5 336': '53aef8c7b65718eb',
  '250x180x1 rgb v1.5 336': '1fce900618ff5d4f',
  '33x20x2 rgb v0 16': '490c67e94a410416',
  '29x31x4 rgb none': 'c2be8060d1393408',
  '13x7x1 rgb none': 'd28570758fe6083b',
  '13x7x2 rgb none': '6b58fa2cbbfe9125',
  '96x61x3 high16 v0 224': 'd576ec521078a47c',
  '40x30x2 high16 v1.5 32': '7d70ce9f27ebfe69',
  '21x11x4 high16 none': 'fc23627058b9bc7a',
  '120x90x1 clip16 v1.5 336': 'd92d79f901a57e43',
  '19x23x1 clip16 none': 'abbe63bc5e87321c',
  '200x150x4 cmyk v1.5 336': 'da0cddbe8ee2393e',
  '45x23x4 cmyk v0 20': '5e8c5951277a95ce',
  '23x45x5 cmyk none': '18122f3efaa40c13',
};

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
}

function samplesFor(i: number, w: number, h: number, c: number, convert: string): Uint8Array {
  const next = lcg(1000 + i);
  if (convert === 'high16' || convert === 'clip16') {
    // Native-endian uint16, as sharp returns them. clip16: 0..511, so both sides of the clip at 255 occur.
    const v = new Uint16Array(w * h * c);
    for (let j = 0; j < v.length; j++) v[j] = convert === 'clip16' ? next() >>> 23 : next() >>> 16;
    return new Uint8Array(v.buffer);
  }
  const b = new Uint8Array(w * h * c);
  for (let j = 0; j < b.length; j++) b[j] = next() >>> 24;
  return b;
}

const specOf = ([width, height, channels, convert, geometry, imageSize, pad]: Case): NativeImageSpec => ({
  width,
  height,
  channels,
  depth: convert === 'high16' || convert === 'clip16' ? 16 : 8,
  convert,
  geometry,
  ...(imageSize ? { imageSize } : {}),
  ...(pad ? { pad } : {}),
});

t.test('byte-identical to the former TypeScript implementation', async (t) => {
  t.equal(Object.keys(EXPECTED).length, CASES.length);
  for (const [i, c] of CASES.entries()) {
    const [w, h, ch, convert, geometry, imageSize] = c;
    const key = `${w}x${h}x${ch} ${convert} ${geometry}${imageSize ? ' ' + imageSize : ''}`;
    const out = await addon.preprocessImage(samplesFor(i, w, h, ch, convert), specOf(c));
    const side = geometry === 'none' ? [w, h] : [imageSize!, imageSize!];
    t.equal(out.length, side[0]! * side[1]! * 3, `${key}: size`);
    t.equal(createHash('sha256').update(out).digest('hex').slice(0, 16), EXPECTED[key], key);
  }
});

t.test('the input is copied when the call is made', async (t) => {
  const c: Case = [97, 61, 3, 'rgb', 'v0', 40];
  const s = samplesFor(0, 97, 61, 3, 'rgb');
  const p = addon.preprocessImage(s, specOf(c));
  s.fill(0); // JavaScript may reuse its buffer as soon as the call returns
  t.equal(createHash('sha256').update(await p).digest('hex').slice(0, 16), EXPECTED['97x61x3 rgb v0 40']);
  const u = new Uint8Array(s.length + 1).subarray(1);
  u.set(samplesFor(0, 97, 61, 3, 'rgb'));
  t.equal(createHash('sha256').update(await addon.preprocessImage(u, specOf(c))).digest('hex').slice(0, 16), EXPECTED['97x61x3 rgb v0 40'], 'an offset view');
});

t.test('wrong arguments throw, and the process survives', async (t) => {
  const ok: NativeImageSpec = { width: 2, height: 2, channels: 3, depth: 8, convert: 'rgb', geometry: 'v1.5', imageSize: 4, pad: [1, 2, 3] };
  const px = new Uint8Array(12);
  const call = (samples: unknown, spec: unknown) => () => (addon.preprocessImage as (a: unknown, b?: unknown) => Promise<Buffer>)(samples, spec);
  const typeError = (f: () => unknown, what: string) => t.throws(f, { name: 'TypeError', code: 'ERR_INVALID_ARGUMENT' }, what);
  typeError(call(undefined, ok), 'no samples');
  typeError(call([1, 2, 3], ok), 'an array');
  typeError(call(new Uint16Array(6), ok), 'a Uint16Array');
  typeError(call(new Uint8ClampedArray(12), ok), 'a Uint8ClampedArray');
  typeError(call(new ArrayBuffer(12), ok), 'an ArrayBuffer');
  typeError(call(px, undefined), 'no spec');
  typeError(call(px, 'v0'), 'spec a string');
  typeError(call(px, { ...ok, width: undefined }), 'width missing');
  typeError(call(px, { ...ok, width: '2' }), 'width a string');
  typeError(call(px, { ...ok, width: 1.5 }), 'fractional width');
  typeError(call(px, { ...ok, width: 0 }), 'width 0');
  typeError(call(px, { ...ok, height: -2 }), 'negative height');
  typeError(call(px, { ...ok, height: 2 ** 31 }), 'height 2^31');
  typeError(call(px, { ...ok, width: Number.NaN }), 'width NaN');
  typeError(call(px, { ...ok, channels: 0 }), 'channels 0');
  typeError(call(px, { ...ok, channels: 9 }), 'channels 9');
  typeError(call(px, { ...ok, depth: 12 }), 'depth 12');
  typeError(call(px, { ...ok, depth: 16 }), 'depth 16 with convert rgb');
  typeError(call(px, { ...ok, convert: 'high16' }), 'high16 with depth 8');
  typeError(call(px, { ...ok, convert: 'cmyk' }), 'cmyk with 3 channels');
  typeError(call(px, { ...ok, convert: 'RGB' }), 'unknown convert');
  typeError(call(px, { ...ok, convert: 1 }), 'convert a number');
  typeError(call(px, { ...ok, geometry: 'v2' }), 'unknown geometry');
  typeError(call(px, { ...ok, imageSize: undefined }), 'imageSize missing');
  typeError(call(px, { ...ok, imageSize: 0 }), 'imageSize 0');
  typeError(call(px, { ...ok, imageSize: 4097 }), 'imageSize 4097');
  typeError(call(px, { ...ok, pad: undefined }), 'pad missing for v1.5');
  typeError(call(px, { ...ok, pad: [1, 2] }), 'pad of 2');
  typeError(call(px, { ...ok, pad: [1, 2, 256] }), 'pad above 255');
  typeError(call(px, { ...ok, pad: [1, 2, '3'] }), 'pad with a string');
  t.throws(call(new Uint8Array(11), ok), { code: 'ERR_IMAGE_FORMAT' }, 'one byte short');
  t.throws(call(new Uint8Array(13), ok), { code: 'ERR_IMAGE_FORMAT' }, 'one byte long');
  t.throws(call(new Uint8Array(12), { ...ok, depth: 16, convert: 'high16' }), { code: 'ERR_IMAGE_FORMAT' }, '16-bit needs twice the bytes');
  t.throws(call(new Uint8Array(12), { ...ok, width: 65536, height: 65536 }), { code: 'ERR_IMAGE_FORMAT' }, 'a huge claimed size');
  // pad and imageSize are not needed (nor read) where the geometry does not use them
  t.equal((await addon.preprocessImage(px, { ...ok, geometry: 'none', imageSize: undefined, pad: undefined })).length, 12);
  t.equal((await addon.preprocessImage(px, { ...ok, geometry: 'v0', pad: undefined })).length, 48);
  t.same([...(await addon.preprocessImage(new Uint8Array([1, 2, 3]), { width: 1, height: 1, channels: 3, depth: 8, convert: 'rgb', geometry: 'v1.5', imageSize: 1, pad: [0, 0, 0] }))], [1, 2, 3], 'still working');
});

t.test('an aspect ratio too extreme to pad is a typed error, not an allocation failure', async (t) => {
  // 1 x 4,000,000 grey padded to a 4M x 4M square: ~4 GB of intermediate rows at imageSize 336.
  const w = 1, h = 4_000_000;
  await t.rejects(addon.preprocessImage(new Uint8Array(w * h), { width: w, height: h, channels: 1, depth: 8, convert: 'rgb', geometry: 'v1.5', imageSize: 336, pad: [G, G, G] }), {
    code: 'ERR_IMAGE_TOO_LARGE',
  });
});
