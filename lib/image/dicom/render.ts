/**
 * Native samples of one frame to 8-bit pixels, as a viewer shows them (PS3.3 C.11, C.7.6.3):
 *   stored value (Bits Allocated / Stored / High Bit, Pixel Representation: unused bits masked, signed values
 *   sign-extended) -> Modality LUT (Rescale Slope/Intercept, or the Modality LUT Sequence) -> VOI (a window:
 *   the caller's, else the file's first Window Center/Width with its VOI LUT Function LINEAR / LINEAR_EXACT /
 *   SIGMOID; else the VOI LUT Sequence; else the frame's full range min..max) -> MONOCHROME1 inverted -> 0..255.
 * Colour: RGB as stored (planar or interleaved), YBR_FULL / YBR_FULL_422 to RGB with the JPEG (ITU-T T.871)
 * equations pydicom uses, PALETTE COLOR through its three tables (16-bit entries keep their high byte).
 * Monochrome frames with at most 2^20 distinct stored values go through a lookup table of the values present.
 */
import { llavaError } from '../../errors.js';
import type { DicomHeader, Lut } from './parse.js';
import type { DicomWindow } from './types.js';

export interface RenderedFrame {
  samples: Uint8Array;
  channels: 1 | 3;
  /** How the VOI was chosen (monochrome only). */
  voi?: string;
}

export type ColourLayout = 'rgb' | 'ybr' | 'ybr422';

/** Reads stored values (masked, sign-extended) of a 1-sample frame as numbers. */
function storedValues(data: Uint8Array, h: DicomHeader, littleEndian: boolean): Float64Array | Int32Array {
  const n = h.rows * h.columns;
  const shift = h.highBit + 1 - h.bitsStored;
  const bits = h.bitsStored;
  if (h.bitsAllocated === 32) {
    const out = new Float64Array(n);
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const range = 2 ** bits;
    for (let i = 0; i < n; i++) {
      let x = Math.floor(v.getUint32(4 * i, littleEndian) / 2 ** shift) % range;
      if (h.signed && x >= range / 2) x -= range;
      out[i] = x;
    }
    return out;
  }
  const out = new Int32Array(n);
  const mask = bits >= 31 ? 0xffffffff : (1 << bits) - 1;
  const sign = 1 << (bits - 1);
  if (h.bitsAllocated === 8) {
    for (let i = 0; i < n; i++) {
      const x = (data[i]! >>> shift) & mask;
      out[i] = h.signed && x & sign ? x - (sign << 1) : x;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const lo = data[2 * i]!;
      const hi = data[2 * i + 1]!;
      const raw = littleEndian ? lo | (hi << 8) : hi | (lo << 8);
      const x = (raw >>> shift) & mask;
      out[i] = h.signed && x & sign ? x - (sign << 1) : x;
    }
  }
  return out;
}

function lutValue(l: Lut, x: number): number {
  let i = Math.round(x) - l.firstMapped;
  if (i < 0) i = 0;
  else if (i >= l.entries) i = l.entries - 1;
  return l.data[i]!;
}

function clamp8(y: number): number {
  const r = Math.round(y);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/** The VOI function for 0..255 output. `fn` is the file's VOI LUT Function (a user window is LINEAR). */
export function windowFunction(w: DicomWindow, fn: string): (x: number) => number {
  const { center: c, width } = w;
  switch (fn) {
    case 'SIGMOID':
      return (x) => 255 / (1 + Math.exp((-4 * (x - c)) / width));
    case 'LINEAR_EXACT': {
      const lo = c - width / 2;
      const hi = c + width / 2;
      return (x) => (x <= lo ? 0 : x > hi ? 255 : ((x - c) / width + 0.5) * 255);
    }
    default: {
      // PS3.3 C.11.2.1.2.1
      const c0 = c - 0.5;
      const w1 = width - 1;
      if (w1 <= 0) return (x) => (x <= c0 ? 0 : 255);
      return (x) => (x <= c0 - w1 / 2 ? 0 : x > c0 + w1 / 2 ? 255 : ((x - c0) / w1 + 0.5) * 255);
    }
  }
}

function validWindow(w: DicomWindow, fn: string): boolean {
  return Number.isFinite(w.center) && Number.isFinite(w.width) && (fn === 'LINEAR' ? w.width >= 1 : w.width > 0);
}

function renderMono(data: Uint8Array, h: DicomHeader, littleEndian: boolean, userWindow: DicomWindow | undefined): RenderedFrame {
  const stored = storedValues(data, h, littleEndian);
  const n = stored.length;
  let minS = Infinity;
  let maxS = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = stored[i]!;
    if (x < minS) minS = x;
    if (x > maxS) maxS = x;
  }
  const modality: (x: number) => number = h.modalityLut
    ? (x) => lutValue(h.modalityLut!, x)
    : h.rescale
      ? (x) => x * h.rescale!.slope + h.rescale!.intercept
      : (x) => x;

  let voi: (y: number) => number;
  let how: string;
  const fileWindow = h.windows.find((w) => validWindow(w, h.voiFunction));
  const fileFn = ['LINEAR', 'LINEAR_EXACT', 'SIGMOID'].includes(h.voiFunction) ? h.voiFunction : 'LINEAR';
  if (userWindow) {
    voi = windowFunction(userWindow, 'LINEAR');
    how = `window C=${userWindow.center} W=${userWindow.width} (given)`;
  } else if (fileWindow) {
    voi = windowFunction(fileWindow, fileFn);
    how = `window C=${fileWindow.center} W=${fileWindow.width} ${fileFn} (the file's first)`;
  } else if (h.voiLut) {
    const l = h.voiLut;
    const scale = 255 / (2 ** l.bits - 1);
    voi = (y) => lutValue(l, y) * scale;
    how = 'VOI LUT Sequence (the file)';
  } else {
    // full range of the frame's modality values
    let lo = Infinity;
    let hi = -Infinity;
    if (h.modalityLut) {
      for (let s = minS; s <= maxS; s++) {
        const y = modality(s);
        if (y < lo) lo = y;
        if (y > hi) hi = y;
      }
    } else {
      lo = Math.min(modality(minS), modality(maxS));
      hi = Math.max(modality(minS), modality(maxS));
    }
    const span = hi - lo;
    voi = span > 0 ? (y) => ((y - lo) / span) * 255 : () => 0;
    how = `full range ${lo}..${hi} (no window in the file)`;
  }
  const invert = h.photometric === 'MONOCHROME1';
  const map = (x: number): number => {
    const v = clamp8(voi(modality(x)));
    return invert ? 255 - v : v;
  };
  const out = new Uint8Array(n);
  if (maxS - minS <= 1 << 20) {
    const table = new Uint8Array(maxS - minS + 1);
    for (let s = minS; s <= maxS; s++) table[s - minS] = map(s);
    for (let i = 0; i < n; i++) out[i] = table[stored[i]! - minS]!;
  } else {
    for (let i = 0; i < n; i++) out[i] = map(stored[i]!);
  }
  return { samples: out, channels: 1, voi: how };
}

