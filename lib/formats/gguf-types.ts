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

export enum GgufValueType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
}

export enum GgmlType {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40, Q1_0 = 41, Q2_0 = 42,
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
export type GgufValue = GgufScalar | GgufScalar[];

export interface GgufKv {
  type: GgufValueType;
  /** Element type when type === ARRAY. */
  elemType?: GgufValueType;
  value: GgufValue;
}

export interface GgufTensorInfo {
  name: string;
  type: GgmlType;
  /** ggml order: shape[0] is the fastest-varying dimension (the reverse of PyTorch's shape). */
  shape: number[];
  /** Absolute byte offset of the tensor data in the file. */
  offset: number;
  byteSize: number;
}

export interface GgufHeader {
  path: string;
  version: number;
  alignment: number;
  kv: Map<string, GgufKv>;
  tensors: GgufTensorInfo[];
  /** Absolute offset of the data section (tensor offsets in the file are relative to it). */
  dataOffset: number;
  fileSize: number;
}

/** Fixed byte size of a scalar value type; undefined for STRING and ARRAY. */
export const GGUF_SCALAR_SIZE: Partial<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1, [GgufValueType.INT8]: 1, [GgufValueType.UINT16]: 2, [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4, [GgufValueType.INT32]: 4, [GgufValueType.FLOAT32]: 4, [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8, [GgufValueType.INT64]: 8, [GgufValueType.FLOAT64]: 8,
};
