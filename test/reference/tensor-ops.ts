// Float64 building blocks for the reference models. Everything here is written
// to be exact in double precision (no float32 shortcuts), because the reference
// is the ground truth the engine is measured against.

/** One HF checkpoint tensor: PyTorch shape, row-major data. */
export interface Tensor {
  shape: number[];
  data: Float64Array;
}

/** HF state dict: tensor name (exactly as in the checkpoint) → tensor. */
export type Weights = Map<string, Tensor>;

/** Fetch a tensor by HF name, failing loudly: a silently missing weight would make the reference wrong. */
export function getTensor(weights: Weights, name: string, shape?: number[]): Tensor {
  const t = weights.get(name);
  if (!t) throw new Error(`reference: missing weight ${name}`);
  if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
    throw new Error(`reference: ${name} has shape [${t.shape}], expected [${shape}]`);
  }
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) throw new Error(`reference: ${name} has ${t.data.length} values for shape [${t.shape}]`);
  return t;
}

/**
 * nn.Linear: y = x W^T + b with W in PyTorch layout [out, in].
 * Plain indexed loops over typed arrays: this is the hot path (lm_head of 32004 rows),
 * so no per-element allocation.
 */
export function linear(x: Float64Array, w: Tensor, b?: Tensor): Float64Array {
  const [nOut, nIn] = w.shape as [number, number];
  if (w.shape.length !== 2 || x.length !== nIn) {
    throw new Error(`reference: linear input length ${x.length} does not match weight [${w.shape}]`);
  }
  if (b && b.data.length !== nOut) throw new Error(`reference: bias length ${b.data.length} != ${nOut}`);
  const W = w.data;
  const bias = b?.data;
  const y = new Float64Array(nOut);
  for (let o = 0, off = 0; o < nOut; o++, off += nIn) {
    let s = 0;
    for (let i = 0; i < nIn; i++) s += x[i]! * W[off + i]!;
    y[o] = bias ? s + bias[o]! : s;
  }
  return y;
}

/** linear() applied to each row. */
export function linearRows(xs: Float64Array[], w: Tensor, b?: Tensor): Float64Array[] {
  return xs.map((x) => linear(x, w, b));
}

/** nn.LayerNorm over the last dim: biased variance, eps inside the sqrt. */
export function layerNorm(x: Float64Array, w: Tensor, b: Tensor, eps: number): Float64Array {
  const n = x.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i]!;
  mean /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (x[i]! - mean) ** 2;
  const inv = 1 / Math.sqrt(v / n + eps);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = (x[i]! - mean) * inv * w.data[i]! + b.data[i]!;
  return y;
}

/** LlamaRMSNorm: x * rsqrt(mean(x²) + eps) * w (no mean subtraction, no bias). */
export function rmsNorm(x: Float64Array, w: Tensor, eps: number): Float64Array {
  const n = x.length;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[i]! * x[i]!;
  const inv = 1 / Math.sqrt(ss / n + eps);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = w.data[i]! * (x[i]! * inv);
  return y;
}

/** Numerically stable softmax (max subtracted); returns a new array. Entries of -Infinity get probability 0. */
export function softmax(x: Float64Array): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i]! > m) m = x[i]!;
  const y = new Float64Array(x.length);
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    const e = Math.exp(x[i]! - m);
    y[i] = e;
    s += e;
  }
  for (let i = 0; i < x.length; i++) y[i]! /= s;
  return y;
}

/** Index of the largest value, first one on ties (as torch.argmax does on CPU). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

const TWO_OVER_SQRT_PI = 1.1283791670955126; // 2/√π
const INV_SQRT_PI = 0.5641895835477563; // 1/√π

/**
 * erf in double precision, derived from two convergent expansions rather than
 * remembered coefficient tables (so it can be checked by reading):
 *  - |x| < 3: erf(x) = 2/√π · e^{−x²} · Σ_{n≥0} (2x²)^n x / (1·3·…·(2n+1)).
 *    All terms are positive, so there is no cancellation; relative error ~ a few ulp.
 *  - |x| ≥ 3: erf = 1 − erfc with the Laplace continued fraction for erfc; erfc(3) ≈ 2e-5,
 *    so the fraction's small relative error barely reaches erf.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax >= 3) {
    const r = 1 - erfcLarge(ax);
    return x < 0 ? -r : r;
  }
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 0; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 3);
    sum += term;
    if (Math.abs(term) <= Math.abs(sum) * 1e-18) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

/** erfc(x) = 1 − erf(x), accurate in relative terms for large positive x too. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x >= 3) return erfcLarge(x);
  // Below 3, 1 − erf cancels: absolute error stays ~1e-16, relative error grows to ~1e-11
  // as x nears 3 (erfc(3) ≈ 2e-5). GELU only ever needs 1 + erf, so this is not on a hot path.
  return 1 - erf(x);
}

/**
 * erfc(x) for x ≥ 3 by the continued fraction
 * erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))),
 * evaluated bottom-up with a fixed depth that is far past convergence at x = 3.
 */
function erfcLarge(x: number): number {
  let f = x;
  for (let k = 120; k >= 1; k--) f = x + k / 2 / f;
  return (Math.exp(-x * x) * INV_SQRT_PI) / f;
}

/** nn.GELU() default (exact): 0.5·x·(1 + erf(x/√2)), in the same form torch computes it. */
export function geluErf(x: number): number {
  return 0.5 * x * (1 + erf(x * Math.SQRT1_2));
}

/** GELU tanh approximation ("gelu_new", "gelu_pytorch_tanh", ggml_gelu). */
export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

/** CLIP's quick_gelu: x·sigmoid(1.702x). */
export function quickGelu(x: number): number {
  return x / (1 + Math.exp(-1.702 * x));
}

/** SiLU / swish: x·sigmoid(x). */
export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** Map an HF `hidden_act` name to its function (transformers' ACT2FN names). */
export function activation(name: string): (x: number) => number {
  switch (name) {
    case 'quick_gelu':
      return quickGelu;
    case 'gelu':
      return geluErf;
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return geluTanh;
    case 'silu':
    case 'swish':
      return silu;
    default:
      throw new Error(`reference: unsupported hidden_act ${name}`);
  }
}

/** Apply f elementwise into a new array. */
export function mapArray(x: Float64Array, f: (v: number) => number): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = f(x[i]!);
  return y;
}

/** Elementwise a + b into a new array (residual connections). */
export function add(a: Float64Array, b: Float64Array): Float64Array {
  if (a.length !== b.length) throw new Error(`reference: add length mismatch ${a.length} vs ${b.length}`);
  const y = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) y[i] = a[i]! + b[i]!;
  return y;
}
