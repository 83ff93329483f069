/** The vision encoder + projector (an mtmd context bound to a Model). */
import { DEFAULTS, FLASH_ATTN_MODES, type FlashAttnMode } from '../defaults.js';
import { llavaError, throwIfAborted } from '../errors.js';
import { checkPairing, checkProjectorFile, type ProjectorFileInfo } from './gguf-check.js';
import { AbortLink, OperationQueue, abortedError, fromNative } from './lifecycle.js';
import type { Model } from './model.js';
import type { NativeEmbedding, NativeProjector } from './native-types.js';

export interface ProjectorLoadOptions {
  /** CPU threads for the vision encoder. */
  threads?: number;
  useGpu?: boolean;
  /**
   * The vision encoder's attention. Default 'off': F32 attention. With flash attention clip.cpp casts
   * K and V to F16, which puts the image embeddings 2–3× further from the reference at the real
   * geometry (docs/conversion.md, "Vision encoder precision"); 'auto' lets mtmd decide (on, on CPU).
   */
  flashAttn?: FlashAttnMode;
  signal?: AbortSignal;
  /** @internal The result of checkProjectorFile(path) when the caller has just run it (LlavaMed.load). */
  checked?: ProjectorFileInfo;
}

/** Projected image features: nTokens rows of nEmbd floats, reusable across questions. */
export class ImageEmbedding {
  private freed = false;
  readonly #nTokens: number;
  /** @internal */
  constructor(/** @internal */ readonly native: NativeEmbedding, readonly width: number, readonly height: number) {
    this.#nTokens = native.nTokens;
  }
  /** Positions the image occupies (kept after dispose: a sequence may still list the image among the cells it holds). */
  get nTokens(): number {
    return this.#nTokens;
  }
  get nEmbd(): number {
    return this.native.nEmbd;
  }
  /** Time spent in the encoder, measured around mtmd_encode_chunk. */
  get encodeMs(): number {
    return this.native.encodeMs;
  }
  get disposed(): boolean {
    return this.freed;
  }
  /** A copy of the features, row-major [nTokens][nEmbd]. */
  toFloat32Array(): Float32Array {
    this.assertLive();
    return this.native.toFloat32Array();
  }
  /** @internal */
  assertLive(): void {
    if (this.freed) throw llavaError('ERR_DISPOSED', 'This image embedding has been disposed; encode the image again.');
  }
  dispose(): void {
    if (!this.freed) this.native.dispose();
    this.freed = true;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

export class Projector {
  private readonly queue = new OperationQueue('projector');
  private disposing?: Promise<void>;

  private constructor(
    private readonly native: NativeProjector,
    readonly model: Model,
    readonly file: ProjectorFileInfo,
    /** Tokens one image becomes (256 for v0, 576 for v1.5). */
    readonly imageTokens: number,
    readonly loadMs: number,
    /** The vision encoder's attention mode it was loaded with. */
    readonly flashAttn: FlashAttnMode,
  ) {}

  static async load(model: Model, path: string, opts: ProjectorLoadOptions = {}): Promise<Projector> {
    throwIfAborted(opts.signal, 'projector load');
    const threads = opts.threads ?? DEFAULTS.threads;
    if (!Number.isInteger(threads) || threads < 1 || threads > 1024) throw llavaError('ERR_INVALID_ARGUMENT', `threads must be an integer between 1 and 1024, got ${String(threads)}.`);
    const flashAttn = opts.flashAttn ?? DEFAULTS.projectorFlashAttn;
    if (!FLASH_ATTN_MODES.includes(flashAttn)) throw llavaError('ERR_INVALID_ARGUMENT', `projector flashAttn must be 'auto', 'on' or 'off', not ${JSON.stringify(flashAttn)}.`);
    const useGpu = opts.useGpu ?? false;
    if (typeof useGpu !== 'boolean') throw llavaError('ERR_INVALID_ARGUMENT', 'useGpu must be a boolean.');
    const file = opts.checked?.header.path === path ? opts.checked : await checkProjectorFile(path);
    checkPairing(model.file, file);
    using link = new AbortLink(opts.signal);
    let native: NativeProjector;
    try {
      native = await model.addon.loadProjector(model.nativeHandle(), path, { threads, useGpu, warmup: DEFAULTS.projectorWarmup, flashAttn }, link.flag);
    } catch (e) {
      if (link.aborted) throw abortedError('projector load', opts.signal);
      throw fromNative(e);
    }
    const n = await native.imageTokenCount(file.imageSize, file.imageSize).catch(async (e) => {
      await native.dispose();
      throw fromNative(e);
    });
    return new Projector(native, model, file, n, native.loadMs, flashAttn);
  }

  get imageSize(): number {
    return this.file.imageSize;
  }

  get disposed(): boolean {
    return this.queue.isClosed;
  }

  /**
   * Encodes RGB pixels that are already preprocessed to imageSize x imageSize (lib/image
   * does that); native code never resizes.
   */
  async encode(rgb: Uint8Array, width: number, height: number, opts: { signal?: AbortSignal } = {}): Promise<ImageEmbedding> {
    if (!(rgb instanceof Uint8Array)) return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', 'rgb must be a Uint8Array or Buffer.'));
    if (width !== this.imageSize || height !== this.imageSize || rgb.length !== width * height * 3) {
      return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', `the encoder takes ${this.imageSize}x${this.imageSize} RGB (${this.imageSize * this.imageSize * 3} bytes); got ${width}x${height} with ${rgb.length} bytes. Preprocess with lib/image first.`));
    }
    return this.queue.run(async (signal) => {
      using link = new AbortLink(signal);
      try {
        const e = await this.native.encode(rgb, width, height, link.flag);
        if (link.aborted) {
          e.dispose();
          throw abortedError('image encode', opts.signal);
        }
        return new ImageEmbedding(e, width, height);
      } catch (e) {
        if (link.aborted) throw abortedError('image encode', opts.signal);
        throw e;
      }
    }, opts.signal);
  }

  /**
   * Stops the running encode (it rejects with ERR_DISPOSED), rejects the queued calls, then
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
