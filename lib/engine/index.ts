export { Model, type ModelLoadOptions, type ModelInfo, type LoadMode } from './model.js';
export { Projector, ImageEmbedding, type ProjectorLoadOptions } from './projector.js';
export { Context, Sampler, type ContextOptions, type SamplerOptions, type StepEntry } from './context.js';
export { Sequence, sharedPositions, type SequenceItem, type SampledToken, type LoadStats } from './sequence.js';
export { loadAddon, loadedAddon, addonCandidates, cpuLevels, packageRoot } from './binding.js';
export { resolveGpuLayers, type GpuLayers } from './gpu-layers.js';
export { addLogger, type Logger, type LogLevel } from './logger.js';
export { checkModelFile, checkProjectorFile, checkPairing } from './gguf-check.js';
export type { KvCacheType, NativePerf } from './native-types.js';
