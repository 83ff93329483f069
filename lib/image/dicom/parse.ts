/**
 * The DICOM dataset: dicom-parser reads the elements (Part 10 meta header, the dataset in the transfer
 * syntax it names, deflate, big endian, encapsulated fragments); this file turns the attributes that matter
 * for rendering into a checked header and hands out one frame's bytes. Everything dicom-parser throws (it
 * throws strings) and every missing or lying attribute becomes a typed error; no tag value other than the
 * transfer syntax UID is ever put in a message (patient data stays out of errors and logs).
 */
import { inflateRawSync } from 'node:zlib';
import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';

import { llavaError, isLlavaMedError } from '../../errors.js';
import { hasDicmMagic } from './magic.js';

export const TS = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  deflate: '1.2.840.10008.1.2.1.99',
  explicitBE: '1.2.840.10008.1.2.2',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpegExtended: '1.2.840.10008.1.2.4.51',
  jpegLossless: '1.2.840.10008.1.2.4.57',
  jpegLosslessSV1: '1.2.840.10008.1.2.4.70',
  jpegLsLossless: '1.2.840.10008.1.2.4.80',
  jpegLsNear: '1.2.840.10008.1.2.4.81',
  j2kLossless: '1.2.840.10008.1.2.4.90',
  j2k: '1.2.840.10008.1.2.4.91',
  rle: '1.2.840.10008.1.2.5',
} as const;

export const TS_NAMES: Record<string, string> = {
  [TS.implicitLE]: 'Implicit VR Little Endian',
  [TS.explicitLE]: 'Explicit VR Little Endian',
  [TS.deflate]: 'Deflated Explicit VR Little Endian',
  [TS.explicitBE]: 'Explicit VR Big Endian',
  [TS.jpegBaseline]: 'JPEG Baseline (Process 1)',
  [TS.jpegExtended]: 'JPEG Extended (Process 2 & 4)',
  [TS.jpegLossless]: 'JPEG Lossless (Process 14)',
  [TS.jpegLosslessSV1]: 'JPEG Lossless SV1 (Process 14, Selection Value 1)',
  [TS.jpegLsLossless]: 'JPEG-LS Lossless',
  [TS.jpegLsNear]: 'JPEG-LS Near-Lossless',
  [TS.j2kLossless]: 'JPEG 2000 (Lossless Only)',
  [TS.j2k]: 'JPEG 2000',
  [TS.rle]: 'RLE Lossless',
};

const NATIVE = new Set<string>([TS.implicitLE, TS.explicitLE, TS.deflate, TS.explicitBE]);

/** Inflated datasets (deflate transfer syntax) larger than this are refused: a deflate bomb stops here. */
export const MAX_INFLATED_BYTES = 1 << 30;

/** Sequences (VOI LUT, functional groups) whose VR an implicit-VR dataset does not say. */
const SEQUENCE_TAGS = new Set(['x00283000', 'x00283010', 'x52009229', 'x52009230', 'x00289145', 'x00289132', 'x00289110']);

export interface Lut {
  /** Number of entries, first stored value mapped, bits per entry. */
  entries: number;
  firstMapped: number;
  bits: number;
  data: Uint16Array;
}

export interface DicomHeader {
  transferSyntax: string;
  rows: number;
  columns: number;
  frames: number;
  /** The frame to render: the caller's, or the middle one. */
  frame: number;
  samplesPerPixel: number;
  photometric: string;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  signed: boolean;
  planar: number;
  modality?: string;
  littleEndian: boolean;
  encapsulated: boolean;
  /** From the top level, or the enhanced functional groups (per-frame over shared) for the chosen frame. */
  rescale?: { slope: number; intercept: number };
  modalityLut?: Lut;
  windows: { center: number; width: number }[];
  voiFunction: string;
  voiLut?: Lut;
  palette?: { red: Lut; green: Lut; blue: Lut };
}

export interface ParsedDicom {
  dataSet: DataSet;
  pixelData: Element;
  header: DicomHeader;
}

function bad(message: string, cause?: unknown): never {
  throw llavaError('ERR_IMAGE_DECODE', `Invalid DICOM file: ${message}`, cause);
}

export function unsupported(message: string): never {
  throw llavaError('ERR_DICOM_UNSUPPORTED', message);
}


