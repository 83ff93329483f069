/**
 * The two LLaVA-Med preprocessing pipelines, producing the exact RGB bytes the original handed to CLIP
 * (before rescale/normalise, which llama.cpp's clip does from the mmproj's mean/std):
 *  - v0 (CLIP ViT-L/14, 224): CLIPImageProcessor, shortest edge to imageSize with Pillow's BICUBIC, centre crop;
 *  - v1.5 (CLIP ViT-L/14-336): expand2square with the mode-dependent pad colour, then the same.
 * The pixels are computed by native/image.cpp (see native.ts for why); this file holds the policy.
 *
 * This must run before mtmd: mtmd's own LLaVA path resizes first and pads second (and never center-crops),
 * which changes the pixels and measurably the answers. An image of exactly imageSize x imageSize is passed
 * through by mtmd unchanged, so feeding it our output makes mtmd's preprocessing the identity.
 */
import { llavaError } from '../errors.js';
import type { NativeImageSpec } from '../engine/native-types.js';
import { padColourFor } from './expand-square.js';
import { decodeSamples } from './load.js';
import { runNative } from './native.js';
import type { DecodedSamples, ImageInput, PillowMode, PreprocessOptions, RgbImage } from './types.js';

export const V0_IMAGE_SIZE = 224;
export const V15_IMAGE_SIZE = 336;

function assertImageSize(size: number): void {
  if (!Number.isInteger(size) || size < 1 || size > 4096) {
    throw llavaError('ERR_INVALID_ARGUMENT', `imageSize must be an integer between 1 and 4096, got ${String(size)}.`);
  }
}

function assertRgb(img: RgbImage): void {
  if (
    !img ||
    !Number.isInteger(img.width) ||
    !Number.isInteger(img.height) ||
    img.width < 1 ||
    img.height < 1 ||
    !(img.data instanceof Uint8Array) ||
    img.data.length !== img.width * img.height * 3
  ) {
    throw llavaError('ERR_IMAGE_FORMAT', 'Expected an RGB image { data, width, height } with data.length = width * height * 3 (use loadImage first).');
  }
}

/** The geometry part of the native spec for `opts`, validated; undefined imageSize = the variant's default. */
function geometryOf(opts: PreprocessOptions, sourceMode: PillowMode | undefined): Pick<NativeImageSpec, 'geometry' | 'imageSize' | 'pad'> {
  switch (opts?.variant) {
    case 'v0': {
      const imageSize = opts.imageSize ?? V0_IMAGE_SIZE;
      assertImageSize(imageSize);
      return { geometry: 'v0', imageSize };
    }
    case 'v1.5': {
      const imageSize = opts.imageSize ?? V15_IMAGE_SIZE;
      assertImageSize(imageSize);
      return { geometry: 'v1.5', imageSize, pad: padColourFor(sourceMode) };
    }
    default:
      throw llavaError('ERR_INVALID_ARGUMENT', `Unknown preprocessing variant ${JSON.stringify(opts?.variant)}; use 'v0' or 'v1.5'.`);
  }
}

async function run(d: Omit<DecodedSamples, 'sourceMode'>, geometry: Pick<NativeImageSpec, 'geometry' | 'imageSize' | 'pad'>): Promise<RgbImage> {
  const { samples, width, height, channels, depth, convert } = d;
  const data = await runNative(samples, { width, height, channels, depth, convert, ...geometry });
  return { data, width: geometry.imageSize!, height: geometry.imageSize! };
}

/** v0 or v1.5 preprocessing of an RGB image (from loadImage; v1.5's pad colour comes from its sourceMode). */
export async function preprocess(rgb: RgbImage, opts: PreprocessOptions): Promise<RgbImage> {
  const geometry = geometryOf(opts, rgb?.sourceMode);
  assertRgb(rgb);
  return run({ samples: rgb.data, width: rgb.width, height: rgb.height, channels: 3, depth: 8, convert: 'rgb' }, geometry);
}

/** v0 (CLIP ViT-L/14, 224): shortest edge to imageSize with Pillow bicubic, center crop. */
export function preprocessV0(rgb: RgbImage, imageSize: number = V0_IMAGE_SIZE): Promise<RgbImage> {
  return preprocess(rgb, { variant: 'v0', imageSize });
}

/** v1.5 (CLIP ViT-L/14-336): expand2square with the mode-dependent pad colour, then resize to imageSize. */
export function preprocessV15(rgb: RgbImage, imageSize: number = V15_IMAGE_SIZE): Promise<RgbImage> {
  return preprocess(rgb, { variant: 'v1.5', imageSize });
}

export interface PreprocessJob {
  input: ImageInput;
  maxPixels?: number;
  preprocess: PreprocessOptions;
  signal?: AbortSignal;
}

/**
 * loadImage + preprocess without ever holding the full-size RGB image: sharp decodes (async), then one
 * native call converts the samples and applies the geometry on the libuv thread pool.
 */
export async function loadAndPreprocess(job: PreprocessJob): Promise<RgbImage> {
  if (!job || typeof job !== 'object') throw llavaError('ERR_INVALID_ARGUMENT', 'loadAndPreprocess expects { input, maxPixels?, preprocess }.');
  geometryOf(job.preprocess, undefined); // options errors before any decoding
  const d = await decodeSamples(job.input, { maxPixels: job.maxPixels, signal: job.signal });
  return run(d, geometryOf(job.preprocess, d.sourceMode));
}
