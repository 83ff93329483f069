/**
 * LlavaMed: ask questions about biomedical images exactly as LLaVA-Med does — the original
 * preprocessing (lib/image), prompt and image-token placement (lib/prompt) and generation
 * defaults — on llama.cpp (lib/engine). Research use only; never for clinical decisions.
 */
import { existsSync } from 'node:fs';
import { DEFAULTS, defaultFlashAttn, type FlashAttnMode } from './defaults.js';
import { allInOrder, llavaError, throwIfAborted } from './errors.js';
import { isModelName, resolveModel } from './pull/registry.js';
import {
  Context,
  ImageEmbedding,
  Model,
  Projector,
  addLogger,
  checkModelFile,
  checkPairing,
  checkProjectorFile,
  loadAddon,
  type KvCacheType,
  type LoadMode,
  type Logger,
  type LogLevel,
  type Sampler,
  type Sequence,
  type SequenceItem,
} from './engine/index.js';
import type { GpuLayers } from './engine/gpu-layers.js';
import { loadAndPreprocess, type ImageInput } from './image/index.js';
import type { StopReason } from './answer/generate.js';
import { ImageCache } from './answer/image-cache.js';
import { Scheduler, type ScheduledResult } from './answer/scheduler.js';
import { withTokenizer } from './answer/prompt-ids.js';
import { plainOptions, readArg } from './input.js';
import { EmbedImageOptionsSchema, GenerationOptionsSchema, LoadOptionsSchema, ScoreOptionsSchema, parseOptions } from './options.js';
import { checkSmallTensorsFinite } from './engine/finite-check.js';
import {
  GENERATION_DEFAULTS,
  assertNoMarkers,
  buildV0Chat,
  buildV15Chat,
  postprocessV0,
  postprocessV15,
  type ChatTurn,
} from './prompt/index.js';

/** LLaVA-Med v0 (LLaMA-7B delta, CLIP-224, 256 image tokens) or v1.5 (Mistral-7B, CLIP-336, 576). */
export type Variant = 'v0' | 'v1.5';

/** Progress of {@link LlavaMed.load}, reported through {@link LlavaMedOptions.onProgress}. */
export interface LoadProgress {
  /** What is loading: the language model's weights, the projector (vision encoder), or the KV cache. */
  phase: 'model' | 'projector' | 'context';
  /** 0..1 within the phase. */
  fraction: number;
}

/**
 * Options of {@link LlavaMed.load}. Only `model` is required (plus `mmproj` for a GGUF path). Unknown keys and
 * out-of-range values are `ERR_INVALID_ARGUMENT`; `null` means the default. Defaults are listed in {@link DEFAULTS}.
 */
export interface LlavaMedOptions {
  /** Language-model GGUF (from `llava-med convert`), or a registered name from `llava-med pull` (`llava-med:v1.5-q4_k_m`). */
  model: string;
  /** Projector (mmproj) GGUF converted with the same model. Optional for a registered name (its own projector). */
  mmproj?: string;
  /** CPU threads for decoding and the vision encoder. Default: available cores. */
  threads?: number;
  /** Context length in tokens, shared by all sequences. Default 2048 (the original's model_max_length) per sequence. */
  contextSize?: number;
  /**
   * Parallel sequences: how many questions are answered at once. Calls (ask, stream, chat turns,
   * askBatch requests) share them by continuous batching: a call starts between two tokens of the
   * running ones as soon as a sequence is free, and all running answers advance in one batched step
   * per token. Default 1 (calls run one after another).
   */
  sequences?: number;
  /**
   * Images given as bytes (Buffer / Uint8Array) whose encoding is kept, keyed by content: a later
   * question about the same bytes skips the vision encoder and reuses the KV cells holding the image
   * and the conversation before it (multi-turn requests to a server). The least recently used beyond
   * this many are freed. Default 0 (off).
   */
  imageCache?: number;
  /** Logical batch: most tokens decoded per llama.cpp step (prompt prefill). Default 512, capped by the context size. */
  batchSize?: number;
  /** Layers on a GPU backend: a number (default 0), 'max' (all) or 'auto' (what fits in the GPU's free memory; 0 without one). */
  gpuLayers?: GpuLayers;
  /** 'v0' or 'v1.5'; detected from the GGUF metadata when omitted. */
  variant?: Variant;
  /**
   * How weights are read: 'none' copies them into memory (default, measured faster here), 'mmap' maps the file.
   * On Linux, weights read into memory (and the KV cache) sit on 2 MiB transparent huge pages when
   * /sys/kernel/mm/transparent_hugepage/enabled is `madvise` or `always` (fewer TLB misses while decode streams
   * the weights); mapped weights get them only where the kernel and file system map page-cache pages that large.
   * `LLAVA_MED_HUGEPAGES=0` in the environment turns huge pages off (ARCHITECTURE.md, "huge pages").
   */
  loadMode?: LoadMode;
  /** Element type of the KV cache. Default 'f16'; 'q8_0' / 'q4_0' halve / quarter its memory at some accuracy cost. */
  kvCacheType?: KvCacheType;
  /**
   * Flash attention. Default: 'off' on CPU — llama.cpp's CPU kernel switches to a split-KV path
   * once the cache holds 512 cells, so greedy answers would depend on what earlier questions
   * left in the cache; 'auto' when layers are offloaded to a GPU.
   */
  flashAttn?: FlashAttnMode;
  /**
   * The vision encoder's attention. Default 'off' (F32): with flash attention clip.cpp casts K and V to
   * F16, and at the real geometry the image embeddings move 2–3× further from the original's
   * (docs/conversion.md, "Vision encoder precision"); 'on' encodes faster.
   */
  projectorFlashAttn?: FlashAttnMode;
  /** Largest accepted image, in pixels (checked before decoding). Default 100 MP. */
  maxImagePixels?: number;
  /** Receives llama.cpp's log lines. Default: none (native logs are dropped; the library never writes to stdout/stderr). */
  logger?: Logger;
  /** Least severe level passed to `logger`. Default 'info'. */
  logLevel?: LogLevel;
  /** Called as loading proceeds (phase and fraction). */
  onProgress?: (p: LoadProgress) => void;
  /** Aborts loading: load rejects with `ERR_ABORTED` and frees what it had loaded. */
  signal?: AbortSignal;
}

