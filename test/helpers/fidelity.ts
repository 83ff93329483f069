/**
 * Shared pieces of the converter fidelity gate (test/convert/fidelity*.test.ts): a deterministic
 * image, the float64 reference run on the tiny HF checkpoints (test/helpers/tiny-hf.ts), simulations
 * of the two llama.cpp bugs the converter and our patch work around, a GGUF rewriter for probe
 * projectors, and the engine run (Model → Projector → Context) the reference is compared with.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Context, Model, Projector } from '../../lib/engine/index.js';
import { GgmlType, GgufWriter, readGgufHeader, readGgufTensorData, type GgufHeader } from '../../lib/formats/gguf.js';
import {
  argmax,
  geluTanh,
  buildV0Embeds,
  buildV15Embeds,
  clipVisionForward,
  createKvCache,
  embedTokens,
  llamaForward,
  normalizeRgb,
  project,
  type ClipVisionConfig,
  type LlamaConfig,
  type ProjectorType,
  type Weights,
} from '../reference/index.js';
import { f16ToF32, f32ToF16 } from '../../lib/formats/half.js';
import { rng } from './tiny-hf.js';

/** CPU threads for the engine (the test machines have 2 cores, shared). */
export const THREADS = 2;

// ---- image ------------------------------------------------------------------------------------

/**
 * A deterministic size×size RGB image (HWC bytes): smooth gradients and a disc, plus noise, so
 * every patch differs and uses the whole 0..255 range.
 */
