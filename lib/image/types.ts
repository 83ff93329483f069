/**
 * Shared shapes for lib/image. Every image leaving this folder is 8-bit, interleaved, 3-channel RGB,
 * because that is what Pillow's convert('RGB') handed to CLIPImageProcessor in the original pipeline.
 */
import type { NativeImageSpec } from '../engine/native-types.js';
import type { DicomInput } from './dicom/types.js';

/**
 * What Pillow's `Image.open` would have reported as `mode` for the same source. Only v1.5 cares: its
 * expand2square paints the padding in the source mode, so the pad colour depends on it (see expand-square.ts).
 */
export type PillowMode = 'RGB' | 'RGBA' | 'L' | 'LA' | 'P' | 'CMYK' | 'I';

/** Decoded or preprocessed pixels: `data.length === width * height * 3`, row-major RGB. */
export interface RgbImage {
  data: Buffer;
  width: number;
  height: number;
  /** Pillow mode of the source this came from, when known (loadImage always sets it). */
  sourceMode?: PillowMode;
}

/**
 * What sharp decoded, before any pixel is converted: the samples exactly as sharp returned them and
 * how Pillow's convert('RGB') would turn them into RGB (done natively, with the geometry).
 */
export interface DecodedSamples {
  /** Interleaved, row-major; 16-bit samples are native-endian uint16 (sharp's raw ushort output). */
  samples: Uint8Array;
  width: number;
  height: number;
  channels: number;
  depth: 8 | 16;
  convert: NativeImageSpec['convert'];
  sourceMode: PillowMode;
}

/** Raw, already-decoded 8-bit pixels supplied by the caller (interleaved, row-major). */
export interface RawPixels {
  /** The samples: `width × height × channels` bytes. */
  data: Uint8Array;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** 1 = grey, 2 = grey + alpha, 3 = RGB, 4 = RGBA. */
  channels: 1 | 2 | 3 | 4;
}

/**
 * A file path (or `file:` URL), an encoded image in memory (Buffer / Uint8Array, or a `data:` URL string or
 * URL), raw pixels, or a DICOM file with rendering options. DICOM Part 10 files given as a path or bytes are
 * recognised by content (the "DICM" marker) and rendered with the defaults. http(s) addresses are refused:
 * the library never downloads.
 */
export type ImageInput = string | URL | Uint8Array | RawPixels | DicomInput;

export interface LoadImageOptions {
  /**
   * Refuse images with more pixels than this (checked from the header, before any pixel is decoded).
   * Default 100 megapixels; `Infinity` disables the check.
   */
  maxPixels?: number;
  /** Aborts reading an image file (between chunks). */
  signal?: AbortSignal;
}

export type PreprocessVariant = 'v0' | 'v1.5';

export interface PreprocessOptions {
  variant: PreprocessVariant;
  /** CLIP input side in pixels. Defaults: 224 for v0, 336 for v1.5. Tiny test models use e.g. 28 or 56. */
  imageSize?: number;
}
