/**
 * Checks GGUF files in TypeScript before llama.cpp sees them. llama.cpp's own loaders throw
 * on many problems, but clip.cpp reads scalar keys with gguf_get_val_*, which GGML_ASSERTs
 * the type: a wrong type there aborts the whole Node process. So every clip key that clip.cpp
 * reads as a scalar is type-checked here, along with the pairing of model and projector.
 */
import fs from 'node:fs/promises';
import { llavaError } from '../errors.js';
import {
  GgufValueType as T,
  ggufValueTypeName,
  readGgufHeader,
  type GgufHeader,
  type GgufKv,
} from '../formats/gguf.js';

/** Scalar keys clip.cpp reads, with the exact type its gguf_get_val_* call asserts. */
const CLIP_SCALAR_TYPES: Record<string, T> = {
  'general.file_type': T.UINT32,
  'general.name': T.STRING,
  'general.description': T.STRING,
  'clip.projector_type': T.STRING,
  'clip.vision.projector_type': T.STRING,
  'clip.audio.projector_type': T.STRING,
  'clip.has_vision_encoder': T.BOOL,
  'clip.has_audio_encoder': T.BOOL,
  'clip.has_gen_audio_encoder': T.BOOL,
  'clip.use_gelu': T.BOOL,
  'clip.use_silu': T.BOOL,
  'clip.vision.embedding_length': T.UINT32,
  'clip.vision.feed_forward_length': T.UINT32,
  'clip.vision.block_count': T.UINT32,
  'clip.vision.projection_dim': T.UINT32,
  'clip.vision.attention.head_count': T.UINT32,
  'clip.vision.attention.head_count_kv': T.UINT32,
  'clip.vision.attention.head_dim': T.UINT32,
  'clip.vision.attention.layer_norm_epsilon': T.FLOAT32,
  'clip.vision.image_size': T.UINT32,
  'clip.vision.patch_size': T.UINT32,
  'clip.vision.mm_patch_merge_type': T.STRING,
  'clip.vision.projector.scale_factor': T.UINT32,
  'clip.vision.spatial_merge_size': T.UINT32,
  'clip.vision.image_min_pixels': T.UINT32,
  'clip.vision.image_max_pixels': T.UINT32,
  'clip.vision.preproc_image_size': T.UINT32,
  'clip.minicpmv_version': T.INT32,
  'clip.minicpmv_query_num': T.UINT32,
};
const CLIP_REQUIRED = [
  'clip.has_vision_encoder',
  'clip.projector_type',
  'clip.vision.embedding_length',
  'clip.vision.feed_forward_length',
  'clip.vision.block_count',
  'clip.vision.projection_dim',
  'clip.vision.attention.head_count',
  'clip.vision.attention.layer_norm_epsilon',
  'clip.vision.image_size',
  'clip.vision.patch_size',
];
const CLIP_ARRAYS: Record<string, T> = {
  'clip.vision.image_mean': T.FLOAT32,
  'clip.vision.image_std': T.FLOAT32,
  'clip.vision.feature_layer': T.INT32,
  'clip.vision.image_grid_pinpoints': T.INT32,
};

function typeName(kv: GgufKv): string {
  return kv.type === T.ARRAY ? `ARRAY of ${ggufValueTypeName(kv.elemType!)}` : ggufValueTypeName(kv.type);
}

async function openHeader(path: string, what: string): Promise<GgufHeader> {
  if (typeof path !== 'string' || path.length === 0) {
    throw llavaError('ERR_INVALID_ARGUMENT', `${what} must be a path to a .gguf file.`);
  }
  let st;
  try {
    st = await fs.stat(path);
  } catch {
    throw llavaError('ERR_FILE_NOT_FOUND', `${what} file ${path} does not exist.`);
  }
  if (!st.isFile()) throw llavaError('ERR_INVALID_ARGUMENT', `${what} ${path} is not a file.`);
  return readGgufHeader(path);
}

function arch(h: GgufHeader): string {
  const kv = h.kv.get('general.architecture');
  if (!kv || kv.type !== T.STRING) {
    throw llavaError('ERR_GGUF_CORRUPT', `${h.path} has no general.architecture string; it is not a llama.cpp model file.`);
  }
  return kv.value as string;
}

