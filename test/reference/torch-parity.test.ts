// The reference must agree with an independent PyTorch float64 implementation of the
// same HF modules (fixtures/make-torch-expected.py) to ~1e-10: two implementations
// written separately from the HF definitions, agreeing, is what makes this ground truth.
import t from 'tap';
import {
  buildV0Embeds,
  buildV15Embeds,
  clipVisionForward,
  compare,
  embedTokens,
  greedyContinue,
  imageFeatures,
  llamaForward,
  llavaLogits,
  normalizeRgb,
  projectLinear,
  projectMlp2xGelu,
  splitAtImageToken,
  type ClipVisionConfig,
  type LlamaConfig,
  type Weights,
} from './index.js';
import { loadTorchFixture } from './torch-fixture.js';

const fx = loadTorchFixture();
const TOL = 1e-10;
const clipCfg = fx.meta.clip.config as ClipVisionConfig;
const llamaCfg = fx.meta.llama.config as LlamaConfig;
const mistralCfg = fx.meta.mistral.config as LlamaConfig;
const clipW = fx.weights('clip');
const llamaW = fx.weights('llama');
const mistralW = fx.weights('mistral');
const pixels = normalizeRgb(Uint8Array.from(fx.meta.clip.rgb), fx.meta.clip.width, fx.meta.clip.height);

function close(tt: { ok: (c: boolean, m: string) => unknown }, actual: Float64Array[] | Float64Array, expected: Float64Array[] | Float64Array, what: string, tol = TOL) {
  const r = compare(actual, expected);
  tt.ok(r.relError < tol, `${what}: relError ${r.relError.toExponential(2)} < ${tol} (max abs ${r.maxAbsError.toExponential(2)})`);
  // Guard against a vacuous pass on an all-zero expectation.
  tt.ok(r.refNorm > 1e-3, `${what}: reference is non-trivial (norm ${r.refNorm.toFixed(3)})`);
}

t.test('normalizeRgb matches CLIPImageProcessor rescale+normalize', (tt) => {
  close(tt, pixels, fx.tensor('clip.pixel_values').data, 'pixel_values', 1e-15);
  tt.end();
});

t.test('CLIP vision tower: every hidden state matches torch', (tt) => {
  const { hiddenStates, lastHiddenState } = clipVisionForward(clipW, clipCfg, pixels);
  const expected = fx.tensor('clip.hidden_states'); // [layers+1, 1+patches, hidden]
  tt.equal(hiddenStates.length, clipCfg.num_hidden_layers + 1);
  const [, nPos, D] = expected.shape as [number, number, number];
  hiddenStates.forEach((hs, l) => {
    tt.equal(hs.length, nPos);
    close(tt, hs, expected.data.subarray(l * nPos * D, (l + 1) * nPos * D), `hidden_states[${l}]`);
  });
  tt.equal(lastHiddenState, hiddenStates.at(-1));
  tt.end();
});

t.test('imageFeatures = hidden_states[-2] without CLS; a LLaVA-1.5 name prefix works', (tt) => {
  const expected = fx.rows('clip.hidden_states');
  const nPos = fx.tensor('clip.hidden_states').shape[1]!;
  const penultimate = expected.slice((clipCfg.num_hidden_layers - 1) * nPos, clipCfg.num_hidden_layers * nPos);
  const feats = imageFeatures(clipW, clipCfg, pixels);
  tt.equal(feats.length, nPos - 1);
  close(tt, feats, penultimate.slice(1), 'features');
  const prefixed: Weights = new Map([...clipW].map(([k, v]) => [`model.vision_tower.vision_tower.${k}`, v]));
  const viaPrefix = imageFeatures(prefixed, clipCfg, pixels, -2, { prefix: 'model.vision_tower.vision_tower.vision_model.' });
  tt.same(viaPrefix, feats);
  // Selecting the last layer instead must give a different answer (the select index is honoured).
  tt.ok(compare(imageFeatures(clipW, clipCfg, pixels, -1), feats).relError > 1e-2);
  tt.end();
});

t.test('projectors: v0 Linear and v1.5 mlp2x_gelu (erf GELU) match torch', (tt) => {
  const feats = imageFeatures(clipW, clipCfg, pixels);
  close(tt, projectLinear(fx.weights('proj_v0'), feats), fx.rows('v0.image_embeds'), 'v0 projector');
  close(tt, projectMlp2xGelu(fx.weights('proj_v15'), feats), fx.rows('v15.image_embeds'), 'v1.5 projector');
  tt.end();
});

