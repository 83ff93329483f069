/** Image decoding and LLaVA-Med preprocessing (v0: resize + center crop 224; v1.5: pad + resize 336). */
export type { DecodedSamples, ImageInput, LoadImageOptions, PillowMode, PreprocessOptions, PreprocessVariant, RawPixels, RgbImage } from './types.js';
export { loadImage, decodeSamples, DEFAULT_MAX_PIXELS } from './load.js';
export { preprocess, preprocessV0, preprocessV15, loadAndPreprocess, V0_IMAGE_SIZE, V15_IMAGE_SIZE, type PreprocessJob } from './preprocess.js';
export { padColourFor, V15_PAD_RGB, V15_PAD_GREY } from './expand-square.js';
export { renderDicom, describeDicom, parseWindowFlag, parseDicomOptions, isDicomInput, hasDicmMagic, WINDOW_PRESETS } from './dicom/index.js';
export type { DicomImageInfo, DicomInput, DicomRenderOptions, DicomRendering, DicomWindow, WindowPreset } from './dicom/index.js';
