// LLaVA input assembly (where the projected image features enter the LLM) and the
// end-to-end reference: pixels → CLIP → projector → spliced embeddings → logits.

import { imageFeatures, type ClipVisionConfig, type ClipVisionOptions } from './clip-vision.js';
import { embedTokens, llamaForward, type LlamaConfig, type LlamaForwardOptions } from './llama.js';
import { project, type ProjectorType } from './projector.js';
import type { Weights } from './tensor-ops.js';

/** LLaVA-Med v0 added tokens (added_tokens.json of the delta). */
export const V0_IM_PATCH_ID = 32001;
export const V0_IM_START_ID = 32002;
export const V0_IM_END_ID = 32003;
/** IMAGE_TOKEN_INDEX of LLaVA-1.5 code: the placeholder id tokenizer_image_token inserts. */
export const IMAGE_TOKEN_INDEX = -200;

export interface V0TokenIds {
  imStartId?: number;
  imEndId?: number;
}

/**
 * v0 LlavaLlamaModel.forward with mm_use_im_start_end: the <im_start> and <im_end>
 * embeddings are kept (trained rows) and the <im_patch> embeddings between them are
 * replaced by the image features. Since each token embedding is independent, that is
 * embed(idsBefore) ++ features ++ embed(idsAfter), with idsBefore ending in <im_start>
 * and idsAfter starting with <im_end> (checked, as the original asserts).
 */
export function buildV0Embeds(
  llmWeights: Weights,
  cfg: LlamaConfig,
  idsBefore: readonly number[],
  features: Float64Array[],
  idsAfter: readonly number[],
  ids: V0TokenIds = {},
): Float64Array[] {
  const start = ids.imStartId ?? V0_IM_START_ID;
  const end = ids.imEndId ?? V0_IM_END_ID;
  if (idsBefore.at(-1) !== start) throw new Error(`reference: v0 idsBefore must end with <im_start> (${start})`);
  if (idsAfter[0] !== end) throw new Error(`reference: v0 idsAfter must start with <im_end> (${end})`);
  return splice(llmWeights, cfg, idsBefore, features, idsAfter);
}

/**
 * v1.5 (LlavaMetaForCausalLM.prepare_inputs_labels_for_multimodal): the single
 * IMAGE_TOKEN_INDEX placeholder is replaced by the image features; idsBefore /
 * idsAfter are the ids on either side of it (idsBefore starting with BOS).
 */
export function buildV15Embeds(
  llmWeights: Weights,
  cfg: LlamaConfig,
  idsBefore: readonly number[],
  features: Float64Array[],
  idsAfter: readonly number[],
): Float64Array[] {
  if (idsBefore.includes(IMAGE_TOKEN_INDEX) || idsAfter.includes(IMAGE_TOKEN_INDEX)) {
    throw new Error('reference: v1.5 supports exactly one image placeholder');
  }
  return splice(llmWeights, cfg, idsBefore, features, idsAfter);
}

/** Split an id sequence holding exactly one IMAGE_TOKEN_INDEX into [before, after]. */
export function splitAtImageToken(ids: readonly number[]): [number[], number[]] {
  const at = ids.indexOf(IMAGE_TOKEN_INDEX);
  if (at < 0 || ids.indexOf(IMAGE_TOKEN_INDEX, at + 1) >= 0) {
    throw new Error('reference: expected exactly one image placeholder (-200)');
  }
  return [ids.slice(0, at), ids.slice(at + 1)];
}

function splice(
  weights: Weights,
  cfg: LlamaConfig,
  before: readonly number[],
  features: Float64Array[],
  after: readonly number[],
): Float64Array[] {
  for (const f of features) {
    if (f.length !== cfg.hidden_size) {
      throw new Error(`reference: image feature width ${f.length} != LLM hidden ${cfg.hidden_size} (projected?)`);
    }
  }
  return [...embedTokens(weights, before), ...features.map((f) => Float64Array.from(f)), ...embedTokens(weights, after)];
}

/** Everything the end-to-end reference needs. Weight maps may be the same Map. */
export interface LlavaReference {
  version: 'v0' | 'v1.5';
  vision: { weights: Weights; cfg: ClipVisionConfig; opts?: ClipVisionOptions };
  /** Holds `model.mm_projector.*`. */
  projectorWeights: Weights;
  llm: { weights: Weights; cfg: LlamaConfig };
  /** mm_vision_select_layer; default -2. */
  selectLayer?: number;
  /** v0 only: <im_start>/<im_end> ids if not the LLaVA-Med delta's (tiny test vocabularies). */
  v0Ids?: V0TokenIds;
}

export interface LlavaOutput {
  /** Image embeddings after the projector (n_patches rows of the LLM hidden size). */
  imageEmbeds: Float64Array[];
  /** Logits of the last prompt position (the next-token distribution), vocab entries. */
  logits: Float64Array;
}

/** End-to-end: normalized pixels [3,H,W] + prompt ids around the image → image embeddings and next-token logits. */
export function llavaLogits(
  model: LlavaReference,
  pixelValues: Float64Array,
  idsBefore: readonly number[],
  idsAfter: readonly number[],
  opts: Pick<LlamaForwardOptions, 'ropeFloat32'> = {},
): LlavaOutput {
  const feats = imageFeatures(model.vision.weights, model.vision.cfg, pixelValues, model.selectLayer ?? -2, model.vision.opts);
  const type: ProjectorType = model.version === 'v0' ? 'linear' : 'mlp2x_gelu';
  const imageEmbeds = project(model.projectorWeights, feats, type);
  const { weights, cfg } = model.llm;
  const embeds =
    model.version === 'v0'
      ? buildV0Embeds(weights, cfg, idsBefore, imageEmbeds, idsAfter, model.v0Ids)
      : buildV15Embeds(weights, cfg, idsBefore, imageEmbeds, idsAfter);
  const logits = llamaForward(weights, cfg, embeds, { ...opts, lastOnly: true })[0]!;
  return { imageEmbeds, logits };
}
