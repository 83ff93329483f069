// Geometry of CLIPImageProcessor / expand2square and properties of the Pillow bicubic resample
// (native/image.cpp) that the fixture parity test does not isolate, through lib/image's API.
import t from 'tap';
import { loadImage, padColourFor, preprocess, preprocessV0, preprocessV15 } from '../../lib/image/index.js';
import type { RgbImage } from '../../lib/image/index.js';
import { isLlavaMedError } from '../../lib/errors.js';
import type { ErrorCode } from '../../lib/errors.js';

/** Deterministic pseudo-random RGB (LCG) so failures reproduce. */
function noise(w: number, h: number, seed = 1): RgbImage {
  const data = Buffer.alloc(w * h * 3);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s >>> 24;
  }
  return { data, width: w, height: h, sourceMode: 'RGB' };
}

/** Rows [top, top + n) and columns [left, left + m) of an RGB image. */
function crop(img: RgbImage, left: number, top: number, m: number, n: number): Buffer {
  const out = Buffer.alloc(m * n * 3);
  for (let y = 0; y < n; y++) img.data.copy(out, y * m * 3, ((top + y) * img.width + left) * 3, ((top + y) * img.width + left + m) * 3);
  return out;
}

t.test('short side already at imageSize: no resampling, centre crop with floor division', async (t) => {
  const a = noise(225, 224, 2);
  t.ok((await preprocessV0(a)).data.equals(crop(a, 0, 0, 224, 224)), '225x224: an odd excess of 1 goes to the right');
  const b = noise(224, 227, 3);
  t.ok((await preprocessV0(b)).data.equals(crop(b, 0, 1, 224, 224)), '224x227: top = (227 - 224) // 2 = 1');
  const c = noise(60, 10, 4);
  t.ok((await preprocessV0(c, 10)).data.equals(crop(c, 25, 0, 10, 10)), '60x10 @10: left = 25');
});

t.test('expand2square pastes at (d // 2) with the mode-dependent colour', async (t) => {
  // imageSize equal to the long side: the padded square is returned without resampling.
  const wide: RgbImage = { data: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9]), width: 3, height: 1, sourceMode: 'RGB' };
  const sq = await preprocessV15(wide, 3);
  t.same([sq.width, sq.height], [3, 3]);
  t.same([...sq.data], [122, 116, 104, 122, 116, 104, 122, 116, 104, 1, 2, 3, 4, 5, 6, 7, 8, 9, 122, 116, 104, 122, 116, 104, 122, 116, 104]);
  const tall: RgbImage = { data: Buffer.from([9, 9, 9, 8, 8, 8]), width: 1, height: 2, sourceMode: 'CMYK' };
  const sq2 = await preprocessV15(tall, 2);
  t.same([...sq2.data], [9, 9, 9, 0, 0, 0, 8, 8, 8, 0, 0, 0], 'difference 1: offset 0, pad on the right; CMYK pads black');
  const square = noise(5, 5);
  t.ok((await preprocessV15(square, 5)).data.equals(square.data), 'a square at imageSize is returned as is');
  t.same(padColourFor('RGB'), [122, 116, 104]);
  t.same(padColourFor('RGBA'), [122, 116, 104]);
  t.same(padColourFor('P'), [122, 116, 104]);
  t.same(padColourFor('L'), [114, 114, 114]);
  t.same(padColourFor('LA'), [114, 114, 114]);
  t.same(padColourFor('I'), [114, 114, 114]);
  t.same(padColourFor('CMYK'), [0, 0, 0]);
  t.same(padColourFor(undefined), [122, 116, 104]);
});

t.test('v1.5 pads grey sources with 114', async (t) => {
  const grey = await loadImage({ data: new Uint8Array(4 * 2).fill(200), width: 4, height: 2, channels: 1 });
  const out = await preprocessV15(grey, 4); // 4x2 -> 4x4 canvas, no resampling needed
  t.same([...out.data.subarray(0, 3)], [114, 114, 114], 'top pad row');
  t.same([...out.data.subarray(4 * 3, 4 * 3 + 3)], [200, 200, 200], 'pasted row 1');
  const rgb = await loadImage({ data: new Uint8Array(4 * 2 * 3).fill(200), width: 4, height: 2, channels: 3 });
  t.same([...(await preprocessV15(rgb, 4)).data.subarray(0, 3)], [122, 116, 104]);
});

