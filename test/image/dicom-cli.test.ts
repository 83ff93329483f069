// The CLI's DICOM surface, exercised once each (the bulk of DICOM is tested in-process in dicom.test.ts):
// `llava-med image` writes the windowed rendering (compared with the pydicom reference), `info` describes a
// DICOM without identifying tags, and a bad --window is a one-line usage error.
import t from 'tap';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import sharp from 'sharp';
import { ensureDist, runCli } from '../cli/util.js';
import { imageArg } from '../../lib/cli/image.js';
import { parseWindowFlag } from '../../lib/image/index.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'dicom');
ensureDist();

t.test('image --window lung writes the reference rendering; --stage model the encoder input', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'llava-med-dicom-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'ct.png');
  const r = await runCli(['image', path.join(root, 'ct-u12-rescale.dcm'), '--window', 'lung', '-o', out]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /40x30 frame 0 \(of 1\), window C=-600 W=1500/);
  t.equal((await sharp(out).metadata()).channels, 1, 'a grey DICOM is written as a grey PNG');
  const got = await sharp(out).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  const exp = await sharp(path.join(root, 'expected', 'ct-u12-rescale.windowlung.png')).toColourspace('b-w').raw().toBuffer();
  let max = 0;
  for (let i = 0; i < exp.length; i++) max = Math.max(max, Math.abs(got.data[i]! - exp[i]!));
  t.ok(max <= 1, `within ±1 of pydicom's lung-window rendering (max ${max})`);

  const model = path.join(dir, 'model.png');
  const m = await runCli(['image', path.join(root, 'multiframe-rgb.dcm'), '--frame', '0', '--stage', 'model', '--variant', 'v0', '-o', model]);
  t.equal(m.code, 0, m.stderr);
  const mi = await sharp(model).metadata();
  t.same([mi.width, mi.height, mi.channels], [224, 224, 3], 'v0 encoder input: 224x224 RGB');

  const bad = await runCli(['image', path.join(root, 'u12-jpeg-extended.dcm'), '-o', path.join(dir, 'x.png')]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /ERR_DICOM_UNSUPPORTED.*1\.2\.840\.10008\.1\.2\.4\.51/);
  t.same((await readdir(dir)).sort(), ['ct.png', 'model.png'], 'no partial output for the failed file');

  const usage = await runCli(['image', path.join(root, 'ct-u12-rescale.dcm'), '--window', '40', '-o', out]);
  t.equal(usage.code, 1);
  t.match(usage.stderr, /window must be CENTER,WIDTH/);
});

t.test('info on a DICOM file prints the rendering tags, never patient data', async (t) => {
  const r = await runCli(['info', '--json', path.join(root, 'mono1-u12.dcm')]);
  t.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout) as Record<string, unknown>;
  t.match(info, { kind: 'DICOM image', photometricInterpretation: 'MONOCHROME1', bitsStored: 12, windows: [{ center: 2048, width: 3000 }] });
  t.notMatch(r.stdout, /SECRET/);
});

t.test('flag parsing: --window C,W or a preset, and the image argument', async (t) => {
  t.same(parseWindowFlag('40,400'), { center: 40, width: 400 });
  t.same(parseWindowFlag(' -600 , 1500 '), { center: -600, width: 1500 });
  t.same(parseWindowFlag('Lung'), { center: -600, width: 1500 });
  for (const bad of ['40', '40,0', 'a,b', '40,400,1', 'liver']) t.throws(() => parseWindowFlag(bad), { code: 'ERR_INVALID_ARGUMENT' }, bad);
  t.equal(imageArg('x.dcm', {}), 'x.dcm', 'no DICOM flag: the path (DICOM recognised by content)');
  t.same(imageArg('x.dcm', { window: { center: 1, width: 2 } }), { dicom: 'x.dcm', window: { center: 1, width: 2 }, frame: undefined, implicit: undefined });
  t.same(imageArg('x.dcm', { frame: 0 }), { dicom: 'x.dcm', window: undefined, frame: 0, implicit: undefined }, 'frame 0 counts as given');
  t.same(imageArg('x.dcm', { implicit: true }), { dicom: 'x.dcm', window: undefined, frame: undefined, implicit: true });
});
