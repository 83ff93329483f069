/**
 * The two LLaVA-Med preprocessing pipelines, producing the exact RGB bytes the original handed to CLIP
 * (before rescale/normalise, which llama.cpp's clip does from the mmproj's mean/std).
 *
 * This must run before mtmd: mtmd's own LLaVA path resizes first and pads second (and never center-crops),
 * which changes the pixels and measurably the answers. An image of exactly imageSize x imageSize is passed
 * through by mtmd unchanged, so feeding it our output makes mtmd's preprocessing the identity.
 */
import { clipResizeAndCrop, assertImageSize } from './clip-processor.js';
import { expandToSquare, padColourFor } from './expand-square.js';
import type { PreprocessOptions, RgbImage } from './types.js';
import { llavaError } from '../errors.js';

export const V0_IMAGE_SIZE = 224;
export const V15_IMAGE_SIZE = 336;

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

/** Callers may hand in a plain Uint8Array despite the type; view it as a Buffer without copying. */
function asBuffer(img: RgbImage): RgbImage {
  const d: Uint8Array = img.data;
  return Buffer.isBuffer(d) ? img : { ...img, data: Buffer.from(d.buffer, d.byteOffset, d.length) };
}

/** v0 (CLIP ViT-L/14, 224): shortest edge to imageSize with Pillow bicubic, center crop. */
export function preprocessV0(rgb: RgbImage, imageSize: number = V0_IMAGE_SIZE): RgbImage {
  assertRgb(rgb);
  return clipResizeAndCrop(asBuffer(rgb), imageSize);
}

/** v1.5 (CLIP ViT-L/14-336): expand2square with the mode-dependent pad colour, then resize to imageSize. */
export function preprocessV15(rgb: RgbImage, imageSize: number = V15_IMAGE_SIZE): RgbImage {
  assertRgb(rgb);
  assertImageSize(imageSize);
  return clipResizeAndCrop(expandToSquare(asBuffer(rgb), padColourFor(rgb.sourceMode)), imageSize);
}

export function preprocess(rgb: RgbImage, opts: PreprocessOptions): RgbImage {
  switch (opts?.variant) {
    case 'v0':
      return preprocessV0(rgb, opts.imageSize ?? V0_IMAGE_SIZE);
    case 'v1.5':
      return preprocessV15(rgb, opts.imageSize ?? V15_IMAGE_SIZE);
    default:
      throw llavaError('ERR_INVALID_ARGUMENT', `Unknown preprocessing variant ${JSON.stringify(opts?.variant)}; use 'v0' or 'v1.5'.`);
  }
}
