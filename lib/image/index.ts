/** Image decoding and LLaVA-Med preprocessing (v0: resize + center crop 224; v1.5: pad + resize 336). */
export type { ImageInput, LoadImageOptions, PillowMode, PreprocessOptions, PreprocessVariant, RawPixels, RgbImage } from './types.js';
export { loadImage, fromRawPixels, DEFAULT_MAX_PIXELS } from './load.js';
export { preprocess, preprocessV0, preprocessV15, V0_IMAGE_SIZE, V15_IMAGE_SIZE } from './preprocess.js';
export { shortestEdgeSize, centerCropOffsets, clipResizeAndCrop } from './clip-processor.js';
export { expandToSquare, padColourFor, V15_PAD_RGB, V15_PAD_GREY } from './expand-square.js';
export { pillowBicubicResize } from './pillow-bicubic.js';
export { loadAndPreprocess, type PreprocessJob } from './offthread.js';
