// Elementwise math and small ops against values computed with mpmath at 40 digits,
// or worked by hand where stated.
import t from 'tap';
import {
  activation,
  argmax,
  compare,
  erf,
  erfc,
  geluErf,
  geluTanh,
  layerNorm,
  linear,
  normalizeRgb,
  quickGelu,
  rmsNorm,
  silu,
  softmax,
} from './index.js';

const vec = (...v: number[]) => ({ shape: [v.length], data: Float64Array.from(v) });

// [x, erf(x), erfc(x)] from mpmath (mp.dps = 40).
const ERF: [number, number, number][] = [
  [1e-10, 1.1283791670955125739e-10, 0.99999999988716208329],
  [0.1, 0.1124629160182848922, 0.8875370839817151078],
  [0.5, 0.52049987781304653768, 0.47950012218695346232],
  [1, 0.84270079294971486934, 0.15729920705028513066],
  [1.5, 0.96610514647531072707, 0.033894853524689272933],
  [2, 0.99532226501895273416, 0.0046777349810472658379],
  [2.5, 0.99959304798255504106, 0.00040695201744495893956],
  [3, 0.99997790950300141456, 0.000022090496998585441373],
  [3.5, 0.99999925690162765859, 7.4309837234141274552e-7],
  [4, 0.99999998458274209972, 1.5417257900280018852e-8],
  [5, 0.99999999999846254021, 1.5374597944280348502e-12],
  [6, 0.99999999999999997848, 2.1519736712498913117e-17],
  [-0.75, -0.7111556336535151316, 1.7111556336535151316],
  [-2.2, -0.99813715370201810856, 1.9981371537020181086],
];

t.test('erf to 1e-15 relative across both branches (series < 3 ≤ continued fraction)', (tt) => {
  for (const [x, e] of ERF) {
    const rel = Math.abs(erf(x) - e) / Math.abs(e);
    tt.ok(rel <= 1e-15, `erf(${x}) = ${erf(x)} vs ${e} (rel ${rel.toExponential(1)})`);
    tt.equal(erf(-x), -erf(x), `erf is odd at ${x}`);
  }
  tt.equal(erf(0), 0);
  tt.equal(erf(40), 1);
  tt.equal(erf(-Infinity), -1);
  tt.ok(Number.isNaN(erf(NaN)));
  tt.end();
});

t.test('erfc is relatively accurate in the tail, where 1 − erf would lose everything', (tt) => {
  for (const [x, , c] of ERF.filter(([x]) => x >= 3)) {
    const rel = Math.abs(erfc(x) - c) / c;
    tt.ok(rel <= 1e-14, `erfc(${x}) rel ${rel.toExponential(1)}`);
  }
  for (const [x, , c] of ERF.filter(([x]) => x < 3)) {
    tt.ok(Math.abs(erfc(x) - c) <= 1e-15, `erfc(${x}) abs error`);
  }
  tt.end();
});

// [x, gelu_erf, gelu_tanh, quick_gelu, silu] from mpmath.
const ACT: [number, number, number, number, number][] = [
  [-3, -0.00404969409489028358, -0.0036373920817730188378, -0.018071309707785966513, -0.14227761953270034264],
  [-1, -0.15865525393145705141, -0.15880800939172329522, -0.15420423406717870429, -0.26894142136999512075],
  [-0.5, -0.15426876936299344818, -0.15428599017485607796, -0.14961156339361987683, -0.18877033439907271768],
  [0.3, 0.18537342665668579119, 0.18537092354275924813, 0.18748413538159171164, 0.17233275504349769615],
  [1, 0.84134474606854294859, 0.84119199060827670478, 0.84579576593282129571, 0.73105857863000487925],
  [2.5, 2.4844758366855596621, 2.4849157339100014179, 2.4650138349514299256, 2.310354549946891122],
  [6, 5.9999999940804741298, 5.999999999915603533, 5.9997796464502126076, 5.985164261060191354],
];

