/**
 * GGUF vocabulary shared by the reader and the writer: value types, ggml tensor types with their
 * block/type sizes (ggml.h + gguf-py GGML_QUANT_SIZES of the vendored llama.cpp), and the size rules.
 */
import { llavaError } from '../errors.js';

export const GGUF_MAGIC = 'GGUF';
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_NAME is 64 including the NUL, so names must be shorter than 64 bytes. */
export const GGML_MAX_NAME = 64;
export const GGML_MAX_DIMS = 4;

/** Type tag of a GGUF metadata value, as stored in the file (GGUF v3 `gguf_type`). */
export enum GgufValueType {
  /** Unsigned 8-bit integer. */ UINT8 = 0,
  /** Signed 8-bit integer. */ INT8 = 1,
  /** Unsigned 16-bit integer. */ UINT16 = 2,
  /** Signed 16-bit integer. */ INT16 = 3,
  /** Unsigned 32-bit integer. */ UINT32 = 4,
  /** Signed 32-bit integer. */ INT32 = 5,
  /** IEEE 754 32-bit float. */ FLOAT32 = 6,
  /** Boolean (one byte, 0 or 1). */ BOOL = 7,
  /** UTF-8 string with a 64-bit byte length. */ STRING = 8,
  /** Array of one element type (see {@link GgufKv.elemType}); arrays do not nest. */ ARRAY = 9,
  /** Unsigned 64-bit integer (read as a BigInt). */ UINT64 = 10,
  /** Signed 64-bit integer (read as a BigInt). */ INT64 = 11,
  /** IEEE 754 64-bit float. */ FLOAT64 = 12,
}

/**
 * ggml tensor storage type (ggml.h `ggml_type`); the values are the numbers stored in a GGUF tensor table.
 * Block and byte sizes per type follow gguf-py's GGML_QUANT_SIZES.
 */
export enum GgmlType {
  /** 32-bit float. */ F32 = 0,
  /** IEEE half float. */ F16 = 1,
  /** 4-bit, blocks of 32 with one f16 scale. */ Q4_0 = 2,
  /** 4-bit, blocks of 32 with f16 scale and minimum. */ Q4_1 = 3,
  /** 5-bit, blocks of 32 with one f16 scale. */ Q5_0 = 6,
  /** 5-bit, blocks of 32 with f16 scale and minimum. */ Q5_1 = 7,
  /** 8-bit, blocks of 32 with one f16 scale. */ Q8_0 = 8,
  /** 8-bit, blocks of 32 with f32 scale and sum (intermediate type). */ Q8_1 = 9,
  /** 2-bit k-quant, super-blocks of 256. */ Q2_K = 10,
  /** 3-bit k-quant, super-blocks of 256. */ Q3_K = 11,
  /** 4-bit k-quant, super-blocks of 256 (Q4_K_M files are mostly this). */ Q4_K = 12,
  /** 5-bit k-quant, super-blocks of 256. */ Q5_K = 13,
  /** 6-bit k-quant, super-blocks of 256. */ Q6_K = 14,
  /** 8-bit k-quant (intermediate type). */ Q8_K = 15,
  /** 2.06 bits/weight importance quant. */ IQ2_XXS = 16,
  /** 2.31 bits/weight importance quant. */ IQ2_XS = 17,
  /** 3.06 bits/weight importance quant. */ IQ3_XXS = 18,
  /** 1.56 bits/weight importance quant. */ IQ1_S = 19,
  /** 4-bit non-linear quant, blocks of 32. */ IQ4_NL = 20,
  /** 3.44 bits/weight importance quant. */ IQ3_S = 21,
  /** 2.5 bits/weight importance quant. */ IQ2_S = 22,
  /** 4.25 bits/weight non-linear quant. */ IQ4_XS = 23,
  /** Signed 8-bit integer. */ I8 = 24,
  /** Signed 16-bit integer. */ I16 = 25,
  /** Signed 32-bit integer. */ I32 = 26,
  /** Signed 64-bit integer. */ I64 = 27,
  /** 64-bit float. */ F64 = 28,
  /** 1.75 bits/weight importance quant. */ IQ1_M = 29,
  /** bfloat16. */ BF16 = 30,
  /** Ternary quant, 1.69 bits/weight. */ TQ1_0 = 34,
  /** Ternary quant, 2.06 bits/weight. */ TQ2_0 = 35,
  /** OCP microscaling FP4, blocks of 32 with an E8M0 scale. */ MXFP4 = 39,
  /** NVIDIA FP4, blocks of 64. */ NVFP4 = 40,
  /** 1-bit, blocks of 128. */ Q1_0 = 41,
  /** 2-bit, blocks of 64. */ Q2_0 = 42,
}

