/**
 * Shared shapes of lib/convert: a tensor whose float32 values are produced on demand (read from a
 * checkpoint, or folded base+delta), the output types, and progress events.
 */

/** A tensor in HF naming whose values are computed only when read (one at a time keeps memory flat). */
export interface LazyTensor {
  /** HF name, e.g. "model.layers.0.self_attn.q_proj.weight". */
  readonly name: string;
  /** PyTorch order (shape[0] slowest). */
  readonly shape: readonly number[];
  /** Computes the values as float32, in PyTorch (row-major) order. */
  read(): Promise<Float32Array>;
}

/** Weight type of the written GGUF: 1-D tensors and norms are always F32 regardless. */
export type OutType = 'f32' | 'f16' | 'q8_0';

/** Conversion step: 'check' inputs, 'fold' base+delta (foldDelta), write the 'llm' or 'mmproj' GGUF, 'done'. */
export type ConvertPhase = 'check' | 'fold' | 'llm' | 'mmproj' | 'done';

/** A progress event of a conversion. Counts are per phase. */
export interface ConvertProgress {
  /** The current step. */
  phase: ConvertPhase;
  /** The tensor just finished (output name), if any. */
  tensor?: string;
  /** Tensors finished in this phase. */
  tensorsDone: number;
  /** Tensors this phase writes. */
  tensorsTotal: number;
  /** Bytes written to the output in this phase. */
  bytesDone: number;
  /** Bytes this phase writes. */
  bytesTotal: number;
}

/** Receives {@link ConvertProgress} events; must not throw. */
export type ProgressCallback = (p: ConvertProgress) => void;

/** Non-fatal notices (e.g. a q8_0 tensor kept in f16 because its row length is not a multiple of 32). */
export type WarningCallback = (message: string) => void;

/** LLaVA-Med release: 'v0' (LLaMA-7B delta) or 'v1.5' (Mistral-7B). */
export type LlavaMedVariant = 'v0' | 'v1.5';