/** Parses the dataset; `implicit` reads a bare dataset without the meta header as Implicit VR Little Endian. */
export function parseDicom(bytes: Uint8Array, opts: { implicit?: boolean; frame?: number }): ParsedDicom {
  if (!hasDicmMagic(bytes) && !opts.implicit) {
    bad('no "DICM" marker at byte 128, so not a DICOM Part 10 file (window and frame options apply to DICOM only). For a bare DICOM dataset without the meta header, pass { implicit: true } (CLI: --implicit).');
  }
  const fail = (e: unknown): never => {
    if (isLlavaMedError(e)) throw e;
    if (e instanceof RangeError && /call stack/i.test(e.message)) bad('sequences are nested too deeply.', e);
    // dicom-parser throws strings, or an object carrying the exception and the partial dataSet
    const inner = (e as { exception?: unknown })?.exception ?? e;
    const msg = typeof inner === 'string' ? inner : inner instanceof Error ? inner.message : 'unreadable';
    bad(`the dataset cannot be parsed (${msg.replace(/^dicomParser[.:]?[\w.]*:?\s*/, '')}); the file may be truncated or not DICOM.`, e);
  };
  // The transfer syntax first, from the meta header alone: an unknown syntax is named, whatever its body holds.
  let transferSyntax: string = TS.implicitLE;
  if (hasDicmMagic(bytes)) {
    try {
      transferSyntax = (dicomParser.readPart10Header(bytes).string('x00020010') ?? '').replace(/\0/g, '').trim();
    } catch (e) {
      fail(e);
    }
    if (!transferSyntax) bad('the meta header has no Transfer Syntax UID (0002,0010).');
  }
  if (!TS_NAMES[transferSyntax]) {
    unsupported(`DICOM transfer syntax ${transferSyntax.slice(0, 64).replace(/[^0-9.]/g, '?')} is not supported (ERR_DICOM_UNSUPPORTED). Supported: ${Object.entries(TS_NAMES).map(([k, v]) => `${v} (${k})`).join(', ')}. Convert the file, e.g. with dcmtk's dcmdjpeg/dcmconv, to Explicit VR Little Endian.`);
  }
  let dataSet!: DataSet;
  try {
    dataSet = dicomParser.parseDicom(bytes, {
      TransferSyntaxUID: hasDicmMagic(bytes) ? undefined : TS.implicitLE,
      vrCallback: ((tag: string) => (SEQUENCE_TAGS.has(tag) ? 'SQ' : undefined)) as (tag: string) => void,
      inflater: ((arr: Uint8Array, position: number) => inflate(arr, position)) as (arr: Uint8Array, position: number) => void,
    });
  } catch (e) {
    fail(e);
  }
  if (dataSet.elements.x7fe00008 || dataSet.elements.x7fe00009) unsupported('DICOM Float / Double Float Pixel Data is not supported (ERR_DICOM_UNSUPPORTED).');
  const pixelData = dataSet.elements.x7fe00010;
  if (!pixelData) bad('it has no Pixel Data (7FE0,0010): not an image (a report, structured report or presentation state?).');
  const header = readHeader(dataSet, pixelData, transferSyntax, opts.frame);
  return { dataSet, pixelData, header };
}

function inflate(arr: Uint8Array, position: number): Uint8Array {
  let inflated: Buffer;
  try {
    inflated = inflateRawSync(arr.subarray(position), { maxOutputLength: MAX_INFLATED_BYTES });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw llavaError('ERR_IMAGE_TOO_LARGE', `The deflated DICOM dataset inflates past ${MAX_INFLATED_BYTES} bytes; refused.`, e);
    }
    bad('the deflated dataset is corrupt.', e);
  }
  const out = new Uint8Array(position + inflated.length);
  out.set(arr.subarray(0, position));
  out.set(inflated, position);
  return out;
}

function int(ds: DataSet, tag: string, name: string, opts: { required?: boolean; min?: number; max?: number; def?: number } = {}): number {
  const el = ds.elements[tag];
  let v: number | undefined;
  if (el && el.length >= 2) v = ds.uint16(tag);
  else if (el && el.length > 0) bad(`${name} (${tagName(tag)}) has a length of ${el.length}.`);
  if (v === undefined || Number.isNaN(v)) {
    if (opts.def !== undefined) return opts.def;
    if (opts.required) bad(`${name} (${tagName(tag)}) is missing.`);
    return NaN;
  }
  if ((opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max)) {
    bad(`${name} (${tagName(tag)}) is ${v}, outside ${opts.min ?? '-'}..${opts.max ?? '-'}.`);
  }
  return v;
}

