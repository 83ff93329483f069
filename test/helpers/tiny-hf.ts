/**
 * Tiny, deterministic LLaVA-Med checkpoints in the real HF folder layouts and tensor names, for the
 * converter tests, the float64 reference and the fidelity gate.
 *
 * v0: base/ (LLaMA-1-style LlamaForCausalLM, F16), delta/ (LlavaLlamaForCausalLM delta, F16, with the
 *     stale bos 0 / eos 1 / pad -1 config, added_tokens.json, special_tokens_map.json with bos "</s>",
 *     tokenizer_config.json), vision/ (CLIPModel, F32, with text tower and extras to be skipped).
 * v1.5: model/ (LlavaMistralForCausalLM, GQA, rope_theta 1e6, BF16 sharded safetensors with
 *     model.mm_projector.{0,2}.* and model.vision_tower.* inside), vision/ (CLIP at 28 px).
 *
 * Sizes: LLM hidden 64, 2 layers, 4 heads (head_dim 16), intermediate 128 (every row length a multiple
 * of 32, so q8_0 applies); CLIP hidden 32, 3 layers, 4 heads, intermediate 64, 28 px / patch 14 (4
 * patches + CLS); projector 32 → 64. The SentencePiece vocabulary is small (specials, 256 byte pieces,
 * some words); the v0 delta adds [PAD], <im_patch>, <im_start>, <im_end> right after it, so the
 * "32000×4096 top-left block" rule becomes nBase×64.
 *
 * Returned float64 maps hold the exact values stored (every random value is rounded to the storage
 * dtype first). `folded` is the model the original ran: apply_delta.py's fp16 add, i.e. base + delta
 * of the stored (F16) values rounded to fp16 (extra rows and the projector as stored); `foldedExact` is
 * the same sum before that rounding (convertV0's foldArithmetic 'exact').
 */
