// Parity with the original Python pipeline: Pillow decode + convert('RGB') + CLIPImageProcessor
// (and expand2square for v1.5), as written to test/fixtures/image/ by
// scripts/fixtures/make-pillow-expected.py. No Python runs here; the expected bytes are committed.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import sharp from 'sharp';
import { loadAndPreprocess, loadImage, preprocess } from '../../lib/image/index.js';
import type { PreprocessVariant } from '../../lib/image/index.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'image');

interface Case {
  input: string;
  pillowMode: string;
  size: [number, number];
  variant: PreprocessVariant;
  imageSize: number;
  expected: string;
}

const manifest = JSON.parse(await readFile(path.join(root, 'manifest.json'), 'utf8')) as { cases: Case[] };

async function expectedRgb(file: string): Promise<Buffer> {
  // The expected files are lossless PNGs holding exactly the Pillow output.
  return sharp(path.join(root, file)).removeAlpha().toColourspace('srgb').raw().toBuffer();
}

let worstMax = 0;
let worstExact = 100;
let total = 0;
let totalExact = 0;

for (const c of manifest.cases) {
  t.test(`${c.input} ${c.variant} @${c.imageSize}`, async (t) => {
    const rgb = await loadImage(path.join(root, c.input));
    t.equal(rgb.sourceMode, c.pillowMode, 'Pillow mode of the source is identified');
    t.same([rgb.width, rgb.height], c.size, 'decoded size as Pillow reports it (no EXIF rotation)');
    const out = await preprocess(rgb, { variant: c.variant, imageSize: c.imageSize });
    t.equal(out.width, c.imageSize);
    t.equal(out.height, c.imageSize);
    // What LlavaMed.encode uses: decode + one native call (conversion and geometry together).
    const direct = await loadAndPreprocess({ input: path.join(root, c.input), preprocess: { variant: c.variant, imageSize: c.imageSize } });
    t.same([direct.width, direct.height], [c.imageSize, c.imageSize]);
    t.ok(direct.data.equals(out.data), 'loadAndPreprocess gives the same bytes as loadImage + preprocess');
    const exp = await expectedRgb(c.expected);
    t.equal(out.data.length, exp.length, 'same byte count');
    let max = 0;
    let exact = 0;
    for (let i = 0; i < exp.length; i++) {
      const d = Math.abs(out.data[i]! - exp[i]!);
      if (d === 0) exact++;
      if (d > max) max = d;
    }
    const pct = (100 * exact) / exp.length;
    worstMax = Math.max(worstMax, max);
    worstExact = Math.min(worstExact, pct);
    total += exp.length;
    totalExact += exact;
    t.comment(`max |diff| ${max}, exact ${pct.toFixed(3)} % of ${exp.length} channel values`);
    t.ok(max <= 2, `every channel within +-2 (max ${max})`);
    t.ok(pct >= 99, `>= 99 % exact (${pct.toFixed(3)} %)`);
    if (!/\.jpe?g$/.test(c.input)) {
      // Lossless sources decode identically everywhere, so any difference would be the resampler's:
      // that part must be bit-exact. (JPEG decoding may legitimately vary by +-1 between libjpeg builds.)
      t.equal(max, 0, 'lossless source: bit-exact');
    }
  });
}

t.teardown(() => {
  // Visible in tap's output: the measured parity over all cases.
  console.error(
    `pillow parity: ${manifest.cases.length} cases, worst max diff ${worstMax}, worst exact ${worstExact.toFixed(3)} %, overall exact ${((100 * totalExact) / total).toFixed(4)} %`,
  );
});