/** A Code String value as it may appear in a message or in `info`: CS characters only, at most 16. */
function codeString(v: string): string {
  return v.trim().slice(0, 16).replace(/[^A-Z0-9_ ]/gi, '?');
}

function tagName(tag: string): string {
  return `${tag.slice(1, 5).toUpperCase()},${tag.slice(5).toUpperCase()}`;
}

/** A decimal string (DS/IS) value or undefined; lying (non-finite) values are errors. */
function ds(set: DataSet, tag: string, index = 0): number | undefined {
  const el = set.elements[tag];
  if (!el || el.length === 0) return undefined;
  const s = set.string(tag, index);
  if (s === undefined || s.trim() === '') return undefined;
  const v = Number(s.trim());
  if (!Number.isFinite(v)) bad(`(${tagName(tag)}) value ${index + 1} is not a number.`);
  return v;
}

/** The first item of a sequence element, or undefined. */
function item(set: DataSet | undefined, tag: string, index = 0): DataSet | undefined {
  return set?.elements[tag]?.items?.[index]?.dataSet;
}

function readLut(set: DataSet, descTag: string, dataTag: string, signedFirst: boolean, what: string): Lut {
  const d = set.elements[descTag];
  if (!d || d.length < 6) bad(`${what}: LUT Descriptor (${tagName(descTag)}) is missing or short.`);
  let entries = set.uint16(descTag, 0)!;
  if (entries === 0) entries = 65536;
  const firstMapped = signedFirst ? set.int16(descTag, 1)! : set.uint16(descTag, 1)!;
  const bits = set.uint16(descTag, 2)!;
  if (!(bits >= 1 && bits <= 16)) bad(`${what}: LUT Descriptor says ${bits} bits per entry (1..16 allowed).`);
  const el = set.elements[dataTag];
  if (!el) bad(`${what}: LUT Data (${tagName(dataTag)}) is missing.`);
  const data = new Uint16Array(entries);
  // 8-bit palette entries may be packed two per 16-bit word (PS3.3 C.7.6.3.1.6); most writers use one per word.
  if (el.length >= entries * 2) {
    for (let i = 0; i < entries; i++) data[i] = set.byteArrayParser.readUint16(set.byteArray, el.dataOffset + 2 * i);
  } else if (bits === 8 && el.length >= entries) {
    for (let i = 0; i < entries; i++) data[i] = set.byteArray[el.dataOffset + i]!;
  } else {
    bad(`${what}: LUT Data has ${el.length} bytes for ${entries} entries.`);
  }
  if (el.dataOffset + Math.min(el.length, entries * 2) > set.byteArray.length) bad(`${what}: LUT Data runs past the end of the file.`);
  const max = 2 ** bits - 1;
  for (let i = 0; i < entries; i++) if (data[i]! > max) data[i] = max;
  return { entries, firstMapped, bits, data };
}