t.test('resampler basics', async (t) => {
  const flat = { data: Buffer.alloc(13 * 7 * 3, 77), width: 13, height: 7 };
  t.ok((await preprocessV0(flat, 40)).data.every((v) => v === 77), 'a flat image stays flat when upscaled (normalised weights)');
  t.ok((await preprocessV0(flat, 3)).data.every((v) => v === 77), 'and when downscaled');
  // Pillow: Image.frombytes('RGB',(4,1),bytes([0,0,0,255,255,255,0,0,0,255,255,255])).resize((2,1), 3)
  // -> [(107, 107, 107), (148, 148, 148)]; four such rows resized to 2x2 keep the columns.
  const stripes = Buffer.from(Array.from({ length: 4 }, () => [0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255]).flat());
  const out = await preprocessV0({ data: stripes, width: 4, height: 4 }, 2);
  t.same([...out.data], [107, 107, 107, 148, 148, 148, 107, 107, 107, 148, 148, 148], 'matches a value computed with Pillow 9.4');
});

t.test('exact-size input passes through unchanged', async (t) => {
  const src = noise(224, 224, 5);
  t.ok((await preprocessV0(src)).data.equals(src.data), 'v0 224x224');
  const s336 = noise(336, 336, 6);
  t.ok((await preprocessV15(s336)).data.equals(s336.data), 'v1.5 336x336');
});

t.test('defaults and argument checks', async (t) => {
  const src = noise(30, 20);
  const v0 = await preprocess(src, { variant: 'v0' });
  t.same([v0.width, v0.height, v0.data.length], [224, 224, 224 * 224 * 3]);
  t.ok(Buffer.isBuffer(v0.data), 'output data is a Buffer');
  t.equal((await preprocess(src, { variant: 'v1.5' })).width, 336);
  t.equal((await preprocess(src, { variant: 'v0', imageSize: 28 })).height, 28);
  const bad = async (p: Promise<unknown>, code: ErrorCode, what: string) => {
    try {
      await p;
      t.fail(`${what}: no error`);
    } catch (e) {
      t.ok(isLlavaMedError(e, code), `${what}: ${code} (got ${(e as { code?: string }).code})`);
    }
  };
  await bad(preprocess(src, { variant: 'v2' as 'v0' }), 'ERR_INVALID_ARGUMENT', 'unknown variant');
  await bad(preprocess(src, undefined as unknown as { variant: 'v0' }), 'ERR_INVALID_ARGUMENT', 'no options');
  await bad(preprocess(src, { variant: 'v0', imageSize: 0 }), 'ERR_INVALID_ARGUMENT', 'imageSize 0');
  await bad(preprocess(src, { variant: 'v0', imageSize: 4097 }), 'ERR_INVALID_ARGUMENT', 'imageSize 4097');
  await bad(preprocess(src, { variant: 'v1.5', imageSize: 33.5 }), 'ERR_INVALID_ARGUMENT', 'fractional imageSize');
  await bad(preprocessV0({ data: Buffer.alloc(5), width: 2, height: 1 }), 'ERR_IMAGE_FORMAT', 'data length mismatch');
  await bad(preprocessV15({ data: [1, 2, 3] as unknown as Buffer, width: 1, height: 1 }), 'ERR_IMAGE_FORMAT', 'data not bytes');
  await bad(preprocessV0({ data: Buffer.alloc(0), width: 0, height: 0 }), 'ERR_IMAGE_FORMAT', 'empty');
  await bad(preprocessV0(null as unknown as RgbImage), 'ERR_IMAGE_FORMAT', 'null');
  const u8 = { data: new Uint8Array(src.data) as Buffer, width: 30, height: 20 };
  t.ok((await preprocessV0(u8, 28)).data.equals((await preprocessV0(src, 28)).data), 'a plain Uint8Array is accepted');
});
