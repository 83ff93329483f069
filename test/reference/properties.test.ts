// Structural properties the decoder must have regardless of weights: causality,
// RoPE depending only on relative position, GQA head mapping, KV-cache equivalence.
// Uses the fixture's tiny LLaMA / Mistral weights (real HF names and layouts).
import t from 'tap';
import {
  applyRotary,
  compare,
  createKvCache,
  embedTokens,
  llamaForward,
  ropeCosSin,
  splitAtImageToken,
  type LlamaConfig,
  type Tensor,
  type Weights,
} from './index.js';
import { loadTorchFixture } from './torch-fixture.js';

const fx = loadTorchFixture();
const llamaW = fx.weights('llama');
const llamaCfg = fx.meta.llama.config as LlamaConfig;
const mistralW = fx.weights('mistral');
const mistralCfg = fx.meta.mistral.config as LlamaConfig;
const ids: number[] = fx.meta.llama.ids;

t.test('causal mask: changing a later token leaves earlier logits bit-identical', (tt) => {
  for (const [w, cfg] of [[llamaW, llamaCfg], [mistralW, mistralCfg]] as const) {
    const a = llamaForward(w, cfg, embedTokens(w, ids));
    const changed = [...ids];
    changed[4] = (changed[4]! + 1) % 64;
    const b = llamaForward(w, cfg, embedTokens(w, changed));
    for (let i = 0; i < 4; i++) tt.same(b[i], a[i], `position ${i} unaffected`);
    for (let i = 4; i < ids.length; i++) tt.ok(compare(b[i]!, a[i]!).relError > 1e-3, `position ${i} affected`);
  }
  tt.end();
});

t.test('RoPE: q·k depends only on the position difference', (tt) => {
  const hd = 8;
  const q = Float64Array.from([0.3, -1.2, 0.5, 2.0, -0.7, 0.1, 1.1, -0.4]);
  const k = Float64Array.from([1.0, 0.2, -0.3, 0.8, 0.6, -1.5, 0.4, 0.9]);
  const rotated = (x: Float64Array, pos: number, theta: number) => {
    const { cos, sin } = ropeCosSin(pos, hd, theta);
    const y = Float64Array.from(x);
    applyRotary(y, 0, cos, sin);
    return y;
  };
  const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i]!, 0);
  tt.same(rotated(q, 0, 1e4), q, 'position 0 is the identity');
  for (const theta of [1e4, 1e6]) {
    const base = dot(rotated(q, 7, theta), rotated(k, 3, theta));
    for (const shift of [1, 50, 999]) {
      const shifted = dot(rotated(q, 7 + shift, theta), rotated(k, 3 + shift, theta));
      tt.ok(Math.abs(shifted - base) < 1e-12, `theta ${theta}, shift ${shift}: ${shifted} vs ${base}`);
    }
    // ...but not only on |difference|: q at 3, k at 7 is a different score.
    tt.ok(Math.abs(dot(rotated(q, 3, theta), rotated(k, 7, theta)) - base) > 1e-3, `theta ${theta}: direction matters`);
  }
  // rotate_half pairs dimension i with i + d/2 (not 2i with 2i+1, the GGUF-permuted layout):
  // a vector living only in dims {0, 4} stays in dims {0, 4}.
  const pair = rotated(Float64Array.from([1, 0, 0, 0, 0, 0, 0, 0]), 5, 1e4);
  tt.ok(pair[4] !== 0 && [1, 2, 3, 5, 6, 7].every((i) => pair[i] === 0), 'half-split pairing');
  tt.end();
});

t.test('whole model: shifting every position id leaves the logits unchanged', (tt) => {
  for (const [w, cfg] of [[llamaW, llamaCfg], [mistralW, mistralCfg]] as const) {
    const embeds = embedTokens(w, ids);
    const a = llamaForward(w, cfg, embeds);
    const b = llamaForward(w, cfg, embeds, { positionOffset: 37 });
    tt.ok(compare(b, a).relError < 1e-12, `theta ${cfg.rope_theta}: relError ${compare(b, a).relError.toExponential(2)}`);
  }
  tt.end();
});

