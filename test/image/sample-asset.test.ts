// The bundled demo image (used by `llava-med demo`) must stay small, synthetic-labelled grey, and loadable.
import t from 'tap';
import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { loadImage, preprocess } from '../../lib/image/index.js';

const sample = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'assets', 'sample-xray.png');

t.test('assets/sample-xray.png', async (t) => {
  const { size } = await stat(sample);
  t.ok(size < 60 * 1024, `under 60 KB (${size} bytes)`);
  const img = await loadImage(sample);
  t.equal(img.sourceMode, 'L', 'a grey radiograph-like image');
  t.same([img.width, img.height], [512, 512]);
  let grey = true;
  for (let i = 0; i < img.data.length; i += 3) if (img.data[i] !== img.data[i + 1] || img.data[i] !== img.data[i + 2]) grey = false;
  t.ok(grey, 'R = G = B everywhere');
  const v0 = await preprocess(img, { variant: 'v0' });
  const v15 = await preprocess(img, { variant: 'v1.5' });
  t.same([v0.width, v15.width], [224, 336]);
});
