// loadImage: input kinds, Pillow-compatible conversions that the parity fixtures do not isolate, and limits.
import t from 'tap';
import type { Test } from 'tap';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { loadImage, DEFAULT_MAX_PIXELS } from '../../lib/image/index.js';
import { isLlavaMedError } from '../../lib/errors.js';
import type { ErrorCode } from '../../lib/errors.js';

async function rejectsWith(t: Test, p: Promise<unknown>, code: ErrorCode, what: string): Promise<void> {
  try {
    await p;
    t.fail(`${what}: expected ${code}, but it resolved`);
  } catch (e) {
    t.ok(isLlavaMedError(e, code), `${what}: ${code} (got ${(e as { code?: string }).code}: ${(e as Error).message})`);
  }
}

/** A PNG whose IHDR claims width x height but whose pixel data is garbage: decodable header, undecodable body. */
function pngHeaderOnly(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.from('not pixels'))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

t.test('raw pixels: grey and alpha handled like Pillow convert("RGB")', async (t) => {
  const g = await loadImage({ data: Uint8Array.from([0, 100, 255, 7]), width: 2, height: 2, channels: 1 });
  t.same([...g.data], [0, 0, 0, 100, 100, 100, 255, 255, 255, 7, 7, 7], 'grey replicated');
  t.equal(g.sourceMode, 'L');
  const la = await loadImage({ data: Uint8Array.from([10, 0, 20, 255]), width: 2, height: 1, channels: 2 });
  t.same([...la.data], [10, 10, 10, 20, 20, 20], 'grey+alpha: alpha dropped, no compositing');
  t.equal(la.sourceMode, 'LA');
  const rgba = await loadImage({ data: Uint8Array.from([1, 2, 3, 0, 4, 5, 6, 128]), width: 1, height: 2, channels: 4 });
  t.same([...rgba.data], [1, 2, 3, 4, 5, 6], 'RGBA: colour under alpha 0 is kept');
  t.equal(rgba.sourceMode, 'RGBA');
  const rgb = await loadImage({ data: Buffer.from([9, 8, 7]), width: 1, height: 1, channels: 3 });
  t.same([...rgb.data], [9, 8, 7]);
  t.ok(Buffer.isBuffer(rgb.data), 'output data is a Buffer');
});

t.test('raw pixels: bad shapes', async (t) => {
  await rejectsWith(t, loadImage({ data: new Uint8Array(5), width: 2, height: 1, channels: 3 }), 'ERR_IMAGE_FORMAT', 'size mismatch');
  await rejectsWith(t, loadImage({ data: new Uint8Array(6), width: 2, height: 1, channels: 5 as 3 }), 'ERR_INVALID_ARGUMENT', 'channels 5');
  await rejectsWith(t, loadImage({ data: new Uint8Array(0), width: 0, height: 1, channels: 3 }), 'ERR_INVALID_ARGUMENT', 'width 0');
  await rejectsWith(t, loadImage({ data: new Uint8Array(3), width: 1.5, height: 2, channels: 1 }), 'ERR_INVALID_ARGUMENT', 'fractional width');
  await rejectsWith(t, loadImage({ data: new Uint8Array(0), width: 1, height: 1, channels: 3 }), 'ERR_IMAGE_EMPTY', 'empty data');
  await rejectsWith(t, loadImage({ data: [1, 2, 3] as unknown as Uint8Array, width: 1, height: 1, channels: 3 }), 'ERR_INVALID_ARGUMENT', 'data not bytes');
  await rejectsWith(t, loadImage({ data: new Uint8Array(12), width: 2, height: 2, channels: 3 }, { maxPixels: 3 }), 'ERR_IMAGE_TOO_LARGE', 'raw above maxPixels');
});

