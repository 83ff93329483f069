// DICOM through LlavaMed (tiny v1.5 model, in-process): a DICOM path, its Buffer and { dicom } give exactly
// what the reference rendering (pydicom, committed PNG) gives as a grey image, through ask, score, embedImage
// and chat; windows change what the model sees; unsupported and broken files are typed errors via ask.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import sharp from 'sharp';
import { loadTiny, rejectsCode } from '../llava-med/util.js';
import { stopDicomWorker } from '../../lib/image/dicom/index.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dicom');
const Q = 'What is shown in this image?';
const GEN = { temperature: 0, maxTokens: 6, stop: [] as string[] };
t.teardown(stopDicomWorker);

t.test('DICOM inputs agree with the reference rendering as a grey image', async (t) => {
  const { med } = await loadTiny('v1.5');
  t.teardown(() => med.dispose());
  // mono2-u8-window.dcm renders exactly like its reference (difference 0), so the model input is identical
  const file = path.join(root, 'mono2-u8-window.dcm');
  const refPng = path.join(root, 'expected', 'mono2-u8-window.png');
  const grey = await sharp(refPng).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  t.equal(grey.info.channels, 1);
  const raw = { data: grey.data, width: grey.info.width, height: grey.info.height, channels: 1 as const };
  const ref = await med.score(raw, Q, ['yes', 'no']);
  const refAsk = await med.ask(raw, Q, GEN);
  const bytes = await readFile(file);
  for (const [what, input] of [
    ['path (detected by content)', file],
    ['Buffer (detected by content)', bytes],
    ['{ dicom: path }', { dicom: file }],
    ['{ dicom: Uint8Array }', { dicom: new Uint8Array(bytes) }],
  ] as const) {
    t.same(await med.score(input, Q, ['yes', 'no']), ref, `${what}: same log-probs as the reference rendering`);
  }
  t.same((await med.ask({ dicom: file }, Q, GEN)).tokens, refAsk.tokens, 'ask: same tokens');
  const h = await med.embedImage(bytes);
  t.same(await med.score(h, Q, ['yes', 'no']), ref, 'embedImage(DICOM bytes) = the reference');
  const chat = med.chat(file);
  t.same((await chat.ask(Q, GEN)).tokens, refAsk.tokens, 'chat: same first answer');
  await chat.dispose();
  await h.dispose();
  // a different window is a different picture for the model
  const narrow = await med.score({ dicom: file, window: { center: 60, width: 20 } }, Q, ['yes', 'no']);
  t.notSame(narrow, ref, 'the window option changes the model input');
  // frame selection reaches the model: frame 0 differs from the default middle frame
  const mf = path.join(root, 'multiframe-u12.dcm');
  t.notSame(await med.score({ dicom: mf, frame: 0 }, Q, ['yes', 'no']), await med.score(mf, Q, ['yes', 'no']), 'frame 0 is not the middle frame');
  await rejectsCode(t, med.ask(path.join(root, 'u12-jpeg-extended.dcm'), Q, GEN), 'ERR_DICOM_UNSUPPORTED', '12-bit JPEG extended');
  await rejectsCode(t, med.ask(bytes.subarray(0, 400), Q, GEN), 'ERR_IMAGE_DECODE', 'a truncated DICOM');
  await rejectsCode(t, med.ask({ dicom: file, window: { center: 0, width: 0 } }, Q, GEN), 'ERR_INVALID_ARGUMENT', 'window width 0');
  t.same(await med.score(file, Q, ['yes', 'no']), ref, 'the instance still answers after the errors');
  // every supported transfer syntax reaches an answer (the renderings themselves are checked in dicom.test.ts)
  for (const f of ['u12-implicit', 'u12-big-endian', 'u12-deflate', 'u12-rle', 'u8-jpeg-baseline', 'u8-jpeg-extended', 'u12-jpeg-lossless',
    'u12-jpeg-lossless-sv1', 'u12-jpls-lossless', 'u12-jpls-near', 'u12-j2k-lossless', 'u12-j2k-lossy', 'rgb-jpeg-baseline']) {
    const a = await med.ask(path.join(root, `${f}.dcm`), Q, GEN);
    t.ok(a.tokens.length > 0, `${f}: answered (${a.tokens.length} tokens)`);
  }
});
