// LlamaForCausalLM / MistralForCausalLM forward as in transformers' modeling_llama.py and
// modeling_mistral.py (4.28–4.36), float64, batch of one, HF tensor names and layouts.
// q/k are NOT permuted (HF checkpoints use the rotate_half RoPE convention; the
// interleaved permutation is a llama.cpp conversion detail that must not leak in here).

import { activation, argmax, getTensor, linear, rmsNorm, softmax, type Tensor, type Weights } from './tensor-ops.js';

/** The LlamaConfig / MistralConfig fields the forward needs (HF names). */
export interface LlamaConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  /** GQA: number of K/V heads. Default num_attention_heads (plain MHA, LLaMA-1). */
  num_key_value_heads?: number;
  /** Default 1e-6 (LlamaConfig default; Mistral v0.2 checkpoints say 1e-5). */
  rms_norm_eps?: number;
  /** Default 10000; Mistral-7B-Instruct-v0.2 uses 1e6. */
  rope_theta?: number;
  /** Default 'silu'. */
  hidden_act?: string;
  /** Mistral; null/undefined = full causal attention. Longer sequences are refused (not modelled). */
  sliding_window?: number | null;
}

/** Keys (after RoPE) and values of every position seen so far, per layer. */
export interface KvCache {
  keys: Float64Array[][];
  values: Float64Array[][];
  /** Number of positions already in the cache. */
  length: number;
}

export interface LlamaForwardOptions {
  /** Only compute logits for the last position (skips the lm_head for the rest). */
  lastOnly?: boolean;
  /** Continue from (and extend) this cache; positions continue at cache.length. */
  cache?: KvCache;
  /** Added to every position id. Only relative positions should matter; tests use this to prove it. */
  positionOffset?: number;
  /**
   * Round inv_freq, angles and cos/sin to float32 the way HF's rotary cache is built
   * (it is computed in float32 even for a float64 model). Default false: exact float64.
   */
  ropeFloat32?: boolean;
  /** Tensor name prefix of the decoder. Default 'model.'. */
  prefix?: string;
}

export function createKvCache(cfg: LlamaConfig): KvCache {
  return {
    keys: Array.from({ length: cfg.num_hidden_layers }, () => []),
    values: Array.from({ length: cfg.num_hidden_layers }, () => []),
    length: 0,
  };
}

/** model.embed_tokens rows for the ids (copies, so callers may mutate them). */
export function embedTokens(weights: Weights, ids: readonly number[], prefix = 'model.'): Float64Array[] {
  const emb = getTensor(weights, `${prefix}embed_tokens.weight`);
  const [vocab, D] = emb.shape as [number, number];
  return ids.map((id) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new Error(`reference: token id ${id} outside vocab ${vocab}`);
    return emb.data.slice(id * D, (id + 1) * D);
  });
}

/** HF LlamaRotaryEmbedding: cos/sin of pos·inv_freq, each duplicated as [freqs, freqs] → length headDim. */
export function ropeCosSin(
  pos: number,
  headDim: number,
  theta: number,
  float32 = false,
): { cos: Float64Array; sin: Float64Array } {
  const half = headDim / 2;
  const r = float32 ? Math.fround : (v: number) => v;
  const cos = new Float64Array(headDim);
  const sin = new Float64Array(headDim);
  for (let i = 0; i < half; i++) {
    // inv_freq = 1 / theta^(arange(0, dim, 2) / dim)
    const invFreq = r(1 / r(Math.pow(theta, r((2 * i) / headDim))));
    const angle = r(pos * invFreq);
    cos[i] = cos[i + half] = r(Math.cos(angle));
    sin[i] = sin[i + half] = r(Math.sin(angle));
  }
  return { cos, sin };
}

/**
 * x·cos + rotate_half(x)·sin on one head slice x[off .. off+headDim), in place,
 * with rotate_half(x) = cat(−x[half:], x[:half]).
 */
export function applyRotary(x: Float64Array, off: number, cos: Float64Array, sin: Float64Array): void {
  const half = cos.length / 2;
  for (let i = 0; i < half; i++) {
    const a = x[off + i]!;
    const b = x[off + i + half]!;
    x[off + i] = a * cos[i]! - b * sin[i]!;
    x[off + i + half] = b * cos[i + half]! + a * sin[i + half]!;
  }
}

/** Optional tensor (q/k/v/o biases exist only with attention_bias). */
function maybe(weights: Weights, name: string): Tensor | undefined {
  return weights.has(name) ? getTensor(weights, name) : undefined;
}

/**
 * Run the decoder on inputs_embeds (one row per new position) and return the logits
 * (all new positions, or only the last with lastOnly). With a cache, attention also
 * covers the cached positions and the cache is extended.
 */
export function llamaForward(
  weights: Weights,
  cfg: LlamaConfig,
  inputsEmbeds: Float64Array[],
  opts: LlamaForwardOptions = {},
): Float64Array[] {
  const hidden = llamaHidden(weights, cfg, inputsEmbeds, opts);
  const lmHead = weights.has('lm_head.weight')
    ? getTensor(weights, 'lm_head.weight')
    : // Tied embeddings: the checkpoint stores only embed_tokens.
      getTensor(weights, `${opts.prefix ?? 'model.'}embed_tokens.weight`);
  const rows = opts.lastOnly ? hidden.slice(-1) : hidden;
  return rows.map((h) => linear(h, lmHead));
}

