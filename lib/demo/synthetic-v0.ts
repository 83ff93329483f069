/**
 * Writes random-weight LLaVA-Med v0 checkpoints in the real Hugging Face layouts — an
 * original-LLaMA base folder, a LLaVA-Med delta folder (4 added tokens, projector, the
 * delta's stale config ids and its tokenizer files) and a CLIP vision folder — at any size,
 * for the demo model and the benchmark model. They then go through the same converter a user
 * runs on the real 13 GB release. The weights are random: whatever the model says is noise.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { f32ToF16Buffer } from '../formats/half.js';
import { writeHfCheckpoint } from '../formats/hf-checkpoint.js';
import { writeSentencePieceModel } from '../formats/sentencepiece.js';
import type { TensorData } from '../formats/tensor.js';
import { rng } from './rng.js';

/** Sizes of a synthetic LLaVA-Med v0 model; the "real" values below are the released 7B model's. */
export interface SyntheticV0Dims {
  /** LLaMA hidden width (real: 4096); a multiple of `heads`. */
  hidden: number;
  /** LLaMA transformer blocks (real: 32). */
  layers: number;
  /** LLaMA attention heads (real: 32). */
  heads: number;
  /** LLaMA MLP width (real: 11008). */
  intermediate: number;
  /** Base vocabulary (LLaMA: 32000); the delta adds 4. */
  vocab: number;
  /** CLIP vision width (real: 1024). */
  clipHidden: number;
  /** CLIP vision blocks (real: 24). */
  clipLayers: number;
  /** CLIP attention heads (real: 16). */
  clipHeads: number;
  /** CLIP MLP width (real: 4096). */
  clipIntermediate: number;
  /** CLIP input side in pixels (v0: 224). */
  imageSize: number;
  /** CLIP patch side in pixels (14); (imageSize / patchSize)² image tokens. */
  patchSize: number;
}

/** The demo: small enough to answer in a second on 2 cores, with the real 224 px CLIP geometry. */
export const DEMO_DIMS: SyntheticV0Dims = {
  hidden: 256, layers: 4, heads: 4, intermediate: 704, vocab: 2048,
  clipHidden: 128, clipLayers: 4, clipHeads: 4, clipIntermediate: 512, imageSize: 224, patchSize: 14,
};

/** Real LLaMA-7B widths with fewer layers, and the full CLIP ViT-L/14 (for benchmarks). */
export const BENCH_DIMS: SyntheticV0Dims = {
  hidden: 4096, layers: 4, heads: 32, intermediate: 11008, vocab: 32000,
  clipHidden: 1024, clipLayers: 24, clipHeads: 16, clipIntermediate: 4096, imageSize: 224, patchSize: 14,
};


/** Values drawn per chunk before converting to F16: bounds the float32 scratch to 4 MB. */
const CHUNK = 1 << 20;

/**
 * A tensor whose values are drawn from `r` only when the writer reaches it (lazy `data`): the
 * checkpoint writers take tensors one at a time in list order, so the draws happen in the same
 * order as an eager list would make them (same seed, same bytes) while only one tensor's values
 * exist at a time — a 32-layer 7B-shaped checkpoint (13 GB per folder) is written in bounded memory.
 */
function tensor(r: () => number, name: string, shape: number[], scale: number, center = 0): TensorData {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = (): Buffer => {
    const out = Buffer.allocUnsafe(n * 2);
    const v = new Float32Array(Math.min(n, CHUNK));
    for (let at = 0; at < n; at += CHUNK) {
      const m = Math.min(CHUNK, n - at);
      const w = m === v.length ? v : v.subarray(0, m);
      for (let i = 0; i < m; i++) w[i] = center + scale * (2 * r() - 1);
      f32ToF16Buffer(w).copy(out, at * 2);
    }
    return out;
  };
  return { name, dtype: 'F16', shape, data };
}

/** LLaMA-style pieces: <unk> <s> </s>, 256 byte-fallback pieces, words, then fillers up to `size`. */
function pieces(size: number): { piece: string; score: number; type: number }[] {
  const out = [
    { piece: '<unk>', score: 0, type: 2 },
    { piece: '<s>', score: 0, type: 3 },
    { piece: '</s>', score: 0, type: 3 },
  ];
  for (let b = 0; b < 256; b++) out.push({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, score: 0, type: 6 });
  const words = ('▁ ▁the ▁a ▁is ▁of ▁in ▁and ▁to ▁image ▁chest ▁x - ray ▁yes ▁no ▁what ▁there ▁this ▁left ▁right ▁lung ▁heart ' +
    '▁CT ▁MRI ▁normal ▁abnormal ▁Human ▁Assistant Human Assistant : ### ▁### ▁A ▁chat ▁between ▁curious ▁human ▁an ▁artificial ' +
    '▁intelligence ▁assistant . , ? ! ▁Hi ▁How ▁can ▁I ▁help ▁you ▁today ▁The ▁gives ▁helpful ▁detailed ▁polite ▁answers ' +
    "▁questions ' s ▁shown ▁seen ▁finding ▁opacity ▁effusion ▁fracture ▁mass ▁organ ▁[ INST ] ▁[/").split(' ');
  const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'.split('');
  const seen = new Set(out.map((p) => p.piece));
  let score = -1;
  for (const w of [...words, ...letters.map((c) => `▁${c}`), ...letters]) {
    if (seen.has(w) || out.length >= size) continue;
    seen.add(w);
    out.push({ piece: w, score, type: 1 });
    score -= 0.01;
  }
  for (let i = 0; out.length < size; i++) {
    out.push({ piece: `▁w${i}`, score: score - i * 1e-4, type: 1 });
  }
  return out;
}

