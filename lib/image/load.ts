/**
 * Decode an image to 8-bit RGB the way the original pipeline did: `PIL.Image.open(path)` followed by
 * `convert('RGB')` (inside CLIPImageProcessor). sharp does the decoding (here, on its own threads); where
 * sharp's defaults differ from Pillow, we ask sharp for the untouched samples, and native/image.cpp converts
 * them as Pillow does, on the libuv thread pool (decodeSamples says how; the conversion is its `convert`):
 *
 *  - EXIF Orientation is NOT applied: Image.open does not rotate, so LLaVA-Med saw the stored pixels.
 *  - Embedded ICC profiles are ignored (Pillow's convert('RGB') does not colour-manage).
 *  - Alpha is dropped without compositing (convert('RGB') keeps the colour under transparent pixels).
 *  - 16-bit RGB(A) and grey+alpha PNG: Pillow keeps the high byte (v >> 8).
 *  - 16-bit grey PNG/TIFF: Pillow opens mode 'I' / 'I;16' and convert('RGB') CLIPS at 255 (v > 255 -> 255),
 *    so most such images come out nearly white. That is what the model saw, so we reproduce it.
 *  - CMYK JPEG: Pillow's naive cmyk2rgb, R = (255-K) - C*(255-K)/255 (its MULDIV255 rounding), no ICC.
 *  - Multi-frame GIF/WebP/TIFF: first frame only.
 * Known remaining difference: transparent GIF pixels. sharp yields (0,0,0) under alpha 0 where Pillow
 * yields the palette colour of the transparent index (PNG palettes match).
 */
import type SharpModule from 'sharp';

import { DEFAULTS } from '../defaults.js';
import { llavaError, isLlavaMedError } from '../errors.js';
import { hasDicmMagic, isDicomInput, parseDicomOptions, renderDicom, type DicomRenderOptions } from './dicom/index.js';
import { readRegularFile } from '../formats/file-read.js';
import { plainOptions, readArg } from '../input.js';
import { runNative } from './native.js';
import { fileURLToPath } from 'node:url';
import type { DecodedSamples, ImageInput, LoadImageOptions, PillowMode, RawPixels, RgbImage } from './types.js';

// sharp (libvips) costs 50-250 ms and ~25 MB to import: paid at the first image, not when
// llava-med is imported.
let sharpModule: Promise<typeof SharpModule> | undefined;
const loadSharp = (): Promise<typeof SharpModule> => (sharpModule ??= import('sharp').then((m) => m.default));

export const DEFAULT_MAX_PIXELS: number = DEFAULTS.maxImagePixels;
/** Image files larger than this are refused before reading (an uncompressed 100 MP RGBA image is 400 MB). */
export const MAX_IMAGE_FILE_BYTES = 1 << 30;

function maxPixelsOf(opts: LoadImageOptions | undefined): number {
  const m = opts?.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (typeof m !== 'number' || Number.isNaN(m) || m < 1 || (Number.isFinite(m) && !Number.isInteger(m))) {
    throw llavaError('ERR_INVALID_ARGUMENT', `maxPixels must be a positive integer or Infinity, got ${String(m)}.`);
  }
  return m;
}

function checkPixels(width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels) {
    throw llavaError(
      'ERR_IMAGE_TOO_LARGE',
      `Image is ${width}x${height} = ${width * height} pixels, above the limit of ${maxPixels}; downscale it or raise maxPixels.`,
    );
  }
}

/** Strings and byte arrays as they are; raw-pixel and DICOM objects as plain copies. */
function snapshotInput(input: ImageInput): ImageInput {
  if (typeof input !== 'object' || input === null || input instanceof Uint8Array || input instanceof URL) return input;
  if (isRawPixels(input)) return { data: input.data, width: input.width, height: input.height, channels: input.channels };
  return { ...(input as object) } as ImageInput;
}

function isRawPixels(x: unknown): x is RawPixels {
  return typeof x === 'object' && x !== null && !ArrayBuffer.isView(x) && 'data' in x;
}

/**
 * Decode a file path, an encoded image buffer, or raw pixels, without converting a pixel: the samples plus
 * how to turn them into Pillow's RGB. The pixel limit is checked from the header, before decoding.
 */
