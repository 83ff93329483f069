// Float64 reference implementation of the Hugging Face LLaVA(-Med) models, used as
// ground truth by the converter/engine fidelity gate.
export * from './tensor-ops.js';
export * from './preprocess.js';
export * from './clip-vision.js';
export * from './projector.js';
export * from './llama.js';
export * from './llava.js';
export * from './metrics.js';