function readHeader(set: DataSet, pixelData: Element, transferSyntax: string, frameOpt: number | undefined): DicomHeader {
  const rows = int(set, 'x00280010', 'Rows', { required: true, min: 1 });
  const columns = int(set, 'x00280011', 'Columns', { required: true, min: 1 });
  const samplesPerPixel = int(set, 'x00280002', 'Samples per Pixel', { def: 1 });
  if (samplesPerPixel !== 1 && samplesPerPixel !== 3) unsupported(`DICOM Samples per Pixel ${samplesPerPixel} is not supported (1 or 3) (ERR_DICOM_UNSUPPORTED).`);
  const bitsAllocated = int(set, 'x00280100', 'Bits Allocated', { required: true });
  if (bitsAllocated !== 8 && bitsAllocated !== 16 && bitsAllocated !== 32) {
    unsupported(`DICOM Bits Allocated ${bitsAllocated} is not supported (8, 16 or 32) (ERR_DICOM_UNSUPPORTED).`);
  }
  const bitsStored = int(set, 'x00280101', 'Bits Stored', { def: bitsAllocated, min: 1, max: bitsAllocated });
  const highBit = int(set, 'x00280102', 'High Bit', { def: bitsStored - 1, min: bitsStored - 1, max: bitsAllocated - 1 });
  const pr = int(set, 'x00280103', 'Pixel Representation', { def: 0, min: 0, max: 1 });
  const planar = int(set, 'x00280006', 'Planar Configuration', { def: 0, min: 0, max: 1 });
  const photometric = (set.string('x00280004') ?? (samplesPerPixel === 3 ? 'RGB' : 'MONOCHROME2')).trim().toUpperCase();
  let frames = 1;
  const nf = set.elements.x00280008;
  if (nf && nf.length > 0) {
    const f = Number((set.string('x00280008') ?? '').trim());
    if (!Number.isInteger(f) || f < 0) bad('Number of Frames (0028,0008) is not a non-negative integer.');
    frames = Math.max(f, 1);
  }
  const frame = frameOpt ?? Math.floor(frames / 2);
  if (!Number.isInteger(frame) || frame < 0 || frame >= frames) {
    throw llavaError('ERR_INVALID_ARGUMENT', `frame ${String(frameOpt)} does not exist: this DICOM image has ${frames} frame${frames === 1 ? '' : 's'} (0..${frames - 1}).`);
  }
  const mono = photometric === 'MONOCHROME1' || photometric === 'MONOCHROME2';
  const colourModels = ['RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_RCT', 'YBR_ICT'];
  if (mono || photometric === 'PALETTE COLOR') {
    if (samplesPerPixel !== 1) bad(`${photometric} needs 1 sample per pixel, the file says ${samplesPerPixel}.`);
  } else if (colourModels.includes(photometric)) {
    if (samplesPerPixel !== 3) bad(`${photometric} needs 3 samples per pixel, the file says ${samplesPerPixel}.`);
  } else {
    // name only the standard's defined terms: a crafted value is never echoed
    const known = ['YBR_PARTIAL_422', 'YBR_PARTIAL_420', 'HSV', 'ARGB', 'CMYK', 'XYB'];
    unsupported(`DICOM Photometric Interpretation ${known.includes(photometric) ? photometric : '(not a defined term)'} is not supported (ERR_DICOM_UNSUPPORTED): supported are MONOCHROME1, MONOCHROME2, PALETTE COLOR, RGB, YBR_FULL, YBR_FULL_422, YBR_RCT, YBR_ICT.`);
  }

  // Enhanced multi-frame: per-frame functional groups over shared ones over the top level.
  const perFrame = item(set, 'x52009230', frame);
  const shared = item(set, 'x52009229');
  const groups = [perFrame, shared, set].filter((g): g is DataSet => g !== undefined);
  const fromGroups = <T>(seqTag: string, read: (g: DataSet) => T | undefined): T | undefined => {
    for (const g of groups) {
      const src = g === set ? set : item(g, seqTag);
      const v = src ? read(src) : undefined;
      if (v !== undefined) return v;
    }
    return undefined;
  };

  let rescale: DicomHeader['rescale'];
  let modalityLut: Lut | undefined;
  let windows: DicomHeader['windows'] = [];
  let voiFunction = 'LINEAR';
  let voiLut: Lut | undefined;
  let palette: DicomHeader['palette'];
  if (mono) {
    rescale = fromGroups('x00289145', (g) => {
      const slope = ds(g, 'x00281053');
      const intercept = ds(g, 'x00281052');
      if (slope === undefined && intercept === undefined) return undefined;
      if (slope === 0) bad('Rescale Slope (0028,1053) is 0.');
      return { slope: slope ?? 1, intercept: intercept ?? 0 };
    });
    const m = item(set, 'x00283000');
    if (m && !rescale) modalityLut = readLut(m, 'x00283002', 'x00283006', pr === 1, 'Modality LUT Sequence');
    windows = fromGroups('x00289132', (g) => {
      const n = Math.min(g.numStringValues('x00281050') ?? 0, g.numStringValues('x00281051') ?? 0);
      const out: { center: number; width: number }[] = [];
      for (let i = 0; i < n; i++) {
        const center = ds(g, 'x00281050', i);
        const width = ds(g, 'x00281051', i);
        if (center !== undefined && width !== undefined) out.push({ center, width });
      }
      if (out.length === 0) return undefined;
      voiFunction = (g.string('x00281056') ?? 'LINEAR').trim().toUpperCase() || 'LINEAR';
      return out;
    }) ?? [];
    const v = item(set, 'x00283010');
    if (v) voiLut = readLut(v, 'x00283002', 'x00283006', false, 'VOI LUT Sequence');
  } else if (photometric === 'PALETTE COLOR') {
    palette = {
      red: readLut(set, 'x00281101', 'x00281201', pr === 1, 'Red Palette'),
      green: readLut(set, 'x00281102', 'x00281202', pr === 1, 'Green Palette'),
      blue: readLut(set, 'x00281103', 'x00281203', pr === 1, 'Blue Palette'),
    };
  }
  const modality = set.string('x00080060') !== undefined ? codeString(set.string('x00080060')!) : undefined;
  return {
    transferSyntax,
    rows,
    columns,
    frames,
    frame,
    samplesPerPixel,
    photometric,
    bitsAllocated,
    bitsStored,
    highBit,
    signed: pr === 1,
    planar,
    modality,
    littleEndian: transferSyntax !== TS.explicitBE,
    encapsulated: !NATIVE.has(transferSyntax),
    rescale,
    modalityLut,
    windows,
    voiFunction,
    voiLut,
    palette,
  };
}

