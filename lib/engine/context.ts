/**
 * A llama_context: the KV cache with one or more sequences, decoding of text tokens and
 * image embeddings, sampling steps and logits. Calls run one at a time in call order (FIFO).
 * Each sequence's length is tracked here so callers can append without counting positions.
 */
import { DEFAULTS, FLASH_ATTN_MODES } from '../defaults.js';
import { llavaError } from '../errors.js';
import { AbortLink, OperationQueue, abortedError } from './lifecycle.js';
import type { Model } from './model.js';
import type { KvCacheType, NativeContext, NativePerf, NativeSampler, NativeSamplerOptions } from './native-types.js';
import { ImageEmbedding } from './projector.js';

export interface ContextOptions {
  /** Context length in tokens (KV cache cells, shared by all sequences). Default 2048. */
  contextSize?: number;
  /** Logical batch: tokens per llama_decode call. Default 512. */
  batchSize?: number;
  /** Physical micro-batch. Default = batchSize. */
  ubatchSize?: number;
  /** Parallel sequences in this context. Default 1. */
  sequences?: number;
  threads?: number;
  threadsBatch?: number;
  flashAttn?: 'auto' | 'on' | 'off';
  /** KV cache element types; 'f32' for bit-faithful reference comparisons (turns flash attention off unless flashAttn is given). Default 'f16'. */
  kvCacheType?: KvCacheType | { k: KvCacheType; v: KvCacheType };
  /**
   * One KV buffer shared by all sequences (default true) or one per sequence (contextSize is then
   * split evenly). Separate buffers lay each sequence's cells out exactly as a single-sequence
   * context would, so attention sums in the same order and parallel answers match sequential ones.
   */
  kvUnified?: boolean;
}

export type SamplerOptions = Partial<NativeSamplerOptions>;

export interface SampledToken {
  token: number;
  /** The token's text bytes (may be part of a UTF-8 character). */
  piece: Buffer;
  /** End-of-generation token (EOS/EOT). */
  eog: boolean;
}

export interface StepEntry {
  seq: number;
  /** The token to feed (the one sampled last). */
  token: number;
  sampler: Sampler;
}

/** One sampler chain; create one per generated sequence. */
export class Sampler {
  private freed = false;
  /** @internal */
  constructor(/** @internal */ readonly native: NativeSampler, readonly options: Readonly<SamplerOptions>) {}
  /** Adds tokens to the sampler's history (repetition penalty) without sampling. */
  accept(tokens: Iterable<number>): void {
    this.live();
    for (const t of tokens) this.native.accept(t);
  }
  reset(): void {
    this.live();
    this.native.reset();
  }
  /** @internal */
  live(): NativeSampler {
    if (this.freed) throw llavaError('ERR_DISPOSED', 'This sampler has been disposed.');
    return this.native;
  }
  dispose(): void {
    if (!this.freed) this.native.dispose();
    this.freed = true;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

function asSampler(s: unknown): Sampler {
  if (!(s instanceof Sampler)) throw llavaError('ERR_INVALID_ARGUMENT', 'expected a Sampler from Context.createSampler().');
  return s;
}

const KV_TYPES: readonly KvCacheType[] = ['f16', 'f32', 'bf16', 'q8_0', 'q4_0'];

function positiveInt(v: unknown, name: string, def: number, max = 1 << 24): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw llavaError('ERR_INVALID_ARGUMENT', `${name} must be an integer between 1 and ${max}, got ${String(v)}.`);
  }
  return v;
}

export class Context {
  private readonly queue = new OperationQueue('context');
  private readonly lengths: number[];
  private disposing?: Promise<void>;

  private constructor(
    private readonly native: NativeContext,
    readonly model: Model,
    readonly contextSize: number,
    readonly batchSize: number,
    readonly sequences: number,
    /** One KV buffer for all sequences (prefixes can then be shared between sequences). */
    readonly kvUnified: boolean,
  ) {
    this.lengths = new Array(sequences).fill(0);
  }

