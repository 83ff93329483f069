/**
 * Streams planned tensors into a GgufWriter: declare every tensor, write the header, then produce,
 * encode and write one tensor at a time, checking the AbortSignal in between. Any failure or abort
 * discards the temporary file (GgufWriter.abort), so a half-written GGUF never appears under its name.
 */
import { throwIfAborted } from '../errors.js';
import { llavaError } from '../errors.js';
import { f32ToF16Buffer, quantizeQ8_0 } from '../formats/half.js';
import { GgmlType, GgufWriter, tensorByteSize } from '../formats/gguf.js';

export interface PlannedTensor {
  /** GGUF name. */
  name: string;
  type: GgmlType;
  /** PyTorch order; the writer gets the reverse (ggml ne). */
  shape: readonly number[];
  produce(): Promise<Float32Array>;
}

export interface EmitProgress {
  tensor: string;
  tensorsDone: number;
  tensorsTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

export function encodeTensor(data: Float32Array, type: GgmlType, name: string): Buffer {
  switch (type) {
    case GgmlType.F32:
      // Float32Array is little-endian on every platform Node runs on.
      return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    case GgmlType.F16:
      return f32ToF16Buffer(data);
    case GgmlType.Q8_0:
      return quantizeQ8_0(data);
    default:
      throw llavaError('ERR_CONVERT', `Tensor ${name}: cannot encode ggml type ${GgmlType[type]} here.`);
  }
}

/** Index of the first NaN or ±Infinity in `v`, or -1 (x - x is 0 for every finite x, NaN otherwise). */
export function firstNonFinite(v: Float32Array): number {
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (x - x !== 0) return i;
  }
  return -1;
}

/** Index of the first F16 infinity or NaN (exponent bits all set) in encoded F16 bytes, or -1. */
export function firstF16NonFinite(b: Buffer): number {
  const h = b.byteOffset % 2 === 0 ? new Uint16Array(b.buffer, b.byteOffset, b.byteLength >> 1) : new Uint16Array(Uint8Array.from(b).buffer);
  for (let i = 0; i < h.length; i++) if ((h[i]! & 0x7c00) === 0x7c00) return i;
  return -1;
}

function nonFinite(name: string, what: string): never {
  throw llavaError('ERR_CONVERT', `Tensor ${name} ${what}. Pass allowNonFinite: true (CLI: --allow-non-finite) to write it anyway; llama.cpp would then compute NaN answers from it.`);
}

export function ggmlNe(shape: readonly number[]): number[] {
  return [...shape].reverse();
}

/**
 * Writes `plan` after the KVs already added to `writer`, then finish()es it (fsync + rename).
 * The writer is aborted on any error, including an abort of `signal`.
 */
export async function emitTensors(
  writer: GgufWriter,
  plan: readonly PlannedTensor[],
  opts: { signal?: AbortSignal | undefined; onTensor?: ((p: EmitProgress) => void) | undefined; what: string; allowNonFinite?: boolean | undefined },
): Promise<void> {
  try {
    let bytesTotal = 0;
    for (const t of plan) {
      writer.addTensorInfo(t.name, t.type, ggmlNe(t.shape));
      bytesTotal += tensorByteSize(t.type, ggmlNe(t.shape));
    }
    throwIfAborted(opts.signal, opts.what);
    await writer.writeHeader();
    let bytesDone = 0;
    for (let i = 0; i < plan.length; i++) {
      throwIfAborted(opts.signal, opts.what);
      const t = plan[i]!;
      const values = await t.produce();
      const expected = t.shape.reduce((a, b) => a * b, 1);
      if (values.length !== expected) {
        throw llavaError('ERR_SHAPE_MISMATCH', `Tensor ${t.name}: produced ${values.length} values for shape [${t.shape.join(', ')}].`);
      }
      // NaN/Inf weights (a damaged download, a diverged checkpoint) are refused, naming the tensor;
      // so are finite values that F16 cannot hold (|x| > 65504 becomes Inf).
      if (!opts.allowNonFinite) {
        const i = firstNonFinite(values);
        if (i >= 0) nonFinite(t.name, `holds a non-finite value (${values[i]} at flat index ${i}): the checkpoint is damaged (download it again) or was saved after training diverged`);
      }
      const bytes = encodeTensor(values, t.type, t.name);
      if (!opts.allowNonFinite && t.type === GgmlType.F16) {
        const i = firstF16NonFinite(bytes);
        if (i >= 0) nonFinite(t.name, `holds ${values[i]} at flat index ${i}, beyond F16's range (±65504); convert with outtype 'f32'`);
      }
      await writer.writeTensor(t.name, bytes);
      bytesDone += bytes.byteLength;
      opts.onTensor?.({ tensor: t.name, tensorsDone: i + 1, tensorsTotal: plan.length, bytesDone, bytesTotal });
    }
    throwIfAborted(opts.signal, opts.what);
    await writer.finish();
  } catch (e) {
    await writer.abort();
    throw e;
  }
}
