/**
 * A llama_context: the KV cache with one or more sequences, sampling steps and logits. Calls run
 * one at a time in call order (FIFO). Each sequence is a `Sequence` (sequence.ts), the one owner
 * of its cells, history and positions; the seq-indexed methods here (decode, decodeImage, trim,
 * length) are shorthands for `context.sequence(seq).…`.
 */
import { DEFAULTS, FLASH_ATTN_MODES } from '../defaults.js';
import { llavaError } from '../errors.js';
import { OperationQueue } from './lifecycle.js';
import type { Model } from './model.js';
import type { KvCacheType, NativeContext, NativePerf, NativeSampler, NativeSamplerOptions } from './native-types.js';
import type { ImageEmbedding } from './projector.js';
import { Sequence, type SampledToken, type SequenceHost } from './sequence.js';

export type { SampledToken } from './sequence.js';

export interface ContextOptions {
  /** KV cache cells in all: shared by the sequences in one buffer, split evenly between separate ones (kvUnified: false). Default 2048. */
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
   * split evenly). Separate buffers lay each sequence's cells out as if it ran alone, so what one
   * sequence computes does not depend on what the others hold.
   */
  kvUnified?: boolean;
}

export type SamplerOptions = Partial<NativeSamplerOptions>;

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
  readonly #host: SequenceHost;
  readonly #sequences: Sequence[];
  private disposing?: Promise<void>;

  private constructor(
    private readonly native: NativeContext,
    readonly model: Model,
    /** KV cells in all (shared by the sequences in one buffer, split evenly between separate ones). */
    readonly contextSize: number,
    readonly batchSize: number,
    /** How many sequences this context holds. */
    readonly sequences: number,
    /** One KV buffer for all sequences, or one per sequence. */
    readonly kvUnified: boolean,
    nCtxSeq: number,
  ) {
    this.#host = { native, queue: this.queue, model, batchSize };
    this.#sequences = Array.from({ length: sequences }, (_, i) => new Sequence(this.#host, i, nCtxSeq));
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
    return new Context(native, model, info.nCtx, info.nBatch, info.nSeqMax, opts.kvUnified ?? true, info.nCtxSeq);
  }

  get disposed(): boolean {
    return this.queue.isClosed;
  }

  /** Sequence `seq` (0 ≤ seq < sequences): the object that decodes into it and knows what it holds. */
  sequence(seq = 0): Sequence {
    this.checkSeq(seq);
    return this.#sequences[seq]!;
  }

  /** Positions currently held by sequence `seq`. */
  length(seq = 0): number {
    this.queue.assertOpen();
    return this.sequence(seq).length;
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

  /** Appends text tokens to sequence `seq` (see Sequence.decode). */
  async decode(tokens: ArrayLike<number>, opts: { seq?: number; logits?: 'last' | 'all' | 'none'; signal?: AbortSignal } = {}): Promise<{ ms: number }> {
    return this.sequence(opts.seq ?? 0).decode(tokens, opts);
  }

  /** Appends image features (from Projector.encode) to sequence `seq`. */
  async decodeImage(image: ImageEmbedding, opts: { seq?: number; signal?: AbortSignal } = {}): Promise<{ ms: number }> {
    return this.sequence(opts.seq ?? 0).decodeImage(image, opts);
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
    const natives = entries.map((e) => ({ sequence: this.#sequences[e.seq]!, token: e.token, sampler: asSampler(e.sampler).live() }));
    return this.queue.run((signal) => Sequence.step(this.#host, natives, signal), opts.signal);
  }

  /** A copy of the logits at batch output `index` of the last decode (-1 = last). */
  logits(index = -1): Promise<Float32Array> {
    return this.queue.run(() => this.native.logits(index));
  }

  /** log softmax(logits[idx])[target] for each pair, computed in double precision. */
  logProbs(indexes: ArrayLike<number>, targets: ArrayLike<number>): Promise<Float64Array> {
    return this.queue.run(() => this.native.logProbs(Int32Array.from(indexes), Int32Array.from(targets)));
  }

  /** Drops positions from `from` on in sequence `seq` (see Sequence.trim). */
  async trim(seq: number, from: number): Promise<void> {
    return this.sequence(seq).trim(from);
  }

  /** Empties every sequence. */
  async clear(): Promise<void> {
    for (const s of this.#sequences) await s.clear();
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

  /**
   * Stops the running decode, image decode or step (it rejects with ERR_DISPOSED), rejects the queued calls, then
   * frees the native object on the thread pool. Idempotent.
   */
  dispose(): Promise<void> {
    this.disposing ??= this.queue.close().then(() => this.native.dispose());
    return this.disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

