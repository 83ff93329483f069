/**
 * llava-med: LLaVA-Med, Microsoft's biomedical vision-language assistant, run locally from
 * Node.js on llama.cpp. For research use only — not for clinical decisions.
 */
export {
  LlavaMed,
  ChatSession,
  ImageHandle,
  type Answer,
  type AnswerTimings,
  type CandidateScore,
  type GenerationOptions,
  type ImageArg,
  type LlavaMedOptions,
  type LoadProgress,
  type Variant,
} from './llava-med.js';
export { LlavaMedError, ErrorCodes, isLlavaMedError, type ErrorCode } from './errors.js';
export type { StopReason } from './answer/generate.js';
export type { ImageInput, RawPixels, DicomInput, DicomWindow, DicomRenderOptions, DicomImageInfo, DicomRendering, WindowPreset } from './image/index.js';
export { renderDicom, describeDicom, WINDOW_PRESETS } from './image/index.js';
export type { Logger, LogLevel, GpuLayers, KvCacheType, LoadMode } from './engine/index.js';
export type { ChatTurn } from './prompt/index.js';
export { DEFAULTS, type FlashAttnMode } from './defaults.js';
export { RESEARCH_USE_NOTICE } from './notice.js';