async function json(path: string, v: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(v, null, 2)}\n`);
}

/** The three Hugging Face folders {@link writeSyntheticV0} wrote, ready for `convertV0` / `foldDelta`. */
export interface SyntheticV0Paths {
  /** Original-LLaMA base checkpoint folder. */
  base: string;
  /** LLaVA-Med v0 delta folder. */
  delta: string;
  /** CLIP vision tower folder. */
  vision: string;
}

/**
 * Writes base/, delta/ and vision/ under `dir` (each checkpoint in `shards` safetensors files, default 1),
 * with random weights from `seed` (default 1234: the same seed writes the same bytes).
 * Rejects with the file system's error when `dir` cannot be written.
 */
export async function writeSyntheticV0(dir: string, dims: SyntheticV0Dims, opts: { seed?: number; shards?: number } = {}): Promise<SyntheticV0Paths> {
  const seed = opts.seed ?? 1234;
  const shards = opts.shards ?? 1;
  const p = { base: join(dir, 'base'), delta: join(dir, 'delta'), vision: join(dir, 'vision') };
  for (const d of Object.values(p)) await mkdir(d, { recursive: true });
  const H = dims.hidden;
  const vocabPieces = pieces(dims.vocab);
  const spm = {
    pieces: vocabPieces,
    trainerSpec: { modelType: 'bpe' as const, vocabSize: vocabPieces.length, unkId: 0, bosId: 1, eosId: 2, padId: -1, byteFallback: true },
    normalizerSpec: { name: 'identity', addDummyPrefix: true, removeExtraWhitespaces: false, escapeWhitespaces: true },
  };
  const llm = (r: () => number, rows: number, scale: number, normCenter: number): TensorData[] => {
    const s = scale / Math.sqrt(H);
    const out = [tensor(r, 'model.embed_tokens.weight', [rows, H], scale)];
    for (let i = 0; i < dims.layers; i++) {
      const q = `model.layers.${i}.`;
      out.push(
        tensor(r, `${q}self_attn.q_proj.weight`, [H, H], s),
        tensor(r, `${q}self_attn.k_proj.weight`, [H, H], s),
        tensor(r, `${q}self_attn.v_proj.weight`, [H, H], s),
        tensor(r, `${q}self_attn.o_proj.weight`, [H, H], s),
        tensor(r, `${q}mlp.gate_proj.weight`, [dims.intermediate, H], s),
        tensor(r, `${q}mlp.up_proj.weight`, [dims.intermediate, H], s),
        tensor(r, `${q}mlp.down_proj.weight`, [H, dims.intermediate], scale / Math.sqrt(dims.intermediate)),
        tensor(r, `${q}input_layernorm.weight`, [H], 0.1 * scale, normCenter),
        tensor(r, `${q}post_attention_layernorm.weight`, [H], 0.1 * scale, normCenter),
      );
    }
    out.push(tensor(r, 'model.norm.weight', [H], 0.1 * scale, normCenter), tensor(r, 'lm_head.weight', [rows, H], s));
    return out;
  };
  const llamaConfig = {
    architectures: ['LlamaForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: H,
    initializer_range: 0.02, intermediate_size: dims.intermediate, max_position_embeddings: 2048, model_type: 'llama',
    num_attention_heads: dims.heads, num_hidden_layers: dims.layers, pad_token_id: 0, rms_norm_eps: 1e-6,
    tie_word_embeddings: false, torch_dtype: 'float16', transformers_version: '4.28.0.dev0', use_cache: true, vocab_size: dims.vocab,
  };

  // base: original LLaMA in HF format
  await writeSentencePieceModel(join(p.base, 'tokenizer.model'), spm);
  await json(join(p.base, 'config.json'), llamaConfig);
  await json(join(p.base, 'special_tokens_map.json'), {});
  await json(join(p.base, 'tokenizer_config.json'), { bos_token: '', eos_token: '', model_max_length: 1e30, tokenizer_class: 'LlamaTokenizer', unk_token: '' });
  await writeHfCheckpoint(p.base, llm(rng(seed), dims.vocab, 1, 1), { format: 'safetensors', shards });

  // delta: differences on the base block, absolute rows for the 4 added tokens, absolute projector
  const rd = rng(seed ^ 0x9e3779b9);
  const delta = llm(rd, dims.vocab + 4, 0.1, 0);
  delta.push(
    tensor(rd, 'model.mm_projector.weight', [H, dims.clipHidden], 1 / Math.sqrt(dims.clipHidden)),
    tensor(rd, 'model.mm_projector.bias', [H], 0.05),
  );
  await writeSentencePieceModel(join(p.delta, 'tokenizer.model'), spm);
  await json(join(p.delta, 'config.json'), {
    ...llamaConfig,
    _name_or_path: 'synthetic/llava_med_in_text_60k',
    architectures: ['LlavaLlamaForCausalLM'], model_type: 'llava', bos_token_id: 0, eos_token_id: 1, pad_token_id: -1,
    max_sequence_length: 2048, max_position_embeddings: undefined, mm_hidden_size: dims.clipHidden, mm_use_im_start_end: true,
    mm_vision_select_layer: -2, mm_vision_tower: 'openai/clip-vit-large-patch14', tune_mm_mlp_adapter: false, use_mm_proj: true,
    vocab_size: dims.vocab + 4,
  });
  const v = dims.vocab;
  await json(join(p.delta, 'added_tokens.json'), { '[PAD]': v, '<im_patch>': v + 1, '<im_start>': v + 2, '<im_end>': v + 3 });
  await json(join(p.delta, 'special_tokens_map.json'), { bos_token: '</s>', eos_token: '</s>', pad_token: '[PAD]', unk_token: '<unk>' });
  await json(join(p.delta, 'tokenizer_config.json'), { bos_token: '<s>', eos_token: '</s>', model_max_length: 2048, pad_token: null, padding_side: 'right', tokenizer_class: 'LlamaTokenizer', unk_token: '<unk>' });
  await writeHfCheckpoint(p.delta, delta, { format: 'safetensors', shards });

  // vision: CLIPModel folder (vision tower only; the converter reads nothing else)
  const rv = rng(seed + 1);
  const C = dims.clipHidden;
  const np = (dims.imageSize / dims.patchSize) ** 2 + 1;
  const sc = 1 / Math.sqrt(C);
  const vt: TensorData[] = [
    tensor(rv, 'vision_model.embeddings.class_embedding', [C], 0.5),
    tensor(rv, 'vision_model.embeddings.patch_embedding.weight', [C, 3, dims.patchSize, dims.patchSize], 1 / Math.sqrt(3 * dims.patchSize ** 2)),
    tensor(rv, 'vision_model.embeddings.position_embedding.weight', [np, C], 0.5),
    tensor(rv, 'vision_model.pre_layrnorm.weight', [C], 0.1, 1),
    tensor(rv, 'vision_model.pre_layrnorm.bias', [C], 0.1),
  ];
  for (let i = 0; i < dims.clipLayers; i++) {
    const q = `vision_model.encoder.layers.${i}.`;
    for (const k of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) vt.push(tensor(rv, `${q}self_attn.${k}.weight`, [C, C], sc), tensor(rv, `${q}self_attn.${k}.bias`, [C], 0.05));
    vt.push(
      tensor(rv, `${q}layer_norm1.weight`, [C], 0.1, 1), tensor(rv, `${q}layer_norm1.bias`, [C], 0.1),
      tensor(rv, `${q}mlp.fc1.weight`, [dims.clipIntermediate, C], sc), tensor(rv, `${q}mlp.fc1.bias`, [dims.clipIntermediate], 0.05),
      tensor(rv, `${q}mlp.fc2.weight`, [C, dims.clipIntermediate], 1 / Math.sqrt(dims.clipIntermediate)), tensor(rv, `${q}mlp.fc2.bias`, [C], 0.05),
      tensor(rv, `${q}layer_norm2.weight`, [C], 0.1, 1), tensor(rv, `${q}layer_norm2.bias`, [C], 0.1),
    );
  }
  vt.push(tensor(rv, 'vision_model.post_layernorm.weight', [C], 0.1, 1), tensor(rv, 'vision_model.post_layernorm.bias', [C], 0.1));
  await writeHfCheckpoint(p.vision, vt, { format: 'safetensors', shards: 1 });
  await json(join(p.vision, 'config.json'), {
    _name_or_path: 'openai/clip-vit-large-patch14', architectures: ['CLIPModel'], model_type: 'clip', projection_dim: 768,
    text_config: { model_type: 'clip_text_model', hidden_size: 768, num_hidden_layers: 12, vocab_size: 49408 },
    vision_config: {
      model_type: 'clip_vision_model', hidden_size: C, intermediate_size: dims.clipIntermediate, num_attention_heads: dims.clipHeads,
      num_hidden_layers: dims.clipLayers, image_size: dims.imageSize, patch_size: dims.patchSize, layer_norm_eps: 1e-5,
      hidden_act: 'quick_gelu', projection_dim: 768, num_channels: 3,
    },
  });
  await json(join(p.vision, 'preprocessor_config.json'), {
    crop_size: dims.imageSize, do_center_crop: true, do_normalize: true, do_resize: true, feature_extractor_type: 'CLIPFeatureExtractor',
    image_mean: [0.48145466, 0.4578275, 0.40821073], image_std: [0.26862954, 0.26130258, 0.27577711], resample: 3, size: dims.imageSize,
  });
  return p;
}
