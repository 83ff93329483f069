/** Every image input kind gives the same answer for the same pixels; every ERR_IMAGE_* via ask. */
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { loadTiny, noisePixels, noisePng, rejectsCode } from './util.js';

const Q = 'What is shown in this image?';
const GEN = { temperature: 0, maxTokens: 8, stop: [] as string[] };

t.test('file path, PNG/JPEG buffer and raw pixels agree', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'llava-med-img-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const variant of ['v0', 'v1.5'] as const) {
    const { med } = await loadTiny(variant);
    const W = 42;
    const H = 30;
    // RGB
    const rgb = noisePixels(W, H, 21, 3);
    const png = await noisePng(W, H, 21, 3);
    const pngPath = join(dir, `${variant}.png`);
    await writeFile(pngPath, png);
    const ref = await med.ask({ data: rgb, width: W, height: H, channels: 3 }, Q, GEN);
    const refScore = await med.score({ data: rgb, width: W, height: H, channels: 3 }, Q, ['yes', 'no']);
    for (const [what, input] of [
      ['PNG file path', pngPath],
      ['PNG Buffer', png],
      ['PNG Uint8Array', new Uint8Array(png)],
      ['file: URL', pathToFileURL(pngPath)],
      ['data: URL string', `data:image/png;base64,${png.toString('base64')}`],
      ['data: URL object', new URL(`data:image/png;base64,${png.toString('base64')}`)],
    ] as const) {
      const a = await med.ask(input, Q, GEN);
      t.same(a.tokens, ref.tokens, `${variant}: ${what} = raw RGB (tokens)`);
      t.same(await med.score(input, Q, ['yes', 'no']), refScore, `${variant}: ${what} = raw RGB (exact log-probs)`);
    }
    // RGBA: alpha is dropped (Pillow convert('RGB')), so raw RGBA == its RGB part.
    const rgba = noisePixels(W, H, 22, 4);
    const rgbOfRgba = Buffer.alloc(W * H * 3);
    for (let i = 0; i < W * H; i++) rgba.copy(rgbOfRgba, i * 3, i * 4, i * 4 + 3);
    const sRgba = await med.score({ data: rgba, width: W, height: H, channels: 4 }, Q, ['yes', 'no']);
    const sRgbPart = await med.score({ data: rgbOfRgba, width: W, height: H, channels: 3 }, Q, ['yes', 'no']);
    t.same(sRgba, sRgbPart, `${variant}: raw RGBA = its RGB channels`);
    const rgbaPng = await sharp(rgba, { raw: { width: W, height: H, channels: 4 } }).png().toBuffer();
    t.same(await med.score(rgbaPng, Q, ['yes', 'no']), sRgba, `${variant}: RGBA PNG = raw RGBA`);
    // Grey: v0 sees the grey replicated to RGB; v1.5 pads a grey source (Pillow mode L) with 114, not (122,116,104).
    const grey = noisePixels(W, H, 23, 1);
    const greyRgb = Buffer.alloc(W * H * 3);
    for (let i = 0; i < W * H; i++) greyRgb.fill(grey[i]!, i * 3, i * 3 + 3);
    const sGrey = await med.score({ data: grey, width: W, height: H, channels: 1 }, Q, ['yes', 'no']);
    const greyPng = await noisePng(W, H, 23, 1);
    t.equal((await sharp(greyPng).metadata()).channels, 1, 'a genuine 1-channel PNG');
    t.same(await med.score(greyPng, Q, ['yes', 'no']), sGrey, `${variant}: grey PNG = raw grey`);
    const sGreyRgb = await med.score({ data: greyRgb, width: W, height: H, channels: 3 }, Q, ['yes', 'no']);
    if (variant === 'v0') t.same(sGreyRgb, sGrey, 'v0: raw grey = the same grey as RGB');
    else t.notSame(sGreyRgb, sGrey, 'v1.5: grey (mode L) is padded with 114, RGB with (122,116,104): different inputs');
    // JPEG: the buffer, its file and the pixels sharp decodes from it.
    const jpeg = await sharp(rgb, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
    const jpegPath = join(dir, `${variant}.jpg`);
    await writeFile(jpegPath, jpeg);
    const decoded = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
    t.equal(decoded.info.channels, 3);
    const sJpeg = await med.score(jpeg, Q, ['yes', 'no']);
    t.same(await med.score(jpegPath, Q, ['yes', 'no']), sJpeg, `${variant}: JPEG file = JPEG buffer`);
    t.same(await med.score({ data: decoded.data, width: W, height: H, channels: 3 }, Q, ['yes', 'no']), sJpeg, `${variant}: JPEG buffer = its decoded pixels`);
    const aJpeg = await med.ask(jpegPath, Q, GEN);
    t.same((await med.ask({ data: decoded.data, width: W, height: H, channels: 3 }, Q, GEN)).tokens, aJpeg.tokens, `${variant}: JPEG answers agree`);
    // Sensitivity: the pixels do matter (so the equalities above are not vacuous).
    t.notSame(sJpeg, refScore, `${variant}: lossy JPEG pixels score differently from the PNG's`);
    const other = await med.score({ data: noisePixels(W, H, 99, 3), width: W, height: H, channels: 3 }, Q, ['yes', 'no']);
    t.notSame(other, refScore, `${variant}: another image scores differently`);
    await med.dispose();
  }
});