const QK_K = 256;
/** [block size in elements, bytes per block]; types 4, 5, 31-33, 36-38 were removed from ggml. */
export const GGML_TYPE_SIZES: Readonly<Record<GgmlType, readonly [number, number]>> = {
  [GgmlType.F32]: [1, 4],
  [GgmlType.F16]: [1, 2],
  [GgmlType.Q4_0]: [32, 2 + 16],
  [GgmlType.Q4_1]: [32, 2 + 2 + 16],
  [GgmlType.Q5_0]: [32, 2 + 4 + 16],
  [GgmlType.Q5_1]: [32, 2 + 2 + 4 + 16],
  [GgmlType.Q8_0]: [32, 2 + 32],
  [GgmlType.Q8_1]: [32, 4 + 4 + 32],
  [GgmlType.Q2_K]: [256, 2 + 2 + QK_K / 16 + QK_K / 4],
  [GgmlType.Q3_K]: [256, 2 + QK_K / 4 + QK_K / 8 + 12],
  [GgmlType.Q4_K]: [256, 2 + 2 + QK_K / 2 + 12],
  [GgmlType.Q5_K]: [256, 2 + 2 + QK_K / 2 + QK_K / 8 + 12],
  [GgmlType.Q6_K]: [256, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16],
  [GgmlType.Q8_K]: [256, 4 + QK_K + QK_K / 8],
  [GgmlType.IQ2_XXS]: [256, 2 + QK_K / 4],
  [GgmlType.IQ2_XS]: [256, 2 + QK_K / 4 + QK_K / 32],
  [GgmlType.IQ3_XXS]: [256, 2 + QK_K / 4 + QK_K / 8],
  [GgmlType.IQ1_S]: [256, 2 + QK_K / 8 + QK_K / 16],
  [GgmlType.IQ4_NL]: [32, 2 + 16],
  [GgmlType.IQ3_S]: [256, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4],
  [GgmlType.IQ2_S]: [256, 2 + QK_K / 4 + QK_K / 16],
  [GgmlType.IQ4_XS]: [256, 2 + 2 + QK_K / 2 + QK_K / 64],
  [GgmlType.I8]: [1, 1],
  [GgmlType.I16]: [1, 2],
  [GgmlType.I32]: [1, 4],
  [GgmlType.I64]: [1, 8],
  [GgmlType.F64]: [1, 8],
  [GgmlType.IQ1_M]: [256, QK_K / 8 + QK_K / 16 + QK_K / 32],
  [GgmlType.BF16]: [1, 2],
  [GgmlType.TQ1_0]: [256, 2 + 4 * 13],
  [GgmlType.TQ2_0]: [256, 2 + 64],
  [GgmlType.MXFP4]: [32, 1 + 16],
  [GgmlType.NVFP4]: [64, 4 + 32],
  [GgmlType.Q1_0]: [128, 2 + 16],
  [GgmlType.Q2_0]: [64, 2 + 16],
};

export function isGgmlType(t: number): t is GgmlType {
  return Object.prototype.hasOwnProperty.call(GGML_TYPE_SIZES, t);
}

/** The ggml type's name (`'Q4_K'`, `'F16'`), or `'unknown(<n>)'` for a number that is not a {@link GgmlType}. Never throws. */
export function ggmlTypeName(t: number): string {
  return isGgmlType(t) ? GgmlType[t] : `unknown(${t})`;
}

export function ggufValueTypeName(t: number): string {
  return t in GgufValueType && typeof GgufValueType[t] === 'string' ? GgufValueType[t] : `unknown(${t})`;
}

export function ggmlBlockSize(t: GgmlType): number {
  return typeInfo(t)[0];
}

export function ggmlTypeSize(t: GgmlType): number {
  return typeInfo(t)[1];
}

function typeInfo(t: GgmlType): readonly [number, number] {
  if (!isGgmlType(t)) throw llavaError('ERR_INVALID_ARGUMENT', `Unknown ggml tensor type ${t}; known types are listed in GgmlType.`);
  return GGML_TYPE_SIZES[t];
}

