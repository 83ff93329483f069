/**
 * 16-bit float codecs and the Q8_0 block quantizer, bit-exact with the references the GGUF files are
 * compared against: numpy's `astype(float16)` (round to nearest even), gguf-py's BF16 (RNE, quiet NaN)
 * and ggml's `quantize_row_q8_0_ref`. Node 20 has no Float16Array / Math.f16round, hence bit twiddling.
 */
import { llavaError } from '../errors.js';

// One scratch word shared by the scalar helpers to reinterpret float32 <-> uint32 bits.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** float32 bit pattern -> binary16 bit pattern, round to nearest even (port of numpy's npy_floatbits_to_halfbits). */
export function f32BitsToF16Bits(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const fexp = f & 0x7f800000;
  let fsig = f & 0x007fffff;

  // Exponent overflow (|x| >= 65536), infinity or NaN.
  if (fexp >= 0x47800000) {
    if (fexp === 0x7f800000 && fsig !== 0) {
      // NaN: keep the top payload bits like numpy, but never let it collapse into infinity.
      let ret = 0x7c00 + (fsig >>> 13);
      if (ret === 0x7c00) ret++;
      return sign + ret;
    }
    return sign + 0x7c00;
  }

  // Result is a half subnormal or zero.
  if (fexp <= 0x38000000) {
    if (fexp < 0x33000000) return sign; // below half the smallest subnormal: signed zero
    const e = fexp >>> 23;
    fsig += 0x00800000; // make the implicit leading bit explicit
    const shift = 113 - e; // 1..11 extra bits dropped for subnormals
    const lost = fsig & ((1 << shift) - 1);
    fsig >>>= shift;
    // Round half to even: add half an ulp unless it is an exact tie on an even result.
    if ((fsig & 0x3fff) !== 0x1000 || lost !== 0) fsig += 0x1000;
    // A carry into the exponent field turns the subnormal into the smallest normal: correct.
    return sign + (fsig >>> 13);
  }

  // Normal case.
  const hexp = (fexp - 0x38000000) >>> 13;
  if ((fsig & 0x3fff) !== 0x1000) fsig += 0x1000;
  // A carry from the significand bumps the exponent; at the top it produces +-inf, which is correct.
  return sign + ((hexp + (fsig >>> 13)) & 0xffff);
}

/** binary16 bit pattern -> float32 value (exact). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const sig = h & 0x3ff;
  if (exp === 0) return sign * sig * 2 ** -24;
  if (exp === 0x1f) return sig === 0 ? sign * Infinity : NaN;
  return sign * (1024 + sig) * 2 ** (exp - 25);
}

/** Round a number to float32, then to binary16; returns the 16-bit pattern. */
export function f32ToF16(x: number): number {
  scratchF32[0] = x;
  return f32BitsToF16Bits(scratchU32[0]!);
}

/** The float32 value of a binary16 bit pattern (alias of f16BitsToF32 for symmetry). */
export function f16ToF32(h: number): number {
  return f16BitsToF32(h & 0xffff);
}

/** float32 -> bfloat16 bit pattern, round to nearest even, NaN forced quiet (= gguf-py quants.BF16). */
export function f32ToBf16(x: number): number {
  scratchF32[0] = x;
  return f32BitsToBf16Bits(scratchU32[0]!);
}

export function f32BitsToBf16Bits(u: number): number {
  if ((u & 0x7fffffff) >>> 0 > 0x7f800000) u = ((u & 0xffff0000) | 0x400000) >>> 0;
  // Plain number arithmetic: u + 0x8000 may exceed 2^32 only for NaN patterns, handled above.
  return Math.floor((u + 0x7fff + ((u >>> 16) & 1)) / 65536) & 0xffff;
}

/** bfloat16 bit pattern -> float32 value (exact: the upper half of a float32). */
export function bf16ToF32(b: number): number {
  scratchU32[0] = (b & 0xffff) << 16;
  return scratchF32[0]!;
}

// A 65536-entry table makes bulk f16 decoding a single lookup per element (256 KiB, built on first use).
let f16Table: Float32Array | undefined;
function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
    // Keep NaN payloads bit-exact (JS NaN would canonicalise them): sign/exp bits all ones + payload << 13.
    const u = new Uint32Array(f16Table.buffer);
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) u[h] = (((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0;
    }
  }
  return f16Table;
}

function checkEven(buf: Uint8Array, what: string): void {
  if (buf.byteLength % 2 !== 0) {
    throw llavaError('ERR_INVALID_ARGUMENT', `${what}: byte length ${buf.byteLength} is odd; 16-bit data needs an even number of bytes.`);
  }
}

/** Float32Array -> little-endian binary16 bytes (numpy astype(float16)). */
export function f32ToF16Buffer(src: Float32Array): Buffer {
  const out = Buffer.allocUnsafe(src.length * 2);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) {
    const h = f32BitsToF16Bits(bits[i]!);
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = h >>> 8;
  }
  return out;
}

