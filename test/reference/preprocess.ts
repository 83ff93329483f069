// The last step of CLIPImageProcessor (rescale 1/255, normalize), on pixels that are
// already resized/cropped to image_size. Resizing is the engine's concern and is not
// modelled here: the fidelity gate feeds both sides the same already-sized RGB bytes.

/** openai/clip-vit-large-patch14(-336) preprocessor_config image_mean / image_std. */
export const CLIP_MEAN: readonly [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: readonly [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/**
 * HWC RGB bytes → CHW float64 pixel_values: (u8 · (1/255) − mean[c]) / std[c].
 * Rescale-then-normalize with a multiply by rescale_factor = 1/255, the operations
 * CLIPImageProcessor applies (HF then stores float32; we keep float64).
 */
const RESCALE = 1 / 255;

export function normalizeRgb(
  rgbBytes: Uint8Array,
  width: number,
  height: number,
  mean: readonly number[] = CLIP_MEAN,
  std: readonly number[] = CLIP_STD,
): Float64Array {
  if (rgbBytes.length !== width * height * 3) {
    throw new Error(`reference: expected ${width}x${height}x3 bytes, got ${rgbBytes.length}`);
  }
  const plane = width * height;
  const out = new Float64Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = (rgbBytes[i * 3 + c]! * RESCALE - mean[c]!) / std[c]!;
  }
  return out;
}