t.test('LLaMA (MHA, theta 1e4, untied lm_head): logits at every position', (tt) => {
  const embeds = embedTokens(llamaW, fx.meta.llama.ids);
  close(tt, llamaForward(llamaW, llamaCfg, embeds), fx.rows('llama.logits'), 'logits');
  close(tt, llamaForward(llamaW, llamaCfg, embeds, { positionOffset: 100 }), fx.rows('llama.logits_offset100'), 'logits @ position 100+');
  const last = llamaForward(llamaW, llamaCfg, embeds, { lastOnly: true });
  tt.equal(last.length, 1);
  tt.same(last[0], llamaForward(llamaW, llamaCfg, embeds).at(-1));
  tt.end();
});

t.test('ropeFloat32 reproduces HF float32 rotary cache', (tt) => {
  const embeds = embedTokens(llamaW, fx.meta.llama.ids);
  const f32 = llamaForward(llamaW, llamaCfg, embeds, { ropeFloat32: true, positionOffset: 500 });
  const f64 = llamaForward(llamaW, llamaCfg, embeds, { positionOffset: 500 });
  const hf32 = fx.rows('llama.logits_rope_f32_offset500');
  const errMatched = compare(f32, hf32).relError;
  // The float32 cache shifts the logits measurably at position 500; the option must track
  // that shift, not the float64 answer (torch's float32 cos/sin may differ by an ulp).
  const shift = compare(f64, hf32).relError;
  tt.ok(shift > 10 * errMatched, `float32 cache effect ${shift.toExponential(2)} vs mismatch ${errMatched.toExponential(2)}`);
  tt.ok(errMatched < 1e-7, `float32 rope vs torch: ${errMatched.toExponential(2)}`);
  tt.end();
});

t.test('Mistral (GQA 4/2, theta 1e6, eps 1e-5, tied lm_head): logits at every position', (tt) => {
  tt.notOk(mistralW.has('lm_head.weight'), 'fixture has no lm_head, so the tied path is exercised');
  const embeds = embedTokens(mistralW, fx.meta.mistral.ids);
  close(tt, llamaForward(mistralW, mistralCfg, embeds), fx.rows('mistral.logits'), 'logits');
  tt.end();
});

t.test('LLaVA v0 end to end: <im_start> kept, patches replaced, <im_end> kept', (tt) => {
  const v0 = fx.meta.llava_v0;
  const out = llavaLogits(
    {
      version: 'v0',
      vision: { weights: clipW, cfg: clipCfg },
      projectorWeights: fx.weights('proj_v0'),
      llm: { weights: llamaW, cfg: llamaCfg },
      v0Ids: { imStartId: v0.imStartId, imEndId: v0.imEndId },
    },
    pixels,
    v0.idsBefore,
    v0.idsAfter,
  );
  const expected = fx.rows('v0.logits');
  close(tt, out.imageEmbeds, fx.rows('v0.image_embeds'), 'image embeds');
  close(tt, out.logits, expected.at(-1)!, 'next-token logits');
  const embeds = buildV0Embeds(llamaW, llamaCfg, v0.idsBefore, out.imageEmbeds, v0.idsAfter, {
    imStartId: v0.imStartId,
    imEndId: v0.imEndId,
  });
  close(tt, llamaForward(llamaW, llamaCfg, embeds), expected, 'logits at every position');
  tt.throws(() => buildV0Embeds(llamaW, llamaCfg, [1, 2], out.imageEmbeds, v0.idsAfter), /im_start/);
  tt.end();
});

t.test('LLaVA v1.5 end to end, and greedy continuation with the KV cache', (tt) => {
  const [before, after] = splitAtImageToken(fx.meta.llava_v15.ids);
  const out = llavaLogits(
    {
      version: 'v1.5',
      vision: { weights: clipW, cfg: clipCfg },
      projectorWeights: fx.weights('proj_v15'),
      llm: { weights: mistralW, cfg: mistralCfg },
    },
    pixels,
    before,
    after,
  );
  const expected = fx.rows('v15.logits');
  close(tt, out.imageEmbeds, fx.rows('v15.image_embeds'), 'image embeds');
  close(tt, out.logits, expected.at(-1)!, 'next-token logits');
  const embeds = buildV15Embeds(mistralW, mistralCfg, before, out.imageEmbeds, after);
  close(tt, llamaForward(mistralW, mistralCfg, embeds), expected, 'logits at every position');
  // torch recomputed the full sequence per step; ours uses the KV cache.
  const greedy: number[] = fx.meta.llava_v15.greedy;
  tt.same(greedyContinue(mistralW, mistralCfg, embeds, 6), greedy);
  // A stop id ends decoding right after it is emitted.
  const stopAt = greedy.findIndex((id, i) => greedy.indexOf(id) === i && i > 0);
  tt.same(greedyContinue(mistralW, mistralCfg, embeds, 6, [greedy[stopAt]!]), greedy.slice(0, stopAt + 1));
  tt.end();
});