export async function decodeSamples(input: ImageInput, opts?: LoadImageOptions): Promise<DecodedSamples> {
  opts = plainOptions(opts, 'the image options');
  const maxPixels = maxPixelsOf(opts);
  // A caller's object is read once, here: a throwing getter or Proxy trap is ERR_INVALID_ARGUMENT.
  input = readArg(() => snapshotInput(input), 'the image object');
  if (input instanceof URL) input = urlInput(input);
  if (typeof input === 'string') {
    if (/^data:/i.test(input)) return decodeBytes(dataUrlBytes(input), maxPixels);
    if (/^https?:\/\//i.test(input)) throw notDownloaded(input);
    return decodeBytes(await readImageFile(input, opts?.signal), maxPixels, input);
  }
  if (input instanceof Uint8Array) return decodeBytes(input, maxPixels);
  if (isDicomInput(input)) {
    const { dicom, ...options } = input;
    parseDicomOptions(options); // option errors before any file is read
    const bytes = typeof dicom === 'string' ? await readImageFile(dicom, opts?.signal) : dicom;
    if (!(bytes instanceof Uint8Array)) throw llavaError('ERR_INVALID_ARGUMENT', '{ dicom } must be a file path or a Buffer/Uint8Array of the file.');
    return dicomSamples(bytes, options, maxPixels);
  }
  if (isRawPixels(input)) return rawSamples(input, maxPixels);
  throw llavaError('ERR_INVALID_ARGUMENT', 'loadImage expects a file path, a file: or data: URL, a Buffer/Uint8Array of an encoded image, { data, width, height, channels } or { dicom, window?, frame? }.');
}

function notDownloaded(url: string): Error {
  return llavaError(
    'ERR_INVALID_ARGUMENT',
    `${url.slice(0, 200)} is a web address: llava-med does not download images. Fetch it first and pass the bytes, e.g. Buffer.from(await (await fetch(url)).arrayBuffer()).`,
  );
}

/** A `file:` URL is its path; any other scheme is refused with what to do instead. */
function urlInput(u: URL): string {
  if (u.protocol === 'file:') return fileURLToPath(u);
  if (u.protocol === 'data:') return u.href;
  if (u.protocol === 'http:' || u.protocol === 'https:') throw notDownloaded(u.href);
  throw llavaError('ERR_INVALID_ARGUMENT', `An image URL must be a file: or data: URL, not ${u.protocol}.`);
}

/** The bytes of a `data:[<type>][;base64],<data>` URL (images sent inline, as OpenAI-style clients do). */
function dataUrlBytes(url: string): Uint8Array {
  const comma = url.indexOf(',');
  if (comma < 0) throw llavaError('ERR_INVALID_ARGUMENT', 'A data: URL needs a comma before its data (data:image/png;base64,....).');
  const meta = url.slice(5, comma);
  const body = url.slice(comma + 1);
  if (/;base64$/i.test(meta)) {
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(body)) throw llavaError('ERR_IMAGE_DECODE', 'The data: URL is not valid base64.');
    return Buffer.from(body, 'base64');
  }
  return Buffer.from(decodeURIComponent(body), 'latin1');
}

/** Encoded bytes: DICOM when they carry the Part 10 marker, otherwise whatever sharp decodes. */
function decodeBytes(bytes: Uint8Array, maxPixels: number, path?: string): Promise<DecodedSamples> {
  if (hasDicmMagic(bytes)) return dicomSamples(bytes, {}, maxPixels);
  if (path && /\.(dcm|dicom)$/i.test(path) && bytes.length > 0) {
    throw llavaError(
      'ERR_IMAGE_DECODE',
      `${path} has no DICOM Part 10 marker ("DICM" at byte 128). If it is a bare dataset without the meta header, pass { dicom: path, implicit: true } (CLI: --implicit).`,
    );
  }
  return decodeEncoded(bytes, maxPixels);
}

/**
 * A DICOM frame rendered to 8 bits (lib/image/dicom). Grey renderings count as Pillow mode 'L' (what saving
 * the rendered image as a grey PNG and opening it would give), so v1.5 pads them with grey 114.
 */
async function dicomSamples(bytes: Uint8Array, options: DicomRenderOptions, maxPixels: number): Promise<DecodedSamples> {
  if (bytes.length === 0) throw llavaError('ERR_IMAGE_EMPTY', 'DICOM data is empty (0 bytes).');
  const r = await renderDicom(bytes, { ...options, maxPixels });
  return { samples: r.samples, width: r.width, height: r.height, channels: r.channels, depth: 8, convert: 'rgb', sourceMode: r.channels === 1 ? 'L' : 'RGB' };
}

/** Load a file path, an encoded image buffer, or raw pixels as 8-bit RGB. */
export async function loadImage(input: ImageInput, opts?: LoadImageOptions): Promise<RgbImage> {
  const d = await decodeSamples(input, opts);
  const data = await runNative(d.samples, { width: d.width, height: d.height, channels: d.channels, depth: d.depth, convert: d.convert, geometry: 'none' });
  return { data, width: d.width, height: d.height, sourceMode: d.sourceMode };
}

async function readImageFile(path: string, signal: AbortSignal | undefined): Promise<Uint8Array> {
  if (path.length === 0) throw llavaError('ERR_INVALID_ARGUMENT', 'Image path is an empty string.');
  // A regular file only (a FIFO would block the libuv pool, /dev/zero never ends), size-limited, abortable.
  return readRegularFile(path, { what: 'Image file', maxBytes: MAX_IMAGE_FILE_BYTES, tooLargeCode: 'ERR_IMAGE_TOO_LARGE', signal });
}

