/**
 * HF CLIPImageProcessor's geometry (transformers 4.28 for v0, 4.36 for v1.5; the same in both):
 * resize so the shortest edge is `size` with Pillow BICUBIC, then center-crop size x size.
 * Rescale and normalisation are not done here: llama.cpp's clip applies the mean/std stored in the mmproj.
 */
import { llavaError } from '../errors.js';
import { pillowBicubicResize } from './pillow-bicubic.js';
import type { RgbImage } from './types.js';

/**
 * transformers' get_resize_output_image_size(default_to_square=False) for an int size, as [height, width].
 * The long side is `int(size * long / short)`: a float division truncated, not rounded. When the short
 * side already equals `size` the input size is returned unchanged (no resampling at all).
 */
export function shortestEdgeSize(height: number, width: number, size: number): [number, number] {
  const [short, long] = width <= height ? [width, height] : [height, width];
  if (short === size) return [height, width];
  // Both operands are exact integers in a double, so this matches Python's true division then int().
  const newLong = Math.trunc((size * long) / short);
  return width <= height ? [newLong, size] : [size, newLong];
}

/** transformers' center_crop offsets: top = (h - size) // 2, left = (w - size) // 2. */
export function centerCropOffsets(height: number, width: number, size: number): { top: number; left: number } {
  return { top: Math.floor((height - size) / 2), left: Math.floor((width - size) / 2) };
}

export function assertImageSize(size: number): void {
  if (!Number.isInteger(size) || size < 1 || size > 4096) {
    throw llavaError('ERR_INVALID_ARGUMENT', `imageSize must be an integer between 1 and 4096, got ${String(size)}.`);
  }
}

/** Shortest-edge resize to `size` + center crop, returning size x size RGB. */
export function clipResizeAndCrop(img: RgbImage, size: number): RgbImage {
  assertImageSize(size);
  const [h, w] = shortestEdgeSize(img.height, img.width, size);
  const { top, left } = centerCropOffsets(h, w, size);
  // After a shortest-edge resize both sides are >= size, so the crop never needs HF's zero padding.
  const data = pillowBicubicResize(img.data, img.width, img.height, w, h, { left, top, width: size, height: size });
  return { data, width: size, height: size };
}
