/**
 * The shared vocabulary of lib/formats: a tensor stored in some checkpoint file, read lazily.
 * Readers (safetensors, torch zip, HF folders) hand out TensorSource objects; nothing reads
 * tensor bytes until readRaw()/readF32() is called, so a 13 GB shard never sits in memory.
 */
export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Record<DType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

export interface TensorSource {
  /** Name as stored in the checkpoint (e.g. "model.layers.0.self_attn.q_proj.weight"). */
  readonly name: string;
  readonly dtype: DType;
  /** PyTorch order: shape[0] is the slowest-varying dimension. */
  readonly shape: readonly number[];
  /** numel * DTYPE_BYTES[dtype] */
  readonly byteLength: number;
  /** Which file holds it (for error messages). */
  readonly file: string;
  /** The stored bytes, little-endian, contiguous row-major. */
  readRaw(): Promise<Buffer>;
  /** The values converted to float32 (F32/F16/BF16/F64 only; ERR_FORMAT otherwise). */
  readF32(): Promise<Float32Array>;
}

/** A set of named tensors from one file or one sharded checkpoint. */
export interface CheckpointReader {
  readonly files: readonly string[];
  names(): string[];
  has(name: string): boolean;
  /** Throws ERR_FORMAT naming the tensor and the files when absent. */
  get(name: string): TensorSource;
  close(): Promise<void>;
}

/** An in-memory tensor to write (fixtures, converters). */
export interface TensorData {
  name: string;
  dtype: DType;
  shape: readonly number[];
  /**
   * Raw little-endian bytes in `dtype`, or float values to encode as `dtype` (F32/F16/BF16) — or a
   * function returning them, called once when the writer reaches this tensor: the safetensors
   * writer then holds one tensor's values at a time, so a 13 GB checkpoint is written in bounded
   * memory (the 32-layer benchmark model, bench/models.mjs).
   */
  data: TensorValues | (() => TensorValues);
}

/** The values of a {@link TensorData}. */
export type TensorValues = Buffer | Float32Array | Float64Array;

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
