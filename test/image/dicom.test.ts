// DICOM rendering against independent references: every fixture in test/fixtures/dicom (made by
// scripts/fixtures/make-dicom-fixtures.py with pydicom + dcmtk + gdcm) rendered by lib/image/dicom must be
// within ±1 grey level of the reference PNG, which pydicom rendered from the file as dcmtk/gdcm decompressed it.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import sharp from 'sharp';
import { describeDicom, loadImage, renderDicom, type DicomRenderOptions } from '../../lib/image/index.js';
import { hangDicomWorkerForTests, setDicomJobTimeoutForTests, stopDicomWorker } from '../../lib/image/dicom/index.js';
import { isLlavaMedError } from '../../lib/errors.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dicom');

interface Case {
  file: string;
  description: string;
  options?: DicomRenderOptions;
  error?: string;
  expected?: string;
  mode?: 'L' | 'RGB';
  size?: [number, number];
}

const manifest = JSON.parse(await readFile(path.join(root, 'manifest.json'), 'utf8')) as { cases: Case[] };
t.teardown(stopDicomWorker);

async function expectedPixels(file: string, mode: 'L' | 'RGB'): Promise<Buffer> {
  const img = sharp(path.join(root, file));
  return mode === 'L' ? img.toColourspace('b-w').raw().toBuffer() : img.removeAlpha().toColourspace('srgb').raw().toBuffer();
}

let worst = 0;
let rendered = 0;
for (const c of manifest.cases) {
  t.test(`${c.file}${c.options ? ' ' + JSON.stringify(c.options) : ''}: ${c.description}`, async (t) => {
    const bytes = await readFile(path.join(root, c.file));
    if (c.error) {
      await t.rejects(renderDicom(bytes, { ...c.options, maxPixels: 1e8 }), { code: c.error });
      return;
    }
    const r = await renderDicom(bytes, { ...c.options, maxPixels: 1e8 });
    t.same([r.width, r.height], c.size, 'size');
    t.equal(r.channels, c.mode === 'L' ? 1 : 3, 'grey for monochrome, RGB otherwise');
    const exp = await expectedPixels(c.expected!, c.mode!);
    t.equal(r.samples.length, exp.length, 'byte count');
    let max = 0;
    for (let i = 0; i < exp.length; i++) max = Math.max(max, Math.abs(r.samples[i]! - exp[i]!));
    worst = Math.max(worst, max);
    rendered++;
    t.ok(max <= 1, `within ±1 of the reference (max difference ${max})`);
  });
}

t.test('summary', async (t) => {
  t.comment(`${rendered} renderings, worst difference ${worst}`);
  t.ok(rendered >= 70);
});

t.test('a DICOM path goes through loadImage by content (no option), as grey replicated to RGB', async (t) => {
  const file = path.join(root, 'ct-u12-rescale.dcm');
  const img = await loadImage(file);
  t.equal(img.sourceMode, 'L', 'a grey rendering is Pillow mode L (v1.5 pads it with grey 114)');
  const r = await renderDicom(await readFile(file), { maxPixels: 1e8 });
  t.equal(img.data.length, r.width * r.height * 3);
  for (let i = 0; i < r.samples.length; i++) {
    if (img.data[3 * i] !== r.samples[i] || img.data[3 * i + 2] !== r.samples[i]) {
      t.fail(`pixel ${i} differs`);
      return;
    }
  }
  // the explicit form with a window gives the windowed image
  const lung = await loadImage({ dicom: file, window: 'lung' });
  const exp = await expectedPixels('expected/ct-u12-rescale.windowlung.png', 'L');
  let max = 0;
  for (let i = 0; i < exp.length; i++) max = Math.max(max, Math.abs(lung.data[3 * i]! - exp[i]!));
  t.ok(max <= 1, `{ dicom, window: 'lung' } matches the reference (max ${max})`);
});

t.test('no identifying tag reaches the description', async (t) => {
  const info = await describeDicom(await readFile(path.join(root, 'ct-u12-rescale.dcm')));
  t.match(info, { transferSyntax: '1.2.840.10008.1.2.1', rows: 30, columns: 40, frames: 1, photometricInterpretation: 'MONOCHROME2', bitsStored: 12, rescale: { slope: 1, intercept: -1024 }, windows: [{ center: 40, width: 400 }] });
  t.notMatch(JSON.stringify(info), /SECRET/);
});