export function testImage(size: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(size * size * 3);
  const c = (size - 1) / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const disc = (x - c * 0.7) ** 2 + (y - c * 1.2) ** 2 < (size / 4) ** 2 ? 90 : 0;
      const base = [(255 * x) / (size - 1), (255 * y) / (size - 1), 255 - (255 * (x + y)) / (2 * (size - 1))];
      for (let ch = 0; ch < 3; ch++) {
        const v = 0.6 * base[ch]! + disc + 60 * (r() - 0.5);
        out[(y * size + x) * 3 + ch] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return out;
}

/** image_mean / image_std of a CLIP folder's preprocessor_config.json. */
export async function clipMeanStd(visionDir: string): Promise<{ mean: number[]; std: number[] }> {
  const p = JSON.parse(await readFile(join(visionDir, 'preprocessor_config.json'), 'utf8')) as { image_mean: number[]; image_std: number[] };
  if (p.image_mean?.length !== 3 || p.image_std?.length !== 3) throw new Error(`${visionDir}: preprocessor_config.json has no 3-channel image_mean/image_std`);
  return { mean: p.image_mean, std: p.image_std };
}

// ---- reference --------------------------------------------------------------------------------

/**
 * How the vision features are taken:
 * - 'hf': LLaVA (hidden_states[-2], CLS first, CLS row dropped) — the truth;
 * - 'stock-cls-last': what the unpatched llama.cpp v0.4.0 llava graph computes (CLS concatenated
 *   after the patches: patch k gets position row k, CLS gets the last row, the output of patch 0 is
 *   dropped and the CLS output becomes the last image token);
 * - 'hidden-3': one encoder layer too few (hidden_states[-3]), the legacy converter's block_count
 *   without clip.vision.feature_layer.
 */
export type FeatureMode = 'hf' | 'stock-cls-last' | 'hidden-3';

/** The patch features (n_patches rows of the CLIP width) for one normalized image. */
export function referenceFeatures(vision: Weights, cfg: ClipVisionConfig, pixels: Float64Array, mode: FeatureMode = 'hf'): Float64Array[] {
  if (mode === 'hf') return clipVisionForward(vision, cfg, pixels).hiddenStates.at(-2)!.slice(1);
  if (mode === 'hidden-3') return clipVisionForward(vision, cfg, pixels).hiddenStates.at(-3)!.slice(1);
  // Attention without a mask is permutation-equivariant, so the stock sequence [p0..p(N-1), CLS]
  // with position rows [0..N] equals the HF order [CLS, p0..p(N-1)] with the position table
  // rearranged to [row N, row 0, ..., row N-1], read back in the stock order.
  const posName = 'vision_model.embeddings.position_embedding.weight';
  const pos = vision.get(posName)!;
  const D = cfg.hidden_size;
  const nPos = pos.shape[0]!;
  const moved = new Float64Array(pos.data.length);
  moved.set(pos.data.subarray((nPos - 1) * D, nPos * D), 0);
  moved.set(pos.data.subarray(0, (nPos - 1) * D), D);
  const w: Weights = new Map(vision);
  w.set(posName, { shape: pos.shape, data: moved });
  const hs = clipVisionForward(w, cfg, pixels).hiddenStates.at(-2)!; // [CLS, p0, ..., p(N-1)]
  // stock graph output rows 1..N of [p0, ..., p(N-1), CLS] = [p1, ..., p(N-1), CLS]
  return [...hs.slice(2), hs[0]!];
}

export interface PromptIds {
  /** Up to and including <im_start> (v0) / the ids before the image (v1.5), BOS first. */
  before: number[];
  /** From <im_end> (v0) / the ids after the image (v1.5). */
  after: number[];
}

export interface RefModel {
  version: 'v0' | 'v1.5';
  llm: Weights;
  llmCfg: LlamaConfig;
  /** Holds model.mm_projector.*. */
  projector: Weights;
  vision: Weights;
  clipCfg: ClipVisionConfig;
  /** v0: <im_start>/<im_end> of the tiny vocabulary. */
  imStart?: number;
  imEnd?: number;
}

export function projectorType(m: RefModel): ProjectorType {
  return m.version === 'v0' ? 'linear' : 'mlp2x_gelu';
}

/** The LLM's input embeddings for the prompt with `imageEmbeds` (n_patches rows of the LLM width) spliced in. */
export function promptEmbeds(m: RefModel, ids: PromptIds, imageEmbeds: ArrayLike<number>[]): Float64Array[] {
  const feats = imageEmbeds.map((r) => Float64Array.from(r));
  return m.version === 'v0'
    ? buildV0Embeds(m.llm, m.llmCfg, ids.before, feats, ids.after, { imStartId: m.imStart, imEndId: m.imEnd })
    : buildV15Embeds(m.llm, m.llmCfg, ids.before, feats, ids.after);
}

/** Next-token logits after the prompt. */
export function refLogits(m: RefModel, ids: PromptIds, imageEmbeds: ArrayLike<number>[]): Float64Array {
  return llamaForward(m.llm, m.llmCfg, promptEmbeds(m, ids, imageEmbeds), { lastOnly: true })[0]!;
}

export interface RefGreedy {
  ids: number[];
  /** top-1 minus top-2 logit at each step of the reference path. */
  margins: number[];
  /** The logits each token was chosen from. */
  logits: Float64Array[];
}

/** Greedy continuation (argmax, KV cache) that also reports the top-2 margin at every step. */
export function refGreedy(m: RefModel, embeds: Float64Array[], n: number): RefGreedy {
  const cache = createKvCache(m.llmCfg);
  const out: RefGreedy = { ids: [], margins: [], logits: [] };
  let logits = llamaForward(m.llm, m.llmCfg, embeds, { cache, lastOnly: true })[0]!;
  for (;;) {
    const id = argmax(logits);
    let second = -Infinity;
    for (let i = 0; i < logits.length; i++) if (i !== id && logits[i]! > second) second = logits[i]!;
    out.ids.push(id);
    out.margins.push(logits[id]! - second);
    out.logits.push(logits);
    if (out.ids.length >= n) return out;
    logits = llamaForward(m.llm, m.llmCfg, embedTokens(m.llm, [id]), { cache, lastOnly: true })[0]!;
  }
}

/** Full reference for one image + prompt. */
export function runReference(m: RefModel, pixels: Float64Array, ids: PromptIds, mode: FeatureMode = 'hf'): { features: Float64Array[]; embeds: Float64Array[]; logits: Float64Array } {
  const features = referenceFeatures(m.vision, m.clipCfg, pixels, mode);
  const embeds = project(m.projector, features, projectorType(m));
  return { features, embeds, logits: refLogits(m, ids, embeds) };
}

export function normalizedPixels(rgb: Uint8Array, size: number, ms: { mean: number[]; std: number[] }): Float64Array {
  return normalizeRgb(rgb, size, size, ms.mean, ms.std);
}

// ---- GGUF probes ------------------------------------------------------------------------------

export interface TensorReplacement {
  type: GgmlType.F32;
  /** ggml order (ne[0] fastest). */
  ne: number[];
  data: Float32Array;
}

/** Copies a GGUF (every key, every tensor) replacing some tensors' types and data. */
export async function rewriteGguf(src: string, dst: string, replace: Map<string, TensorReplacement>): Promise<GgufHeader> {
  const h = await readGgufHeader(src);
  const w = await GgufWriter.create(dst);
  for (const [key, kv] of h.kv) w.addKv(key, kv.type, kv.value, kv.elemType);
  for (const t of h.tensors) {
    const r = replace.get(t.name);
    w.addTensorInfo(t.name, r ? r.type : t.type, r ? r.ne : t.shape);
  }
  for (const name of replace.keys()) if (!h.tensors.some((t) => t.name === name)) throw new Error(`rewriteGguf: ${src} has no tensor ${name}`);
  await w.writeHeader();
  for (const t of h.tensors) {
    const r = replace.get(t.name);
    await w.writeTensor(t.name, r ? new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength) : await readGgufTensorData(h, t.name));
  }
  await w.finish();
  return h;
}

