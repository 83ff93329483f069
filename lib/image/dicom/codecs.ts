/**
 * Compressed Pixel Data to native samples. Well-kept decoders, compiled to WebAssembly and loaded on first
 * use (they run in the DICOM worker thread, never on the caller's event loop):
 *  - JPEG baseline / extended 8-bit: @cornerstonejs/codec-libjpeg-turbo-8bit (libjpeg-turbo; colour JPEGs
 *    come out as RGB, libjpeg's YCbCr conversion);
 *  - JPEG lossless (process 14, any selection value): jpeg-lossless-decoder-js (the 8-bit libjpeg-turbo build
 *    has no lossless mode);
 *  - JPEG-LS: @cornerstonejs/codec-charls (CharLS);
 *  - JPEG 2000: @cornerstonejs/codec-openjpeg (OpenJPEG; its inverse colour transform yields RGB);
 *  - RLE: rle.ts.
 * Before a codec sees a bitstream, its own header (JPEG SOF / JPEG-LS SOF55 / J2K SIZ) is checked against the
 * DICOM header: dimensions, components and precision must agree, so a lying stream cannot make a decoder
 * allocate more than the DICOM header (already under the pixel limit) allows, and a 12-bit JPEG never
 * reaches the 8-bit decoder (ERR_DICOM_UNSUPPORTED instead).
 * Output: interleaved samples, little endian, bitsAllocated per sample as the header says.
 */
import { createRequire } from 'node:module';

import { llavaError, isLlavaMedError } from '../../errors.js';
import type { DicomHeader } from './parse.js';
import { TS, TS_NAMES, unsupported } from './parse.js';
import { decodeRle } from './rle.js';

const require = createRequire(import.meta.url);

interface FrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
}
interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  readHeader?(): void;
  decode(): void;
  getFrameInfo(): FrameInfo;
  delete(): void;
}
type WasmModule = Record<string, new () => WasmDecoder>;

const modules = new Map<string, Promise<WasmModule>>();

function wasm(pkg: string): Promise<WasmModule> {
  let m = modules.get(pkg);
  if (!m) {
    const factory = require(`${pkg}/decodewasmjs`) as (opts?: object) => Promise<WasmModule>;
    m = factory({ print: () => {}, printErr: () => {} });
    modules.set(pkg, m);
  }
  return m;
}

function bad(msg: string, cause?: unknown): never {
  throw llavaError('ERR_IMAGE_DECODE', `Invalid DICOM compressed Pixel Data: ${msg}`, cause);
}

/** Facts from a JPEG / JPEG-LS start-of-frame or a J2K SIZ marker. */
interface StreamHeader {
  width: number;
  height: number;
  components: number;
  precision: number;
  sof?: number;
}

/** Scans JPEG markers up to the first SOFn (or SOF55 for JPEG-LS). */
export function jpegHeader(b: Uint8Array): StreamHeader {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) bad('the JPEG stream has no SOI marker.');
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) bad('the JPEG stream has a broken marker segment.');
    const marker = b[i + 1]!;
    if (marker === 0xff) {
      i++;
      continue;
    }
    const len = (b[i + 2]! << 8) | b[i + 3]!;
    const isSof = (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) || marker === 0xf7;
    if (isSof) {
      if (i + 10 > b.length || len < 8) bad('the JPEG frame header is truncated.');
      return { precision: b[i + 4]!, height: (b[i + 5]! << 8) | b[i + 6]!, width: (b[i + 7]! << 8) | b[i + 8]!, components: b[i + 9]!, sof: marker };
    }
    if (marker === 0xda || marker === 0xd9) break;
    if (len < 2) bad('the JPEG stream has a marker segment of length < 2.');
    i += 2 + len;
  }
  bad('the JPEG stream has no frame header (SOF).');
}

