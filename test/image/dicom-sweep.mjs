// The DICOM bad-file sweep, run in a child `node` process by dicom-badfiles.test.ts so that a crash or a hang
// shows as an exit code or a timeout, not as a dead test runner. It mutates valid fixtures (truncation at
// every element and fragment boundary, lying lengths, lying attribute values, unknown transfer syntax, byte
// flips in compressed streams), renders each through the compiled library (dist/, the DICOM worker thread)
// and writes a summary to the result file. Usage: node dicom-sweep.mjs <fixtures dir> <result.json>
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const [fixtures, resultPath] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const dicomParser = require('dicom-parser');
const { renderDicom, stopDicomWorker } = await import(new URL('../../dist/image/dicom/index.js', import.meta.url).href);
const { isLlavaMedError } = await import(new URL('../../dist/errors.js', import.meta.url).href);

const BASES = [
  'mono2-u12-window.dcm', 'u12-implicit.dcm', 'u12-big-endian.dcm', 'u12-deflate.dcm', 'u12-rle.dcm', 'mf-rle.dcm',
  'u8-jpeg-baseline.dcm', 'rgb-jpeg-baseline.dcm', 'u12-jpeg-lossless-sv1.dcm', 'u12-jpls-lossless.dcm',
  'u12-j2k-lossless.dcm', 'rgb-j2k-lossy.dcm', 'palette-16.dcm', 'mono2-voi-lut-seq.dcm', 'mono2-modality-lut-seq.dcm',
  'ybr-full-422.dcm',
];
// Attributes whose values decide allocation and layout.
const US_TAGS = ['x00280010', 'x00280011', 'x00280002', 'x00280100', 'x00280101', 'x00280102', 'x00280103', 'x00280006'];

let seed = 20261206;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);

const results = { cases: 0, ok: 0, codes: {}, untyped: [], slowestMs: 0, byKind: {}, okByKind: {}, codesByKind: {}, syntaxNamed: 0, phiLeaks: [] };

async function attempt(kind, base, bytes, opts = {}) {
  results.cases++;
  results.byKind[kind] = (results.byKind[kind] ?? 0) + 1;
  const t0 = performance.now();
  try {
    await renderDicom(bytes, { maxPixels: 1e8, ...opts });
    results.ok++;
    results.okByKind[kind] = (results.okByKind[kind] ?? 0) + 1;
    if (process.env.DICOM_SWEEP_LIST_OK) process.stderr.write(`ok ${kind} ${base} ${bytes.length}/${readFileSync(join(fixtures, base)).length}\n`);
  } catch (e) {
    if (isLlavaMedError(e)) {
      results.codes[e.code] = (results.codes[e.code] ?? 0) + 1;
      const k = (results.codesByKind[kind] ??= {});
      k[e.code] = (k[e.code] ?? 0) + 1;
      if (kind === 'syntax' && e.message.includes('1.2.3.4.5.6')) results.syntaxNamed++;
      // the fixtures' patient tags hold SECRET: no message may carry them
      if (/SECRET/.test(e.message)) results.phiLeaks.push(`${kind} ${base}: ${e.message}`.slice(0, 300));
    }
    else results.untyped.push(`${kind} ${base}: ${e?.stack ?? String(e)}`.slice(0, 400));
  }
  results.slowestMs = Math.max(results.slowestMs, performance.now() - t0);
}

function parse(bytes, implicit) {
  return dicomParser.parseDicom(Buffer.from(bytes), implicit ? { TransferSyntaxUID: '1.2.840.10008.1.2' } : {});
}