/**
 * How an answer is generated. Every field is optional; the defaults are the original's for the
 * model's variant (v0: temperature 0.7, top-k 50, up to 1024 tokens, stop at '###'; v1.5: greedy,
 * stop at EOS). Unknown keys and out-of-range values are ERR_INVALID_ARGUMENT.
 */
export interface GenerationOptions {
  /** Sampling temperature, >= 0; 0 is greedy (the same answer every time). */
  temperature?: number;
  /** Sample among the k most likely tokens (0 = no limit). Integer >= 0. */
  topK?: number;
  /** Nucleus sampling: the smallest set of tokens whose probability reaches p. In (0, 1]. */
  topP?: number;
  /** Drop tokens less likely than minP × the most likely one. In [0, 1]; default 0 (off). */
  minP?: number;
  /** Penalty for repeating recent tokens, > 0; default 1 (off). */
  repeatPenalty?: number;
  /** Sampling seed, an integer in [0, 2^32 - 1]; default random. Same seed + same options = same answer. */
  seed?: number;
  /** Most new tokens to generate, integer >= 1. */
  maxTokens?: number;
  /** Stop strings; the answer is cut before the first one found. */
  stop?: string[];
  /**
   * Called with each piece of the answer as it becomes final (never a prefix of a stop string) —
   * the callback form of stream(). Used by ask() and ChatSession.ask().
   */
  onTextChunk?: (text: string) => void;
  /**
   * When the signal aborts after the answer has started, resolve with the text so far
   * (stopReason 'aborted') instead of rejecting with ERR_ABORTED. Default false.
   */
  stopOnAbortSignal?: boolean;
  /** Aborts the call: it rejects with ERR_ABORTED (see stopOnAbortSignal) and the instance stays usable. */
  signal?: AbortSignal;
}

/** Where an answer's time went (milliseconds, wall clock) and how many tokens each step handled. */
export interface AnswerTimings {
  /** Vision encoder time (0 when the image embedding was reused). */
  imageEncodeMs: number;
  /** Image embedding positions decoded into the context (0 when reused from the KV cache). */
  imageTokens: number;
  /** Time to decode those image positions into the context (ms). */
  imageDecodeMs: number;
  /** Text prompt tokens decoded (reused ones excluded) and the time they took. */
  promptTokens: number;
  /** Time to decode the prompt tokens (ms). */
  promptMs: number;
  /** Positions reused from the KV cache. */
  reusedTokens: number;
  /** Of those, positions copied from another parallel sequence's cells (a prefix that sequence held) instead of decoded. */
  copiedTokens: number;
  /** Tokens generated. */
  generatedTokens: number;
  /** Time spent generating them (ms); tokens/s = generatedTokens × 1000 / generateMs. */
  generateMs: number;
  /** Total time of the call (ms). */
  totalMs: number;
}

/** The result of `ask`, `askBatch` and `ChatSession.ask`. */
export interface Answer {
  /** The answer, post-processed as the original (v0: cut at '###' and stripped). */
  text: string;
  /** Generated token ids. */
  tokens: number[];
  /** Why generation ended. */
  stopReason: StopReason;
  /** Token counts and durations of each step. */
  timings: AnswerTimings;
}

/** One candidate's score from {@link LlavaMed.score}. */
export interface CandidateScore {
  /** The candidate answer, as given. */
  candidate: string;
  /** Sum of the log-probabilities of the candidate's tokens after the prompt. */
  logProb: number;
  /** The candidate's token ids. */
  tokens: number[];
}

