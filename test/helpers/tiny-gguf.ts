/**
 * Tiny GGUF fixtures for the engine tests, generated at test time (never committed):
 *
 * - makeTinyLlamaGguf: a LLaMA-architecture model with the REAL 32000-token SentencePiece
 *   vocabulary of deps/llama.cpp/models/ggml-vocab-llama-spm.gguf, plus (by default) LLaVA-Med's
 *   four added tokens [PAD] (32000, CONTROL), <im_patch>, <im_start>, <im_end> (32001-32003,
 *   USER_DEFINED). Mode 'random' has seeded random weights; mode 'chain' is built so that the
 *   greedy next token is known in advance (see buildChain); mode 'ties' makes every greedy
 *   choice a near-tie that float rounding decides (see makeTinyLlamaGguf).
 * - makeTinyMmproj: a CLIP mmproj in the LLaVA 'mlp' layout exactly as clip.cpp reads it
 *   (every key with the GGUF type clip.cpp asserts), 28 px / patch 14 = 4 image tokens, with
 *   options to make the output width wrong, give a key a wrong type, or leave things out.
 *
 * Files are cached in os.tmpdir() under a name keyed by the options and a hash of this source
 * file, so a changed generator never serves a stale fixture. GgufWriter writes a temporary file
 * and renames it, so concurrent test processes never see half-written files.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GgmlType, GgufValueType as V, GgufWriter, readGgufHeader, type GgufScalar } from '../../lib/formats/gguf.js';
import { f32ToF16Buffer } from '../../lib/formats/half.js';
export { rng } from '../../lib/demo/rng.js';
import { rng } from '../../lib/demo/rng.js';

export const SPM_VOCAB_PATH = fileURLToPath(new URL('../../deps/llama.cpp/models/ggml-vocab-llama-spm.gguf', import.meta.url));

/** LLaVA-Med v0's added tokens, in id order after the 32000 base tokens. */
export const ADDED_TOKENS = [
  { text: '[PAD]', type: 3 /* CONTROL */ },
  { text: '<im_patch>', type: 4 /* USER_DEFINED */ },
  { text: '<im_start>', type: 4 },
  { text: '<im_end>', type: 4 },
] as const;
export const PAD_ID = 32000;
export const IM_PATCH_ID = 32001;
export const IM_START_ID = 32002;
export const IM_END_ID = 32003;