t.test('ERR_IMAGE_* through ask, and the instance still works', async (t) => {
  const { med } = await loadTiny('v0', { maxImagePixels: 1000 });
  t.teardown(() => med.dispose());
  const small = await noisePng(30, 30, 31); // 900 px: allowed
  const base = await med.ask(small, Q, GEN);
  await rejectsCode(t, med.ask(Buffer.alloc(0), Q, GEN), 'ERR_IMAGE_EMPTY', 'empty buffer');
  await rejectsCode(t, med.ask({ data: new Uint8Array(0), width: 2, height: 2, channels: 3 }, Q, GEN), 'ERR_IMAGE_EMPTY', 'empty raw data');
  await rejectsCode(t, med.ask(Buffer.from('this is not an image, just some text bytes'), Q, GEN), 'ERR_IMAGE_DECODE', 'garbage bytes');
  const truncated = small.subarray(0, Math.floor(small.length / 2));
  await rejectsCode(t, med.ask(truncated, Q, GEN), 'ERR_IMAGE_DECODE', 'truncated PNG');
  await rejectsCode(t, med.ask(await noisePng(40, 30, 32), Q, GEN), 'ERR_IMAGE_TOO_LARGE', 'PNG above maxImagePixels');
  await rejectsCode(t, med.ask({ data: noisePixels(40, 30, 33), width: 40, height: 30, channels: 3 }, Q, GEN), 'ERR_IMAGE_TOO_LARGE', 'raw above maxImagePixels');
  await rejectsCode(t, med.embedImage(await noisePng(40, 30, 32)), 'ERR_IMAGE_TOO_LARGE', 'embedImage above maxImagePixels');
  await rejectsCode(t, med.ask({ data: noisePixels(10, 10, 34), width: 10, height: 11, channels: 3 }, Q, GEN), 'ERR_IMAGE_FORMAT', 'raw size mismatch');
  await rejectsCode(t, med.ask({ data: noisePixels(10, 10, 34), width: 10, height: 10, channels: 4 }, Q, GEN), 'ERR_IMAGE_FORMAT', 'raw channels mismatch');
  await rejectsCode(t, med.ask(join(tmpdir(), 'llava-med-no-such-image.png'), Q, GEN), 'ERR_FILE_NOT_FOUND', 'missing image file');
  await rejectsCode(t, med.ask(42 as unknown as string, Q, GEN), 'ERR_INVALID_ARGUMENT', 'a number is not an image');
  await rejectsCode(t, med.score(Buffer.alloc(0), Q, ['yes']), 'ERR_IMAGE_EMPTY', 'score with an empty image');
  for (const web of ['https://example.org/xray.png', 'HTTP://example.org/xray.png', new URL('https://example.org/xray.png')]) {
    const e = await rejectsCode(t, med.ask(web, Q, GEN), 'ERR_INVALID_ARGUMENT', `web address ${String(web)}`);
    t.match(e?.message, /does not download images\. Fetch it first/, 'the message says what to do');
  }
  await rejectsCode(t, med.ask(new URL('ftp://example.org/x.png'), Q, GEN), 'ERR_INVALID_ARGUMENT', 'ftp: URL');
  await rejectsCode(t, med.ask('data:image/png;base64,***', Q, GEN), 'ERR_IMAGE_DECODE', 'data: URL with bad base64');
  await rejectsCode(t, med.ask('data:image/png;base64', Q, GEN), 'ERR_INVALID_ARGUMENT', 'data: URL without a comma');
  const after = await med.ask(small, Q, GEN);
  t.same(after.tokens, base.tokens, 'the instance answers exactly as before the failures');
  t.equal(med.disposed, false);
});