/** Rebuild a GQA checkpoint as MHA by giving each query head its own copy of a kv head. */
function expandKv(w: Weights, cfg: LlamaConfig, headOf: (h: number) => number): Weights {
  const nH = cfg.num_attention_heads;
  const hd = cfg.hidden_size / nH;
  const out: Weights = new Map(w);
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    for (const name of ['k_proj', 'v_proj']) {
      const key = `model.layers.${l}.self_attn.${name}.weight`;
      const src = w.get(key)!;
      const D = src.shape[1]!;
      const data = new Float64Array(nH * hd * D);
      for (let h = 0; h < nH; h++) data.set(src.data.subarray(headOf(h) * hd * D, (headOf(h) + 1) * hd * D), h * hd * D);
      out.set(key, { shape: [nH * hd, D], data } satisfies Tensor);
    }
  }
  return out;
}

t.test('GQA equals MHA with each kv head repeated for its query group (repeat_kv)', (tt) => {
  const nKV = mistralCfg.num_key_value_heads!;
  const nRep = mistralCfg.num_attention_heads / nKV;
  tt.ok(nRep > 1, 'fixture really is GQA');
  const mhaCfg = { ...mistralCfg, num_key_value_heads: mistralCfg.num_attention_heads };
  const embeds = embedTokens(mistralW, ids);
  const gqa = llamaForward(mistralW, mistralCfg, embeds);
  const mha = llamaForward(expandKv(mistralW, mistralCfg, (h) => Math.floor(h / nRep)), mhaCfg, embeds);
  tt.ok(compare(mha, gqa).relError < 1e-13, `relError ${compare(mha, gqa).relError.toExponential(2)}`);
  // The other plausible mapping (tiling, h mod n_kv) is a different model: this test can tell.
  const tiled = llamaForward(expandKv(mistralW, mistralCfg, (h) => h % nKV), mhaCfg, embeds);
  tt.ok(compare(tiled, gqa).relError > 1e-3, 'tiled kv mapping differs');
  tt.end();
});

t.test('KV cache: token-by-token decoding equals one full forward', (tt) => {
  const embeds = embedTokens(mistralW, ids);
  const full = llamaForward(mistralW, mistralCfg, embeds);
  const cache = createKvCache(mistralCfg);
  const stepwise = [
    ...llamaForward(mistralW, mistralCfg, embeds.slice(0, 3), { cache }),
    ...embeds.slice(3).flatMap((e) => llamaForward(mistralW, mistralCfg, [e], { cache })),
  ];
  tt.equal(cache.length, ids.length);
  tt.ok(compare(stepwise, full).relError < 1e-13, `relError ${compare(stepwise, full).relError.toExponential(2)}`);
  tt.end();
});

t.test('input validation: ids, placeholders, sliding window', (tt) => {
  tt.throws(() => embedTokens(llamaW, [-200]), /outside vocab/);
  tt.throws(() => embedTokens(llamaW, [64]), /outside vocab/);
  tt.same(splitAtImageToken([1, 5, -200, 7]), [[1, 5], [7]]);
  tt.throws(() => splitAtImageToken([1, 5]), /exactly one/);
  tt.throws(() => splitAtImageToken([-200, 1, -200]), /exactly one/);
  const windowed = { ...mistralCfg, sliding_window: 4 };
  tt.throws(() => llamaForward(mistralW, windowed, embedTokens(mistralW, ids)), /sliding_window/);
  tt.same(
    llamaForward(mistralW, windowed, embedTokens(mistralW, ids.slice(0, 4))),
    llamaForward(mistralW, mistralCfg, embedTokens(mistralW, ids.slice(0, 4))),
    'within the window it is plain causal attention',
  );
  tt.end();
});