/** J2K codestream (SIZ after SOC), or a JP2 file (we look for the codestream box's SOC). */
export function j2kHeader(b: Uint8Array): StreamHeader {
  let i = 0;
  if (!(b[0] === 0xff && b[1] === 0x4f)) {
    // JP2 wrapper: find the jp2c box
    let p = 0;
    while (p + 8 <= b.length) {
      const len = ((b[p]! << 24) >>> 0) + (b[p + 1]! << 16) + (b[p + 2]! << 8) + b[p + 3]!;
      const type = String.fromCharCode(b[p + 4]!, b[p + 5]!, b[p + 6]!, b[p + 7]!);
      if (type === 'jp2c') {
        i = p + 8;
        break;
      }
      if (len < 8) bad('the JPEG 2000 file has a broken box.');
      p += len;
    }
    if (!(b[i] === 0xff && b[i + 1] === 0x4f)) bad('the JPEG 2000 stream has no SOC marker.');
  }
  if (b.length < i + 4 + 38 + 3 || b[i + 2] !== 0xff || b[i + 3] !== 0x51) bad('the JPEG 2000 stream has no SIZ marker after SOC.');
  const v = new DataView(b.buffer, b.byteOffset + i + 4, b.length - i - 4);
  const xsiz = v.getUint32(4);
  const ysiz = v.getUint32(8);
  const x0 = v.getUint32(12);
  const y0 = v.getUint32(16);
  const comps = v.getUint16(36);
  if (b.length < i + 4 + 38 + 3 * Math.max(comps, 1)) bad('the JPEG 2000 SIZ marker is truncated.');
  const ssiz = v.getUint8(38);
  return { width: xsiz - x0, height: ysiz - y0, components: comps, precision: (ssiz & 0x7f) + 1 };
}

function check(h: DicomHeader, s: StreamHeader, what: string): void {
  if (s.width !== h.columns || s.height !== h.rows) bad(`the ${what} stream is ${s.width}x${s.height}, the DICOM header says ${h.columns}x${h.rows}.`);
  if (s.components !== h.samplesPerPixel) bad(`the ${what} stream has ${s.components} components, the DICOM header says ${h.samplesPerPixel} samples per pixel.`);
  if (s.precision > h.bitsAllocated || s.precision < 1) bad(`the ${what} stream has ${s.precision}-bit samples, the DICOM header allocates ${h.bitsAllocated}.`);
}

async function runWasm(pkg: string, cls: string, stream: Uint8Array, h: DicomHeader, what: string): Promise<Uint8Array> {
  const mod = await wasm(pkg);
  const d = new mod[cls]!();
  try {
    d.getEncodedBuffer(stream.length).set(stream);
    d.decode();
    const fi = d.getFrameInfo();
    if (fi.width !== h.columns || fi.height !== h.rows || fi.componentCount !== h.samplesPerPixel) {
      bad(`the ${what} decoder produced ${fi.width}x${fi.height}x${fi.componentCount}, the DICOM header says ${h.columns}x${h.rows}x${h.samplesPerPixel}.`);
    }
    const bytes = fi.bitsPerSample > 8 ? 2 : 1;
    const decoded = d.getDecodedBuffer();
    const need = h.rows * h.columns * h.samplesPerPixel * bytes;
    if (decoded.length < need) bad(`the ${what} decoder produced ${decoded.length} bytes, ${need} expected.`);
    return widen(decoded.slice(0, need), bytes, h.bitsAllocated);
  } catch (e) {
    if (isLlavaMedError(e)) throw e;
    // a WebAssembly abort leaves the module unusable: load a fresh one next time
    if (e instanceof Error && e.name === 'RuntimeError') modules.delete(pkg);
    return bad(`the ${what} decoder failed (${e instanceof Error ? e.message : String(e)}); the data is corrupt.`, e);
  } finally {
    try {
      d.delete();
    } catch {
      modules.delete(pkg);
    }
  }
}

/** 8-bit decoder output into 16-bit allocated samples when the header says so (and the reverse check). */
function widen(data: Uint8Array, bytes: number, bitsAllocated: number): Uint8Array {
  const want = bitsAllocated / 8;
  if (bytes === want) return data;
  if (bytes === 1 && want === 2) {
    const out = new Uint8Array(data.length * 2);
    for (let i = 0; i < data.length; i++) out[2 * i] = data[i]!;
    return out;
  }
  bad(`decoded ${bytes * 8}-bit samples do not fit ${bitsAllocated} allocated bits.`);
}

