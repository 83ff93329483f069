/**
 * Checks an mmproj (CLIP + LLaVA projector) GGUF header so that clip.cpp can never abort or crash
 * the process on it (sources in gguf-keys.ts). clip.cpp is far less defensive than llama.cpp: it
 * reads scalar keys with type-asserting gguf_get_val_* (a wrong type aborts), loads almost every
 * tensor as optional and then uses whatever it found in the graph (a missing one is a null
 * pointer, a wrong width a GGML_ASSERT in ggml_add / ggml_reshape / ggml_mul_mat during the warm-up
 * encode), and indexes its layer list with feature_layer. So the whole LLaVA layout is checked
 * here: every key's type and range, and every tensor's name, shape and type, unknown names refused.
 */
import { llavaError } from '../errors.js';
import { GgufValueType as T, ggmlTypeName, ggufValueTypeName, type GgmlType, type GgufHeader, type GgufKv } from '../formats/gguf-types.js';
import { CLIP_ARRAYS, CLIP_MAX_IMAGE_SIZE, CLIP_REQUIRED, CLIP_SCALAR_TYPES, CONV_TYPES, EMBED_TYPES, MATMUL_TYPES, VECTOR_TYPES } from './gguf-keys.js';

function typeName(kv: GgufKv): string {
  return kv.type === T.ARRAY ? `ARRAY of ${ggufValueTypeName(kv.elemType!)}` : ggufValueTypeName(kv.type);
}

function bad(h: GgufHeader, msg: string): never {
  throw llavaError('ERR_GGUF_CORRUPT', `${h.path}: ${msg}; this projector cannot be loaded (convert it again with \`llava-med convert\`).`);
}

export interface ClipCheck {
  projectorType: string;
  imageSize: number;
  patchSize: number;
  /** Width of the projector's output, which must equal the model's embedding width. */
  nEmbdOut: number;
}

