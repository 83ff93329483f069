/**
 * Writing LLaVA-Med v0's single Linear projector y = W·x + b in clip.cpp's "mlp" graph, which always
 * computes mm.2 · GELU(mm.0 · x + b0) + b2 (llama-cpp-notes §0.2). With
 *   mm.0.weight = [I; −I]  (2d × d),   mm.0.bias = 0,
 *   mm.2.weight = [W | −W] (out × 2d), mm.2.bias = b,
 * the graph gives W·GELU(x) − W·GELU(−x) + b = W·x + b, because GELU(t) − GELU(−t) = t for the erf form
 * and for ggml's tanh approximation alike (x·Φ(x) − (−x)·Φ(−x) = x·(Φ(x)+Φ(−x)) = x). The trick lives in
 * the data only, so the file also runs on an unpatched upstream llama.cpp.
 */
import { llavaError } from '../errors.js';

/** [I; −I] as a row-major (2d × d) matrix. */
export function identityStack(d: number): Float32Array {
  const out = new Float32Array(2 * d * d);
  for (let i = 0; i < d; i++) {
    out[i * d + i] = 1;
    out[(d + i) * d + i] = -1;
  }
  return out;
}

/** [W | −W] as a row-major (rows × 2·cols) matrix, from W row-major (rows × cols). */
export function mirrorColumns(w: Float32Array, rows: number, cols: number): Float32Array {
  if (w.length !== rows * cols) {
    throw llavaError('ERR_SHAPE_MISMATCH', `Projector weight has ${w.length} values, expected ${rows}x${cols}.`);
  }
  const out = new Float32Array(rows * 2 * cols);
  for (let r = 0; r < rows; r++) {
    const src = w.subarray(r * cols, (r + 1) * cols);
    const base = r * 2 * cols;
    out.set(src, base);
    for (let c = 0; c < cols; c++) out[base + cols + c] = -src[c]!;
  }
  return out;
}
