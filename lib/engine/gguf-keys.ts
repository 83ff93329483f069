/**
 * What llama.cpp and clip.cpp read from a GGUF file and what they assume about it, written down
 * from the vendored sources (deps/llama.cpp: src/llama-model.cpp `load_hparams`, src/models/llama.cpp,
 * src/llama-vocab.cpp `load`, src/llama-hparams.h, tools/mtmd/clip.cpp `load_hparams` /
 * `load_tensors`, tools/mtmd/models/llava.cpp, ggml/src/ggml-cpu). The checks in gguf-check-llama.ts
 * and gguf-check-clip.ts use these tables; when llama.cpp is updated, re-read those places.
 */
import { GgmlType, GgufValueType as T } from '../formats/gguf-types.js';

// ---- llama.cpp (src/llama-hparams.h) ----------------------------------------------------------

/** `GGML_ASSERT(n_layer_all > 0 && n_layer_all <= LLAMA_MAX_LAYERS)` in load_hparams. */
export const LLAMA_MAX_LAYERS = 512;

/** `llama_rope_scaling_type_from_string`: anything else is UNSPECIFIED, which load_hparams asserts against. */
export const ROPE_SCALING_TYPES = ['none', 'linear', 'yarn', 'longrope'] as const;

/**
 * The `llama.*` keys load_hparams (and the llama architecture's load_arch_hparams) read, with the
 * one GGUF type `llama_model_loader::get_key` accepts (it throws on another type; checked here
 * anyway so a wrong type gets a message naming the key). `arr` marks keys read with
 * get_key_or_arr: a scalar, or an array with one value per layer.
 */
export const LLAMA_KEYS: Record<string, { type: T; arr?: boolean }> = {
  vocab_size: { type: T.UINT32 },
  context_length: { type: T.UINT32 },
  embedding_length: { type: T.UINT32 },
  embedding_length_out: { type: T.UINT32 },
  block_count: { type: T.UINT32 },
  nextn_predict_layers: { type: T.UINT32 },
  expert_count: { type: T.UINT32 },
  expert_used_count: { type: T.UINT32, arr: true },
  expert_group_count: { type: T.UINT32 },
  expert_group_used_count: { type: T.UINT32 },
  pooling_type: { type: T.UINT32 },
  feed_forward_length: { type: T.UINT32, arr: true },
  'attention.head_count': { type: T.UINT32, arr: true },
  'attention.head_count_kv': { type: T.UINT32, arr: true },
  'attention.key_length': { type: T.UINT32 },
  'attention.value_length': { type: T.UINT32 },
  'attention.key_length_swa': { type: T.UINT32 },
  'attention.value_length_swa': { type: T.UINT32 },
  'attention.layer_norm_rms_epsilon': { type: T.FLOAT32 },
  'attention.causal': { type: T.BOOL },
  'rope.dimension_count': { type: T.UINT32 },
  'rope.dimension_count_swa': { type: T.UINT32 },
  'rope.freq_base': { type: T.FLOAT32 },
  'rope.scale_linear': { type: T.FLOAT32 },
  'rope.scaling.type': { type: T.STRING },
  'rope.scaling.factor': { type: T.FLOAT32 },
  'rope.scaling.alpha': { type: T.FLOAT32 },
  'rope.scaling.attn_factor': { type: T.FLOAT32 },
  'rope.scaling.original_context_length': { type: T.UINT32 },
  'rope.scaling.finetuned': { type: T.BOOL },
};

/** Special-token id keys llama-vocab.cpp reads (as UINT32); out-of-range ids are silently dropped there. */
export const TOKEN_ID_KEYS = [
  'bos', 'eos', 'eot', 'eom', 'unknown', 'seperator', 'padding', 'mask',
  'fim_pre', 'fim_suf', 'fim_mid', 'fim_pad', 'fim_rep', 'fim_sep', 'prefix', 'suffix', 'middle',
].map((k) => `tokenizer.ggml.${k}_token_id`);

/** Token ids this project's converter records for the prompt layer (lib/llava-med.ts uses them). */
export const LLAVA_MED_ID_KEYS = [
  'llava_med.prompt_bos_token_id',
  'llava_med.image_start_token_id',
  'llava_med.image_end_token_id',
  'llava_med.image_patch_token_id',
];

// ---- ggml CPU kernels ---------------------------------------------------------------------------

/**
 * Weight types the CPU backend can multiply with (ggml-cpu `type_traits_cpu[t].vec_dot` set) and
 * that ggml_get_rows can read. Q8_1 and Q8_K are only activation formats (no vec_dot as the
 * weight), the integer types and F64 have no matmul, and newer experimental types are left out.
 */
export const MATMUL_TYPES: ReadonlySet<GgmlType> = new Set([
  GgmlType.F32, GgmlType.F16, GgmlType.BF16,
  GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0,
  GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
  GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ3_XXS, GgmlType.IQ1_S, GgmlType.IQ4_NL, GgmlType.IQ3_S,
  GgmlType.IQ2_S, GgmlType.IQ4_XS, GgmlType.IQ1_M, GgmlType.TQ1_0, GgmlType.TQ2_0, GgmlType.MXFP4,
]);

/** Norm weights and biases: llama.cpp's converters always write 1-D tensors as F32, and ggml's
 * CPU binary ops are only guaranteed for an F32 second operand. */
export const VECTOR_TYPES: ReadonlySet<GgmlType> = new Set([GgmlType.F32]);

/** The patch embedding is a conv_2d kernel: im2col takes F32 or F16 kernels only. */
export const CONV_TYPES: ReadonlySet<GgmlType> = new Set([GgmlType.F32, GgmlType.F16]);

/** The position embedding is read with ggml_get_rows and added in F32. */
export const EMBED_TYPES: ReadonlySet<GgmlType> = new Set([GgmlType.F32, GgmlType.F16]);

// ---- clip.cpp (tools/mtmd/clip.cpp) ------------------------------------------------------------

/** Scalar keys clip.cpp reads, with the exact type its gguf_get_val_* call asserts (an abort otherwise). */
export const CLIP_SCALAR_TYPES: Record<string, T> = {
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

export const CLIP_REQUIRED = [
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

export const CLIP_ARRAYS: Record<string, T> = {
  'clip.vision.image_mean': T.FLOAT32,
  'clip.vision.image_std': T.FLOAT32,
  'clip.vision.feature_layer': T.INT32,
  'clip.vision.image_grid_pinpoints': T.INT32,
};

/** clip.cpp refuses image_size above this (int32 overflow of the patch count). */
export const CLIP_MAX_IMAGE_SIZE = 8192;