/** Decodes one compressed frame to native little-endian interleaved samples. */
export async function decodeCompressed(stream: Uint8Array, h: DicomHeader): Promise<{ data: Uint8Array; planar: number; ybr: boolean }> {
  const ts = h.transferSyntax;
  const name = TS_NAMES[ts] ?? ts;
  switch (ts) {
    case TS.rle:
      if (h.bitsAllocated === 32 && h.samplesPerPixel === 3) unsupported('RLE with 32-bit colour samples is not supported (ERR_DICOM_UNSUPPORTED).');
      // RLE keeps the photometric interpretation (YBR_FULL stays YBR_FULL); segments come out interleaved here
      return { data: decodeRle(stream, h.rows, h.columns, h.samplesPerPixel, h.bitsAllocated), planar: 0, ybr: h.photometric === 'YBR_FULL' };
    case TS.jpegBaseline:
    case TS.jpegExtended: {
      const s = jpegHeader(stream);
      if (s.sof === 0xc3 || s.sof === 0xc7 || s.sof === 0xcb || s.sof === 0xcf) return { data: lossless(stream, s, h, name), planar: 0, ybr: false };
      if (s.precision !== 8) unsupported(`${name} (${ts}) with ${s.precision}-bit samples is not supported: the JPEG decoder handles 8-bit only (ERR_DICOM_UNSUPPORTED). Convert with dcmtk's dcmdjpeg.`);
      check(h, s, 'JPEG');
      // libjpeg-turbo converts YCbCr to RGB itself
      return { data: await runWasm('@cornerstonejs/codec-libjpeg-turbo-8bit', 'JPEGDecoder', stream, h, 'JPEG'), planar: 0, ybr: false };
    }
    case TS.jpegLossless:
    case TS.jpegLosslessSV1: {
      const s = jpegHeader(stream);
      return { data: lossless(stream, s, h, name), planar: 0, ybr: false };
    }
    case TS.jpegLsLossless:
    case TS.jpegLsNear: {
      const s = jpegHeader(stream);
      if (s.sof !== 0xf7) bad('the JPEG-LS stream has no SOF55 marker.');
      check(h, s, 'JPEG-LS');
      return { data: await runWasm('@cornerstonejs/codec-charls', 'JpegLSDecoder', stream, h, 'JPEG-LS'), planar: 0, ybr: false };
    }
    case TS.j2kLossless:
    case TS.j2k: {
      const s = j2kHeader(stream);
      check(h, s, 'JPEG 2000');
      return { data: await runWasm('@cornerstonejs/codec-openjpeg', 'J2KDecoder', stream, h, 'JPEG 2000'), planar: 0, ybr: false };
    }
    default:
      unsupported(`DICOM transfer syntax ${ts} is not supported (ERR_DICOM_UNSUPPORTED).`);
  }
}

function lossless(stream: Uint8Array, s: StreamHeader, h: DicomHeader, name: string): Uint8Array {
  if (s.sof !== 0xc3) unsupported(`${name}: JPEG process with marker FF${s.sof!.toString(16).toUpperCase()} (arithmetic or hierarchical) is not supported (ERR_DICOM_UNSUPPORTED).`);
  check(h, s, 'JPEG lossless');
  const bytes = s.precision > 8 ? 2 : 1;
  if (bytes === 2 && s.components !== 1) unsupported(`${name}: colour JPEG lossless above 8 bits is not supported (ERR_DICOM_UNSUPPORTED).`);
  let out: ArrayBuffer;
  try {
    const jl = require('jpeg-lossless-decoder-js') as { Decoder: new () => { decode(b: ArrayBuffer, offset: number, length: number): Uint8Array | Uint16Array } };
    // the decoder reads from an ArrayBuffer at an offset: give it a private copy
    const copy = stream.slice();
    out = new jl.Decoder().decode(copy.buffer, 0, copy.length).buffer as ArrayBuffer;
  } catch (e) {
    bad(`the JPEG lossless decoder failed (${e instanceof Error ? e.message : String(e)}); the data is corrupt.`, e);
  }
  const need = h.rows * h.columns * h.samplesPerPixel * bytes;
  if (!out || out.byteLength < need) bad(`the JPEG lossless decoder produced ${out?.byteLength ?? 0} bytes, ${need} expected.`);
  return widen(new Uint8Array(out, 0, need), bytes, h.bitsAllocated);
}