/**
 * An mmproj whose projector passes the CLIP features through: mm.0 = [s·I; −s·I], mm.2 = [I/s | −I/s]
 * padded with zero rows to the LLM width, zero biases, all F32. With s = 1024 nearly every GELU input
 * is beyond ±10, where ggml's CPU GELU is exact (x resp. 0) instead of the fp16 lookup table, so the
 * embedding rows are the engine's CLIP features [x; 0] to ~1e-6: the vision tower's own error.
 */
export const PROBE_SCALE = 1024;

export async function writeClipProbe(mmproj: string, out: string): Promise<void> {
  const h = await readGgufHeader(mmproj);
  const mm0 = h.tensors.find((t) => t.name === 'mm.0.weight')!;
  const mm2 = h.tensors.find((t) => t.name === 'mm.2.weight')!;
  const [d, mid] = mm0.shape as [number, number]; // ne: [clip width, mid]
  const [mid2, outW] = mm2.shape as [number, number];
  if (mid !== 2 * d || mid2 !== mid || outW < d) throw new Error(`writeClipProbe: unexpected projector ne mm.0 [${mm0.shape}] mm.2 [${mm2.shape}]`);
  // ggml ne [in, out] = PyTorch [out, in]: element (row o, col i) at o*in + i.
  const w0 = new Float32Array(mid * d);
  for (let i = 0; i < d; i++) {
    w0[i * d + i] = PROBE_SCALE;
    w0[(d + i) * d + i] = -PROBE_SCALE;
  }
  const w2 = new Float32Array(outW * mid);
  for (let o = 0; o < d; o++) {
    w2[o * mid + o] = 1 / PROBE_SCALE;
    w2[o * mid + d + o] = -1 / PROBE_SCALE;
  }
  await rewriteGguf(
    mmproj,
    out,
    new Map<string, TensorReplacement>([
      ['mm.0.weight', { type: GgmlType.F32, ne: [d, mid], data: w0 }],
      ['mm.0.bias', { type: GgmlType.F32, ne: [mid], data: new Float32Array(mid) }],
      ['mm.2.weight', { type: GgmlType.F32, ne: [mid, outW], data: w2 }],
      ['mm.2.bias', { type: GgmlType.F32, ne: [outW], data: new Float32Array(outW) }],
    ]),
  );
}

// ---- engine -----------------------------------------------------------------------------------