t.test('bad options and bad frames are typed errors', async (t) => {
  const bytes = await readFile(path.join(root, 'multiframe-u12.dcm'));
  await t.rejects(renderDicom(bytes, { frame: 3, maxPixels: 1e8 }), { code: 'ERR_INVALID_ARGUMENT', message: /3 frames/ });
  await t.rejects(renderDicom(bytes, { frame: -1, maxPixels: 1e8 }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(renderDicom(bytes, { window: { center: 1, width: 0 }, maxPixels: 1e8 }), { code: 'ERR_INVALID_ARGUMENT', message: /width/ });
  await t.rejects(renderDicom(bytes, { window: 'liver' as never, maxPixels: 1e8 }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(renderDicom(bytes, { maxPixels: 1000 }), { code: 'ERR_IMAGE_TOO_LARGE' });
  t.same((await renderDicom(bytes)).info.frame, 1, 'maxPixels defaults (100 MP); the middle of 3 frames');
  await t.rejects(renderDicom('x.dcm' as never), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(describeDicom(bytes, { implicit: 'yes' as never }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(loadImage({ dicom: path.join(root, 'nope.dcm') }), { code: 'ERR_FILE_NOT_FOUND' });
  // a bare dataset needs the flag, and says so
  const bare = path.join(root, 'u12-no-meta.dcm');
  const e = await loadImage(bare).catch((e: unknown) => e);
  t.ok(isLlavaMedError(e, 'ERR_IMAGE_DECODE') && /implicit: true/.test(e.message), 'a .dcm without the marker names the implicit option');
});

t.test('the eval report shows a DICOM image as rendered (sharp alone cannot read it)', async (t) => {
  const { writeReport } = await import('../../lib/eval/report.js');
  const { parseTestFile } = await import('../../lib/eval/formats.js');
  const dir = t.testdir({});
  const gt = parseTestFile([
    { id: 1, image: 'ct-u12-rescale.dcm', answer_type: 'CLOSED', conversations: [{ from: 'human', value: '<image>\nIs it a CT?' }, { from: 'gpt', value: 'yes' }] },
  ]);
  const pred = [{ question_id: 1, prompt: '', text: 'no', answer_id: 'a', model_id: 'm', metadata: {} }];
  const out = path.join(dir, 'r.html');
  await writeReport({ gt, pred, imagesDir: root, out });
  const m = /data:image\/jpeg;base64,([A-Za-z0-9+/=]+)/.exec(await readFile(out, 'utf8'));
  t.ok(m, 'the wrong answer carries a thumbnail');
  const thumb = await sharp(Buffer.from(m![1]!, 'base64')).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  const exp = await expectedPixels('expected/ct-u12-rescale.png', 'L');
  t.same([thumb.info.width, thumb.info.height], [40, 30]);
  let sum = 0;
  for (let i = 0; i < exp.length; i++) sum += Math.abs(thumb.data[i]! - exp[i]!);
  t.ok(sum / exp.length < 4, `the thumbnail is the default rendering, up to JPEG loss (mean difference ${(sum / exp.length).toFixed(2)})`);
});

t.test('the watchdog ends a job that does not finish, and the next job gets a fresh worker', async (t) => {
  const bytes = await readFile(path.join(root, 'u12-j2k-lossless.dcm'));
  setDicomJobTimeoutForTests(300);
  t.teardown(() => setDicomJobTimeoutForTests(undefined));
  const hung = hangDicomWorkerForTests();
  const queued = renderDicom(bytes); // posted behind the hung job, on the same worker
  await t.rejects(hung, { code: 'ERR_IMAGE_DECODE', message: /did not finish within 0.3 s/ });
  await t.rejects(queued, { code: 'ERR_IMAGE_DECODE' }, 'a job queued behind it fails too, typed');
  setDicomJobTimeoutForTests(undefined);
  const r = await renderDicom(bytes);
  t.same([r.width, r.height], [40, 30], 'then a new job renders (a fresh worker)');
});
