/**
 * Q/K row permutation from HF's rotate_half RoPE layout to llama.cpp's adjacent-pair (NORM) layout,
 * as conversion/llama.py does (llama-cpp-notes §5.4):
 *   W.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2).reshape(W.shape)
 * i.e. new_row[h*hd + 2*i + j] = old_row[h*hd + j*(hd/2) + i].  K uses n_head_kv (GQA).
 */
import { llavaError } from '../errors.js';

export function permuteQK(data: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  if (rows * cols !== data.length) {
    throw llavaError('ERR_SHAPE_MISMATCH', `permuteQK: ${data.length} values is not ${rows}x${cols}.`);
  }
  if (rows % nHead !== 0 || (rows / nHead) % 2 !== 0) {
    throw llavaError('ERR_SHAPE_MISMATCH', `permuteQK: ${rows} rows cannot be split into ${nHead} heads of even size.`);
  }
  const hd = rows / nHead;
  const half = hd / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < nHead; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * hd + j * half + i) * cols;
        const dst = (h * hd + 2 * i + j) * cols;
        out.set(data.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}