/**
 * Bytes of a tensor with ggml shape `ne` (ne[0] fastest). Throws ERR_INVALID_ARGUMENT when ne[0] is not
 * a multiple of the block size or the size is not an exact safe integer (the caller decides whether that
 * means a corrupt file). Exact: computed in BigInt.
 */
export function tensorByteSize(type: GgmlType, ne: readonly number[]): number {
  const [blck, size] = typeInfo(type);
  if (ne.length === 0) throw llavaError('ERR_INVALID_ARGUMENT', 'tensorByteSize: shape must have at least one dimension.');
  for (const d of ne) {
    if (!Number.isSafeInteger(d) || d < 0) throw llavaError('ERR_INVALID_ARGUMENT', `tensorByteSize: dimension ${d} is not a non-negative integer.`);
  }
  if (ne[0]! % blck !== 0) {
    throw llavaError('ERR_INVALID_ARGUMENT', `tensorByteSize: ne[0] = ${ne[0]} is not a multiple of the ${ggmlTypeName(type)} block size ${blck}.`);
  }
  let n = 1n;
  for (const d of ne) n *= BigInt(d);
  const bytes = (n / BigInt(blck)) * BigInt(size);
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw llavaError('ERR_INVALID_ARGUMENT', `tensorByteSize: shape [${ne.join(', ')}] of ${ggmlTypeName(type)} is too large (${bytes} bytes).`);
  }
  return Number(bytes);
}

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** A scalar value or an array of scalars (GGUF forbids nested arrays). 64-bit integers are BigInt. */
export type GgufScalar = number | bigint | boolean | string;
/** A metadata value: a scalar, or an array of scalars of one type. */
export type GgufValue = GgufScalar | GgufScalar[];

/** One metadata entry of a GGUF header. */
export interface GgufKv {
  /** The stored value type. */
  type: GgufValueType;
  /** Element type when type === ARRAY. */
  elemType?: GgufValueType;
  /** The value as read: 64-bit integers are BigInt, BOOL is a boolean, ARRAY is a JS array. */
  value: GgufValue;
  /** The elements' bytes, for an ARRAY read with `compactArrays` naming its key (then `value` decodes them on first access). */
  compact?: GgufCompactArray;
}

/**
 * An ARRAY's elements as stored, without a JS value per element: fixed-size elements back to back
 * in `data` (little-endian, `length` × the element size); strings' bytes back to back, string i
 * being `data[offsets[i], offsets[i + 1])`.
 */
export interface GgufCompactArray {
  /** Number of elements. */
  length: number;
  /** The elements' bytes as stored in the file. */
  data: Buffer;
  /** For STRING elements: length + 1 byte offsets into `data`. */
  offsets?: Float64Array;
}

/** One row of a GGUF tensor table (the data itself is not read). */
export interface GgufTensorInfo {
  /** Tensor name, e.g. `blk.0.attn_q.weight` (shorter than 64 bytes). */
  name: string;
  /** Storage type of the tensor data. */
  type: GgmlType;
  /** ggml order: shape[0] is the fastest-varying dimension (the reverse of PyTorch's shape). */
  shape: number[];
  /** Absolute byte offset of the tensor data in the file. */
  offset: number;
  /** Size of the tensor data in bytes (from the type's block size and the shape). */
  byteSize: number;
}

/**
 * A parsed and validated GGUF header, as {@link readGgufHeader} returns it. Read the metadata with the
 * typed getters (`ggufString`, `ggufNumber`, …) rather than `kv` directly to get typed errors.
 */
export interface GgufHeader {
  /** The path the header was read from (used again by {@link readGgufTensorData}). */
  path: string;
  /** GGUF format version (2 or 3). */
  version: number;
  /** Tensor data alignment in bytes (`general.alignment`, default 32). */
  alignment: number;
  /** Metadata entries by key, in file order. */
  kv: Map<string, GgufKv>;
  /** The tensor table, in file order. */
  tensors: GgufTensorInfo[];
  /** Absolute offset of the data section (tensor offsets in the file are relative to it). */
  dataOffset: number;
  /** File size in bytes when the header was read. */
  fileSize: number;
}

/** Fixed byte size of a scalar value type; undefined for STRING and ARRAY. */
export const GGUF_SCALAR_SIZE: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1, [GgufValueType.INT8]: 1, [GgufValueType.UINT16]: 2, [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4, [GgufValueType.INT32]: 4, [GgufValueType.FLOAT32]: 4, [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8, [GgufValueType.INT64]: 8, [GgufValueType.FLOAT64]: 8,
};