t.test('encoded input errors', async (t) => {
  await rejectsWith(t, loadImage(Buffer.alloc(0)), 'ERR_IMAGE_EMPTY', 'empty buffer');
  await rejectsWith(t, loadImage(Buffer.from('definitely not an image')), 'ERR_IMAGE_DECODE', 'garbage');
  const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 1, g: 2, b: 3 } } })
    .png({ compressionLevel: 0 })
    .toBuffer();
  await rejectsWith(t, loadImage(png.subarray(0, Math.floor(png.length / 2))), 'ERR_IMAGE_DECODE', 'truncated PNG');
  await rejectsWith(t, loadImage(42 as unknown as string), 'ERR_INVALID_ARGUMENT', 'a number');
  await rejectsWith(t, loadImage(png, { maxPixels: 0 }), 'ERR_INVALID_ARGUMENT', 'maxPixels 0');
  await rejectsWith(t, loadImage(png, { maxPixels: Number.NaN }), 'ERR_INVALID_ARGUMENT', 'maxPixels NaN');
});

t.test('pixel limit is checked from the header, before decoding', async (t) => {
  t.equal(DEFAULT_MAX_PIXELS, 100_000_000);
  const huge = pngHeaderOnly(20_000, 10_000); // 200 MP claimed, body is garbage
  // If the body were decoded first this would be ERR_IMAGE_DECODE; the header check must win.
  await rejectsWith(t, loadImage(huge), 'ERR_IMAGE_TOO_LARGE', 'default limit (100 MP)');
  const small = pngHeaderOnly(100, 100);
  await rejectsWith(t, loadImage(small, { maxPixels: 9_999 }), 'ERR_IMAGE_TOO_LARGE', 'custom limit');
  await rejectsWith(t, loadImage(small, { maxPixels: 10_000 }), 'ERR_IMAGE_DECODE', 'at the limit it goes on to decode (and fails on the garbage body)');
  const ok = await sharp({ create: { width: 50, height: 40, channels: 3, background: '#102030' } }).png().toBuffer();
  const img = await loadImage(ok, { maxPixels: 2000 });
  t.same([img.width, img.height, img.data[0], img.data[1], img.data[2]], [50, 40, 0x10, 0x20, 0x30], 'exactly at the limit is accepted');
  const unlimited = await loadImage(ok, { maxPixels: Infinity });
  t.equal(unlimited.width, 50, 'Infinity disables the limit');
});

t.test('file paths', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'llava-img-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await rejectsWith(t, loadImage(path.join(dir, 'missing.png')), 'ERR_FILE_NOT_FOUND', 'missing file');
  await rejectsWith(t, loadImage(dir), 'ERR_INVALID_ARGUMENT', 'a directory');
  await rejectsWith(t, loadImage(''), 'ERR_INVALID_ARGUMENT', 'empty path');
  const empty = path.join(dir, 'empty.jpg');
  await writeFile(empty, Buffer.alloc(0));
  await rejectsWith(t, loadImage(empty), 'ERR_IMAGE_EMPTY', 'empty file');
});

t.test('ICC profiles are ignored and EXIF orientation is not applied (as Pillow Image.open)', async (t) => {
  // A PNG with an embedded non-sRGB profile (P3) and Orientation 6: sharp would colour-manage and
  // (with autoOrient) rotate; Pillow does neither.
  const src = await sharp({ create: { width: 40, height: 20, channels: 3, background: { r: 200, g: 30, b: 30 } } })
    .withMetadata({ orientation: 6 })
    .withIccProfile('p3')
    .png()
    .toBuffer();
  const meta = await sharp(src).metadata();
  t.ok(meta.hasProfile, 'fixture has an ICC profile');
  t.equal(meta.orientation, 6, 'fixture has Orientation 6');
  const img = await loadImage(src);
  t.same([img.width, img.height], [40, 20], 'not rotated');
  const raw = await sharp(src, { ignoreIcc: true }).raw().toBuffer();
  t.same([...img.data.subarray(0, 3)], [...raw.subarray(0, 3)], 'stored samples, not colour-managed');
  t.not([...raw.subarray(0, 3)].join(), '200,30,30', 'stored samples are P3, not the sRGB colour drawn');
  const managed = await sharp(src).toColourspace('srgb').raw().toBuffer();
  t.not([...managed.subarray(0, 3)].join(), [...raw.subarray(0, 3)].join(), 'sharp by default would have changed them');
});
