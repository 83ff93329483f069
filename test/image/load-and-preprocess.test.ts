// loadAndPreprocess, the image path of LlavaMed.encode: sharp decodes, one native call converts and
// resizes on the libuv pool. Same bytes as the two-step API, typed errors, no worker thread, and the
// event loop keeps ticking while a 12 MP image is processed.
import t from 'tap';
import sharp from 'sharp';
import { loadAndPreprocess, loadImage, preprocess } from '../../lib/image/index.js';

async function bigPng(w: number, h: number): Promise<Buffer> {
  const raw = Buffer.alloc(w * h * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919) % 251;
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
}

t.test('same bytes as loadImage + preprocess, for both variants and several inputs', async (t) => {
  const png = await bigPng(300, 200);
  const grey = await sharp(png).greyscale().png().toBuffer();
  const rgba = await sharp(png).ensureAlpha(0.5).png().toBuffer();
  const g16 = await sharp(png).greyscale().toColourspace('grey16').png().toBuffer();
  const cmyk = await sharp(png).toColourspace('cmyk').jpeg().toBuffer();
  const raw = { data: new Uint8Array(7 * 5 * 2).fill(9), width: 7, height: 5, channels: 2 as const };
  for (const [name, input] of Object.entries({ png, grey, rgba, g16, cmyk, raw })) {
    for (const variant of ['v0', 'v1.5'] as const) {
      const one = await loadAndPreprocess({ input, preprocess: { variant, imageSize: 56 } });
      const two = await preprocess(await loadImage(input), { variant, imageSize: 56 });
      t.same([one.width, one.height], [56, 56]);
      t.ok(Buffer.isBuffer(one.data));
      t.ok(one.data.equals(two.data), `${name} ${variant}: identical bytes`);
    }
  }
});

t.test('errors keep their codes', async (t) => {
  const v0 = { variant: 'v0' } as const;
  await t.rejects(loadAndPreprocess({ input: Buffer.from('not an image at all'), preprocess: v0 }), { code: 'ERR_IMAGE_DECODE' });
  await t.rejects(loadAndPreprocess({ input: new Uint8Array(0), preprocess: v0 }), { code: 'ERR_IMAGE_EMPTY' });
  await t.rejects(loadAndPreprocess({ input: '/no/such/image.png', preprocess: v0 }), { code: 'ERR_FILE_NOT_FOUND' });
  await t.rejects(loadAndPreprocess({ input: await bigPng(100, 50), maxPixels: 1000, preprocess: v0 }), { code: 'ERR_IMAGE_TOO_LARGE' });
  await t.rejects(loadAndPreprocess({ input: await bigPng(10, 10), maxPixels: 0, preprocess: v0 }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(loadAndPreprocess({ input: 42 as unknown as string, preprocess: v0 }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(loadAndPreprocess({ input: { data: new Uint8Array(5), width: 2, height: 1, channels: 3 }, preprocess: v0 }), { code: 'ERR_IMAGE_FORMAT' });
  // Options are checked before anything is read or decoded.
  await t.rejects(loadAndPreprocess({ input: '/no/such/image.png', preprocess: { variant: 'v3' as 'v0' } }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(loadAndPreprocess({ input: '/no/such/image.png', preprocess: { variant: 'v1.5', imageSize: -1 } }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(loadAndPreprocess(undefined as unknown as Parameters<typeof loadAndPreprocess>[0]), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('a 12 MP image: the event loop keeps ticking, no worker thread', async (t) => {
  const png = await bigPng(4000, 3000);
  for (const variant of ['v0', 'v1.5'] as const) {
    let ticks = 0;
    let worst = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
      ticks++;
    }, 1);
    const t0 = performance.now();
    const out = await loadAndPreprocess({ input: png, preprocess: { variant } });
    const ms = performance.now() - t0;
    clearInterval(timer);
    t.equal(out.width, variant === 'v0' ? 224 : 336);
    // A blocked loop would tick ~once; a free one ticks about once per millisecond.
    t.ok(ticks >= Math.min(20, ms / 10), `${variant}: ${ticks} ticks in ${ms.toFixed(0)} ms (longest gap ${worst.toFixed(0)} ms)`);
  }
  const handles = (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles();
  t.notOk(handles.some((h) => h.constructor?.name === 'Worker' || h.constructor?.name === 'MessagePort'), 'no worker thread was started');
});