export interface ModelFileInfo {
  header: GgufHeader;
  architecture: string;
  nEmbd: number;
  variant?: string;
}

/** Checks a language-model GGUF: readable, not an mmproj, with an embedding width. */
export async function checkModelFile(path: string): Promise<ModelFileInfo> {
  const h = await openHeader(path, 'model');
  const a = arch(h);
  if (a === 'clip') {
    throw llavaError('ERR_INVALID_ARGUMENT', `${path} is a projector (mmproj) file; pass it as \`mmproj\` and the language model as \`model\`.`);
  }
  const e = h.kv.get(`${a}.embedding_length`);
  if (!e || (e.type !== T.UINT32 && e.type !== T.INT32 && e.type !== T.UINT64)) {
    throw llavaError('ERR_GGUF_CORRUPT', `${path}: ${a}.embedding_length is missing or not an integer.`);
  }
  const v = h.kv.get('llava_med.variant');
  return { header: h, architecture: a, nEmbd: Number(e.value), variant: v?.type === T.STRING ? (v.value as string) : undefined };
}

export interface ProjectorFileInfo {
  header: GgufHeader;
  projectorType: string;
  imageSize: number;
  patchSize: number;
  /** Width of the projector's output, which must equal the model's embedding width. */
  nEmbdOut: number;
  variant?: string;
}

/** Checks an mmproj GGUF so that clip.cpp can never abort the process on it. */
export async function checkProjectorFile(path: string): Promise<ProjectorFileInfo> {
  const h = await openHeader(path, 'mmproj');
  const a = arch(h);
  if (a !== 'clip') {
    throw llavaError('ERR_INVALID_ARGUMENT', `${path} has architecture '${a}', not 'clip': it is not a projector (mmproj) file.`);
  }
  for (const [key, want] of Object.entries(CLIP_SCALAR_TYPES)) {
    const kv = h.kv.get(key);
    if (kv && kv.type !== want) {
      throw llavaError('ERR_GGUF_CORRUPT', `${path}: key '${key}' is ${typeName(kv)} but clip.cpp requires ${ggufValueTypeName(want)}; reconvert the projector with \`llava-med convert\`.`);
    }
  }
  for (const [key, want] of Object.entries(CLIP_ARRAYS)) {
    const kv = h.kv.get(key);
    if (kv && (kv.type !== T.ARRAY || kv.elemType !== want)) {
      throw llavaError('ERR_GGUF_CORRUPT', `${path}: key '${key}' is ${typeName(kv)} but clip.cpp requires ARRAY of ${ggufValueTypeName(want)}.`);
    }
  }
  for (const key of CLIP_REQUIRED) {
    if (!h.kv.has(key)) throw llavaError('ERR_GGUF_CORRUPT', `${path}: required key '${key}' is missing; this projector cannot be loaded.`);
  }
  if (h.kv.get('clip.has_vision_encoder')!.value !== true) {
    throw llavaError('ERR_INVALID_ARGUMENT', `${path} has no vision encoder (clip.has_vision_encoder is false).`);
  }
  const projectorType = h.kv.get('clip.projector_type')!.value as string;
  if (projectorType !== 'mlp') {
    throw llavaError('ERR_INVALID_ARGUMENT', `${path}: projector type '${projectorType}' is not a LLaVA projector ('mlp'); llava-med runs LLaVA-Med models only.`);
  }
  for (const k of ['clip.vision.image_mean', 'clip.vision.image_std']) {
    const kv = h.kv.get(k);
    if (!kv || !Array.isArray(kv.value) || kv.value.length < 3) throw llavaError('ERR_GGUF_CORRUPT', `${path}: ${k} must hold 3 floats.`);
  }
  const imageSize = Number(h.kv.get('clip.vision.image_size')!.value);
  const patchSize = Number(h.kv.get('clip.vision.patch_size')!.value);
  if (patchSize <= 0 || imageSize <= 0 || imageSize % patchSize !== 0) {
    throw llavaError('ERR_GGUF_CORRUPT', `${path}: image_size ${imageSize} is not a multiple of patch_size ${patchSize}.`);
  }
  checkLlavaTensors(h, imageSize, patchSize);
  const mm2 = h.tensors.find((t) => t.name === 'mm.2.weight')!;
  const v = h.kv.get('llava_med.variant');
  return {
    header: h,
    projectorType,
    imageSize,
    patchSize,
    nEmbdOut: mm2.shape[1],
    variant: v?.type === T.STRING ? (v.value as string) : undefined,
  };
}

