/**
 * The one place for llava-med's engine defaults. Native code has none of its own: it requires every
 * field of the options objects TypeScript passes and only re-checks their types and ranges
 * (native/options.h), so a default can never differ between the two sides.
 */

/** Flash attention: 'auto' lets llama.cpp decide per device, 'on' forces it, 'off' disables it. */
export type FlashAttnMode = 'auto' | 'on' | 'off';

/** llava-med's engine defaults: what each option of {@link LlavaMedOptions} is when not given. Read-only. */
export const DEFAULTS = {
  /** Positions each sequence gets in LlavaMed: the original's model_max_length (capped by the model's n_ctx_train). */
  contextPerSequence: 2048,
  /** Context.create's KV cells when nothing is given. */
  contextSize: 2048,
  /** Logical batch (tokens per llama_decode), capped by the context size. */
  batchSize: 512,
  /** Parallel sequences of one context. */
  sequences: 1,
  /** Encoded images LlavaMed keeps by content (imageCache; 0: none). */
  imageCache: 0,
  /** Engine-level threads (Context / Projector used directly); LlavaMed uses the available cores. */
  threads: 4,
  /** KV cache element type. */
  kvCacheType: 'f16',
  /**
   * LlavaMed's flash attention on CPU: off, because llama.cpp's CPU kernel takes a split-KV path once
   * the cache holds 512 cells (greedy answers would depend on what earlier questions left behind).
   */
  flashAttnCpu: 'off',
  /** ... and with layers offloaded to a GPU. */
  flashAttnGpu: 'auto',
  /**
   * The vision encoder's attention: 'off' runs it in F32. With flash attention clip.cpp casts K and V
   * to F16, which at the real geometry (257 / 577 positions) puts the image embeddings 2–3× further from
   * the reference (measured in docs/conversion.md, "Vision encoder precision").
   */
  projectorFlashAttn: 'off',
  /** Run one encode at load so the first real image is not slower. */
  projectorWarmup: true,
  /** Largest accepted image, in pixels, checked before decoding. */
  maxImagePixels: 100_000_000,
  /** How model weights are read: 'none' copies them into memory (measured faster here). */
  loadMode: 'none',
  /** Layers offloaded to a GPU (CPU only). */
  gpuLayers: 0,
} as const satisfies Record<string, unknown>;

/** LlavaMed's flash attention default for the language model. */
export function defaultFlashAttn(gpuLayers: number | undefined): FlashAttnMode {
  return (gpuLayers ?? DEFAULTS.gpuLayers) !== 0 ? DEFAULTS.flashAttnGpu : DEFAULTS.flashAttnCpu;
}

export const FLASH_ATTN_MODES: readonly FlashAttnMode[] = ['auto', 'on', 'off'];
