/** A loaded language model (llama_model): metadata, vocabulary, tokenizer. */
import { stat } from 'node:fs/promises';
import { DEFAULTS } from '../defaults.js';
import { llavaError, throwIfAborted } from '../errors.js';
import { loadAddon } from './binding.js';
import { isGpuDevice, resolveGpuLayers, type GpuLayers } from './gpu-layers.js';
import { checkModelFile, type ModelFileInfo } from './gguf-check.js';
import { AbortLink, OperationQueue, abortedError, fromNative } from './lifecycle.js';
import type { NativeAddon, NativeModel, NativeModelInfo } from './native-types.js';

/** How weights are read: 'none' copies them into memory, 'mmap' maps the file, 'auto' lets llama.cpp choose (mmap where supported). */
export type LoadMode = 'auto' | 'mmap' | 'none';

export interface ModelLoadOptions {
  /** Layers to offload to a GPU backend: a number (default 0), 'max' or 'auto' (what fits; 0 without a GPU). */
  gpuLayers?: GpuLayers;
  /** 'none' reads the weights into memory (on transparent huge pages on Linux, see LlavaMedOptions.loadMode); 'mmap' maps the file (BENCHMARKS.md compares them). */
  loadMode?: LoadMode;
  /** Only the vocabulary: for tokenization without weights. */
  vocabOnly?: boolean;
  onProgress?: (fraction: number) => void;
  signal?: AbortSignal;
  /**
   * @internal The result of checkModelFile(path) when the caller has just run it (LlavaMed.load checks
   * both files' headers before any weights are read): parsing a 32k-token vocabulary again costs
   * 50-120 ms of the load.
   */
  checked?: ModelFileInfo;
}

export type ModelInfo = Omit<NativeModelInfo, 'metadata'>;

export class Model {
  private readonly queue = new OperationQueue('model');
  private disposing?: Promise<void>;

  private constructor(
    /** @internal */ readonly native: NativeModel,
    readonly path: string,
    readonly file: ModelFileInfo,
    readonly info: ModelInfo,
    readonly metadata: Readonly<Record<string, string>>,
    /** @internal */ readonly addon: NativeAddon,
    /** The layer count given to llama.cpp after resolving 'auto' / 'max' (-1 = all). */
    readonly gpuLayers: number,
    /** Whether layers went to a GPU device (a GPU backend is built in and gpuLayers is not 0). */
    readonly offloaded: boolean,
  ) {}

  static async load(path: string, opts: ModelLoadOptions = {}): Promise<Model> {
    throwIfAborted(opts.signal, 'model load');
    // Checked before any file is read; 'auto' is resolved once the addon and the header are at hand.
    const gpuSetting = opts.gpuLayers ?? DEFAULTS.gpuLayers;
    resolveGpuLayers(gpuSetting === 'auto' ? 0 : gpuSetting, { devices: [], modelBytes: 0, nLayer: 0 });
    const loadMode = opts.loadMode ?? DEFAULTS.loadMode;
    if (!['auto', 'mmap', 'none'].includes(loadMode)) throw llavaError('ERR_INVALID_ARGUMENT', `loadMode must be 'auto', 'mmap' or 'none', not ${String(loadMode)}.`);
    if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw llavaError('ERR_INVALID_ARGUMENT', 'onProgress must be a function.');
    const file = opts.checked?.header.path === path && !opts.vocabOnly ? opts.checked : await checkModelFile(path, { vocabOnly: opts.vocabOnly });
    const addon = loadAddon();
    const devices = addon.backends();
    const gpuLayers = resolveGpuLayers(opts.gpuLayers, { devices, modelBytes: opts.gpuLayers === 'auto' ? (await stat(path)).size : 0, nLayer: blockCount(file) });
    const offloaded = gpuLayers !== 0 && devices.some(isGpuDevice);
    using link = new AbortLink(opts.signal);
    // Native progress arrives through a thread-safe function, which may be delivered after the
    // load's promise settles: report 0 first and 1 last from here, and drop late updates, so
    // callers see a complete, ordered sequence.
    let last = -1;
    let settled = false;
    const report = (p: number) => {
      if (settled || !opts.onProgress || p < last) return;
      last = p;
      opts.onProgress(p);
    };
    report(0);
    let native: NativeModel;
    try {
      native = await addon.loadModel(path, { gpuLayers, loadMode, vocabOnly: opts.vocabOnly ?? false }, opts.onProgress ? report : undefined, link.flag);
      if (last < 1) report(1);
      settled = true;
    } catch (e) {
      settled = true;
      if (link.aborted) throw abortedError('model load', opts.signal);
      throw fromNative(e);
    }
    if (link.aborted) {
      await native.dispose();
      throw abortedError('model load', opts.signal);
    }
    const { metadata, ...info } = native.info();
    return new Model(native, path, file, info, metadata, addon, gpuLayers, offloaded);
  }

  get disposed(): boolean {
    return this.queue.isClosed;
  }

  /** @internal For wrappers that need the live native handle. */
  nativeHandle(): NativeModel {
    this.queue.assertOpen();
    return this.native;
  }

  /** SentencePiece/BPE tokenization. `parseSpecial` lets `<im_start>` and the like become single tokens. */
  async tokenize(text: string, opts: { addSpecial?: boolean; parseSpecial?: boolean } = {}): Promise<Int32Array> {
    if (typeof text !== 'string') throw llavaError('ERR_INVALID_ARGUMENT', 'text must be a string.');
    return this.queue.run(() => this.native.tokenize(text, opts.addSpecial ?? false, opts.parseSpecial ?? false));
  }

  /** Token ids back to text. `special` renders control tokens such as `</s>`. */
  async detokenize(tokens: ArrayLike<number>, opts: { special?: boolean } = {}): Promise<string> {
    const ids = this.checkTokens(tokens);
    const buf = await this.queue.run(() => this.native.detokenize(ids, opts.special ?? false));
    return buf.toString('utf8');
  }

  /** The raw bytes of each token (a piece may hold part of a UTF-8 character). */
  async tokenPieces(tokens: ArrayLike<number>, opts: { special?: boolean } = {}): Promise<Buffer[]> {
    const ids = this.checkTokens(tokens);
    return this.queue.run(() => this.native.tokenPieces(ids, opts.special ?? false));
  }

  private checkTokens(tokens: ArrayLike<number>): Int32Array {
    if (tokens === null || typeof tokens !== 'object' || typeof tokens.length !== 'number') {
      throw llavaError('ERR_INVALID_ARGUMENT', 'tokens must be an array of token ids.');
    }
    const ids = Int32Array.from(tokens as ArrayLike<number>);
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] !== tokens[i] || ids[i] < 0 || ids[i] >= this.info.nVocab) {
        throw llavaError('ERR_INVALID_ARGUMENT', `token ${String(tokens[i])} at index ${i} is not a valid id (vocabulary size ${this.info.nVocab}).`);
      }
    }
    return ids;
  }

  /**
   * Rejects the queued calls, lets a running tokenizer call finish (they are short), then frees
   * the weights off the JS thread. Idempotent.
   */
  dispose(): Promise<void> {
    this.disposing ??= this.queue.close().then(() => this.native.dispose());
    return this.disposing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}

/** The transformer block count from the GGUF header (`<arch>.block_count`); 0 when absent. */
function blockCount(file: ModelFileInfo): number {
  const v = file.header.kv.get(`${file.architecture}.block_count`)?.value;
  return typeof v === 'number' || typeof v === 'bigint' ? Number(v) : 0;
}