export function checkClipHeader(h: GgufHeader): ClipCheck {
  for (const [key, want] of Object.entries(CLIP_SCALAR_TYPES)) {
    const kv = h.kv.get(key);
    if (kv && kv.type !== want) {
      throw llavaError('ERR_GGUF_CORRUPT', `${h.path}: key '${key}' is ${typeName(kv)} but clip.cpp requires ${ggufValueTypeName(want)}; reconvert the projector with \`llava-med convert\`.`);
    }
  }
  for (const [key, want] of Object.entries(CLIP_ARRAYS)) {
    const kv = h.kv.get(key);
    if (kv && (kv.type !== T.ARRAY || kv.elemType !== want)) {
      throw llavaError('ERR_GGUF_CORRUPT', `${h.path}: key '${key}' is ${typeName(kv)} but clip.cpp requires ARRAY of ${ggufValueTypeName(want)}.`);
    }
  }
  for (const key of CLIP_REQUIRED) {
    if (!h.kv.has(key)) bad(h, `required key '${key}' is missing`);
  }
  const val = <V>(key: string): V | undefined => h.kv.get(key)?.value as V | undefined;
  if (val<boolean>('clip.has_vision_encoder') !== true) {
    throw llavaError('ERR_INVALID_ARGUMENT', `${h.path} has no vision encoder (clip.has_vision_encoder is false).`);
  }
  // mtmd would also load an audio encoder, whose keys and tensors nothing here checks.
  if (val<boolean>('clip.has_audio_encoder') === true || val<boolean>('clip.has_gen_audio_encoder') === true) {
    throw llavaError('ERR_INVALID_ARGUMENT', `${h.path} also holds an audio encoder; LLaVA-Med projectors are vision only.`);
  }
  const projectorType = val<string>('clip.projector_type')!;
  if (projectorType !== 'mlp') {
    throw llavaError('ERR_INVALID_ARGUMENT', `${h.path}: projector type '${projectorType}' is not a LLaVA projector ('mlp'); llava-med runs LLaVA-Med models only.`);
  }
  if (val<boolean>('clip.use_gelu') === true && val<boolean>('clip.use_silu') === true) bad(h, 'clip.use_gelu and clip.use_silu are both true');
  const merge = val<string>('clip.vision.mm_patch_merge_type');
  if (merge !== undefined && merge !== 'flat') bad(h, `clip.vision.mm_patch_merge_type is '${merge}'; LLaVA-Med projectors use 'flat'`);
  const pinpoints = val<number[]>('clip.vision.image_grid_pinpoints');
  if (pinpoints && pinpoints.length > 0) bad(h, 'clip.vision.image_grid_pinpoints is set (LLaVA-NeXT tiling); LLaVA-Med projectors encode one square image');

  const u32 = (key: string) => val<number>(key)!;
  const d = u32('clip.vision.embedding_length');
  const nHead = u32('clip.vision.attention.head_count');
  const nLayer = u32('clip.vision.block_count');
  const imageSize = u32('clip.vision.image_size');
  const patchSize = u32('clip.vision.patch_size');
  if (d < 1) bad(h, 'clip.vision.embedding_length is 0');
  if (u32('clip.vision.feed_forward_length') < 1) bad(h, 'clip.vision.feed_forward_length is 0');
  // The llava graph reshapes Q, K and V to [d / n_head, n_head, n_pos]: n_head must divide d.
  if (nHead < 1 || d % nHead !== 0) bad(h, `clip.vision.attention.head_count ${nHead} does not divide embedding_length ${d}`);
  const headDim = val<number>('clip.vision.attention.head_dim');
  if (headDim !== undefined && headDim !== 0 && headDim !== d / nHead) bad(h, `clip.vision.attention.head_dim ${headDim} is not embedding_length / head_count = ${d / nHead}`);
  const headKv = val<number>('clip.vision.attention.head_count_kv');
  if (headKv !== undefined && headKv !== 0 && headKv !== nHead) bad(h, `clip.vision.attention.head_count_kv ${headKv} differs from head_count ${nHead}; the CLIP encoder has plain multi-head attention`);
  // The graph walks layers[0 .. max_feature_layer): none (a null deref) or past the end (out of bounds) crash.
  if (nLayer < 1) bad(h, 'clip.vision.block_count is 0');
  const eps = val<number>('clip.vision.attention.layer_norm_epsilon')!;
  if (!Number.isFinite(eps) || eps <= 0 || eps >= 1) bad(h, `clip.vision.attention.layer_norm_epsilon is ${eps}; layer norm needs a small positive epsilon`);
  if (patchSize < 1 || imageSize < 1 || imageSize > CLIP_MAX_IMAGE_SIZE || imageSize % patchSize !== 0) {
    bad(h, `image_size ${imageSize} is not a multiple of patch_size ${patchSize} (between 1 and ${CLIP_MAX_IMAGE_SIZE})`);
  }
  for (const k of ['clip.vision.image_mean', 'clip.vision.image_std']) {
    const v = val<number[]>(k);
    if (!v || v.length < 3) bad(h, `${k} must hold 3 floats`);
    if (v.slice(0, 3).some((x) => !Number.isFinite(x) || (k.endsWith('std') && x <= 0))) {
      bad(h, `${k} is [${v.slice(0, 3).join(', ')}]; ${k.endsWith('std') ? 'each channel needs a positive, finite deviation' : 'the means must be finite'}`);
    }
  }
  // feature_layer: the graph runs layers [0, max) with max = the deepest feature layer (or n_layer - 1
  // when none is given) and concatenates the outputs of every listed layer along the width.
  const features = val<number[]>('clip.vision.feature_layer') ?? [];
  for (const f of features) {
    if (f < 0 || f > nLayer) bad(h, `clip.vision.feature_layer ${f} is outside 0..${nLayer} (block_count)`);
  }
  const nStacked = Math.max(1, new Set(features).size);
  const out = checkLlavaTensors(h, { d, nLayer, imageSize, patchSize, inWidth: d * nStacked });
  return { projectorType, imageSize, patchSize, nEmbdOut: out };
}

/**
 * Every tensor the llava graph may pick up, with the shape (ggml order, ne[0] first) and the
 * types it needs. Anything else in the file is refused: clip.cpp would load it as an optional
 * tensor of some other model family and use it.
 */