/** An image encoded once, reusable for many questions (embedImage). */
export class ImageHandle {
  /** @internal The engine's encoded image (not part of the public API). */
  readonly embedding: ImageEmbedding;
  /** @internal */
  constructor(embedding: ImageEmbedding, private readonly owner: LlavaMed) {
    this.embedding = embedding;
  }
  /** Positions the image occupies in the context (256 for v0, 576 for v1.5). */
  get nTokens(): number {
    return this.embedding.nTokens;
  }
  /** How long the vision encoder took for this image (ms). */
  get encodeMs(): number {
    return this.embedding.encodeMs;
  }
  /** True after dispose() (or after its LlavaMed was disposed); a disposed handle is `ERR_DISPOSED` when used. */
  get disposed(): boolean {
    return this.embedding.disposed;
  }
  /** @internal */
  belongsTo(m: LlavaMed): boolean {
    return this.owner === m;
  }
  /** Frees the encoded image and drops it from the KV cache. Idempotent. */
  dispose(): Promise<void> {
    return this.owner.releaseImage(this);
  }
  /** Same as dispose(), for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

interface PromptIds {
  /** The id the original put first (v0: `</s>` per special_tokens_map; v1.5: `<s>`). */
  bos: number;
  eos: number;
  imStart?: number;
  imEnd?: number;
}

/** An image to ask about: any {@link ImageInput}, or a handle from {@link LlavaMed.embedImage} to skip the encoder. */
export type ImageArg = ImageInput | ImageHandle;

function detectVariant(model: Model, projector: Projector): Variant {
  const v = model.file.variant ?? projector.file.variant;
  if (v === 'v0' || v === 'v1.5') return v;
  // Files not written by our converter: the CLIP input size tells the two releases apart.
  return projector.imageSize >= 336 ? 'v1.5' : 'v0';
}

/** The engine objects behind an instance (tests and benchmarks; not exported from the package). */
export interface Engine {
  readonly model: Model;
  readonly projector: Projector;
  readonly context: Context;
}

const engines = new WeakMap<LlavaMed, Engine>();

/** @internal The model, projector and context an instance runs on. Not part of the public API. */
export function engineOf(med: LlavaMed): Engine {
  const e = engines.get(med);
  if (!e) throw llavaError('ERR_INVALID_ARGUMENT', 'engineOf expects a LlavaMed instance.');
  return e;
}

export class LlavaMed {
  /** Every call that uses the context goes through it (continuous batching over the sequences). */
  private readonly queue: Scheduler;
  private readonly imageCache?: ImageCache;
  private readonly images = new Set<ImageHandle>();
  private disposing?: Promise<void>;
  readonly #model: Model;
  readonly #projector: Projector;
  readonly #context: Context;
  /** One per context sequence: job i of a batch runs on #sequences[i]. */
  readonly #sequences: readonly Sequence[];

  private constructor(
    model: Model,
    projector: Projector,
    context: Context,
    /** The model's LLaVA-Med release (detected at load, or as given in the options); picks prompt format and defaults. */
    readonly variant: Variant,
    private readonly ids: PromptIds,
    private readonly maxImagePixels: number,
    imageCache: number,
    private readonly removeLogger?: () => void,
  ) {
    this.#model = model;
    this.#projector = projector;
    this.#context = context;
    this.queue = new Scheduler(context, 'LlavaMed instance');
    if (imageCache > 0) this.imageCache = new ImageCache(imageCache);
    this.#sequences = Array.from({ length: context.sequences }, (_, i) => context.sequence(i));
    engines.set(this, { model, projector, context });
  }

