/**
 * The shape of llava_med.node as the C++ side defines it (native/*.cpp). Only lib/engine
 * touches these; everything above uses the wrappers, which validate arguments first.
 */
export type AbortFlag = Int32Array;

export interface NativeModelInfo {
  description: string;
  size: number;
  nParams: number;
  nEmbd: number;
  nEmbdInp: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  nCtxTrain: number;
  nVocab: number;
  bos: number;
  eos: number;
  eot: number;
  pad: number;
  nl: number;
  addBos: boolean;
  addEos: boolean;
  loadMs: number;
  metadata: Record<string, string>;
}

export interface NativeModel {
  info(): NativeModelInfo;
  tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Promise<Int32Array>;
  detokenize(tokens: Int32Array, special: boolean): Promise<Buffer>;
  tokenPieces(tokens: Int32Array, special: boolean): Promise<Buffer[]>;
  dispose(): Promise<void>;
  readonly disposed: boolean;
}

export interface NativeEmbedding {
  readonly nTokens: number;
  readonly nEmbd: number;
  readonly encodeMs: number;
  toFloat32Array(): Float32Array;
  dispose(): void;
}

export interface NativeProjector {
  readonly loadMs: number;
  encode(rgb: Uint8Array, width: number, height: number, abort?: AbortFlag): Promise<NativeEmbedding>;
  imageTokenCount(width: number, height: number): Promise<number>;
  info(): { supportVision: boolean; nEmbd: number; useMrope: boolean };
  dispose(): Promise<void>;
  readonly disposed: boolean;
}

export interface NativeBatch {
  tokens: Int32Array;
  pos: Int32Array;
  seq: Int32Array;
  logits: Uint8Array;
}

export interface NativeSampleResult {
  tokens: Int32Array;
  pieces: Buffer[];
  eog: Uint8Array;
}

/** loadProjector's options: every field required (defaults are lib/defaults.ts; native/options.h re-checks). */
export interface NativeProjectorOptions {
  threads: number;
  useGpu: boolean;
  warmup: boolean;
  flashAttn: 'auto' | 'on' | 'off';
}

/** createContext's options: every field required (defaults are lib/defaults.ts; native/options.h re-checks). */
export interface NativeContextOptions {
  nCtx: number;
  nBatch: number;
  nUbatch: number;
  nSeqMax: number;
  threads: number;
  threadsBatch: number;
  flashAttn: 'auto' | 'on' | 'off';
  typeK: KvCacheType;
  typeV: KvCacheType;
  kvUnified: boolean;
}
/** Element type of the KV cache (llama.cpp's cache_type_k / cache_type_v). */
export type KvCacheType = 'f16' | 'f32' | 'bf16' | 'q8_0' | 'q4_0';

export interface NativePerf {
  promptMs: number;
  promptTokens: number;
  evalMs: number;
  evalTokens: number;
  graphsReused: number;
}

export interface NativeContext {
  decode(batch: NativeBatch, abort?: AbortFlag): Promise<{ ms: number }>;
  decodeEmbedding(e: NativeEmbedding, seq: number, pos: number, abort?: AbortFlag): Promise<{ ms: number }>;
  sample(samplers: NativeSampler[], idxs: Int32Array, abort?: AbortFlag): Promise<NativeSampleResult>;
  step(tokens: Int32Array, seqs: Int32Array, positions: Int32Array, samplers: NativeSampler[], abort?: AbortFlag): Promise<NativeSampleResult & { ms: number }>;
  logits(idx: number, abort?: AbortFlag): Promise<Float32Array>;
  logProbs(idxs: Int32Array, targets: Int32Array, abort?: AbortFlag): Promise<Float64Array>;
  memoryClear(): void;
  seqRm(seq: number, p0: number, p1: number): boolean;
  /** dst's cells become a copy of src's (the buffer copy runs at the next decode); the caller trims dst. */
  seqCopy(src: number, dst: number): void;
  seqPosMax(seq: number): number;
  perf(): NativePerf;
  perfReset(): void;
  setThreads(threads: number, threadsBatch: number): void;
  info(): { nCtx: number; nCtxSeq: number; nBatch: number; nUbatch: number; nSeqMax: number; nVocab: number; nEmbd: number };
  dispose(): Promise<void>;
  readonly disposed: boolean;
}

export interface NativeSamplerOptions {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  repeatLastN: number;
  seed: number;
}

export interface NativeSampler {
  accept(token: number): void;
  reset(): void;
  dispose(): void;
}

export interface NativeQuantizeOptions {
  ftype: number;
  threads?: number;
  pure?: boolean;
  allowRequantize?: boolean;
  keepF16?: string[];
}

/**
 * preprocessImage's spec (native/image.cpp): decoded samples in, Pillow-exact RGB out. 16-bit
 * samples are native-endian uint16. Output: width*height*3 bytes for 'none', imageSize^2*3 else.
 */
export interface NativeImageSpec {
  width: number;
  height: number;
  /** 1-2 = grey (+ alpha), 3-4 = RGB(A) or CMYK; bands past the third are dropped. */
  channels: number;
  depth: 8 | 16;
  /** rgb: 8-bit as is; high16: v >> 8; clip16: min(v, 255) (Pillow mode 'I'); cmyk: Pillow's cmyk2rgb. */
  convert: 'rgb' | 'high16' | 'clip16' | 'cmyk';
  /** none: conversion only; v0: shortest edge + centre crop; v1.5: expand to square with `pad`, then v0. */
  geometry: 'none' | 'v0' | 'v1.5';
  imageSize?: number;
  pad?: readonly [number, number, number];
}

export interface NativeAddon {
  setLogger(fn: ((level: string, text: string) => void) | null, minLevel: string): void;
  loadModel(
    path: string,
    /** every field but checkTensors required (defaults are lib/defaults.ts; native/options.h re-checks) */
    options: { gpuLayers: number; loadMode: 'auto' | 'mmap' | 'none' | 'mlock'; vocabOnly: boolean; checkTensors?: boolean },
    onProgress?: (p: number) => void,
    abort?: AbortFlag,
  ): Promise<NativeModel>;
  loadProjector(
    model: NativeModel,
    path: string,
    options: NativeProjectorOptions,
    abort?: AbortFlag,
  ): Promise<NativeProjector>;
  createContext(model: NativeModel, options: NativeContextOptions): Promise<NativeContext>;
  Sampler: new (model: NativeModel, options: Partial<NativeSamplerOptions>) => NativeSampler;
  quantize(input: string, output: string, options: NativeQuantizeOptions, abort?: AbortFlag): Promise<void>;
  preprocessImage(samples: Uint8Array, spec: NativeImageSpec): Promise<Buffer>;
  systemInfo(): string;
  /** ggml's devices; memory in bytes as ggml_backend_dev_memory reports it. */
  backends(): { name: string; description: string; type: string; memoryFree: number; memoryTotal: number }[];
}