/** Decoder output after the final norm (the lm_head input), one row per new position. */
export function llamaHidden(
  weights: Weights,
  cfg: LlamaConfig,
  inputsEmbeds: Float64Array[],
  opts: LlamaForwardOptions = {},
): Float64Array[] {
  const p = opts.prefix ?? 'model.';
  const D = cfg.hidden_size;
  const nH = cfg.num_attention_heads;
  const nKV = cfg.num_key_value_heads ?? nH;
  const hd = D / nH;
  if (!Number.isInteger(hd) || hd % 2 !== 0) throw new Error(`reference: bad head_dim ${hd}`);
  if (nH % nKV !== 0) throw new Error(`reference: ${nH} heads not a multiple of ${nKV} kv heads`);
  const groupSize = nH / nKV;
  const eps = cfg.rms_norm_eps ?? 1e-6;
  const theta = cfg.rope_theta ?? 10000;
  const act = activation(cfg.hidden_act ?? 'silu');
  const cache = opts.cache ?? createKvCache(cfg);
  const past = cache.length;
  const n = inputsEmbeds.length;
  const total = past + n;
  if (cfg.sliding_window != null && total > cfg.sliding_window) {
    throw new Error(`reference: sequence ${total} exceeds sliding_window ${cfg.sliding_window} (not modelled)`);
  }
  for (const e of inputsEmbeds) if (e.length !== D) throw new Error(`reference: embedding length ${e.length} != ${D}`);

  const offset = opts.positionOffset ?? 0;
  const rope = Array.from({ length: n }, (_, i) => ropeCosSin(offset + past + i, hd, theta, opts.ropeFloat32));
  const scale = 1 / Math.sqrt(hd);

  let h: Float64Array[] = inputsEmbeds.map((e) => Float64Array.from(e));
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const lp = `${p}layers.${l}.`;
    const w = (name: string) => getTensor(weights, lp + name);
    const b = (name: string) => maybe(weights, lp + name);
    const keys = cache.keys[l]!;
    const values = cache.values[l]!;

    const normed = h.map((r) => rmsNorm(r, w('input_layernorm.weight'), eps));
    const qs = normed.map((x, i) => {
      const q = linear(x, w('self_attn.q_proj.weight'), b('self_attn.q_proj.bias'));
      for (let hh = 0; hh < nH; hh++) applyRotary(q, hh * hd, rope[i]!.cos, rope[i]!.sin);
      return q;
    });
    normed.forEach((x, i) => {
      const k = linear(x, w('self_attn.k_proj.weight'), b('self_attn.k_proj.bias'));
      for (let kh = 0; kh < nKV; kh++) applyRotary(k, kh * hd, rope[i]!.cos, rope[i]!.sin);
      keys.push(k);
      values.push(linear(x, w('self_attn.v_proj.weight'), b('self_attn.v_proj.bias')));
    });

    const oProj = w('self_attn.o_proj.weight');
    const oBias = b('self_attn.o_proj.bias');
    h = h.map((resid, i) => {
      const t = past + i; // causal: attend to cache positions 0..t
      const q = qs[i]!;
      const ctx = new Float64Array(D);
      const scores = new Float64Array(t + 1);
      for (let hh = 0; hh < nH; hh++) {
        // repeat_kv: query head hh reads kv head floor(hh / n_rep).
        const qo = hh * hd;
        const ko = Math.floor(hh / groupSize) * hd;
        for (let j = 0; j <= t; j++) {
          const k = keys[j]!;
          let s = 0;
          for (let d = 0; d < hd; d++) s += q[qo + d]! * k[ko + d]!;
          scores[j] = s * scale;
        }
        const pr = softmax(scores);
        for (let j = 0; j <= t; j++) {
          const v = values[j]!;
          const pj = pr[j]!;
          for (let d = 0; d < hd; d++) ctx[qo + d]! += pj * v[ko + d]!;
        }
      }
      const o = linear(ctx, oProj, oBias);
      for (let d = 0; d < D; d++) o[d]! += resid[d]!;
      return o;
    });

    const gate = w('mlp.gate_proj.weight');
    const up = w('mlp.up_proj.weight');
    const down = w('mlp.down_proj.weight');
    h = h.map((resid) => {
      const x = rmsNorm(resid, w('post_attention_layernorm.weight'), eps);
      const g = linear(x, gate);
      const u = linear(x, up);
      for (let k = 0; k < g.length; k++) g[k] = act(g[k]!) * u[k]!;
      const y = linear(g, down);
      for (let d = 0; d < D; d++) y[d]! += resid[d]!;
      return y;
    });
  }
  cache.length = total;
  const normW = getTensor(weights, `${p}norm.weight`);
  return h.map((r) => rmsNorm(r, normW, eps));
}

/**
 * Greedy decoding: the next n argmax token ids after the prefix, using a KV cache.
 * Stops early after emitting a token in stopIds (that token is included).
 */
export function greedyContinue(
  weights: Weights,
  cfg: LlamaConfig,
  prefixEmbeds: Float64Array[],
  n: number,
  stopIds: readonly number[] = [],
  opts: Pick<LlamaForwardOptions, 'ropeFloat32' | 'prefix'> = {},
): number[] {
  const cache = createKvCache(cfg);
  const out: number[] = [];
  let logits = llamaForward(weights, cfg, prefixEmbeds, { ...opts, cache, lastOnly: true })[0]!;
  while (out.length < n) {
    const id = argmax(logits);
    out.push(id);
    if (stopIds.includes(id) || out.length >= n) break;
    const emb = embedTokens(weights, [id], opts.prefix);
    logits = llamaForward(weights, cfg, emb, { ...opts, cache, lastOnly: true })[0]!;
  }
  return out;
}
