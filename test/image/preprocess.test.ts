// Geometry of CLIPImageProcessor / expand2square and properties of the Pillow bicubic port that the
// fixture parity test does not isolate.
import t from 'tap';
import {
  shortestEdgeSize,
  centerCropOffsets,
  expandToSquare,
  padColourFor,
  pillowBicubicResize,
  preprocess,
  preprocessV0,
  preprocessV15,
  fromRawPixels,
} from '../../lib/image/index.js';
import type { RgbImage } from '../../lib/image/index.js';
import { isLlavaMedError } from '../../lib/errors.js';

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

t.test('shortest-edge output size truncates like int(size * long / short)', async (t) => {
  t.same(shortestEdgeSize(480, 640, 224), [224, 298], '640x480: 298.67 -> 298');
  t.same(shortestEdgeSize(501, 37, 224), [3033, 224], '37x501: 3033.08 -> 3033');
  t.same(shortestEdgeSize(17, 1000, 224), [224, 13176], '1000x17');
  t.same(shortestEdgeSize(224, 225, 224), [224, 225], 'short side already 224: unchanged');
  t.same(shortestEdgeSize(300, 300, 336), [336, 336], 'square');
  t.same(shortestEdgeSize(3, 7, 28), [28, 65], '7x3 -> 65.33 -> 65');
});

t.test('center crop offsets use floor division', async (t) => {
  t.same(centerCropOffsets(224, 298, 224), { top: 0, left: 37 });
  t.same(centerCropOffsets(225, 224, 224), { top: 0, left: 0 }, 'odd excess of 1 goes to the bottom/right');
  t.same(centerCropOffsets(3033, 224, 224), { top: 1404, left: 0 });
});

t.test('expand2square pastes at (d // 2) with the mode-dependent colour', async (t) => {
  const wide: RgbImage = { data: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9]), width: 3, height: 1 };
  const sq = expandToSquare(wide, [122, 116, 104]);
  t.same([sq.width, sq.height], [3, 3]);
  t.same([...sq.data], [122, 116, 104, 122, 116, 104, 122, 116, 104, 1, 2, 3, 4, 5, 6, 7, 8, 9, 122, 116, 104, 122, 116, 104, 122, 116, 104]);
  const tall: RgbImage = { data: Buffer.from([9, 9, 9, 8, 8, 8]), width: 1, height: 2 };
  const sq2 = expandToSquare(tall, [0, 0, 0]);
  t.same([...sq2.data], [9, 9, 9, 0, 0, 0, 8, 8, 8, 0, 0, 0], 'difference 1: offset 0, pad on the right');
  t.equal(expandToSquare(sq, [0, 0, 0]), sq, 'square input returned as is');
  t.same(padColourFor('RGB'), [122, 116, 104]);
  t.same(padColourFor('RGBA'), [122, 116, 104]);
  t.same(padColourFor('L'), [114, 114, 114]);
  t.same(padColourFor('CMYK'), [0, 0, 0]);
  t.same(padColourFor(undefined), [122, 116, 104]);
});

t.test('v1.5 pads grey sources with 114', async (t) => {
  const grey = fromRawPixels({ data: new Uint8Array(4 * 2).fill(200), width: 4, height: 2, channels: 1 });
  const out = preprocessV15(grey, 4); // 4x2 -> 4x4 canvas, no resampling needed
  t.same([...out.data.subarray(0, 3)], [114, 114, 114], 'top pad row');
  t.same([...out.data.subarray(4 * 3, 4 * 3 + 3)], [200, 200, 200], 'pasted row 1');
  const rgb = fromRawPixels({ data: new Uint8Array(4 * 2 * 3).fill(200), width: 4, height: 2, channels: 3 });
  t.same([...preprocessV15(rgb, 4).data.subarray(0, 3)], [122, 116, 104]);
});