function checkLlavaTensors(h: GgufHeader, g: { d: number; nLayer: number; imageSize: number; patchSize: number; inWidth: number }): number {
  const { d, nLayer, imageSize, patchSize } = g;
  const byName = new Map(h.tensors.map((t) => [t.name, t]));
  const checked = new Set<string>();
  const shapeText = (s: number[]) => `[${s.join(', ')}]`;
  const fits = `embedding_length ${d}, block_count ${nLayer}, image_size ${imageSize}, patch_size ${patchSize}`;
  const check = (name: string, required: boolean, types: ReadonlySet<GgmlType>, shape: (s: number[]) => boolean): number[] | undefined => {
    checked.add(name);
    const t = byName.get(name);
    if (!t) {
      if (required) throw llavaError('ERR_GGUF_CORRUPT', `${h.path}: tensor '${name}' is missing; this projector cannot run (reconvert it with \`llava-med convert\`).`);
      return undefined;
    }
    if (t.shape.some((n) => n < 1) || !shape(t.shape)) bad(h, `tensor '${name}' has shape ${shapeText(t.shape)}, which does not fit ${fits}`);
    if (!types.has(t.type)) bad(h, `tensor '${name}' is stored as ${ggmlTypeName(t.type)}, which clip.cpp cannot use there`);
    return t.shape;
  };
  const is = (...want: number[]) => (s: number[]) => s.length === want.length && want.every((x, i) => x === s[i]);
  const vec = (n: number) => (s: number[]) => s[0] === n && s.slice(1).every((x) => x === 1);
  const mat = (rows: number) => (s: number[]) => s.length === 2 && s[0] === rows;

  const hasClass = byName.has('v.class_embd');
  const nPos = (imageSize / patchSize) ** 2 + (hasClass ? 1 : 0);
  check('v.class_embd', false, VECTOR_TYPES, vec(d));
  check('v.patch_embd.weight', true, CONV_TYPES, is(patchSize, patchSize, 3, d));
  check('v.patch_embd.bias', false, VECTOR_TYPES, vec(d));
  check('v.position_embd.weight', true, EMBED_TYPES, is(d, nPos));
  for (const p of ['v.pre_ln', 'v.post_ln']) {
    check(`${p}.weight`, false, VECTOR_TYPES, vec(d));
    check(`${p}.bias`, false, VECTOR_TYPES, vec(d));
  }
  for (let i = 0; i < nLayer; i++) {
    const b = `v.blk.${i}.`;
    for (const x of ['attn_q', 'attn_k', 'attn_v', 'attn_out']) {
      check(`${b}${x}.weight`, true, MATMUL_TYPES, is(d, d));
      check(`${b}${x}.bias`, false, VECTOR_TYPES, vec(d));
    }
    for (const x of ['ln1', 'ln2']) {
      check(`${b}${x}.weight`, true, VECTOR_TYPES, vec(d));
      check(`${b}${x}.bias`, true, VECTOR_TYPES, vec(d));
    }
    // clip.cpp swaps up and down (weights and biases) when ffn_down's ne[0] is the embedding
    // width, for files from the legacy converter; after that, up is [d, ff] and down [ff, d].
    const up0 = check(`${b}ffn_up.weight`, true, MATMUL_TYPES, (s) => s.length === 2 && (s[0] === d || s[1] === d));
    const down0 = check(`${b}ffn_down.weight`, true, MATMUL_TYPES, (s) => s.length === 2 && (s[0] === d || s[1] === d));
    const swapped = down0![0] === d;
    const [up, down] = swapped ? [down0!, up0!] : [up0!, down0!];
    const ff = up[1]!;
    if (!(up[0] === d && down[0] === ff && down[1] === d)) {
      bad(h, `the feed-forward weights of layer ${i} (ffn_up ${shapeText(up0!)}, ffn_down ${shapeText(down0!)}) do not fit embedding_length ${d}`);
    }
    check(`${b}ffn_up.bias`, false, VECTOR_TYPES, vec(swapped ? d : ff));
    check(`${b}ffn_down.bias`, false, VECTOR_TYPES, vec(swapped ? ff : d));
  }
  // The LLaVA projector: mm.0 (the encoder's output width -> hidden), GELU, mm.2 (hidden -> the LLM's width).
  const mm0 = check('mm.0.weight', true, MATMUL_TYPES, mat(g.inWidth));
  const hidden = mm0![1]!;
  check('mm.0.bias', true, VECTOR_TYPES, vec(hidden));
  const mm2 = check('mm.2.weight', true, MATMUL_TYPES, mat(hidden));
  const out = mm2![1]!;
  check('mm.2.bias', true, VECTOR_TYPES, vec(out));
  for (const t of h.tensors) {
    if (!checked.has(t.name)) {
      const layer = /^v\.blk\.(\d+)\./.exec(t.name);
      bad(h, layer && Number(layer[1]) >= nLayer
        ? `tensor '${t.name}' belongs to layer ${layer[1]}, beyond block_count ${nLayer}`
        : `tensor '${t.name}' is not part of a LLaVA CLIP projector`);
    }
  }
  return out;
}