function gaussian(r: () => number): () => number {
  return () => {
    const u = Math.max(r(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  };
}

function uniform(r: () => number, n: number, amp: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * amp;
  return a;
}

const SOURCE_HASH = createHash('sha256')
  .update(readFileSync(fileURLToPath(import.meta.url)))
  .digest('hex')
  .slice(0, 12);

const CACHE_DIR = join(tmpdir(), 'llava-med-tiny-gguf');

let pruned = false;

/** Removes fixtures an older version of this generator wrote (an hour old or more). */
function pruneCache(): void {
  if (pruned) return;
  pruned = true;
  for (const f of readdirSync(CACHE_DIR)) {
    if (f.includes(SOURCE_HASH)) continue;
    const p = join(CACHE_DIR, f);
    try {
      if (Date.now() - statSync(p).mtimeMs > 3600_000) unlinkSync(p);
    } catch {
      // another process removed it
    }
  }
}

function cachePath(kind: string, opts: object): string {
  mkdirSync(CACHE_DIR, { recursive: true });
  pruneCache();
  const key = createHash('sha256').update(JSON.stringify([kind, opts])).digest('hex').slice(0, 16);
  return join(CACHE_DIR, `${kind}-${SOURCE_HASH}-${key}.gguf`);
}

// ---- vocabulary ------------------------------------------------------------------------------

export interface Vocab {
  tokens: string[];
  scores: number[];
  types: number[];
}

let vocabCache: Promise<Vocab> | undefined;

/** The real LLaMA SentencePiece vocabulary (32000 tokens) from the vendored llama.cpp. */
export function readSpmVocab(): Promise<Vocab> {
  vocabCache ??= readGgufHeader(SPM_VOCAB_PATH).then((h) => ({
    tokens: h.kv.get('tokenizer.ggml.tokens')!.value as string[],
    scores: h.kv.get('tokenizer.ggml.scores')!.value as number[],
    types: h.kv.get('tokenizer.ggml.token_type')!.value as number[],
  }));
  return vocabCache;
}

// ---- LLaMA model -----------------------------------------------------------------------------

export interface TinyLlamaOptions {
  /**
   * 'random': seeded random weights. 'chain': the greedy continuation follows `chain` (default).
   * 'ties': random blocks, and the greedy choice is always among `tiedTokens`, whose logits are
   * equal up to float rounding (so a change in the last bits of the hidden state can flip it).
   */
  mode?: 'random' | 'chain' | 'ties';
  seed?: number;
  nEmbd?: number;
  nLayer?: number;
  nHead?: number;
  nFf?: number;
  contextLength?: number;
  /** 2-D weights as F16 (norms stay F32, as llama.cpp's converter does). Default false (F32). */
  f16?: boolean;
  /**
   * Random mode only: the blocks' 2-D weights (blk.*) as Q4_0, random quants under a fixed scale
   * (the ggml CPU backend repacks them into its CPU_REPACK buffer, q4_0_8x8 with AVX2). Default false.
   */
  q4_0?: boolean;
  /** Append LLaVA-Med's 4 added tokens (n_vocab 32004). Default true. */
  addedTokens?: boolean;
  /** `llava_med.variant`; null leaves the key out. Default 'v0'. */
  variant?: string | null;
  /** Number of ordinary tokens in the chain cycle (chain mode). Default 50. */
  chainLength?: number;
  /** chain mode: the cycle passes through EOS (id 2) after its last ordinary token. Default false. */
  eosInChain?: boolean;
  /** Leave these tensors out (the TS header check passes; llama.cpp's loader refuses the file). */
  omitTensors?: string[];
}

export interface TinyLlama {
  path: string;
  nVocab: number;
  nEmbd: number;
  nLayer: number;
  contextLength: number;
  /** chain mode: token i → the greedy next token after any prompt ending in i. Empty in random mode. */
  chain: Map<number, number>;
  /** chain mode: the chain's tokens, in cycle order. */
  chainTokens: number[];
  /** ties mode: the tokens the greedy choice is always among. Empty otherwise. */
  tiedTokens: number[];
}

type ResolvedLlama = Required<Omit<TinyLlamaOptions, 'variant'>> & { variant: string | null };


function resolveLlama(o: TinyLlamaOptions): ResolvedLlama {
  return {
    mode: o.mode ?? 'chain',
    seed: o.seed ?? 1,
    nEmbd: o.nEmbd ?? 64,
    nLayer: o.nLayer ?? 2,
    nHead: o.nHead ?? 4,
    nFf: o.nFf ?? 128,
    contextLength: o.contextLength ?? 512,
    f16: o.f16 ?? false,
    q4_0: o.q4_0 ?? false,
    addedTokens: o.addedTokens ?? true,
    variant: o.variant === undefined ? 'v0' : o.variant,
    chainLength: o.chainLength ?? 50,
    eosInChain: o.eosInChain ?? false,
    omitTensors: o.omitTensors ?? [],
  };
}

/**
 * Picks `n` ordinary (NORMAL, type 1) token ids deterministically and links them into one cycle.
 * Ordinary pieces are chosen among ids 1000..29999 so no byte token or control token is used.
 */
function pickChain(vocab: Vocab, n: number, r: () => number): number[] {
  const pool: number[] = [];
  for (let id = 1000; id < 30000; id++) if (vocab.types[id] === 1) pool.push(id);
  const out: number[] = [];
  const used = new Set<number>();
  while (out.length < n) {
    const id = pool[Math.floor(r() * pool.length)]!;
    if (!used.has(id)) {
      used.add(id);
      out.push(id);
    }
  }
  return out;
}

/**
 * Orthonormal directions (Gram-Schmidt on random gaussians), scaled by sqrt(d) so each row has
 * RMS exactly 1: rms_norm leaves it unchanged, and distinct rows have dot product 0.
 */
function orthogonalRows(count: number, d: number, r: () => number): Float32Array[] {
  if (count > d) throw new Error(`cannot make ${count} orthogonal rows in ${d} dimensions`);
  const g = gaussian(r);
  const rows: Float64Array[] = [];
  while (rows.length < count) {
    const v = Float64Array.from({ length: d }, g);
    for (const u of rows) {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += v[k]! * u[k]!;
      for (let k = 0; k < d; k++) v[k]! -= dot * u[k]!;
    }
    let norm = 0;
    for (let k = 0; k < d; k++) norm += v[k]! * v[k]!;
    norm = Math.sqrt(norm);
    if (norm < 1e-6) continue;
    for (let k = 0; k < d; k++) v[k]! /= norm;
    rows.push(v);
  }
  const s = Math.sqrt(d);
  return rows.map((v) => Float32Array.from(v, (x) => x * s));
}

/** ties mode: how many tokens tie, the residual lane every embedding sets, and its output weight. */
const TIES = 32;
const TIE_LANE = 4;
const TIE_WEIGHT = 10;

/** Zeroes output row 0 of a [cols, rows] weight (row-major rows of `cols`): the block never writes lane 0. */
function laneZero(a: Float32Array, cols: number): () => Float32Array {
  a.fill(0, 0, cols);
  return () => a;
}

/**
 * Writes a tiny LLaMA GGUF to `path` (or to the per-options cache when `path` is undefined).
 *
 * Chain mode: attn_output and ffn_down are zero, so every block adds nothing to the residual
 * stream and the final hidden state is rms_norm(token_embd[last]) (norm weights are 1). The
 * chain tokens get orthogonal embedding rows e_i with RMS 1 (so rms_norm(e_i) = e_i), and
 * output row next(i) = SCALE · e_i. Then logit[next(i)] = SCALE · |e_i|² = SCALE · n_embd, the
 * other chain targets score exactly 0 (orthogonal rows), and every other output row has entries
 * of at most AMP, so it scores at most AMP · Σ|e_i| ≤ AMP · n_embd. With SCALE = 1 and
 * AMP = 0.02 the margin is 64 against at most 1.3: greedy decoding follows the chain whatever
 * came earlier in the prompt, F16 rounding included.
 *
 * Ties mode (use F32): blocks are random but never write residual lane 0, and every token
 * embedding sets that lane to TIE_LANE, so after the final rms_norm lane 0 is always large and
 * positive. The TIES tied tokens' output rows are TIE_WEIGHT on lane 0 and 1 ± 4e-7 (a few
 * float32 steps) elsewhere: their logits (~45) exceed every other token's (random rows of
 * ±0.1, at most ~3) and differ from each other by less than the rounding of the dot product
 * itself, so which tied token wins depends on the last bits of the hidden state — a different
 * summation order anywhere upstream (e.g. another KV layout) picks another token.
 */
export async function makeTinyLlamaGguf(path: string | undefined, options: TinyLlamaOptions = {}): Promise<TinyLlama> {
  const o = resolveLlama(options);
  const out = path ?? cachePath('llama', o);
  const vocab = await readSpmVocab();
  const tokens = [...vocab.tokens];
  const scores = [...vocab.scores];
  const types = [...vocab.types];
  if (o.addedTokens) {
    for (const t of ADDED_TOKENS) {
      tokens.push(t.text);
      scores.push(-1000);
      types.push(t.type);
    }
  }
  const nVocab = tokens.length;
  const d = o.nEmbd;
  const headDim = d / o.nHead;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new Error(`nEmbd ${d} must split into ${o.nHead} heads of even size`);
  const r = rng(o.seed);

  // Chain construction (needs the vocabulary, so it is rebuilt even when the file is cached).
  const chain = new Map<number, number>();
  let chainTokens: number[] = [];
  if (o.mode === 'chain') {
    chainTokens = pickChain(vocab, o.chainLength, rng(o.seed ^ 0x5eed));
    if (o.eosInChain) chainTokens.push(2);
    chainTokens.forEach((id, i) => chain.set(id, chainTokens[(i + 1) % chainTokens.length]!));
  }
  const tiedTokens = o.mode === 'ties' ? pickChain(vocab, TIES, rng(o.seed ^ 0x7135)) : [];
  const result: TinyLlama = { path: out, nVocab, nEmbd: d, nLayer: o.nLayer, contextLength: o.contextLength, chain, chainTokens, tiedTokens };
  if (path === undefined && existsSync(out)) return result;

  const wtype = o.f16 ? GgmlType.F16 : GgmlType.F32;
  const enc = (a: Float32Array): Uint8Array => (o.f16 ? f32ToF16Buffer(a) : new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  const tensors: { name: string; type: GgmlType; ne: number[]; data: () => Uint8Array }[] = [];
  if (o.q4_0 && o.mode !== 'random') throw new Error('q4_0 needs mode random');
  // Q4_0 block: f16 scale, 16 bytes of 4-bit quants (32 weights)
  const q4_0 = (n: number) => () => {
    const b = new Uint8Array((n / 32) * 18);
    for (let off = 0; off < b.length; off += 18) {
      b[off + 1] = 0x1c; // f16 0x1c00 = 2^-8
      for (let j = 2; j < 18; j++) b[off + j] = (r() * 256) | 0;
    }
    return b;
  };
  const mat = (name: string, ne: number[], make: () => Float32Array) =>
    o.q4_0 && name.startsWith('blk.')
      ? tensors.push({ name, type: GgmlType.Q4_0, ne, data: q4_0(ne[0]! * ne[1]!) })
      : tensors.push({ name, type: wtype, ne, data: () => enc(make()) });
  const vec = (name: string, n: number, make: () => Float32Array) => tensors.push({ name, type: GgmlType.F32, ne: [n], data: () => { const a = make(); return new Uint8Array(a.buffer, a.byteOffset, a.byteLength); } });
  const ones = (n: number) => () => new Float32Array(n).fill(1);
  const zeros = (n: number) => () => new Float32Array(n);
  const rand = (n: number, amp: number) => () => uniform(r, n, amp);

  const isChain = o.mode === 'chain';
  const isTies = o.mode === 'ties';
  // Embeddings: chain tokens get orthogonal RMS-1 rows; everything else small random rows.
  const embd = uniform(r, d * nVocab, isChain ? 0.02 : 1);
  const output = uniform(r, d * nVocab, isChain ? 0.02 : 0.1);
  if (isChain) {
    const rows = orthogonalRows(chainTokens.length, d, r);
    chainTokens.forEach((id, i) => {
      embd.set(rows[i]!, id * d);
      output.set(rows[i]!, chain.get(id)! * d); // SCALE = 1
    });
  }
  if (isTies) {
    for (let id = 0; id < nVocab; id++) embd[id * d] = TIE_LANE;
    for (const id of tiedTokens) {
      output[id * d] = TIE_WEIGHT;
      for (let j = 1; j < d; j++) output[id * d + j] = Math.fround(1 + (r() * 2 - 1) * 4e-7);
    }
  }
  mat('token_embd.weight', [d, nVocab], () => embd);
  vec('output_norm.weight', d, ones(d));
  mat('output.weight', [d, nVocab], () => output);
  const amp = 1 / Math.sqrt(d);
  for (let l = 0; l < o.nLayer; l++) {
    vec(`blk.${l}.attn_norm.weight`, d, ones(d));
    mat(`blk.${l}.attn_q.weight`, [d, d], rand(d * d, amp));
    mat(`blk.${l}.attn_k.weight`, [d, d], rand(d * d, amp));
    mat(`blk.${l}.attn_v.weight`, [d, d], rand(d * d, amp));
    mat(`blk.${l}.attn_output.weight`, [d, d], isChain ? zeros(d * d) : isTies ? laneZero(rand(d * d, amp)(), d) : rand(d * d, amp));
    vec(`blk.${l}.ffn_norm.weight`, d, ones(d));
    mat(`blk.${l}.ffn_gate.weight`, [d, o.nFf], rand(d * o.nFf, amp));
    mat(`blk.${l}.ffn_up.weight`, [d, o.nFf], rand(d * o.nFf, amp));
    mat(`blk.${l}.ffn_down.weight`, [o.nFf, d], isChain ? zeros(d * o.nFf) : isTies ? laneZero(rand(d * o.nFf, 1 / Math.sqrt(o.nFf))(), o.nFf) : rand(d * o.nFf, 1 / Math.sqrt(o.nFf)));
  }

  const w = await GgufWriter.create(out);
  w.addString('general.architecture', 'llama');
  w.addString('general.type', 'model');
  w.addString('general.name', `tiny-llama-${o.mode}`);
  w.addU32('general.file_type', o.q4_0 ? 2 : o.f16 ? 1 : 0);
  w.addU32('llama.vocab_size', nVocab);
  w.addU32('llama.context_length', o.contextLength);
  w.addU32('llama.embedding_length', d);
  w.addU32('llama.block_count', o.nLayer);
  w.addU32('llama.feed_forward_length', o.nFf);
  w.addU32('llama.attention.head_count', o.nHead);
  w.addU32('llama.attention.head_count_kv', o.nHead);
  w.addU32('llama.rope.dimension_count', headDim);
  w.addF32('llama.attention.layer_norm_rms_epsilon', 1e-6);
  w.addString('tokenizer.ggml.model', 'llama');
  w.addString('tokenizer.ggml.pre', 'default');
  w.addArray('tokenizer.ggml.tokens', V.STRING, tokens);
  w.addArray('tokenizer.ggml.scores', V.FLOAT32, scores);
  w.addArray('tokenizer.ggml.token_type', V.INT32, types);
  w.addU32('tokenizer.ggml.bos_token_id', 1);
  w.addU32('tokenizer.ggml.eos_token_id', 2);
  w.addU32('tokenizer.ggml.unknown_token_id', 0);
  if (o.addedTokens) w.addU32('tokenizer.ggml.padding_token_id', PAD_ID);
  w.addBool('tokenizer.ggml.add_bos_token', true);
  w.addBool('tokenizer.ggml.add_eos_token', false);
  if (o.variant !== null) w.addString('llava_med.variant', o.variant);
  const kept = tensors.filter((t) => !o.omitTensors.includes(t.name));
  for (const t of kept) w.addTensorInfo(t.name, t.type, t.ne);
  await w.writeHeader();
  for (const t of kept) await w.writeTensor(t.name, t.data());
  await w.finish();
  return result;
}

// ---- CLIP mmproj -----------------------------------------------------------------------------

export interface TinyMmprojOptions {
  seed?: number;
  /** Output width of mm.2 (must equal the LLM's n_embd to pair). Default 64. */
  outWidth?: number;
  imageSize?: number;
  patchSize?: number;
  nEmbd?: number;
  nLayer?: number;
  nHead?: number;
  nFf?: number;
  /** Hidden width between mm.0 and mm.2. Default 64. */
  projHidden?: number;
  /** `llava_med.variant`; null leaves the key out. Default 'v0'. */
  variant?: string | null;
  /** Write these keys with another GGUF type (e.g. clip.vision.image_size as INT32). */
  keyTypes?: Record<string, V>;
  /** Leave these keys out. */
  omitKeys?: string[];
  /** Leave these tensors out. */
  omitTensors?: string[];
}

export interface TinyMmproj {
  path: string;
  imageSize: number;
  patchSize: number;
  /** Image tokens one image becomes: (imageSize / patchSize)². */
  nImageTokens: number;
  outWidth: number;
}

export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

function clipKvs(o: Required<Omit<TinyMmprojOptions, 'keyTypes' | 'omitKeys' | 'omitTensors' | 'variant'>> & { variant: string | null }) {
  // [key, type, value] exactly as clip.cpp reads them (notes §2.1 / §2.6).
  const kvs: [string, V, GgufScalar | GgufScalar[], V?][] = [
    ['general.architecture', V.STRING, 'clip'],
    ['general.type', V.STRING, 'mmproj'],
    ['general.name', V.STRING, 'tiny-clip'],
    ['general.file_type', V.UINT32, 1],
    ['clip.has_vision_encoder', V.BOOL, true],
    ['clip.projector_type', V.STRING, 'mlp'],
    ['clip.use_gelu', V.BOOL, false],
    ['clip.vision.image_size', V.UINT32, o.imageSize],
    ['clip.vision.patch_size', V.UINT32, o.patchSize],
    ['clip.vision.embedding_length', V.UINT32, o.nEmbd],
    ['clip.vision.feed_forward_length', V.UINT32, o.nFf],
    ['clip.vision.projection_dim', V.UINT32, o.outWidth],
    ['clip.vision.attention.head_count', V.UINT32, o.nHead],
    ['clip.vision.attention.layer_norm_epsilon', V.FLOAT32, 1e-5],
    ['clip.vision.block_count', V.UINT32, o.nLayer],
    ['clip.vision.feature_layer', V.ARRAY, [o.nLayer], V.INT32],
    ['clip.vision.image_mean', V.ARRAY, CLIP_MEAN, V.FLOAT32],
    ['clip.vision.image_std', V.ARRAY, CLIP_STD, V.FLOAT32],
  ];
  if (o.variant !== null) kvs.push(['llava_med.variant', V.STRING, o.variant]);
  return kvs;
}

/** Converts a value to what a key written with another type needs (numbers ↔ strings ↔ bools). */
function coerce(v: GgufScalar | GgufScalar[], to: V): GgufScalar | GgufScalar[] {
  if (Array.isArray(v)) return v.map((x) => coerce(x, to) as GgufScalar);
  switch (to) {
    case V.STRING:
      return String(v);
    case V.BOOL:
      return Boolean(v);
    case V.FLOAT32:
    case V.FLOAT64:
      return Number(v);
    case V.UINT64:
    case V.INT64:
      return BigInt(coerce(v, V.INT32) as number);
    default: {
      const x = typeof v === 'boolean' ? (v ? 1 : 0) : Math.trunc(Number(v));
      return Number.isFinite(x) ? x : 1; // a string written as a number: any value will do
    }
  }
}

/** Writes a tiny CLIP mmproj (LLaVA 'mlp' layout) to `path`, or to the cache when undefined. */
export async function makeTinyMmproj(path: string | undefined, options: TinyMmprojOptions = {}): Promise<TinyMmproj> {
  const o = {
    seed: options.seed ?? 7,
    outWidth: options.outWidth ?? 64,
    imageSize: options.imageSize ?? 28,
    patchSize: options.patchSize ?? 14,
    nEmbd: options.nEmbd ?? 32,
    nLayer: options.nLayer ?? 3,
    nHead: options.nHead ?? 4,
    nFf: options.nFf ?? 64,
    projHidden: options.projHidden ?? 64,
    variant: options.variant === undefined ? 'v0' : options.variant,
  };
  const keyTypes = options.keyTypes ?? {};
  const omitKeys = new Set(options.omitKeys ?? []);
  const omitTensors = new Set(options.omitTensors ?? []);
  const out = path ?? cachePath('mmproj', { ...o, keyTypes, omitKeys: [...omitKeys], omitTensors: [...omitTensors] });
  const nSide = o.imageSize / o.patchSize;
  const result: TinyMmproj = { path: out, imageSize: o.imageSize, patchSize: o.patchSize, nImageTokens: nSide * nSide, outWidth: o.outWidth };
  if (path === undefined && existsSync(out)) return result;

  const r = rng(o.seed);
  const d = o.nEmbd;
  const nPos = nSide * nSide + 1;
  const f32 = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const tensors: { name: string; type: GgmlType; ne: number[]; data: Uint8Array }[] = [];
  const t32 = (name: string, ne: number[], a: Float32Array) => tensors.push({ name, type: GgmlType.F32, ne, data: f32(a) });
  const t16 = (name: string, ne: number[], a: Float32Array) => tensors.push({ name, type: GgmlType.F16, ne, data: f16(a) });
  const f16 = (a: Float32Array) => new Uint8Array(f32ToF16Buffer(a));
  const ones = (k: number) => new Float32Array(k).fill(1);

  t32('v.class_embd', [d], uniform(r, d, 0.5));
  t16('v.patch_embd.weight', [o.patchSize, o.patchSize, 3, d], uniform(r, o.patchSize * o.patchSize * 3 * d, 0.05));
  t32('v.position_embd.weight', [d, nPos], uniform(r, d * nPos, 0.1));
  t32('v.pre_ln.weight', [d], ones(d));
  t32('v.pre_ln.bias', [d], new Float32Array(d));
  const amp = 1 / Math.sqrt(d);
  for (let l = 0; l < o.nLayer; l++) {
    const p = `v.blk.${l}`;
    for (const m of ['attn_q', 'attn_k', 'attn_v', 'attn_out']) {
      t16(`${p}.${m}.weight`, [d, d], uniform(r, d * d, amp));
      t32(`${p}.${m}.bias`, [d], uniform(r, d, 0.01));
    }
    t32(`${p}.ln1.weight`, [d], ones(d));
    t32(`${p}.ln1.bias`, [d], new Float32Array(d));
    t16(`${p}.ffn_up.weight`, [d, o.nFf], uniform(r, d * o.nFf, amp));
    t32(`${p}.ffn_up.bias`, [o.nFf], uniform(r, o.nFf, 0.01));
    t16(`${p}.ffn_down.weight`, [o.nFf, d], uniform(r, d * o.nFf, 1 / Math.sqrt(o.nFf)));
    t32(`${p}.ffn_down.bias`, [d], uniform(r, d, 0.01));
    t32(`${p}.ln2.weight`, [d], ones(d));
    t32(`${p}.ln2.bias`, [d], new Float32Array(d));
  }
  t16('mm.0.weight', [d, o.projHidden], uniform(r, d * o.projHidden, amp));
  t32('mm.0.bias', [o.projHidden], uniform(r, o.projHidden, 0.01));
  t16('mm.2.weight', [o.projHidden, o.outWidth], uniform(r, o.projHidden * o.outWidth, 1 / Math.sqrt(o.projHidden)));
  t32('mm.2.bias', [o.outWidth], uniform(r, o.outWidth, 0.01));

  const w = await GgufWriter.create(out);
  for (const [key, type, value, elem] of clipKvs(o)) {
    if (omitKeys.has(key)) continue;
    const want = keyTypes[key];
    if (want === undefined) {
      w.addKv(key, type, value, elem);
    } else if (type === V.ARRAY && want !== V.ARRAY) {
      w.addArray(key, want, coerce(value, want) as GgufScalar[]); // element type changed
    } else {
      w.addKv(key, want, coerce(value, want));
    }
  }
  const kept = tensors.filter((t) => !omitTensors.has(t.name));
  for (const t of kept) w.addTensorInfo(t.name, t.type, t.ne);
  await w.writeHeader();
  for (const t of kept) await w.writeTensor(t.name, t.data);
  await w.finish();
  return result;
}

/** Copies a cached fixture to `dest` (for tests that corrupt or rename a file). */
export async function copyFixture(src: string, dest: string): Promise<string> {
  await copyFile(src, dest);
  return dest;
}

/** A deterministic test image: w×h RGB bytes. */
export function testImage(w: number, h: number, seed = 3): Uint8Array {
  const r = rng(seed);
  const a = new Uint8Array(w * h * 3);
  for (let i = 0; i < a.length; i++) a[i] = Math.floor(r() * 256);
  return a;
}