  static async create(model: Model, opts: ContextOptions = {}): Promise<Context> {
    const nCtx = positiveInt(opts.contextSize, 'contextSize', DEFAULTS.contextSize);
    const nBatch = positiveInt(opts.batchSize, 'batchSize', Math.min(DEFAULTS.batchSize, nCtx));
    const nUbatch = positiveInt(opts.ubatchSize, 'ubatchSize', nBatch);
    const nSeqMax = positiveInt(opts.sequences, 'sequences', DEFAULTS.sequences, 256);
    const threads = positiveInt(opts.threads, 'threads', DEFAULTS.threads, 1024);
    const threadsBatch = positiveInt(opts.threadsBatch, 'threadsBatch', threads, 1024);
    const kvDefault = DEFAULTS.kvCacheType;
    const kv = typeof opts.kvCacheType === 'string' || opts.kvCacheType === undefined ? { k: opts.kvCacheType ?? kvDefault, v: opts.kvCacheType ?? kvDefault } : opts.kvCacheType;
    for (const t of [kv.k, kv.v]) if (!KV_TYPES.includes(t)) throw llavaError('ERR_INVALID_ARGUMENT', `kvCacheType must be one of ${KV_TYPES.join(', ')}.`);
    // llama.cpp's flash attention casts an F32 KV cache to F16 before attending, which would
    // make kvCacheType 'f32' a no-op: asking for F32 means attention without it.
    const flashAttn = opts.flashAttn ?? (kv.k === 'f32' || kv.v === 'f32' ? 'off' : 'auto');
    if (!FLASH_ATTN_MODES.includes(flashAttn)) throw llavaError('ERR_INVALID_ARGUMENT', "flashAttn must be 'auto', 'on' or 'off'.");
    const native = await model.addon
      .createContext(model.nativeHandle(), { nCtx, nBatch, nUbatch, nSeqMax, threads, threadsBatch, flashAttn, typeK: kv.k, typeV: kv.v, kvUnified: opts.kvUnified ?? true })
      .catch((e) => {
        throw llavaError((e as { code?: string }).code === 'ERR_CONTEXT_CREATE' ? 'ERR_CONTEXT_CREATE' : 'ERR_NATIVE', (e as Error).message, e);
      });
    const info = native.info();
    return new Context(native, model, info.nCtx, info.nBatch, info.nSeqMax, opts.kvUnified ?? true);
  }

  get disposed(): boolean {
    return this.queue.isClosed;
  }

  /** Tokens currently held by sequence `seq`. */
  length(seq = 0): number {
    this.queue.assertOpen();
    this.checkSeq(seq);
    return this.lengths[seq];
  }