import { mkdir, rm, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { f16ToF32, f32ToF16, bf16ToF32, f32ToBf16 } from '../../lib/formats/half.js';
import type { DType, TensorData } from '../../lib/formats/tensor.js';
import { writeHfCheckpoint } from '../../lib/formats/hf-checkpoint.js';
import { writeSentencePieceModel } from '../../lib/formats/sentencepiece.js';
export { rng } from '../../lib/demo/rng.js';
import { rng } from '../../lib/demo/rng.js';

export interface Tensor64 {
  shape: number[];
  data: Float64Array;
}
export type Weights64 = Map<string, Tensor64>;

export const TINY_LLM = { hidden: 64, layers: 2, heads: 4, intermediate: 128 } as const;
export const TINY_CLIP = { hidden: 32, layers: 3, heads: 4, intermediate: 64, imageSize: 28, patchSize: 14 } as const;
export const OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_STD = [0.26862954, 0.26130258, 0.27577711];


function roundTo(dtype: DType, x: number): number {
  switch (dtype) {
    case 'F16':
      return f16ToF32(f32ToF16(x));
    case 'BF16':
      return bf16ToF32(f32ToBf16(x));
    case 'F32':
      return Math.fround(x);
    default:
      throw new Error(`tiny-hf: unsupported dtype ${dtype}`);
  }
}

/** Random tensor uniform in [center-scale, center+scale], rounded to dtype. */
function randTensor(r: () => number, shape: number[], scale: number, dtype: DType, center = 0): Tensor64 {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = roundTo(dtype, center + (2 * r() - 1) * scale);
  return { shape, data };
}

function toTensorData(name: string, t: Tensor64, dtype: DType): TensorData {
  return { name, dtype, shape: t.shape, data: new Float32Array(t.data) };
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

export interface TinyPiece {
  piece: string;
  score: number;
  type: number;
}

const WORDS = [
  '▁', '▁the', '▁a', '▁is', '▁of', '▁in', '▁image', '▁chest', '▁x', '-', 'ray', '▁yes', '▁no', '▁what',
  '▁Human', '▁Assistant', 'Human', 'Assistant', ':', '#', '##', '###', '▁###', '▁A', '▁chat', '▁between',
  '▁curious', '▁and', '▁artificial', '▁intelligence', '▁assistant', '.', ',', '?', '!', '▁Hi', '▁there',
  '▁How', '▁can', '▁I', '▁help', '▁you', '▁today', '▁[', 'INST', ']', '▁[/', '▁lung', '▁heart', '▁CT',
  '▁MRI', '▁there', '▁abnormal', 'ity', '▁normal', '▁left', '▁right', '▁organ', '▁shown',
];

/** LLaMA-style SentencePiece pieces: <unk> <s> </s>, 256 byte pieces, then normal pieces. */
export function tinyPieces(): TinyPiece[] {
  const pieces: TinyPiece[] = [
    { piece: '<unk>', score: 0, type: 2 },
    { piece: '<s>', score: 0, type: 3 },
    { piece: '</s>', score: 0, type: 3 },
  ];
  for (let b = 0; b < 256; b++) pieces.push({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, score: 0, type: 6 });
  const seen = new Set(pieces.map((p) => p.piece));
  const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'.split('');
  let score = -1;
  for (const w of [...WORDS, ...letters]) {
    if (seen.has(w)) continue;
    seen.add(w);
    pieces.push({ piece: w, score: score, type: 1 });
    score -= 0.25;
  }
  return pieces;
}

async function writeTokenizerModel(dir: string): Promise<number> {
  const pieces = tinyPieces();
  await writeSentencePieceModel(join(dir, 'tokenizer.model'), {
    pieces,
    trainerSpec: { modelType: 'bpe', vocabSize: pieces.length, unkId: 0, bosId: 1, eosId: 2, padId: -1, byteFallback: true },
    normalizerSpec: { name: 'identity', addDummyPrefix: true, removeExtraWhitespaces: false, escapeWhitespaces: true },
  });
  return pieces.length;
}

async function writeJson(path: string, v: unknown): Promise<void> {
  await writeFile(path, JSON.stringify(v, null, 2) + '\n');
}

// ---------------------------------------------------------------------------------------------
// LLM weights

interface LlmDims {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
}

function llmWeights(r: () => number, d: LlmDims, dtype: DType, scale: number, normCenter: number): Weights64 {
  const w: Weights64 = new Map();
  const H = d.hidden;
  const hd = H / d.heads;
  const s = scale / Math.sqrt(H);
  w.set('model.embed_tokens.weight', randTensor(r, [d.vocab, H], scale, dtype));
  for (let i = 0; i < d.layers; i++) {
    const p = `model.layers.${i}.`;
    w.set(`${p}self_attn.q_proj.weight`, randTensor(r, [H, H], s, dtype));
    w.set(`${p}self_attn.k_proj.weight`, randTensor(r, [d.kvHeads * hd, H], s, dtype));
    w.set(`${p}self_attn.v_proj.weight`, randTensor(r, [d.kvHeads * hd, H], s, dtype));
    w.set(`${p}self_attn.o_proj.weight`, randTensor(r, [H, H], s, dtype));
    w.set(`${p}mlp.gate_proj.weight`, randTensor(r, [d.intermediate, H], s, dtype));
    w.set(`${p}mlp.up_proj.weight`, randTensor(r, [d.intermediate, H], s, dtype));
    w.set(`${p}mlp.down_proj.weight`, randTensor(r, [H, d.intermediate], scale / Math.sqrt(d.intermediate), dtype));
    w.set(`${p}input_layernorm.weight`, randTensor(r, [H], 0.1 * scale, dtype, normCenter));
    w.set(`${p}post_attention_layernorm.weight`, randTensor(r, [H], 0.1 * scale, dtype, normCenter));
  }
  w.set('model.norm.weight', randTensor(r, [H], 0.1 * scale, dtype, normCenter));
  w.set('lm_head.weight', randTensor(r, [d.vocab, H], s, dtype));
  return w;
}

// ---------------------------------------------------------------------------------------------
// CLIP

export interface TinyClipOptions {
  seed: number;
  imageSize?: number;
  layers?: number;
  /** Name prefix inside the checkpoint (LLaVA-1.5 nests the tower under model.vision_tower.vision_tower.). */
  prefix?: string;
  /**
   * Scale of q_proj / k_proj (default 1). Larger values give sharper attention, as in the real CLIP,
   * where the precision of K (e.g. an F16 cast) matters more.
   */
  qkScale?: number;
}

/** CLIP vision-tower weights (HF names under `vision_model.`), F32 as openai publishes them. */
export function clipWeights(o: TinyClipOptions): Weights64 {
  const r = rng(o.seed);
  const C = TINY_CLIP;
  const d = C.hidden;
  const layers = o.layers ?? C.layers;
  const image = o.imageSize ?? C.imageSize;
  const nPos = (image / C.patchSize) ** 2 + 1;
  const w: Weights64 = new Map();
  const s = 1 / Math.sqrt(d);
  w.set('vision_model.embeddings.class_embedding', randTensor(r, [d], 0.5, 'F32'));
  w.set('vision_model.embeddings.patch_embedding.weight', randTensor(r, [d, 3, C.patchSize, C.patchSize], 1 / Math.sqrt(3 * C.patchSize * C.patchSize), 'F32'));
  w.set('vision_model.embeddings.position_embedding.weight', randTensor(r, [nPos, d], 0.3, 'F32'));
  w.set('vision_model.pre_layrnorm.weight', randTensor(r, [d], 0.1, 'F32', 1));
  w.set('vision_model.pre_layrnorm.bias', randTensor(r, [d], 0.1, 'F32'));
  for (let i = 0; i < layers; i++) {
    const p = `vision_model.encoder.layers.${i}.`;
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      w.set(`${p}self_attn.${n}.weight`, randTensor(r, [d, d], n === 'q_proj' || n === 'k_proj' ? s * (o.qkScale ?? 1) : s, 'F32'));
      w.set(`${p}self_attn.${n}.bias`, randTensor(r, [d], 0.05, 'F32'));
    }
    w.set(`${p}layer_norm1.weight`, randTensor(r, [d], 0.1, 'F32', 1));
    w.set(`${p}layer_norm1.bias`, randTensor(r, [d], 0.1, 'F32'));
    w.set(`${p}mlp.fc1.weight`, randTensor(r, [C.intermediate, d], s, 'F32'));
    w.set(`${p}mlp.fc1.bias`, randTensor(r, [C.intermediate], 0.05, 'F32'));
    w.set(`${p}mlp.fc2.weight`, randTensor(r, [d, C.intermediate], 1 / Math.sqrt(C.intermediate), 'F32'));
    w.set(`${p}mlp.fc2.bias`, randTensor(r, [d], 0.05, 'F32'));
    w.set(`${p}layer_norm2.weight`, randTensor(r, [d], 0.1, 'F32', 1));
    w.set(`${p}layer_norm2.bias`, randTensor(r, [d], 0.1, 'F32'));
  }
  w.set('vision_model.post_layernorm.weight', randTensor(r, [d], 0.1, 'F32', 1));
  w.set('vision_model.post_layernorm.bias', randTensor(r, [d], 0.1, 'F32'));
  return w;
}

function clipVisionConfig(image: number, layers: number): Record<string, unknown> {
  return {
    model_type: 'clip_vision_model',
    hidden_size: TINY_CLIP.hidden,
    intermediate_size: TINY_CLIP.intermediate,
    num_attention_heads: TINY_CLIP.heads,
    num_hidden_layers: layers,
    image_size: image,
    patch_size: TINY_CLIP.patchSize,
    layer_norm_eps: 1e-5,
    hidden_act: 'quick_gelu',
    projection_dim: 16,
    num_channels: 3,
  };
}

/** Writes a CLIPModel folder (config with vision_config, preprocessor_config, weights incl. text tower). */
export async function writeClipFolder(dir: string, o: TinyClipOptions & { notClip?: boolean }): Promise<Weights64> {
  await mkdir(dir, { recursive: true });
  const image = o.imageSize ?? TINY_CLIP.imageSize;
  const layers = o.layers ?? TINY_CLIP.layers;
  const vision = clipWeights(o);
  const r = rng(o.seed ^ 0x5bd1e995);
  const extras: TensorData[] = [
    toTensorData('text_model.embeddings.token_embedding.weight', randTensor(r, [10, 16], 0.1, 'F32'), 'F32'),
    toTensorData('text_model.final_layer_norm.weight', randTensor(r, [16], 0.1, 'F32', 1), 'F32'),
    toTensorData('visual_projection.weight', randTensor(r, [16, TINY_CLIP.hidden], 0.1, 'F32'), 'F32'),
    toTensorData('text_projection.weight', randTensor(r, [16, 16], 0.1, 'F32'), 'F32'),
    toTensorData('logit_scale', { shape: [1], data: new Float64Array([Math.fround(4.6052)]) }, 'F32'),
  ];
  const tensors = [...[...vision].map(([n, t]) => toTensorData(n, t, 'F32')), ...extras];
  await writeHfCheckpoint(dir, tensors, { format: 'safetensors' });
  const config = o.notClip
    ? {
        architectures: ['SiglipModel'],
        model_type: 'siglip',
        vision_config: { ...clipVisionConfig(image, layers), model_type: 'siglip_vision_model', hidden_act: 'gelu_pytorch_tanh' },
      }
    : {
        _name_or_path: 'openai/clip-vit-large-patch14',
        architectures: ['CLIPModel'],
        model_type: 'clip',
        projection_dim: 16,
        text_config: { model_type: 'clip_text_model', hidden_size: 16, num_hidden_layers: 1, vocab_size: 10 },
        vision_config: clipVisionConfig(image, layers),
      };
  await writeJson(join(dir, 'config.json'), config);
  await writeJson(join(dir, 'preprocessor_config.json'), {
    crop_size: image,
    do_center_crop: true,
    do_normalize: true,
    do_resize: true,
    feature_extractor_type: 'CLIPFeatureExtractor',
    image_mean: OPENAI_MEAN,
    image_std: OPENAI_STD,
    resample: 3,
    size: image,
  });
  return vision;
}

// ---------------------------------------------------------------------------------------------
// v0

export type TinyV0Break = 'llama2-base' | 'vicuna-base' | 'no-projector' | 'not-clip' | 'missing-shard' | 'unexpected-tensor';

export interface TinyV0Options {
  dir: string;
  format?: 'safetensors' | 'bin';
  /** Number of shards of the base and delta checkpoints (default 1). */
  shards?: number;
  seed: number;
  /** Make a broken variant for error tests. */
  break?: TinyV0Break;
  /** CLIP input size (default 28 px: 4 patches); 224 gives the real v0 geometry (256 patches + CLS). */
  imageSize?: number;
  /** CLIP q/k scale (clipWeights' qkScale). */
  clipQkScale?: number;
}

export interface TinyTokenIds {
  nBaseVocab: number;
  unk: number;
  /** SentencePiece <s>. */
  s: number;
  /** SentencePiece </s>. */
  sEnd: number;
  pad?: number;
  imPatch?: number;
  imStart?: number;
  imEnd?: number;
  /** The id the original tokenizer prepended (v0: "</s>" from special_tokens_map.json). */
  promptBos: number;
}

export interface TinyV0 {
  dirs: { base: string; delta: string; vision: string };
  /** Folded LLM + projector (HF names, incl. model.mm_projector.*) as apply_delta.py's fp16 add computed it. */
  folded: Weights64;
  /** The exact sum of the stored values (before the fp16 rounding). */
  foldedExact: Weights64;
  /** CLIP vision tower (HF names under vision_model.), exact float64. */
  vision: Weights64;
  base: Weights64;
  delta: Weights64;
  config: {
    llm: Record<string, unknown>;
    clip: Record<string, unknown>;
    tokens: TinyTokenIds;
  };
}

export async function makeTinyV0(o: TinyV0Options): Promise<TinyV0> {
  const format = o.format ?? 'safetensors';
  const shards = o.shards ?? 1;
  const dirs = { base: join(o.dir, 'base'), delta: join(o.dir, 'delta'), vision: join(o.dir, 'vision') };
  for (const d of Object.values(dirs)) await mkdir(d, { recursive: true });
  const L = TINY_LLM;

  // base
  const nBase = await writeTokenizerModel(dirs.base);
  const vicuna = o.break === 'vicuna-base';
  const baseRows = vicuna ? nBase + 1 : nBase;
  const r = rng(o.seed);
  const baseW = llmWeights(r, { ...L, kvHeads: L.heads, vocab: baseRows }, 'F16', 1, 1);
  const llama2 = o.break === 'llama2-base';
  await writeJson(join(dirs.base, 'config.json'), {
    ...(llama2 ? { _name_or_path: 'meta-llama/Llama-2-7b-hf' } : {}),
    architectures: ['LlamaForCausalLM'],
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: 'silu',
    hidden_size: L.hidden,
    initializer_range: 0.02,
    intermediate_size: L.intermediate,
    max_position_embeddings: llama2 ? 4096 : 2048,
    model_type: 'llama',
    num_attention_heads: L.heads,
    num_hidden_layers: L.layers,
    ...(llama2 ? { num_key_value_heads: L.heads, pretraining_tp: 1, rope_scaling: null } : {}),
    pad_token_id: 0,
    rms_norm_eps: llama2 ? 1e-5 : 1e-6,
    tie_word_embeddings: false,
    torch_dtype: 'float16',
    transformers_version: '4.28.0.dev0',
    use_cache: true,
    vocab_size: baseRows,
  });
  await writeJson(join(dirs.base, 'special_tokens_map.json'), {});
  await writeJson(join(dirs.base, 'tokenizer_config.json'), { bos_token: '', eos_token: '', model_max_length: 1e30, tokenizer_class: 'LlamaTokenizer', unk_token: '' });
  if (vicuna) await writeJson(join(dirs.base, 'added_tokens.json'), { '[PAD]': nBase });
  await writeHfCheckpoint(dirs.base, [...baseW].map(([n, t]) => toTensorData(n, t, 'F16')), { format, shards });

  // delta: small differences on the base block, absolute rows for the 4 added tokens, absolute projector
  const nDelta = nBase + 4;
  const rd = rng(o.seed ^ 0x9e3779b9);
  const deltaW = llmWeights(rd, { ...L, kvHeads: L.heads, vocab: nDelta }, 'F16', 0.1, 0);
  if (o.break !== 'no-projector') {
    deltaW.set('model.mm_projector.weight', randTensor(rd, [L.hidden, TINY_CLIP.hidden], 1 / Math.sqrt(TINY_CLIP.hidden), 'F16'));
    deltaW.set('model.mm_projector.bias', randTensor(rd, [L.hidden], 0.05, 'F16'));
  }
  if (o.break === 'unexpected-tensor') deltaW.set('model.extra_head.weight', randTensor(rd, [4, L.hidden], 0.1, 'F16'));
  const deltaCfg = {
    _name_or_path: '/home/chunyl/projects/models/llava_med_in_text_60k',
    architectures: ['LlavaLlamaForCausalLM'],
    bos_token_id: 0,
    eos_token_id: 1,
    hidden_act: 'silu',
    hidden_size: L.hidden,
    initializer_range: 0.02,
    intermediate_size: L.intermediate,
    max_sequence_length: 2048,
    mm_hidden_size: TINY_CLIP.hidden,
    mm_use_im_start_end: true,
    mm_vision_select_layer: -2,
    mm_vision_tower: 'openai/clip-vit-large-patch14',
    model_type: 'llava',
    num_attention_heads: L.heads,
    num_hidden_layers: L.layers,
    pad_token_id: -1,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: false,
    torch_dtype: 'float16',
    transformers_version: '4.28.0.dev0',
    tune_mm_mlp_adapter: false,
    use_cache: true,
    use_mm_proj: true,
    vocab_size: nDelta,
  };
  await writeJson(join(dirs.delta, 'config.json'), deltaCfg);
  await writeJson(join(dirs.delta, 'generation_config.json'), { _from_model_config: true, bos_token_id: 0, eos_token_id: 1, pad_token_id: 0, transformers_version: '4.28.0.dev0' });
  await writeTokenizerModel(dirs.delta);
  const ids = { pad: nBase, imPatch: nBase + 1, imStart: nBase + 2, imEnd: nBase + 3 };
  await writeJson(join(dirs.delta, 'added_tokens.json'), { '[PAD]': ids.pad, '<im_patch>': ids.imPatch, '<im_start>': ids.imStart, '<im_end>': ids.imEnd });
  await writeJson(join(dirs.delta, 'special_tokens_map.json'), { bos_token: '</s>', eos_token: '</s>', pad_token: '[PAD]', unk_token: '<unk>' });
  await writeJson(join(dirs.delta, 'tokenizer_config.json'), {
    bos_token: { __type: 'AddedToken', content: '<s>', lstrip: false, normalized: true, rstrip: false, single_word: false },
    clean_up_tokenization_spaces: false,
    eos_token: { __type: 'AddedToken', content: '</s>', lstrip: false, normalized: true, rstrip: false, single_word: false },
    model_max_length: 2048,
    pad_token: null,
    padding_side: 'right',
    sp_model_kwargs: {},
    special_tokens_map_file: '/home/chunyl/.cache/huggingface/hub/models--lmsys--vicuna-7b-delta-v0/special_tokens_map.json',
    tokenizer_class: 'LlamaTokenizer',
    unk_token: { __type: 'AddedToken', content: '<unk>', lstrip: false, normalized: true, rstrip: false, single_word: false },
  });
  await writeHfCheckpoint(dirs.delta, [...deltaW].map(([n, t]) => toTensorData(n, t, 'F16')), { format, shards: o.break === 'missing-shard' ? Math.max(2, shards) : shards });
  if (o.break === 'missing-shard') {
    const files = (await readdir(dirs.delta)).filter((f) => /-0+2-of-/.test(f)).sort();
    if (files.length === 0) throw new Error('tiny-hf: no second shard to remove');
    await rm(join(dirs.delta, files[0]!));
  }

  // fold (exact, float64; then rounded to fp16 as apply_delta's fp16 add)
  const foldedExact: Weights64 = new Map();
  for (const [name, d] of deltaW) {
    const b = baseW.get(name);
    if (!b) {
      foldedExact.set(name, { shape: [...d.shape], data: Float64Array.from(d.data) });
      continue;
    }
    const out = Float64Array.from(d.data);
    const bCols = b.shape[1] ?? 1;
    const dCols = d.shape[1] ?? 1;
    const bRows = b.shape.length === 1 ? b.shape[0]! : b.shape[0]!;
    if (b.shape.length === 1) {
      for (let i = 0; i < out.length; i++) out[i] = out[i]! + b.data[i]!;
    } else {
      for (let row = 0; row < Math.min(bRows, d.shape[0]!); row++) {
        for (let c = 0; c < bCols; c++) out[row * dCols + c] = out[row * dCols + c]! + b.data[row * bCols + c]!;
      }
    }
    foldedExact.set(name, { shape: [...d.shape], data: out });
  }
  const folded: Weights64 = new Map([...foldedExact].map(([n, t]) => [n, { shape: t.shape, data: t.data.map((x) => roundTo('F16', x)) }]));

  const vision = await writeClipFolder(dirs.vision, { seed: o.seed + 1, notClip: o.break === 'not-clip', imageSize: o.imageSize, qkScale: o.clipQkScale });

  return {
    dirs,
    folded,
    foldedExact,
    vision,
    base: baseW,
    delta: deltaW,
    config: {
      llm: deltaCfg,
      clip: clipVisionConfig(o.imageSize ?? TINY_CLIP.imageSize, TINY_CLIP.layers),
      tokens: { nBaseVocab: nBase, unk: 0, s: 1, sEnd: 2, ...ids, promptBos: 2 },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// v1.5

export interface TinyV15Options {
  dir: string;
  seed: number;
  /** Shards of the model checkpoint (default 2, like the real 4-shard release). */
  shards?: number;
  /** Checkpoint format (default safetensors, as released). */
  format?: 'safetensors' | 'bin';
  /** CLIP input size of the separate CLIP folder (default 28 px); 336 gives the real v1.5 geometry (576 patches + CLS). */
  imageSize?: number;
  /** CLIP q/k scale (clipWeights' qkScale). */
  clipQkScale?: number;
}

export interface TinyV15 {
  dirs: { model: string; vision: string };
  /** LLM + projector (HF names, incl. model.mm_projector.{0,2}.*), exact float64 (BF16-representable). */
  weights: Weights64;
  /** The separate CLIP folder's vision tower (what the converter uses), exact float64. */
  vision: Weights64;
  config: {
    llm: Record<string, unknown>;
    clip: Record<string, unknown>;
    tokens: TinyTokenIds;
  };
}

export async function makeTinyV15(o: TinyV15Options): Promise<TinyV15> {
  const dirs = { model: join(o.dir, 'model'), vision: join(o.dir, 'vision') };
  await mkdir(dirs.model, { recursive: true });
  const L = TINY_LLM;
  const kvHeads = 2;
  const nVocab = await writeTokenizerModel(dirs.model);
  const r = rng(o.seed);
  const w = llmWeights(r, { ...L, kvHeads, vocab: nVocab }, 'BF16', 1, 1);
  w.set('model.mm_projector.0.weight', randTensor(r, [L.hidden, TINY_CLIP.hidden], 1 / Math.sqrt(TINY_CLIP.hidden), 'BF16'));
  w.set('model.mm_projector.0.bias', randTensor(r, [L.hidden], 0.05, 'BF16'));
  w.set('model.mm_projector.2.weight', randTensor(r, [L.hidden, L.hidden], 1 / Math.sqrt(L.hidden), 'BF16'));
  w.set('model.mm_projector.2.bias', randTensor(r, [L.hidden], 0.05, 'BF16'));
  // The released checkpoint also carries a (never used) copy of the tower; a different seed proves the
  // converter takes the separate CLIP folder, as the original code does.
  const inner = clipWeights({ seed: o.seed + 7 });
  const towerData: TensorData[] = [...inner].map(([n, t]) => toTensorData(`model.vision_tower.vision_tower.${n}`, t, 'BF16'));
  const cfg = {
    _name_or_path: 'mistralai/Mistral-7B-Instruct-v0.2',
    architectures: ['LlavaMistralForCausalLM'],
    attention_dropout: 0,
    bos_token_id: 1,
    eos_token_id: 2,
    feature_outs: 'encoder+decoder',
    freeze_mm_mlp_adapter: false,
    hidden_act: 'silu',
    hidden_size: L.hidden,
    image_aspect_ratio: 'pad',
    img_size: 640,
    initializer_range: 0.02,
    intermediate_size: L.intermediate,
    max_position_embeddings: 32768,
    mm_hidden_size: TINY_CLIP.hidden,
    mm_patch_merge_type: 'flat',
    mm_projector_lr: null,
    mm_projector_type: 'mlp2x_gelu',
    mm_use_im_patch_token: false,
    mm_use_im_start_end: false,
    mm_vision_select_feature: 'patch',
    mm_vision_select_layer: -2,
    mm_vision_tower: 'openai/clip-vit-large-patch14-336',
    model_type: 'llava_mistral',
    num_attention_heads: L.heads,
    num_hidden_layers: L.layers,
    num_key_value_heads: kvHeads,
    rms_norm_eps: 1e-5,
    rope_theta: 1000000.0,
    sliding_window: null,
    tie_word_embeddings: false,
    tokenizer_model_max_length: 2048,
    tokenizer_padding_side: 'right',
    torch_dtype: 'bfloat16',
    transformers_version: '4.36.2',
    use_cache: true,
    use_mm_proj: true,
    vision_backbone: 'convnextlarge',
    vocab_size: nVocab,
  };
  await writeJson(join(dirs.model, 'config.json'), cfg);
  await writeJson(join(dirs.model, 'special_tokens_map.json'), { bos_token: '<s>', eos_token: '</s>', pad_token: '<unk>', unk_token: '<unk>' });
  await writeJson(join(dirs.model, 'tokenizer_config.json'), {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    legacy: true,
    model_max_length: 2048,
    pad_token: '<unk>',
    padding_side: 'right',
    tokenizer_class: 'LlamaTokenizer',
    unk_token: '<unk>',
  });
  await writeHfCheckpoint(dirs.model, [...[...w].map(([n, t]) => toTensorData(n, t, 'BF16')), ...towerData], { format: o.format ?? 'safetensors', shards: o.shards ?? 2 });
  const vision = await writeClipFolder(dirs.vision, { seed: o.seed + 1, imageSize: o.imageSize, qkScale: o.clipQkScale });
  return {
    dirs,
    weights: w,
    vision,
    config: {
      llm: cfg,
      clip: clipVisionConfig(o.imageSize ?? TINY_CLIP.imageSize, TINY_CLIP.layers),
      tokens: { nBaseVocab: nVocab, unk: 0, s: 1, sEnd: 2, pad: 0, promptBos: 1 },
    },
  };
}