for (const base of BASES) {
  const orig = new Uint8Array(readFileSync(join(fixtures, base)));
  const ds = parse(orig);
  const ts = ds.string('x00020010');
  const deflated = ts === '1.2.840.10008.1.2.1.99';
  const bigEndian = ts === '1.2.840.10008.1.2.2';
  const implicitBody = ts === '1.2.840.10008.1.2';
  const elements = Object.values(ds.elements);
  // meta header elements are explicit little endian; the body is as the syntax says
  const isMeta = (el) => el.tag < 'x00030000';

  // 1. truncation at every element boundary (and inside every fragment); deflated bodies every 16 bytes
  const cuts = new Set([0, 1, 127, 128, 131, 132, 133]);
  for (const el of elements) {
    for (const d of [-12, -8, -6, -4, -2, 0, 1]) cuts.add(el.dataOffset + d);
    cuts.add(el.dataOffset + Math.floor(el.length / 2));
    cuts.add(el.dataOffset + el.length);
    for (const f of el.fragments ?? []) for (const d of [-8, 0, Math.floor(f.length / 2), f.length - 1]) cuts.add(f.position + d);
    for (const it of el.items ?? []) for (const d of [0, 8, it.length]) cuts.add(it.dataOffset + d);
  }
  if (deflated) for (let p = 132; p < orig.length; p += 16) cuts.add(p);
  for (const c of [...cuts].filter((c) => c >= 0 && c < orig.length).sort((a, b) => a - b)) await attempt('truncated', base, orig.slice(0, c));

  if (!deflated) {
    // 2. lying lengths
    for (const el of elements) {
      const meta = isMeta(el);
      const le = meta || !bigEndian;
      const implicitEl = !meta && implicitBody;
      const long = implicitEl || ['OB', 'OW', 'OF', 'SQ', 'UT', 'UN', 'OD', 'OL', 'UC', 'UR', 'OV'].includes(el.vr ?? '');
      const pos = el.dataOffset - (long ? 4 : 2);
      const values = long ? [0, el.length + 1, el.length * 2 + 100, 0x7fffffff, 0xfffffffe, 0xffffffff] : [0, el.length + 1, el.length + 2, 0xfffe, 0xffff];
      for (const v of values) {
        if (v === el.length) continue;
        const b = orig.slice();
        const dv = new DataView(b.buffer);
        if (long) dv.setUint32(pos, v >>> 0, le);
        else dv.setUint16(pos, v, le);
        await attempt('length', base, b);
      }
    }
    // 3. lying values of the attributes that size and lay out the pixels
    for (const tag of US_TAGS) {
      const el = ds.elements[tag];
      if (!el || el.length < 2) continue;
      for (const v of [0, 1, 7, 12, 33, 255, 65535]) {
        const b = orig.slice();
        new DataView(b.buffer).setUint16(el.dataOffset, v, !bigEndian);
        await attempt('value', base, b);
      }
    }
    const nf = ds.elements.x00280008;
    if (nf) {
      for (const s of ['0   ', '9999', '-1  ', 'abcd', '1e9 ']) {
        const b = orig.slice();
        for (let i = 0; i < nf.length; i++) b[nf.dataOffset + i] = (s.padEnd(nf.length, ' ').charCodeAt(i)) & 0xff;
        await attempt('value', base, b);
      }
    }
    // huge dimensions, both at once
    const rows = ds.elements.x00280010;
    const cols = ds.elements.x00280011;
    if (rows && cols) {
      const b = orig.slice();
      const dv = new DataView(b.buffer);
      dv.setUint16(rows.dataOffset, 65535, !bigEndian);
      dv.setUint16(cols.dataOffset, 65535, !bigEndian);
      await attempt('value', base, b);
    }
  }
  // 4. unknown transfer syntax
  const tsEl = ds.elements.x00020010;
  {
    const b = orig.slice();
    const fake = '1.2.3.4.5.6'.padEnd(tsEl.length, '\0');
    for (let i = 0; i < tsEl.length; i++) b[tsEl.dataOffset + i] = fake.charCodeAt(i);
    await attempt('syntax', base, b);
  }
  // 5. byte flips in the pixel data (compressed streams: the codecs see corrupt data)
  const px = ds.elements.x7fe00010;
  if (px && !deflated) {
    const regions = px.fragments?.length ? px.fragments.map((f) => [f.position, f.length]) : [[px.dataOffset, px.length]];
    const n = px.fragments?.length ? 60 : 10;
    for (let k = 0; k < n; k++) {
      const b = orig.slice();
      const [start, len] = regions[Math.floor(rnd() * regions.length)];
      const flips = 1 + Math.floor(rnd() * 8);
      for (let j = 0; j < flips; j++) b[start + Math.floor(rnd() * len)] = Math.floor(rnd() * 256);
      await attempt('flip', base, b);
    }
  }
  // 6. the same file read as a bare dataset, and junk as a bare dataset
  await attempt('implicit', base, orig.slice(132), { implicit: true });
}
// deeply nested sequences (explicit VR LE, undefined lengths) after a valid meta header
{
  const orig = new Uint8Array(readFileSync(join(fixtures, 'mono2-u8.dcm')));
  const ds = parse(orig);
  const bodyStart = Object.values(ds.elements).filter((el) => el.tag < 'x00030000').reduce((m, el) => Math.max(m, el.dataOffset + el.length), 0);
  for (const depth of [64, 5000, 200000]) {
    const level = [0x08, 0x00, 0x40, 0x11, 0x53, 0x51, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff];
    const b = new Uint8Array(bodyStart + depth * level.length);
    b.set(orig.subarray(0, bodyStart));
    for (let i = 0; i < depth; i++) b.set(level, bodyStart + i * level.length);
    await attempt('nesting', 'mono2-u8.dcm', b);
  }
}
// a Photometric Interpretation and a transfer syntax that carry text: never echoed as is
{
  const orig = new Uint8Array(readFileSync(join(fixtures, 'mono2-u8.dcm')));
  const ds = parse(orig);
  const pi = ds.elements.x00280004;
  const b = orig.slice();
  const txt = 'SECRET'.padEnd(pi.length, ' ');
  for (let i = 0; i < pi.length; i++) b[pi.dataOffset + i] = txt.charCodeAt(i);
  await attempt('value', 'mono2-u8.dcm', b);
}
for (let k = 0; k < 20; k++) {
  const junk = new Uint8Array(64 + Math.floor(rnd() * 512));
  for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(rnd() * 256);
  await attempt('junk', 'random', junk, { implicit: true });
}

await stopDicomWorker();
writeFileSync(resultPath, JSON.stringify(results));