t.test('activations match mpmath values', (tt) => {
  for (const [x, ge, gt, qg, si] of ACT) {
    // Absolute tolerance: gelu(x) for negative x is a small difference of O(x) terms.
    tt.ok(Math.abs(geluErf(x) - ge) <= 1e-15 * Math.max(1, Math.abs(x)), `gelu_erf(${x}) ${geluErf(x)} vs ${ge}`);
    tt.ok(Math.abs(geluTanh(x) - gt) <= 1e-15 * Math.max(1, Math.abs(x)), `gelu_tanh(${x})`);
    tt.ok(Math.abs(quickGelu(x) - qg) <= 1e-15 * Math.max(1, Math.abs(x)), `quick_gelu(${x})`);
    tt.ok(Math.abs(silu(x) - si) <= 1e-15 * Math.max(1, Math.abs(x)), `silu(${x})`);
  }
  // The projector workaround in llama-cpp-notes §0.2 relies on gelu(x) − gelu(−x) = x.
  for (const x of [-4, -1.3, -0.2, 0.7, 2.9, 5]) {
    tt.ok(Math.abs(geluErf(x) - geluErf(-x) - x) <= 1e-15 * Math.abs(x) * 4, `erf GELU odd-part identity at ${x}`);
  }
  tt.equal(activation('gelu'), geluErf, "HF 'gelu' is the exact erf form");
  tt.equal(activation('quick_gelu'), quickGelu);
  tt.equal(activation('gelu_pytorch_tanh'), geluTanh);
  tt.equal(activation('silu'), silu);
  tt.throws(() => activation('relu6'), /unsupported/);
  tt.end();
});

t.test('linear uses the PyTorch [out, in] layout: y = x W^T + b', (tt) => {
  const w = { shape: [2, 3], data: Float64Array.from([1, 2, 3, 4, 5, 6]) };
  tt.same(linear(Float64Array.from([1, 0, -1]), w, vec(10, 20)), Float64Array.from([8, 18]));
  tt.same(linear(Float64Array.from([1, 1, 1]), w), Float64Array.from([6, 15]));
  tt.throws(() => linear(Float64Array.from([1, 1]), w), /does not match/);
  tt.end();
});

t.test('layerNorm (biased variance) and rmsNorm (no centring), by hand', (tt) => {
  // mean 2.5, var 1.25 → (x − 2.5)/√1.25, then ·w + b.
  const ln = layerNorm(Float64Array.from([1, 2, 3, 4]), vec(1, 1, 2, 1), vec(0, 0, 0, 1), 0);
  const s = Math.sqrt(1.25);
  tt.same([...ln].map((v) => +v.toFixed(12)), [-1.5 / s, -0.5 / s, 1 / s, 1.5 / s + 1].map((v) => +v.toFixed(12)));
  // mean(x²) = 12.5 → x / √12.5 · w.
  const rn = rmsNorm(Float64Array.from([3, 4]), vec(1, 2), 0);
  tt.ok(Math.abs(rn[0]! - 3 / Math.sqrt(12.5)) < 1e-15 && Math.abs(rn[1]! - 8 / Math.sqrt(12.5)) < 1e-15);
  // eps sits inside the root: all-zero input stays finite.
  tt.same(rmsNorm(Float64Array.from([0, 0]), vec(1, 1), 1e-6), Float64Array.from([0, 0]));
  tt.end();
});

t.test('softmax is stable and masks -Infinity; argmax takes the first maximum', (tt) => {
  const p = softmax(Float64Array.from([0, Math.log(2), -Infinity]));
  tt.ok(Math.abs(p[0]! - 1 / 3) < 1e-15 && Math.abs(p[1]! - 2 / 3) < 1e-15 && p[2] === 0);
  tt.same(softmax(Float64Array.from([1000, 1000])), Float64Array.from([0.5, 0.5]));
  tt.equal(argmax([1, 3, 3, 2]), 1);
  tt.end();
});

t.test('normalizeRgb: HWC bytes → CHW planes', (tt) => {
  // 2×1 image: pixel0 = (255, 0, 0), pixel1 = (0, 255, 51); mean 0, std 1 → u8/255.
  const out = normalizeRgb(Uint8Array.from([255, 0, 0, 0, 255, 51]), 2, 1, [0, 0, 0], [1, 1, 1]);
  tt.same([...out], [1, 0, 0, 1, 0, 0.2]);
  const clip = normalizeRgb(Uint8Array.from([0, 0, 0]), 1, 1);
  tt.ok(Math.abs(clip[0]! + 0.48145466 / 0.26862954) < 1e-15, 'default CLIP mean/std');
  tt.throws(() => normalizeRgb(new Uint8Array(5), 2, 1), /expected/);
  tt.end();
});

t.test('compare: relative L2 error against the reference, max abs, NaN never passes', (tt) => {
  const r = compare([3, 4], [3, 0]);
  tt.equal(r.relError, 4 / 3);
  tt.equal(r.maxAbsError, 4);
  tt.equal(compare([[1, 2], [3]], Float64Array.from([1, 2, 3])).relError, 0, 'rows flatten');
  const n = compare([NaN, 1, 5], [0, 1, 1]);
  tt.ok(Number.isNaN(n.relError) && Number.isNaN(n.maxAbsError));
  tt.equal(compare([1], [0]).relError, Infinity);
  tt.throws(() => compare([1, 2], [1]), /length/);
  tt.end();
});