/**
 * Rounds every value to the nearest binary16 (ties to even) in place, keeping float32 storage: the
 * values a float16 tensor would hold (PyTorch `.half()`, `torch_dtype=torch.float16`), overflow to
 * ±inf included. The fp16 normal range takes a bit-level fast path; the rest goes through
 * f32BitsToF16Bits.
 */
export function roundToF16InPlace(a: Float32Array): Float32Array {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const table = f16ToF32Table();
  for (let i = 0; i < u.length; i++) {
    const x = u[i]!;
    const abs = x & 0x7fffffff;
    if (abs >= 0x38800000 && abs < 0x477fe000) {
      // |x| in [2^-14, 65504): drop 13 significand bits, round half to even (a carry bumps the exponent).
      u[i] = ((x + 0xfff + ((x >>> 13) & 1)) & 0xffffe000) >>> 0;
    } else {
      a[i] = table[f32BitsToF16Bits(x)]!;
    }
  }
  return a;
}

/** Little-endian binary16 bytes -> Float32Array (exact, NaN payloads kept). */
export function f16BufferToF32(buf: Uint8Array): Float32Array {
  checkEven(buf, 'f16BufferToF32');
  const table = f16ToF32Table();
  const tableBits = new Uint32Array(table.buffer);
  const n = buf.byteLength / 2;
  const out = new Float32Array(n);
  const outBits = new Uint32Array(out.buffer);
  // Copy bit patterns, not values, so NaN payloads survive.
  for (let i = 0; i < n; i++) outBits[i] = tableBits[buf[2 * i]! | (buf[2 * i + 1]! << 8)]!;
  return out;
}

/** Little-endian bfloat16 bytes -> Float32Array (exact). */
export function bf16BufferToF32(buf: Uint8Array): Float32Array {
  checkEven(buf, 'bf16BufferToF32');
  const n = buf.byteLength / 2;
  const out = new Float32Array(n);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) outBits[i] = ((buf[2 * i]! << 16) | (buf[2 * i + 1]! << 24)) >>> 0;
  return out;
}

/** Float32Array -> little-endian bfloat16 bytes (RNE, quiet NaN; = gguf-py / ggml_compute_fp32_to_bf16). */
export function f32ToBf16Buffer(src: Float32Array): Buffer {
  const out = Buffer.allocUnsafe(src.length * 2);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) {
    const b = f32BitsToBf16Bits(bits[i]!);
    out[2 * i] = b & 0xff;
    out[2 * i + 1] = b >>> 8;
  }
  return out;
}

export const Q8_0_BLOCK = 32;
export const Q8_0_BYTES = 34;

/**
 * ggml Q8_0: blocks of 32 values -> {fp16 d; int8 qs[32]} (34 bytes), bit-exact with
 * quantize_row_q8_0_ref. Every step is float32 arithmetic in C, so each result is passed
 * through Math.fround (a double op on float32 operands, rounded once, equals the float32 op).
 */
export function quantizeQ8_0(src: Float32Array): Buffer {
  if (src.length % Q8_0_BLOCK !== 0) {
    throw llavaError('ERR_INVALID_ARGUMENT', `quantizeQ8_0: ${src.length} values is not a multiple of the block size ${Q8_0_BLOCK}; pad or keep this tensor in F16.`);
  }
  const nb = src.length / Q8_0_BLOCK;
  const out = Buffer.allocUnsafe(nb * Q8_0_BYTES);
  for (let b = 0; b < nb; b++) {
    const base = b * Q8_0_BLOCK;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const v = Math.abs(src[base + j]!);
      if (v > amax) amax = v; // MAX(a, b) = a > b ? a : b: a NaN never wins, as in C
    }
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const dh = f32ToF16(d);
    const o = b * Q8_0_BYTES;
    out[o] = dh & 0xff;
    out[o + 1] = dh >>> 8;
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const x0 = Math.fround(src[base + j]! * id);
      // roundf: half away from zero. C's float->int8 conversion of NaN is undefined; we store 0.
      const q = Number.isNaN(x0) ? 0 : Math.sign(x0) * Math.floor(Math.abs(x0) + 0.5);
      out[o + 2 + j] = q & 0xff;
    }
  }
  return out;
}

/** Inverse of quantizeQ8_0 (d * q in float32, as ggml's dequantize_row_q8_0). */
export function dequantizeQ8_0(buf: Uint8Array): Float32Array {
  if (buf.byteLength % Q8_0_BYTES !== 0) {
    throw llavaError('ERR_INVALID_ARGUMENT', `dequantizeQ8_0: ${buf.byteLength} bytes is not a multiple of the Q8_0 block size ${Q8_0_BYTES}.`);
  }
  const nb = buf.byteLength / Q8_0_BYTES;
  const out = new Float32Array(nb * Q8_0_BLOCK);
  for (let b = 0; b < nb; b++) {
    const o = b * Q8_0_BYTES;
    const d = f16BitsToF32(buf[o]! | (buf[o + 1]! << 8));
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const q = (buf[o + 2 + j]! << 24) >> 24;
      out[b * Q8_0_BLOCK + j] = Math.fround(d * q);
    }
  }
  return out;
}