  createSampler(opts: SamplerOptions = {}): Sampler {
    this.queue.assertOpen();
    for (const [k, v] of Object.entries(opts)) {
      if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) throw llavaError('ERR_INVALID_ARGUMENT', `sampler option ${k} must be a finite number.`);
    }
    if (opts.repeatPenalty !== undefined && opts.repeatPenalty <= 0) throw llavaError('ERR_INVALID_ARGUMENT', 'repeatPenalty must be > 0.');
    if (opts.topP !== undefined && (opts.topP <= 0 || opts.topP > 1)) throw llavaError('ERR_INVALID_ARGUMENT', 'topP must be in (0, 1].');
    if (opts.seed !== undefined && (!Number.isInteger(opts.seed) || opts.seed < 0 || opts.seed > 0xffffffff)) throw llavaError('ERR_INVALID_ARGUMENT', 'seed must be an integer in [0, 2^32).');
    const clean = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as SamplerOptions;
    return new Sampler(new this.model.addon.Sampler(this.model.nativeHandle(), clean), clean);
  }

  private checkSeq(seq: number): void {
    if (!Number.isInteger(seq) || seq < 0 || seq >= this.sequences) {
      throw llavaError('ERR_INVALID_ARGUMENT', `seq must be an integer in [0, ${this.sequences}), got ${String(seq)}.`);
    }
  }

  private checkRoom(seq: number, n: number): void {
    if (this.lengths[seq] + n > this.contextSize) {
      throw llavaError(
        'ERR_CONTEXT_FULL',
        `The prompt does not fit: sequence ${seq} holds ${this.lengths[seq]} tokens and ${n} more exceed the context of ${this.contextSize}. Use a larger contextSize or a shorter prompt.`,
      );
    }
  }

  // A failed decode may have stored part of the batch: drop it so the tracked length stays true.
  private rollback(seq: number, from: number): void {
    this.native.seqRm(seq, from, -1);
    this.lengths[seq] = from;
  }

  /**
   * Appends text tokens to sequence `seq`. `logits`: which positions keep logits
   * ('last' for generation, 'all' for scoring a continuation, or 'none').
   */
  async decode(tokens: ArrayLike<number>, opts: { seq?: number; logits?: 'last' | 'all' | 'none'; signal?: AbortSignal } = {}): Promise<{ ms: number }> {
    const seq = opts.seq ?? 0;
    this.checkSeq(seq);
    if (tokens === null || typeof tokens !== 'object' || typeof tokens.length !== 'number') throw llavaError('ERR_INVALID_ARGUMENT', 'tokens must be an array of token ids.');
    const ids = Int32Array.from(tokens);
    if (ids.length === 0) return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', 'decode needs at least one token.'));
    const nVocab = this.model.info.nVocab;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] !== tokens[i] || ids[i] < 0 || ids[i] >= nVocab) return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', `token ${String(tokens[i])} at index ${i} is not a valid id.`));
    }
    const mode = opts.logits ?? 'last';
    if (mode !== 'last' && mode !== 'all' && mode !== 'none') throw llavaError('ERR_INVALID_ARGUMENT', `logits must be 'last', 'all' or 'none', not ${JSON.stringify(mode)}.`);
    if (mode === 'all' && ids.length > this.batchSize) {
      return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', `logits for every position need at most batchSize (${this.batchSize}) tokens per decode.`));
    }
    return this.queue.run(async () => {
      this.checkRoom(seq, ids.length);
      const start = this.lengths[seq];
      const n = ids.length;
      const logits = new Uint8Array(n);
      if (mode === 'all') logits.fill(1);
      else if (mode === 'last') logits[n - 1] = 1;
      const pos = new Int32Array(n).map((_, i) => start + i);
      using link = new AbortLink(opts.signal);
      try {
        const r = await this.native.decode({ tokens: ids, pos, seq: new Int32Array(n).fill(seq), logits }, link.flag);
        this.lengths[seq] = start + n;
        return r;
      } catch (e) {
        this.rollback(seq, start);
        if (link.aborted) throw abortedError('decode', opts.signal);
        throw e;
      }
    }, opts.signal);
  }

  /** Appends image features (from Projector.encode) to sequence `seq`. */
  async decodeImage(image: ImageEmbedding, opts: { seq?: number; signal?: AbortSignal } = {}): Promise<{ ms: number }> {
    const seq = opts.seq ?? 0;
    this.checkSeq(seq);
    if (!(image instanceof ImageEmbedding)) throw llavaError('ERR_INVALID_ARGUMENT', 'decodeImage expects an ImageEmbedding from Projector.encode().');
    image.assertLive();
    return this.queue.run(async () => {
      this.checkRoom(seq, image.nTokens);
      const start = this.lengths[seq];
      using link = new AbortLink(opts.signal);
      try {
        const r = await this.native.decodeEmbedding(image.native, seq, start, link.flag);
        this.lengths[seq] = start + image.nTokens;
        return r;
      } catch (e) {
        this.rollback(seq, start);
        if (link.aborted) throw abortedError('image decode', opts.signal);
        throw e;
      }
    }, opts.signal);
  }

  /** Samples from the logits left by the last decode (index -1 = its last output). */
  async sample(sampler: Sampler, opts: { index?: number; signal?: AbortSignal } = {}): Promise<SampledToken> {
    const native = asSampler(sampler).live();
    const r = await this.queue.run(() => this.native.sample([native], Int32Array.of(opts.index ?? -1)), opts.signal);
    return { token: r.tokens[0], piece: r.pieces[0], eog: r.eog[0] === 1 };
  }

  /**
   * One generation step for one or more sequences: feeds each entry's token at the end of
   * its sequence (one batch), then samples each sequence's next token.
   */
  async step(entries: readonly StepEntry[], opts: { signal?: AbortSignal } = {}): Promise<SampledToken[]> {
    if (!Array.isArray(entries) || entries.length === 0) throw llavaError('ERR_INVALID_ARGUMENT', 'step needs a non-empty array of { seq, token, sampler }.');
    const seen = new Set<number>();
    for (const e of entries) {
      if (e === null || typeof e !== 'object' || !Number.isInteger(e.token)) throw llavaError('ERR_INVALID_ARGUMENT', 'each step entry must be { seq, token, sampler }.');
      this.checkSeq(e.seq);
      if (seen.has(e.seq)) return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', `sequence ${e.seq} appears twice in one step.`));
      seen.add(e.seq);
    }
    const natives = entries.map((e) => asSampler(e.sampler).live());
    return this.queue.run(async () => {
      for (const e of entries) this.checkRoom(e.seq, 1);
      const starts = entries.map((e) => this.lengths[e.seq]);
      using link = new AbortLink(opts.signal);
      try {
        const r = await this.native.step(
          Int32Array.from(entries, (e) => e.token),
          Int32Array.from(entries, (e) => e.seq),
          Int32Array.from(starts),
          natives,
          link.flag,
        );
        entries.forEach((e, i) => (this.lengths[e.seq] = starts[i] + 1));
        return Array.from(r.tokens, (t, i) => ({ token: t, piece: r.pieces[i], eog: r.eog[i] === 1 }));
      } catch (e) {
        entries.forEach((en, i) => this.rollback(en.seq, starts[i]));
        if (link.aborted) throw abortedError('generation step', opts.signal);
        throw e;
      }
    }, opts.signal);
  }

  /** A copy of the logits at batch output `index` of the last decode (-1 = last). */
  logits(index = -1): Promise<Float32Array> {
    return this.queue.run(() => this.native.logits(index));
  }

  /** log softmax(logits[idx])[target] for each pair, computed in double precision. */
  logProbs(indexes: ArrayLike<number>, targets: ArrayLike<number>): Promise<Float64Array> {
    return this.queue.run(() => this.native.logProbs(Int32Array.from(indexes), Int32Array.from(targets)));
  }

  /** Drops positions [from, to) of sequence `seq` (to = -1: to the end). */
  async trim(seq: number, from: number): Promise<void> {
    this.checkSeq(seq);
    if (!Number.isInteger(from) || from < 0) return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', 'from must be an integer >= 0.'));
    return this.queue.run(async () => {
      if (from >= this.lengths[seq]) return;
      this.native.seqRm(seq, from, -1);
      this.lengths[seq] = from;
    });
  }

  /** Makes sequence `dst` share the first `n` cached tokens of `src` (no recompute). */
  async copyPrefix(src: number, dst: number, n: number): Promise<void> {
    this.checkSeq(src);
    this.checkSeq(dst);
    // llama.cpp GGML_ASSERTs (aborting the process) on a partial copy between separate buffers.
    if (!this.kvUnified) throw llavaError('ERR_INVALID_ARGUMENT', 'copyPrefix needs a context created with kvUnified: true.');
    return this.queue.run(async () => {
      if (n > this.lengths[src]) throw llavaError('ERR_INVALID_ARGUMENT', `sequence ${src} holds only ${this.lengths[src]} tokens.`);
      this.native.seqRm(dst, -1, -1);
      this.native.seqCp(src, dst, 0, n);
      this.lengths[dst] = n;
    });
  }

  /** Empties every sequence. */
  clear(): Promise<void> {
    return this.queue.run(async () => {
      this.native.memoryClear();
      this.lengths.fill(0);
    });
  }

  /** The highest position the native KV cache holds for `seq` (-1 when empty). */
  nativeLength(seq = 0): Promise<number> {
    return this.queue.run(async () => this.native.seqPosMax(seq) + 1);
  }

  /** llama.cpp's counters: prompt (multi-token batches, image embeddings included) and eval (single-token) time. */
  perf(): Promise<NativePerf> {
    return this.queue.run(async () => this.native.perf());
  }

  resetPerf(): Promise<void> {
    return this.queue.run(async () => this.native.perfReset());
  }

  async setThreads(threads: number, threadsBatch = threads): Promise<void> {
    positiveInt(threads, 'threads', 1, 1024);
    positiveInt(threadsBatch, 'threadsBatch', 1, 1024);
    return this.queue.run(async () => this.native.setThreads(threads, threadsBatch));
  }

  dispose(): Promise<void> {
    this.disposing ??= this.queue.close().then(() => this.native.dispose());
    return this.disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