function rawSamples(raw: RawPixels, maxPixels: number): DecodedSamples {
  const { data, width, height, channels } = raw;
  if (!(data instanceof Uint8Array)) throw llavaError('ERR_INVALID_ARGUMENT', 'Raw pixels: data must be a Buffer or Uint8Array of 8-bit samples.');
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw llavaError('ERR_INVALID_ARGUMENT', `Raw pixels: width and height must be positive integers, got ${String(width)}x${String(height)}.`);
  }
  if (channels !== 1 && channels !== 2 && channels !== 3 && channels !== 4) {
    throw llavaError('ERR_INVALID_ARGUMENT', `Raw pixels: channels must be 1, 2, 3 or 4, got ${String(channels)}.`);
  }
  if (data.length === 0) throw llavaError('ERR_IMAGE_EMPTY', 'Raw pixels: data is empty.');
  checkPixels(width, height, maxPixels);
  if (data.length !== width * height * channels) {
    throw llavaError(
      'ERR_IMAGE_FORMAT',
      `Raw pixels: data has ${data.length} bytes but ${width}x${height}x${channels} needs ${width * height * channels}.`,
    );
  }
  const mode: PillowMode = (['L', 'LA', 'RGB', 'RGBA'] as const)[channels - 1]!;
  return { samples: data, width, height, channels, depth: 8, convert: 'rgb', sourceMode: mode };
}

async function decodeEncoded(bytes: Uint8Array, maxPixels: number): Promise<DecodedSamples> {
  if (bytes.length === 0) throw llavaError('ERR_IMAGE_EMPTY', 'Image data is empty (0 bytes).');
  // SVG and other XML: no raster format starts with '<', Pillow opens none of them, and librsvg
  // expands XML entities without bound (an entity bomb never returns).
  const first = bytes.findIndex((b, i) => i >= 64 || !(b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0xef || b === 0xbb || b === 0xbf));
  if (first >= 0 && bytes[first] === 0x3c) {
    throw llavaError('ERR_IMAGE_FORMAT', 'The image is SVG or other XML text, not a raster image; convert it to PNG or JPEG first.');
  }
  const limit = Number.isFinite(maxPixels) ? maxPixels : false;
  // failOn 'error': fail on truncated or corrupt data like Pillow does, but tolerate libjpeg/libpng warnings
  // that Pillow also tolerates. ignoreIcc / autoOrient false: Pillow applies neither.
  const sharp = await loadSharp();
  const open = () => sharp(bytes, { failOn: 'error', limitInputPixels: limit, ignoreIcc: true, autoOrient: false, pages: 1 });
  try {
    const meta = await open().metadata();
    const width = meta.width;
    const height = meta.pageHeight ?? meta.height;
    if (!width || !height) throw llavaError('ERR_IMAGE_DECODE', 'Image header has no dimensions.');
    // Checked from the header, before any pixel is decoded.
    checkPixels(width, height, maxPixels);
    const n = width * height;
    const hasAlpha = meta.hasAlpha === true;

    if (meta.space === 'cmyk') {
      // pipelineColourspace keeps libvips from colour-managing CMYK -> sRGB; we get the (de-inverted) samples.
      const { data, info } = await open().pipelineColourspace('cmyk').toColourspace('cmyk').raw().toBuffer({ resolveWithObject: true });
      return { samples: data, width: info.width, height: info.height, channels: info.channels, depth: 8, convert: 'cmyk', sourceMode: 'CMYK' };
    }
    if (meta.depth === 'ushort' && (meta.space === 'grey16' || meta.space === 'rgb16')) {
      const grey = meta.space === 'grey16';
      const { data, info } = await open()
        .toColourspace(grey ? 'grey16' : 'rgb16')
        .raw({ depth: 'ushort' })
        .toBuffer({ resolveWithObject: true });
      // 16-bit grey without alpha is Pillow mode 'I': convert('RGB') clips. Everything else keeps the high byte.
      const clipping = grey && !hasAlpha;
      const mode: PillowMode = clipping ? 'I' : hasAlpha ? 'RGBA' : 'RGB';
      return { samples: data, width: info.width, height: info.height, channels: info.channels, depth: 16, convert: clipping ? 'clip16' : 'high16', sourceMode: mode };
    }
    const { data, info } = await open().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.width * info.height !== n) throw llavaError('ERR_IMAGE_DECODE', 'Decoded size does not match the image header.');
    const greySource = meta.space === 'b-w';
    const mode: PillowMode = meta.isPalette ? 'P' : greySource ? (hasAlpha ? 'LA' : 'L') : hasAlpha ? 'RGBA' : 'RGB';
    // toColourspace('srgb') already replicated grey into 3 bands; the conversion keeps bands 0..2 and drops alpha.
    return { samples: data, width: info.width, height: info.height, channels: info.channels, depth: 8, convert: 'rgb', sourceMode: mode };
  } catch (e) {
    if (isLlavaMedError(e)) throw e;
    const msg = (e as Error).message ?? String(e);
    if (/pixel limit/i.test(msg)) throw llavaError('ERR_IMAGE_TOO_LARGE', `Image exceeds the pixel limit of ${maxPixels}: ${msg}`, e);
    throw llavaError('ERR_IMAGE_DECODE', `Cannot decode image: ${msg}`, e);
  }
}