function renderPalette(data: Uint8Array, h: DicomHeader, littleEndian: boolean): RenderedFrame {
  const stored = storedValues(data, h, littleEndian);
  const { red, green, blue } = h.palette!;
  const out = new Uint8Array(stored.length * 3);
  const entry = (l: Lut, x: number) => {
    const v = lutValue(l, x);
    return l.bits > 8 ? v >> (l.bits - 8) : v;
  };
  for (let i = 0; i < stored.length; i++) {
    const x = stored[i]!;
    out[3 * i] = entry(red, x);
    out[3 * i + 1] = entry(green, x);
    out[3 * i + 2] = entry(blue, x);
  }
  return { samples: out, channels: 3 };
}

/** T.871 YCbCr -> RGB with pydicom's coefficients (full range, Cb/Cr centred on 128), rounded and clipped. */
function ybrToRgb(y: number, cb: number, cr: number, out: Uint8Array, o: number): void {
  cb -= 128;
  cr -= 128;
  out[o] = clamp8(y + 1.402 * cr);
  out[o + 1] = clamp8(y - ((0.114 * 1.772) / 0.587) * cb - ((0.299 * 1.402) / 0.587) * cr);
  out[o + 2] = clamp8(y + 1.772 * cb);
}

function renderColour(data: Uint8Array, h: DicomHeader, littleEndian: boolean, planar: number, layout: ColourLayout): RenderedFrame {
  const n = h.rows * h.columns;
  const out = new Uint8Array(n * 3);
  if (layout === 'ybr422') {
    // native YBR_FULL_422: Y0 Y1 Cb Cr for each pair of pixels in a row
    if (h.bitsAllocated !== 8) throw llavaError('ERR_DICOM_UNSUPPORTED', 'YBR_FULL_422 above 8 bits is not supported (ERR_DICOM_UNSUPPORTED).');
    const pairs = Math.ceil(h.columns / 2);
    for (let r = 0; r < h.rows; r++) {
      for (let p = 0; p < pairs; p++) {
        const s = (r * pairs + p) * 4;
        const cb = data[s + 2]!;
        const cr = data[s + 3]!;
        for (let k = 0; k < 2 && 2 * p + k < h.columns; k++) ybrToRgb(data[s + k]!, cb, cr, out, (r * h.columns + 2 * p + k) * 3);
      }
    }
    return { samples: out, channels: 3 };
  }
  const bytes = h.bitsAllocated / 8;
  const shift = h.highBit + 1 - h.bitsStored;
  const max = 2 ** h.bitsStored - 1;
  const mask = h.bitsStored >= 31 ? 0xffffffff : (1 << h.bitsStored) - 1;
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const sample = (pixel: number, c: number): number => {
    const idx = planar === 1 ? c * n + pixel : pixel * 3 + c;
    let raw: number;
    if (bytes === 1) raw = data[idx]!;
    else if (bytes === 2) raw = v.getUint16(idx * 2, littleEndian);
    else raw = v.getUint32(idx * 4, littleEndian);
    const x = bytes === 4 ? Math.floor(raw / 2 ** shift) % (max + 1) : (raw >>> shift) & mask;
    return h.bitsStored === 8 ? x : Math.round((x * 255) / max);
  };
  for (let i = 0; i < n; i++) {
    const a = sample(i, 0);
    const b = sample(i, 1);
    const c = sample(i, 2);
    if (layout === 'ybr') ybrToRgb(a, b, c, out, 3 * i);
    else {
      out[3 * i] = a;
      out[3 * i + 1] = b;
      out[3 * i + 2] = c;
    }
  }
  return { samples: out, channels: 3 };
}

/**
 * Renders one frame of native samples. `littleEndian`: byte order of `data` (native big-endian Pixel Data
 * stays big endian; decoders output little endian). `planar`/`layout`: as stored or as the decoder left them.
 */
export function renderFrame(
  data: Uint8Array,
  h: DicomHeader,
  opts: { littleEndian: boolean; planar: number; layout: ColourLayout; window?: DicomWindow },
): RenderedFrame {
  if (h.photometric === 'MONOCHROME1' || h.photometric === 'MONOCHROME2') return renderMono(data, h, opts.littleEndian, opts.window);
  if (h.photometric === 'PALETTE COLOR') return renderPalette(data, h, opts.littleEndian);
  return renderColour(data, h, opts.littleEndian, opts.planar, opts.layout);
}