/** Rows of a row-major [n][width] Float32Array. */
export function rowsOf(flat: Float32Array, width: number): Float32Array[] {
  if (flat.length % width !== 0) throw new Error(`rowsOf: ${flat.length} values are not rows of ${width}`);
  return Array.from({ length: flat.length / width }, (_, i) => flat.subarray(i * width, (i + 1) * width));
}

export interface EngineRun {
  /** Projected image embeddings, rows of the LLM width. */
  embeds: Float32Array[];
  /** Next-token logits after before + image + after. */
  logits: Float32Array;
  /** Greedy (temperature 0) continuation, when asked for. */
  greedy: number[];
  /** The logits each greedy token was sampled from (greedy[i] from greedyLogits[i]). */
  greedyLogits: Float32Array[];
  nVocab: number;
}

export interface EngineOptions {
  model: string;
  mmproj: string;
  rgb: Uint8Array;
  size: number;
  ids: PromptIds;
  greedy?: number;
  kvCacheType?: 'f32' | 'f16';
  /**
   * Default 'off': with flash attention llama.cpp casts an F32 KV cache to F16 before attending
   * (src/llama-graph.cpp build_attn_mha), so only 'off' gives F32 attention.
   */
  /** 'default' leaves it to Context.create (which turns it off for an F32 KV cache). */
  flashAttn?: 'auto' | 'on' | 'off' | 'default';
}

/** Encode the image, decode before / image / after, read the logits and (optionally) decode greedily. */
export async function runEngine(o: EngineOptions): Promise<EngineRun> {
  const model = await Model.load(o.model, { loadMode: 'none' });
  try {
    const proj = await Projector.load(model, o.mmproj, { threads: THREADS });
    const ctx = await Context.create(model, { contextSize: 256, batchSize: 256, kvCacheType: o.kvCacheType ?? 'f32', flashAttn: o.flashAttn === 'default' ? undefined : (o.flashAttn ?? 'off'), threads: THREADS });
    try {
      using emb = await proj.encode(o.rgb, o.size, o.size);
      const embeds = rowsOf(emb.toFloat32Array(), emb.nEmbd).map((r) => Float32Array.from(r));
      await ctx.decode(o.ids.before, { logits: 'none' });
      await ctx.decodeImage(emb);
      await ctx.decode(o.ids.after, { logits: 'last' });
      const logits = await ctx.logits(-1);
      const run: EngineRun = { embeds, logits, greedy: [], greedyLogits: [], nVocab: model.info.nVocab };
      if (o.greedy) {
        using s = ctx.createSampler({ temperature: 0 });
        let tok = (await ctx.sample(s)).token;
        run.greedy.push(tok);
        run.greedyLogits.push(logits);
        while (run.greedy.length < o.greedy) {
          const [r] = await ctx.step([{ seq: 0, token: tok, sampler: s }]);
          run.greedyLogits.push(await ctx.logits(-1));
          tok = r!.token;
          run.greedy.push(tok);
        }
      }
      return run;
    } finally {
      await ctx.dispose();
      await proj.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** Top-1 minus top-2 of a logit vector. */
export function margin(logits: ArrayLike<number>): number {
  let a = -Infinity;
  let b = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > a) {
      b = a;
      a = v;
    } else if (v > b) b = v;
  }
  return a - b;
}

/** float → fp16 → float, the way ggml converts an f32 value (round to nearest even). */
export function toF16(x: number): number {
  return f16ToF32(f32ToF16(Math.fround(x)));
}

/**
 * ggml's CPU GELU (ggml_vec_gelu_f32 with GGML_GELU_FP16): 0 below −10, x above 10, otherwise the
 * tanh approximation read from an fp16 table at fp16(x) (the table holds fp16 values).
 */
export function ggmlGelu(x: number): number {
  const xf = Math.fround(x);
  if (xf <= -10) return 0;
  if (xf >= 10) return xf;
  return toF16(geluTanh(toF16(xf)));
}

export const fmt = (x: number): string => x.toExponential(2);
