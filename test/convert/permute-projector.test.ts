import t from 'tap';
import { permuteQK } from '../../lib/convert/permute.js';
import { identityStack, mirrorColumns } from '../../lib/convert/projector.js';

t.test('Q/K permutation follows new[h*hd+2i+j] = old[h*hd+j*hd/2+i]', async (t) => {
  const heads = 3, hd = 4, cols = 2, rows = heads * hd;
  const w = Float32Array.from({ length: rows * cols }, (_, i) => i);
  const p = permuteQK(w, rows, cols, heads);
  for (let h = 0; h < heads; h++) for (let i = 0; i < hd / 2; i++) for (let j = 0; j < 2; j++) for (let c = 0; c < cols; c++) {
    t.equal(p[(h * hd + 2 * i + j) * cols + c], w[(h * hd + j * (hd / 2) + i) * cols + c]);
  }
  // head 0 rows become [0, 2, 1, 3] of the original
  t.same(Array.from(p.subarray(0, hd * cols)), [0, 1, 4, 5, 2, 3, 6, 7]);
  t.throws(() => permuteQK(w, rows, cols, 5), { code: 'ERR_SHAPE_MISMATCH' });
});

t.test('[I; -I] and [W | -W] reproduce a linear layer through GELU(t) - GELU(-t) = t', async (t) => {
  const d = 3, out = 2;
  const I = identityStack(d);
  t.same(Array.from(I), [1, 0, 0, 0, 1, 0, 0, 0, 1, -1, 0, 0, 0, -1, 0, 0, 0, -1]);
  const W = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const M = mirrorColumns(W, out, d);
  t.same(Array.from(M), [1, 2, 3, -1, -2, -3, 4, 5, 6, -4, -5, -6]);
  // tanh-GELU as ggml computes it; odd tanh makes the identity exact
  const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
  const x = [0.3, -1.7, 2.2];
  const b = [0.5, -0.25];
  const h = Array.from({ length: 2 * d }, (_, r) => gelu(x.reduce((s, xv, c) => s + I[r * d + c]! * xv, 0)));
  for (let r = 0; r < out; r++) {
    const y = h.reduce((s, hv, c) => s + M[r * 2 * d + c]! * hv, 0) + b[r]!;
    const ref = x.reduce((s, xv, c) => s + W[r * d + c]! * xv, 0) + b[r]!;
    t.ok(Math.abs(y - ref) < 1e-12, `row ${r}: ${y} vs ${ref}`);
  }
});