/**
 * clip.cpp loads most LLaVA tensors as optional and the graph then uses them anyway: a missing
 * one is a null pointer (a crash), a wrong shape a GGML_ASSERT (an abort). So the whole set the
 * llava graph reads is required here, with the shapes it assumes (ggml order, ne[0] first).
 */
function checkLlavaTensors(h: GgufHeader, imageSize: number, patchSize: number): void {
  const byName = new Map(h.tensors.map((t) => [t.name, t.shape]));
  const d = Number(h.kv.get('clip.vision.embedding_length')!.value);
  const ff = Number(h.kv.get('clip.vision.feed_forward_length')!.value);
  const layers = Number(h.kv.get('clip.vision.block_count')!.value);
  const nPos = (imageSize / patchSize) ** 2 + (byName.has('v.class_embd') ? 1 : 0);
  const need = (name: string, shape?: number[] | ((s: number[]) => boolean)) => {
    const got = byName.get(name);
    if (!got) throw llavaError('ERR_GGUF_CORRUPT', `${h.path}: tensor '${name}' is missing; this projector cannot run (reconvert it with \`llava-med convert\`).`);
    const ok = shape === undefined || (typeof shape === 'function' ? shape(got) : shape.length === got.length && shape.every((x, i) => x === got[i]));
    if (!ok) throw llavaError('ERR_GGUF_CORRUPT', `${h.path}: tensor '${name}' has shape [${got.join(', ')}], which does not fit embedding_length ${d}, feed_forward_length ${ff}, image_size ${imageSize}, patch_size ${patchSize}.`);
  };
  const vec = (n: number) => (s: number[]) => s[0] === n && s.slice(1).every((x) => x === 1);
  need('v.patch_embd.weight', (s) => s[0] === patchSize && s[1] === patchSize && s[2] === 3 && s[3] === d);
  need('v.position_embd.weight', [d, nPos]);
  if (byName.has('v.class_embd')) need('v.class_embd', vec(d));
  for (let i = 0; i < layers; i++) {
    const b = `v.blk.${i}.`;
    for (const x of ['attn_q', 'attn_k', 'attn_v', 'attn_out']) need(`${b}${x}.weight`, [d, d]);
    for (const x of ['ln1', 'ln2']) {
      need(`${b}${x}.weight`, vec(d));
      need(`${b}${x}.bias`, vec(d));
    }
    // The legacy converter swapped the ffn names; clip.cpp accepts either order.
    const up = byName.get(`${b}ffn_up.weight`);
    need(`${b}ffn_up.weight`, (s) => s.length === 2 && ((s[0] === d && s[1] === ff) || (s[0] === ff && s[1] === d)));
    need(`${b}ffn_down.weight`, (s) => s.length === 2 && s[0] === up![1] && s[1] === up![0]);
  }
  need('mm.0.weight', (s) => s.length === 2 && s[0] === d);
  const hidden = byName.get('mm.0.weight')![1];
  need('mm.0.bias', vec(hidden));
  need('mm.2.weight', (s) => s.length === 2 && s[0] === hidden);
}

/** Refuses a projector that does not fit the model, before anything runs. */
export function checkPairing(model: ModelFileInfo, proj: ProjectorFileInfo): void {
  if (model.nEmbd !== proj.nEmbdOut) {
    throw llavaError(
      'ERR_MMPROJ_MISMATCH',
      `The projector ${proj.header.path} outputs ${proj.nEmbdOut}-wide embeddings but the model ${model.header.path} expects ${model.nEmbd}: they belong to different models.`,
    );
  }
  if (model.variant && proj.variant && model.variant !== proj.variant) {
    throw llavaError(
      'ERR_MMPROJ_MISMATCH',
      `The model is LLaVA-Med ${model.variant} but the projector is for ${proj.variant}; use the mmproj converted with this model.`,
    );
  }
}
