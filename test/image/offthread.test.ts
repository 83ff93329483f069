// Decoding and the Pillow-exact resample run in a worker thread: same bytes as the in-thread
// functions, typed errors across the thread boundary, and the event loop keeps ticking.
import t from 'tap';
import sharp from 'sharp';
import { loadAndPreprocess, loadImage, preprocess } from '../../lib/image/index.js';

async function bigPng(): Promise<Buffer> {
  const w = 3000, h = 2000;
  const raw = Buffer.alloc(w * h * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919) % 251;
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
}

t.test('worker output equals in-thread preprocessing, for both variants', async (t) => {
  const png = await bigPng();
  for (const variant of ['v0', 'v1.5'] as const) {
    const off = await loadAndPreprocess({ input: png, preprocess: { variant } });
    const inThread = preprocess(await loadImage(png), { variant });
    t.equal(off.width, inThread.width);
    t.ok(Buffer.isBuffer(off.data));
    t.ok(off.data.equals(inThread.data), `${variant}: identical bytes`);
  }
});

t.test('errors keep their code across the thread boundary', async (t) => {
  await t.rejects(loadAndPreprocess({ input: Buffer.from('not an image at all'), preprocess: { variant: 'v0' } }), { code: 'ERR_IMAGE_DECODE' });
  await t.rejects(loadAndPreprocess({ input: new Uint8Array(0), preprocess: { variant: 'v0' } }), { code: 'ERR_IMAGE_EMPTY' });
  await t.rejects(loadAndPreprocess({ input: '/no/such/image.png', preprocess: { variant: 'v0' } }), { code: 'ERR_FILE_NOT_FOUND' });
  await t.rejects(loadAndPreprocess({ input: await bigPng(), maxPixels: 1000, preprocess: { variant: 'v0' } }), { code: 'ERR_IMAGE_TOO_LARGE' });
});

t.test('the event loop keeps ticking while a large image is preprocessed', async (t) => {
  const png = await bigPng();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const t0 = performance.now();
  await loadAndPreprocess({ input: png, preprocess: { variant: 'v1.5' } });
  const ms = performance.now() - t0;
  clearInterval(timer);
  // A blocked loop would tick ~once; a free one ticks about once per millisecond.
  t.ok(ticks >= Math.min(20, ms / 10), `${ticks} ticks in ${ms.toFixed(0)} ms`);
});
