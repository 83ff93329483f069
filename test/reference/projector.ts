// LLaVA multimodal projectors, HF tensor names as stored in the LLaVA checkpoints.

import { geluErf, getTensor, linear, mapArray, type Weights } from './tensor-ops.js';

export type ProjectorType = 'linear' | 'mlp2x_gelu';

/** v0 (llava/model/llava.py): a single nn.Linear, `model.mm_projector.{weight,bias}`. */
export function projectLinear(weights: Weights, features: Float64Array[], prefix = 'model.mm_projector'): Float64Array[] {
  const w = getTensor(weights, `${prefix}.weight`);
  const b = getTensor(weights, `${prefix}.bias`);
  return features.map((f) => linear(f, w, b));
}

/**
 * v1.5 (multimodal_projector/builder.py): Sequential(Linear, GELU(), Linear), so the
 * tensors are `.0.*` and `.2.*`; nn.GELU() defaults to the exact erf form.
 */
export function projectMlp2xGelu(
  weights: Weights,
  features: Float64Array[],
  prefix = 'model.mm_projector',
): Float64Array[] {
  const w0 = getTensor(weights, `${prefix}.0.weight`);
  const b0 = getTensor(weights, `${prefix}.0.bias`);
  const w2 = getTensor(weights, `${prefix}.2.weight`);
  const b2 = getTensor(weights, `${prefix}.2.bias`);
  return features.map((f) => linear(mapArray(linear(f, w0, b0), geluErf), w2, b2));
}

/** Dispatch on mm_projector_type ('linear' for v0, which has no such config field). */
export function project(
  weights: Weights,
  features: Float64Array[],
  type: ProjectorType,
  prefix = 'model.mm_projector',
): Float64Array[] {
  return type === 'linear' ? projectLinear(weights, features, prefix) : projectMlp2xGelu(weights, features, prefix);
}