  /**
   * Loads a language model and its projector and creates the context. Both files' headers are checked
   * (and paired) before any weight is read, and whatever was loaded is freed again if a later step fails.
   *
   * @param opts - Files and engine options; see {@link LlavaMedOptions} for each field's default.
   * @throws LlavaMedError `ERR_INVALID_ARGUMENT` (bad options, or a context too small for an image),
   *   `ERR_FILE_NOT_FOUND`, `ERR_NOT_GGUF` / `ERR_GGUF_CORRUPT` (not a usable GGUF), `ERR_MMPROJ_MISMATCH`
   *   (projector and model do not belong together), `ERR_MODEL_NOT_FOUND` (unknown registered name),
   *   `ERR_MODEL_LOAD` / `ERR_MMPROJ_LOAD` / `ERR_CONTEXT_CREATE` (llama.cpp refused), `ERR_NATIVE_LOAD`
   *   (no addon for this platform), `ERR_ABORTED` (`signal` fired).
   */
  static async load(opts: LlavaMedOptions): Promise<LlavaMed> {
    if (opts === null || typeof opts !== 'object') throw llavaError('ERR_INVALID_ARGUMENT', 'LlavaMed.load expects { model, mmproj, ... }.');
    opts = parseOptions(LoadOptionsSchema, plainOptions(opts, 'the LlavaMed.load options'), 'LlavaMed.load');
    // A registered name (`llava-med pull`) that is not also a file here: its files, its projector by default.
    if (typeof opts.model === 'string' && isModelName(opts.model) && !existsSync(opts.model)) {
      const m = await resolveModel(opts.model);
      opts = { ...opts, model: m.model, mmproj: opts.mmproj ?? m.mmproj };
    }
    if (typeof opts.model !== 'string' || typeof opts.mmproj !== 'string') {
      throw llavaError('ERR_INVALID_ARGUMENT', 'LlavaMed.load needs `model` and `mmproj` paths (GGUF files from `llava-med convert`), or a registered `model` name from `llava-med pull`.');
    }
    const mmproj = opts.mmproj;
    throwIfAborted(opts.signal, 'load');
    const threads = opts.threads ?? Math.max(1, (await import('node:os')).availableParallelism());
    const removeLogger = opts.logger ? addLogger(loadAddon(), opts.logger, opts.logLevel ?? 'info') : undefined;
    // An abort rejects at once. The parts still loading see the same signal (model and projector
    // reads stop at the next tensor; header checks and context creation cannot stop midway) and
    // the load frees what it had loaded on the thread pool right after.
    const work = LlavaMed.open(opts as LlavaMedOptions & { model: string }, mmproj, threads, removeLogger);
    const signal = opts.signal;
    if (!signal) return work;
    let onAbort!: () => void;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(llavaError('ERR_ABORTED', 'The load was aborted.', signal.reason));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([work, aborted]);
    } catch (e) {
      if (signal.aborted) void work.then((med) => med.dispose(), () => {});
      throw e;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  private static async open(opts: LlavaMedOptions & { model: string }, mmproj: string, threads: number, removeLogger?: () => void): Promise<LlavaMed> {
    // no progress reports once aborted: the caller already has its rejection
    const progress = (phase: LoadProgress['phase']) => (fraction: number) => {
      if (!opts.signal?.aborted) opts.onProgress?.({ phase, fraction });
    };
    let model: Model | undefined;
    let projector: Projector | undefined;
    let context: Context | undefined;
    try {
      // Both files' headers first (a projector that would crash clip.cpp, or does not fit the
      // model, is refused before the model's weights are read).
      // Both are read side by side, and when both fail the model's error is the one reported
      // (Promise.all would report whichever read finished first: the swapped-files message
      // must not depend on timing).
      const [mf, pf] = await allInOrder(checkModelFile(opts.model), checkProjectorFile(mmproj));
      checkPairing(mf, pf);
      // NaN/Inf in the small tensors (norms, biases) is cheap to find and would poison every answer.
      // It guards the answers, not the process (llama.cpp loads a NaN without harm), so the scan runs
      // on this thread while the weights load on the pool (30-70 ms of the load on 2 cores); when it
      // finds one, its error wins and the catch below frees the model.
      const finite = allInOrder(checkSmallTensorsFinite(mf.header, 'model'), checkSmallTensorsFinite(pf.header, 'projector'));
      const [m, f] = await Promise.allSettled([
        Model.load(opts.model, { gpuLayers: opts.gpuLayers, loadMode: opts.loadMode, onProgress: progress('model'), signal: opts.signal, checked: mf }),
        finite,
      ]);
      if (m.status === 'fulfilled') model = m.value;
      if (f.status === 'rejected') throw f.reason;
      if (m.status === 'rejected') throw m.reason;
      model = m.value;
      // The projector and the context need only the model: create them side by side (the
      // projector reads its file and runs a warm-up encode while the KV cache is allocated).
      const perSequence = Math.min(DEFAULTS.contextPerSequence, Math.max(model.info.nCtxTrain, 512));
      const loaded = model;
      const [p, c] = await Promise.allSettled([
        (async () => Projector.load(loaded, mmproj, { threads, useGpu: loaded.offloaded, flashAttn: opts.projectorFlashAttn, signal: opts.signal, checked: pf }))(),
        (async () =>
          Context.create(loaded, {
            // The KV cache is shared by all sequences: give each the original's 2048 positions.
            contextSize: opts.contextSize ?? perSequence * (opts.sequences ?? 1),
            batchSize: opts.batchSize,
            sequences: opts.sequences,
            threads,
            kvCacheType: opts.kvCacheType,
            flashAttn: opts.flashAttn ?? defaultFlashAttn(loaded.offloaded ? loaded.gpuLayers : 0),
            // A buffer per sequence keeps each sequence's cells in single-sequence order, so an answer
            // does not depend on the other requests of its batch (a shared buffer interleaves them and
            // changes the order in which attention sums, enough to flip a greedy near-tie).
            kvUnified: (opts.sequences ?? 1) === 1,
          }))(),
      ]);
      // keep what did load, so the catch below frees it when the other failed
      if (p.status === 'fulfilled') projector = p.value;
      if (c.status === 'fulfilled') context = c.value;
      if (p.status === 'rejected') throw p.reason;
      if (c.status === 'rejected') throw c.reason;
      const [proj, ctx] = [p.value, c.value];
      progress('projector')(1);
      progress('context')(1);
      throwIfAborted(opts.signal, 'load');
      const variant = opts.variant ?? detectVariant(model, proj);
      const ids = await LlavaMed.promptIds(model, variant);
      // Each sequence must hold an image and the tokens around it (v0: <im_start>, <im_end>, then the question).
      const perSeq = ctx.sequence(0).capacity;
      if (proj.imageTokens + 2 > perSeq) {
        throw llavaError(
          'ERR_INVALID_ARGUMENT',
          `contextSize ${ctx.contextSize} gives each of the ${ctx.sequences} sequence(s) ${perSeq} positions, which cannot hold one image (${proj.imageTokens} tokens) and a question; use a contextSize of at least ${ctx.sequences * (proj.imageTokens + 64)}.`,
        );
      }
      return new LlavaMed(model, proj, ctx, variant, ids, opts.maxImagePixels ?? DEFAULTS.maxImagePixels, opts.imageCache ?? DEFAULTS.imageCache, removeLogger);
    } catch (e) {
      await Promise.all([context?.dispose(), projector?.dispose(), model?.dispose()]);
      removeLogger?.();
      throw e;
    }
  }

  private static async promptIds(model: Model, variant: Variant): Promise<PromptIds> {
    const meta = model.metadata;
    if (variant === 'v1.5') return { bos: model.info.bos, eos: model.info.eos };
    const single = async (text: string): Promise<number> => {
      const t = await model.tokenize(text, { addSpecial: false, parseSpecial: true });
      if (t.length !== 1) {
        throw llavaError('ERR_MMPROJ_MISMATCH', `The model's vocabulary has no single ${text} token, so it is not a LLaVA-Med v0 model (pass variant: 'v1.5' if it is v1.5).`);
      }
      return t[0];
    };
    // The original tokenizer prepended `</s>` (special_tokens_map.json says bos_token "</s>");
    // our converter records the id it found in the delta's files.
    const bosMeta = meta['llava_med.prompt_bos_token_id'];
    const bos = bosMeta !== undefined ? Number(bosMeta) : model.info.eos;
    return { bos, eos: model.info.eos, imStart: await single('<im_start>'), imEnd: await single('<im_end>') };
  }

  /** True once dispose() was called; every later call is `ERR_DISPOSED`. */
  get disposed(): boolean {
    return this.queue.isClosed;
  }

  /** Tokens one image occupies (256 for v0, 576 for v1.5). */
  get imageTokens(): number {
    return this.#projector.imageTokens;
  }

  /** Parallel sequences (the most requests one askBatch step advances together). */
  get sequences(): number {
    return this.#context.sequences;
  }

  /**
   * Empties the KV cache: the next question decodes its whole prompt, as on a fresh instance.
   * Prompt prefixes are otherwise reused between questions (the v0 system prompt, a v1.5 image
   * handle), which gives the same answers; use this to free the cache or to time a cold prompt.
   * Runs after the calls already queued.
   */
  clearCache(): Promise<void> {
    return this.queue.run(async () => {
      for (const s of this.#sequences) await s.clear();
      this.imageCache?.clear();
    });
  }

  // ---- images ---------------------------------------------------------------------------

  private async encode(image: ImageInput, signal?: AbortSignal): Promise<ImageEmbedding> {
    // sharp decodes (async); one native call converts the samples and does the Pillow-exact pad/resize/crop
    // on the libuv pool (native/image.cpp): the event loop never waits, and no worker isolate is kept.
    const px = await loadAndPreprocess({ input: image, maxPixels: this.maxImagePixels, preprocess: { variant: this.variant, imageSize: this.#projector.imageSize }, signal });
    throwIfAborted(signal, 'image encode');
    return this.#projector.encode(px.data, px.width, px.height, { signal });
  }

  /** Encodes an image once; pass the handle to ask/stream/score/chat to skip the encoder. */
  async embedImage(image: ImageInput, opts: { signal?: AbortSignal } = {}): Promise<ImageHandle> {
    opts = parseOptions(EmbedImageOptionsSchema, plainOptions(opts, 'the embedImage options'), 'embedImage');
    this.queue.assertOpen();
    const e = await this.encode(image, opts.signal).catch((err: unknown) => {
      this.queue.assertOpen(); // stopped by dispose(): say so in this instance's words
      throw err;
    });
    if (this.queue.isClosed) {
      // dispose() ran while this image was encoding: nothing would free it later.
      e.dispose();
      this.queue.assertOpen();
    }
    const h = new ImageHandle(e, this);
    this.images.add(h);
    return h;
  }

  /** @internal */
  async releaseImage(h: ImageHandle): Promise<void> {
    if (h.embedding.disposed) return;
    if (!this.queue.isClosed) await this.queue.run(() => this.forget(h.embedding));
    this.images.delete(h);
    h.embedding.dispose();
  }

  /** Drops `image` (and what follows it) from every sequence: it is about to be disposed. */
  private async forget(image: ImageEmbedding): Promise<void> {
    for (const s of this.#sequences) await s.forget(image);
  }

  /**
   * The embedding to ask about: a handle's, a cached one (imageCache), or one encoded for this call.
   * `release` runs when the call ends, inside the scheduler's loop, with the sequence it ran on:
   * an image encoded for one call is dropped from that sequence and freed.
   */
  private async resolveImage(image: ImageArg, signal?: AbortSignal): Promise<{ embedding: ImageEmbedding; fresh: boolean; release?: (seq: Sequence | undefined) => Promise<void> }> {
    if (image instanceof ImageHandle) {
      if (!image.belongsTo(this)) throw llavaError('ERR_INVALID_ARGUMENT', 'This image handle was made by another LlavaMed instance.');
      if (image.disposed) throw llavaError('ERR_DISPOSED', 'This image handle has been disposed; call embedImage again.');
      return { embedding: image.embedding, fresh: false };
    }
    if (this.imageCache && image instanceof Uint8Array) {
      const c = await this.imageCache.acquire(image, () => this.encode(image, signal));
      return { embedding: c.embedding, fresh: c.fresh, release: async () => c.release() };
    }
    const embedding = await this.encode(image, signal);
    return {
      embedding,
      fresh: true,
      release: async (seq) => {
        if (seq) await seq.forget(embedding);
        embedding.dispose();
      },
    };
  }

  // ---- prompts --------------------------------------------------------------------------

  private async promptItems(embedding: ImageEmbedding, history: readonly ChatTurn[]): Promise<SequenceItem[]> {
    const layout = await withTokenizer(this.#model, (tok) =>
      this.variant === 'v0'
        ? buildV0Chat(tok, { bos: this.ids.bos, imStart: this.ids.imStart!, imEnd: this.ids.imEnd! }, history)
        : buildV15Chat(tok, { bos: this.ids.bos, eos: this.ids.eos }, history),
    );
    return [...layout.before, embedding, ...layout.after];
  }

  private samplerFor(opts: GenerationOptions): Sampler {
    const d = GENERATION_DEFAULTS[this.variant];
    return this.#context.createSampler({
      temperature: opts.temperature ?? d.temperature,
      topK: opts.topK ?? d.topK,
      topP: opts.topP ?? d.topP,
      minP: opts.minP ?? 0,
      repeatPenalty: opts.repeatPenalty ?? 1,
      seed: opts.seed ?? Math.floor(Math.random() * 0xffffffff),
    });
  }

  private generationLimits(opts: GenerationOptions): { maxTokens: number; stop: string[] } {
    const d = GENERATION_DEFAULTS[this.variant];
    const maxTokens = opts.maxTokens ?? d.maxTokens;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw llavaError('ERR_INVALID_ARGUMENT', 'maxTokens must be an integer >= 1.');
    const stop = opts.stop ?? [...d.stop];
    if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string')) throw llavaError('ERR_INVALID_ARGUMENT', 'stop must be an array of strings.');
    return { maxTokens, stop };
  }

  /** Runs one conversation on sequence 0, with the instance queue held. */
  private async run(
    image: ImageArg,
    history: readonly ChatTurn[],
    opts: GenerationOptions,
    onText?: (t: string) => void,
    shouldStop?: () => boolean,
  ): Promise<Answer> {
    opts = parseOptions(GenerationOptionsSchema, plainOptions(opts, 'the generation options'), 'generation options');
    const limits = this.generationLimits(opts);
    validateQuestion(history[history.length - 1]?.question);
    const [answer] = await this.runJobs([{ image, history, onText: onText ?? opts.onTextChunk, shouldStop }], opts, limits);
    return answer;
  }

  /**
   * Answers several questions at once on the parallel sequences of the context (up to the
   * `sequences` the instance was loaded with; the others start as sequences free up, between two
   * tokens of the running ones): all running sequences advance together in one batched step per
   * token. Each request goes to the free sequence whose cached prompt prefix matches it best (the
   * v0 system prompt, a v1.5 image handle). Each sequence has its own KV buffer, so an answer does
   * not depend on the other requests beside it. At temperature 0 it usually equals a sequential
   * ask(), but not always: a step over several sequences uses other matrix kernels than a
   * one-sequence step, which round differently and can flip a near-tie. Results come back in
   * request order; a failed request stops the ones after it and rejects the call with the error of the
   * first failed request in order.
   */
  async askBatch(requests: readonly { image: ImageArg; question: string }[], opts: GenerationOptions = {}): Promise<Answer[]> {
    if (!Array.isArray(requests)) throw llavaError('ERR_INVALID_ARGUMENT', 'askBatch expects an array of { image, question }.');
    opts = parseOptions(GenerationOptionsSchema, plainOptions(opts, 'the generation options'), 'askBatch options');
    requests = readArg(() => requests.map((r) => ({ image: r?.image, question: r?.question })), 'the askBatch requests');
    requests.forEach((r) => validateQuestion(r.question));
    const limits = this.generationLimits(opts);
    return this.runJobs(requests.map((r) => ({ image: r.image, history: [{ question: r.question }] })), opts, limits);
  }

  /**
   * The one answering path: each job goes to the scheduler, which loads its prompt into a free
   * sequence (reusing a cached prefix) between two steps and generates it together with the others.
   */
  private async runJobs(
    jobs: readonly { image: ImageArg; history: readonly ChatTurn[]; onText?: (t: string) => void; shouldStop?: () => boolean }[],
    opts: GenerationOptions,
    limits: { maxTokens: number; stop: string[] },
  ): Promise<Answer[]> {
    this.queue.assertOpen();
    const t0 = performance.now();
    // One failed request fails a batch: the requests after it are stopped rather than left running, those
    // before it go on, and the error is that of the first failed request in order, not of the first to
    // fail (an error must not depend on timing; the first failing request is never stopped by another).
    const stops = jobs.length > 1 ? jobs.map(() => new AbortController()) : undefined;
    const runs = jobs.map((job, i) => {
      const stop = stops?.[i]?.signal;
      const signal = stop ? (opts.signal ? AbortSignal.any([opts.signal, stop]) : stop) : opts.signal;
      let encodeMs = 0;
      return this.queue
        .submit({
          prompt: async (sig) => {
            const img = await this.resolveImage(job.image, sig);
            encodeMs = img.fresh ? img.embedding.encodeMs : 0;
            try {
              return { items: await this.promptItems(img.embedding, job.history), release: img.release };
            } catch (e) {
              await img.release?.(undefined);
              throw e;
            }
          },
          sampler: () => this.samplerFor(opts),
          ...limits,
          onText: job.onText,
          shouldStop: job.shouldStop,
          signal,
        })
        .then(
          (r) => this.toAnswer(r, encodeMs, t0),
          (e: unknown) => {
            for (const later of stops?.slice(i + 1) ?? []) if (!later.signal.aborted) later.abort(e);
            throw e;
          },
        );
    });
    const answers = await allInOrder(...runs);
    // With stopOnAbortSignal the caller's abort during generation ends the answers (stopReason
    // 'aborted') instead of rejecting; an abort before the first token, or dispose(), still rejects.
    if (!opts.stopOnAbortSignal) throwIfAborted(opts.signal, 'generation');
    return answers;
  }

  private toAnswer(r: ScheduledResult, encodeMs: number, t0: number): Answer {
    return {
      text: this.variant === 'v0' ? postprocessV0(r.text) : postprocessV15(r.text),
      tokens: r.tokens,
      stopReason: r.stopReason,
      timings: {
        imageEncodeMs: encodeMs,
        imageTokens: r.load.imageTokens,
        imageDecodeMs: r.load.imageDecodeMs,
        promptTokens: r.load.promptTokens,
        promptMs: r.load.promptMs,
        reusedTokens: r.load.reused,
        copiedTokens: r.load.copied,
        generatedTokens: r.tokens.length,
        generateMs: r.ms,
        totalMs: performance.now() - t0,
      },
    };
  }

  /** Answers one question about one image. */
  ask(image: ImageArg, question: string, opts: GenerationOptions = {}): Promise<Answer> {
    return this.run(image, [{ question }], opts);
  }

  /**
   * Streams the answer as it is generated. Breaking out of the loop stops generation; the
   * final text equals what ask() returns (v0: cut at '###'), except that leading/trailing
   * whitespace is streamed as generated.
   */
  stream(image: ImageArg, question: string, opts: GenerationOptions = {}): AsyncIterableIterator<string> {
    return streamFrom((onText, shouldStop) => this.run(image, [{ question }], opts, onText, shouldStop));
  }

  /** A multi-turn conversation about one image; the KV cache is reused across turns. */
  chat(image: ImageArg): ChatSession {
    this.queue.assertOpen();
    return new ChatSession(this, image);
  }

  /** @internal used by ChatSession */
  runTurn(image: ImageArg, history: readonly ChatTurn[], opts: GenerationOptions, onText?: (t: string) => void, shouldStop?: () => boolean) {
    return this.run(image, history, opts, onText, shouldStop);
  }

  /**
   * Log-likelihood of each candidate answer right after the prompt (closed-set VQA scoring).
   * A candidate's tokens are its plain SentencePiece encoding, as the model would start
   * its answer.
   */
  async score(image: ImageArg, question: string, candidates: readonly string[], opts: { signal?: AbortSignal } = {}): Promise<CandidateScore[]> {
    opts = parseOptions(ScoreOptionsSchema, plainOptions(opts, 'the score options'), 'score options');
    validateQuestion(question);
    if (!Array.isArray(candidates) || candidates.length === 0 || candidates.some((c) => typeof c !== 'string' || c.length === 0)) {
      throw llavaError('ERR_INVALID_ARGUMENT', 'candidates must be a non-empty array of non-empty strings.');
    }
    for (const c of candidates) assertNoMarkers(c, this.variant, 'candidate');
    // Between two steps of the running answers, on a free sequence.
    return this.queue.withSequence(async (seq, signal) => {
      const { embedding, release } = await this.resolveImage(image, signal);
      try {
        const items = await this.promptItems(embedding, [{ question }]);
        const last = items[items.length - 1] as number;
        // The prompt minus its last token stays cached; each candidate is scored by decoding
        // [last, ...candidate] with logits everywhere: output i predicts candidate token i.
        await seq.load(items, signal);
        await seq.keep(items.length - 1);
        const out: CandidateScore[] = [];
        for (const candidate of candidates) {
          const cand = Array.from(await this.#model.tokenize(candidate, { addSpecial: false, parseSpecial: false }));
          if (cand.length + 1 > this.#context.batchSize) throw llavaError('ERR_INVALID_ARGUMENT', `candidate ${JSON.stringify(candidate)} is too long to score.`);
          try {
            await seq.decode([last, ...cand.slice(0, -1)], { logits: 'all', signal });
            const lp = await this.#context.logProbs(cand.map((_, i) => i), cand);
            out.push({ candidate, logProb: lp.reduce((a, b) => a + b, 0), tokens: cand });
          } finally {
            await seq.keep(items.length - 1);
          }
        }
        return out;
      } finally {
        await release?.(seq);
      }
    }, opts.signal);
  }

  /**
   * Stops the running call (it rejects with ERR_DISPOSED unless it had already finished),
   * rejects the queued ones with ERR_DISPOSED, then frees the context, projector, model and
   * image handles side by side on the thread pool.
   */
  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      await this.queue.close();
      for (const h of this.images) h.embedding.dispose();
      this.images.clear();
      this.imageCache?.dispose();
      // embedImage runs outside the instance queue: disposing the projector stops its encode.
      await Promise.all([this.#context.dispose(), this.#projector.dispose(), this.#model.dispose()]);
      this.removeLogger?.();
    })();
    return this.disposing;
  }

  /** Same as dispose(), for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

function validateQuestion(q: unknown): asserts q is string {
  if (typeof q !== 'string' || q.trim().length === 0) throw llavaError('ERR_INVALID_ARGUMENT', 'The question must be a non-empty string.');
}

/**
 * Multi-turn chat about one image (v0: '###'-separated Human/Assistant turns; v1.5: [INST]
 * turns). The image is encoded once, on the first turn, and each turn reuses the KV cache of
 * the conversation so far. dispose() frees the image the session encoded itself.
 */
export class ChatSession {
  private readonly turns: ChatTurn[] = [];
  private handle?: Promise<ImageHandle>;
  private readonly ownsHandle: boolean;
  /** @internal */
  constructor(private readonly med: LlavaMed, private readonly image: ImageArg) {
    this.ownsHandle = !(image instanceof ImageHandle);
    if (!this.ownsHandle) this.handle = Promise.resolve(image as ImageHandle);
  }

  /** The turns answered so far, oldest first. */
  get history(): readonly ChatTurn[] {
    return this.turns;
  }

  private imageHandle(signal?: AbortSignal): Promise<ImageHandle> {
    this.handle ??= this.med.embedImage(this.image as ImageInput, { signal }).catch((e) => {
      this.handle = undefined; // a failed encode (e.g. aborted) may be retried by the next turn
      throw e;
    });
    return this.handle;
  }

  /**
   * Asks the next question; the answer is appended to {@link ChatSession.history}. Errors are those of
   * {@link LlavaMed.ask}; a failed turn is not added to the history.
   */
  async ask(question: string, opts: GenerationOptions = {}): Promise<Answer> {
    const a = await this.med.runTurn(await this.imageHandle(opts.signal), [...this.turns, { question }], opts);
    this.turns.push({ question, answer: a.text });
    return a;
  }

  /** Like {@link ChatSession.ask}, streaming the answer's text as {@link LlavaMed.stream} does. */
  stream(question: string, opts: GenerationOptions = {}): AsyncIterableIterator<string> {
    return streamFrom(async (onText, shouldStop) => {
      const r = await this.med.runTurn(await this.imageHandle(opts.signal), [...this.turns, { question }], opts, onText, shouldStop);
      this.turns.push({ question, answer: r.text });
      return r;
    });
  }

  /** Frees the image this session encoded itself (a handle passed in stays the caller's). Idempotent. */
  async dispose(): Promise<void> {
    if (this.ownsHandle && this.handle) {
      const h = await this.handle.catch(() => undefined);
      this.handle = undefined;
      await h?.dispose();
    }
  }

  /** Same as dispose(), for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/** Adapts a callback-driven generation into an async iterator whose return() stops it. */
function streamFrom(start: (onText: (t: string) => void, shouldStop: () => boolean) => Promise<unknown>): AsyncIterableIterator<string> {
  const chunks: string[] = [];
  let wake: (() => void) | undefined;
  let stopped = false;
  let finished = false;
  let failure: unknown;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  const done = start(
    (t) => {
      chunks.push(t);
      notify();
    },
    () => stopped,
  ).then(
    () => {
      finished = true;
      notify();
    },
    (e) => {
      failure = e;
      finished = true;
      notify();
    },
  );
  const it: AsyncIterableIterator<string> = {
    async next() {
      for (;;) {
        if (chunks.length > 0) return { value: chunks.shift()!, done: false };
        if (finished) {
          if (failure) throw failure;
          return { value: undefined, done: true };
        }
        await new Promise<void>((r) => (wake = r));
      }
    },
    async return() {
      stopped = true;
      await done;
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}