/**
 * The bytes of one frame: for native syntaxes, the frame's slice of Pixel Data (checked against its length);
 * for encapsulated ones, the frame's compressed bitstream (fragments joined).
 */
export function frameBytes(p: ParsedDicom): Uint8Array {
  const { dataSet, pixelData, header: h } = p;
  const frame = h.frame;
  const end = Math.min(pixelData.dataOffset + pixelData.length, dataSet.byteArray.length);
  if (!h.encapsulated) {
    if (pixelData.encapsulatedPixelData) bad(`Pixel Data is encapsulated but the transfer syntax ${h.transferSyntax} is not.`);
    // native YBR_FULL_422 stores Y0 Y1 Cb Cr per pair of pixels: 2 samples per pixel, not 3
    const frameSize = h.photometric === 'YBR_FULL_422' ? h.rows * Math.ceil(h.columns / 2) * 4 * (h.bitsAllocated / 8) : (h.rows * h.columns * h.samplesPerPixel * h.bitsAllocated) / 8;
    const start = pixelData.dataOffset + frame * frameSize;
    if (start + frameSize > end) {
      bad(`Pixel Data holds ${Math.max(end - pixelData.dataOffset, 0)} bytes, too few for frame ${frame} of ${h.frames} at ${h.rows}x${h.columns}x${h.samplesPerPixel}x${h.bitsAllocated} bits (the file is truncated or its header is wrong).`);
    }
    return dataSet.byteArray.subarray(start, start + frameSize);
  }
  if (!pixelData.encapsulatedPixelData || !pixelData.fragments) bad(`the transfer syntax ${h.transferSyntax} needs encapsulated Pixel Data; it is not.`);
  const fragments = pixelData.fragments;
  if (fragments.length === 0) bad('the encapsulated Pixel Data has no fragments.');
  for (const f of fragments) {
    if (f.position + f.length > dataSet.byteArray.length) bad('a Pixel Data fragment runs past the end of the file (truncated).');
  }
  try {
    if (h.frames === 1) return dicomParser.readEncapsulatedPixelDataFromFragments(dataSet, pixelData, 0, fragments.length);
    const bot = pixelData.basicOffsetTable ?? [];
    if (bot.length > 0) {
      if (bot.length !== h.frames) bad(`the Basic Offset Table lists ${bot.length} frames, the header says ${h.frames}.`);
      return dicomParser.readEncapsulatedImageFrame(dataSet, pixelData, frame);
    }
    if (fragments.length === h.frames) return dicomParser.readEncapsulatedPixelDataFromFragments(dataSet, pixelData, frame, 1);
    if (h.transferSyntax.startsWith('1.2.840.10008.1.2.4.5') || h.transferSyntax.startsWith('1.2.840.10008.1.2.4.7')) {
      const table = dicomParser.createJPEGBasicOffsetTable(dataSet, pixelData);
      if (table.length !== h.frames) bad(`found ${table.length} JPEG frames in Pixel Data, the header says ${h.frames}.`);
      return dicomParser.readEncapsulatedImageFrame(dataSet, pixelData, frame, table);
    }
    bad(`${fragments.length} fragments for ${h.frames} frames without a Basic Offset Table: cannot tell where frame ${frame} starts.`);
  } catch (e) {
    if (isLlavaMedError(e)) throw e;
    bad(`cannot read frame ${frame} from the encapsulated Pixel Data (${typeof e === 'string' ? e : (e as Error).message}).`, e);
  }
}