t.test('resizing a window equals resizing fully and cropping', async (t) => {
  for (const [w, h, ow, oh] of [
    [97, 61, 40, 23],
    [20, 33, 77, 50],
    [50, 50, 50, 31],
    [31, 50, 60, 50],
  ] as const) {
    const src = noise(w, h, w * h);
    const full = pillowBicubicResize(src.data, w, h, ow, oh);
    const win = { left: 5, top: 3, width: ow - 9, height: oh - 7 };
    const part = pillowBicubicResize(src.data, w, h, ow, oh, win);
    let same = true;
    for (let y = 0; y < win.height; y++) {
      const a = full.subarray(((y + win.top) * ow + win.left) * 3, ((y + win.top) * ow + win.left + win.width) * 3);
      const b = part.subarray(y * win.width * 3, (y + 1) * win.width * 3);
      if (!a.equals(b)) same = false;
    }
    t.ok(same, `${w}x${h} -> ${ow}x${oh}`);
  }
});

t.test('resampler basics', async (t) => {
  const flat = { data: Buffer.alloc(13 * 7 * 3, 77), width: 13, height: 7 };
  const up = pillowBicubicResize(flat.data, 13, 7, 40, 29);
  t.ok(up.every((v) => v === 77), 'a flat image stays flat when upscaled (normalised weights)');
  const down = pillowBicubicResize(flat.data, 13, 7, 3, 2);
  t.ok(down.every((v) => v === 77), 'and when downscaled');
  const src = noise(9, 9);
  t.ok(pillowBicubicResize(src.data, 9, 9, 9, 9).equals(src.data), 'same size is a copy');
  // Pillow: Image.frombytes('RGB',(4,1),bytes([0,0,0,255,255,255,0,0,0,255,255,255])).resize((2,1), 3)
  // -> [(107, 107, 107), (148, 148, 148)]
  const stripes = Buffer.from([0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255]);
  t.same([...pillowBicubicResize(stripes, 4, 1, 2, 1)], [107, 107, 107, 148, 148, 148], 'matches a value computed with Pillow 9.4');
});

t.test('exact-size input passes through unchanged', async (t) => {
  const src = noise(224, 224, 5);
  t.ok(preprocessV0(src).data.equals(src.data), 'v0 224x224');
  const s336 = noise(336, 336, 6);
  t.ok(preprocessV15(s336).data.equals(s336.data), 'v1.5 336x336');
});

t.test('defaults and argument checks', async (t) => {
  const src = noise(30, 20);
  t.equal(preprocess(src, { variant: 'v0' }).width, 224);
  t.equal(preprocess(src, { variant: 'v1.5' }).width, 336);
  t.equal(preprocess(src, { variant: 'v0', imageSize: 28 }).height, 28);
  const bad = (f: () => unknown, code: 'ERR_INVALID_ARGUMENT' | 'ERR_IMAGE_FORMAT', what: string) => {
    try {
      f();
      t.fail(`${what}: no error`);
    } catch (e) {
      t.ok(isLlavaMedError(e, code), `${what}: ${code}`);
    }
  };
  bad(() => preprocess(src, { variant: 'v2' as 'v0' }), 'ERR_INVALID_ARGUMENT', 'unknown variant');
  bad(() => preprocess(src, { variant: 'v0', imageSize: 0 }), 'ERR_INVALID_ARGUMENT', 'imageSize 0');
  bad(() => preprocess(src, { variant: 'v1.5', imageSize: 33.5 }), 'ERR_INVALID_ARGUMENT', 'fractional imageSize');
  bad(() => preprocessV0({ data: Buffer.alloc(5), width: 2, height: 1 }), 'ERR_IMAGE_FORMAT', 'data length mismatch');
  const u8 = { data: new Uint8Array(src.data) as Buffer, width: 30, height: 20 };
  t.ok(preprocessV0(u8, 28).data.equals(preprocessV0(src, 28).data), 'a plain Uint8Array is accepted');
});
