/**
 * The converter fidelity gate, LLaVA-Med v1.5 (Mistral layout: GQA, rope_theta 1e6, rms_norm_eps 1e-5,
 * BF16 sharded safetensors with mlp2x_gelu projector and a stale copy of the vision tower inside, the
 * separate CLIP folder used): convertV15 → engine vs the float64 reference. Same bounds as v0
 * (test/convert/fidelity.test.ts): image embeddings ≤ 1e-3 (F32), logits ≤ 1e-3 / 2e-2 / 5e-2
 * (F32 / F16 / Q8_0), 16 greedy tokens identical (F32) with the reference margin asserted.
 */
import t from 'tap';
import { join } from 'node:path';
import { convertV15, type ConvertResult } from '../../lib/convert/index.js';
import { clipWeights, makeTinyV15, TINY_CLIP, TINY_LLM } from '../helpers/tiny-hf.js';
import {
  clipMeanStd,
  fmt,
  ggmlGelu,
  normalizedPixels,
  promptEmbeds,
  refGreedy,
  refLogits,
  runEngine,
  runReference,
  testImage,
  writeClipProbe,
  type PromptIds,
  type RefModel,
} from '../helpers/fidelity.js';
import { compare, linear, project, type ClipVisionConfig, type LlamaConfig, type Tensor } from '../reference/index.js';

const SEED = 21;
const GREEDY = 16;
const size = TINY_CLIP.imageSize;
const rgb = testImage(size, 8);

const root = t.testdir({});
const tiny = await makeTinyV15({ dir: join(root, 'in'), seed: SEED, shards: 3 });
const m: RefModel = {
  version: 'v1.5',
  llm: tiny.weights,
  llmCfg: tiny.config.llm as unknown as LlamaConfig,
  projector: tiny.weights,
  vision: tiny.vision,
  clipCfg: tiny.config.clip as unknown as ClipVisionConfig,
};
const tk = tiny.config.tokens;
// [bos] + ids | image | ids (no image start/end tokens in v1.5)
const ids: PromptIds = { before: [tk.promptBos, 262, 270, 281], after: [300, 290, 305, 277] };
const pixels = normalizedPixels(rgb, size, await clipMeanStd(tiny.dirs.vision));
const ref = runReference(m, pixels, ids);
const refPath = refGreedy(m, promptEmbeds(m, ids, ref.embeds), GREEDY);

const converted = new Map<string, ConvertResult>();
async function convert(outtype: 'f32' | 'f16' | 'q8_0'): Promise<ConvertResult> {
  let r = converted.get(outtype);
  if (!r) {
    r = await convertV15({ ...tiny.dirs, out: join(root, `out-${outtype}`), name: 'tiny', outtype });
    converted.set(outtype, r);
  }
  return r;
}

t.test('fixture sanity: GQA, margins', async (t) => {
  t.equal((tiny.config.llm as { num_key_value_heads: number }).num_key_value_heads, 2, 'GQA: 2 kv heads for 4 heads');
  t.equal(ref.embeds[0]!.length, TINY_LLM.hidden);
  t.ok(Math.min(...refPath.margins) > 0.01, `reference greedy top-2 margins ≥ ${fmt(Math.min(...refPath.margins))}`);
  t.ok(new Set(refPath.ids).size > 4, `the reference path is not a constant loop (${refPath.ids.join(' ')})`);
  // The converter must take the separate CLIP folder, not the stale tower inside the checkpoint
  // (tiny-hf writes it from seed + 7): features from that tower are far outside the bound, so the
  // F32 test below would catch the converter using it.
  const stale = runReference({ ...m, vision: clipWeights({ seed: SEED + 7 }) }, pixels, ids);
  const off = compare(stale.embeds, ref.embeds).relError;
  t.ok(off > 100 * 1e-3, `the checkpoint's own tower gives embeddings ${fmt(off)} away`);
});

t.test('F32 GGUF: embeddings, logits, 16 greedy tokens', async (t) => {
  const r = await convert('f32');
  const e = await runEngine({ model: r.model, mmproj: r.mmproj, rgb, size, ids, greedy: GREEDY });
  const ce = compare(e.embeds, ref.embeds);
  const cl = compare(e.logits, ref.logits);
  t.comment(`v1.5 F32: image embeddings rel ${fmt(ce.relError)} (max abs ${fmt(ce.maxAbsError)}), logits rel ${fmt(cl.relError)} (max abs ${fmt(cl.maxAbsError)})`);
  t.ok(ce.relError <= 1e-3, `image embeddings rel error ${fmt(ce.relError)} ≤ 1e-3`);
  t.ok(cl.relError <= 1e-3, `logits rel error ${fmt(cl.relError)} ≤ 1e-3`);
  t.same(e.greedy, refPath.ids, `greedy ${GREEDY} tokens identical (${e.greedy.join(' ')})`);
  let worst = 0;
  let worstAbs = 0;
  for (let i = 0; i < Math.min(e.greedyLogits.length, refPath.logits.length); i++) {
    const c = compare(e.greedyLogits[i]!, refPath.logits[i]!);
    worst = Math.max(worst, c.relError);
    worstAbs = Math.max(worstAbs, c.maxAbsError);
  }
  t.comment(`v1.5 F32 along the greedy path: logits rel ≤ ${fmt(worst)}, max abs ${fmt(worstAbs)}; min top-2 margin ${fmt(Math.min(...refPath.margins))}`);
  t.ok(worst <= 1e-3, `every step's logits within 1e-3 (worst ${fmt(worst)})`);
  t.ok(Math.min(...refPath.margins) > 20 * 2 * worstAbs, 'the smallest top-2 margin is > 20× what the logit error could close');
});

t.test('F16 and Q8_0 GGUFs: logits within 2e-2 / 5e-2', async (t) => {
  for (const [outtype, bound] of [['f16', 2e-2], ['q8_0', 5e-2]] as const) {
    const r = await convert(outtype);
    const e = await runEngine({ model: r.model, mmproj: r.mmproj, rgb, size, ids, greedy: GREEDY });
    const ce = compare(e.embeds, ref.embeds);
    const cl = compare(e.logits, ref.logits);
    const agree = e.greedy.findIndex((x, i) => x !== refPath.ids[i]);
    t.comment(`v1.5 ${outtype.toUpperCase()}: image embeddings rel ${fmt(ce.relError)}, logits rel ${fmt(cl.relError)} (max abs ${fmt(cl.maxAbsError)}), greedy agrees for ${agree < 0 ? GREEDY : agree}/${GREEDY}`);
    t.ok(ce.relError <= 2e-3, `${outtype}: image embeddings rel error ${fmt(ce.relError)} ≤ 2e-3 (F16 mmproj)`);
    t.ok(cl.relError <= bound, `${outtype}: logits rel error ${fmt(cl.relError)} ≤ ${bound}`);
    t.ok(cl.relError > 1e-6, `${outtype}: the weights really are reduced-precision (error ${fmt(cl.relError)})`);
  }
});

t.test('error by stage (F32): CLIP tower, projector (erf GELU vs ggml tanh/fp16-table GELU), LLM', async (t) => {
  const r = await convert('f32');
  const probe = join(root, 'probe-v15.gguf');
  await writeClipProbe(r.mmproj, probe);
  const p = await runEngine({ model: r.model, mmproj: probe, rgb, size, ids });
  const D = TINY_CLIP.hidden;
  const feats = p.embeds.map((row) => Float64Array.from(row.subarray(0, D)));
  t.ok(p.embeds.every((row) => row.subarray(D).every((v) => v === 0)), 'the probe projector pads with exact zeros');
  const e = await runEngine({ model: r.model, mmproj: r.mmproj, rgb, size, ids });
  const clip = compare(feats, ref.features).relError;
  const proj = compare(e.embeds, project(m.projector, feats, 'mlp2x_gelu')).relError;
  // the same projector with ggml's GELU (tanh approximation through the fp16 table)
  const g = (n: string): Tensor => m.projector.get(`model.mm_projector.${n}`)!;
  const ggmlProj = feats.map((f) => linear(linear(f, g('0.weight'), g('0.bias')).map(ggmlGelu), g('2.weight'), g('2.bias')));
  const projGgml = compare(e.embeds, ggmlProj).relError;
  const llm = compare(e.logits, refLogits(m, ids, e.embeds)).relError;
  const total = compare(e.logits, ref.logits).relError;
  t.comment(`v1.5 F32 by stage: CLIP hidden_states[-2] rel ${fmt(clip)}; projector alone ${fmt(proj)} (against ggml's GELU simulated: ${fmt(projGgml)}); LLM alone ${fmt(llm)}; end to end ${fmt(total)}`);
  t.ok(clip <= 1e-3, `CLIP stage ${fmt(clip)} ≤ 1e-3`);
  t.ok(proj <= 1e-3, `projector stage ${fmt(proj)} ≤ 1e-3`);
  t.ok(projGgml < proj / 5, `the projector's error is ggml's GELU: with it simulated the error drops to ${fmt(projGgml)}`);
  t.ok(llm <= 1e-5, `LLM stage ${fmt(llm)} ≤ 1e-5 (F32 weights, F32 KV cache, no flash attention)`);
});

t.test('the bound catches the CLS-order bug and the missing CLIP layer', async (t) => {
  const r = await convert('f32');
  const e = await runEngine({ model: r.model, mmproj: r.mmproj, rgb, size, ids });
  for (const mode of ['stock-cls-last', 'hidden-3'] as const) {
    const bug = runReference(m, pixels, ids, mode);
    const emb = compare(bug.embeds, ref.embeds).relError;
    const lg = compare(bug.logits, ref.logits).relError;
    const engineVsBug = compare(e.embeds, bug.embeds).relError;
    t.comment(`v1.5 ${mode}: image embeddings off by ${fmt(emb)}, logits by ${fmt(lg)}; the engine is ${fmt(engineVsBug)} from it`);
    t.ok(emb > 100 * 1e-3, `${mode}: image embeddings off by ${fmt(emb)} > 100× the bound`);
    t.ok(lg > 10 * 1e-3, `${mode}: logits off by ${fmt(lg)} > 10× the bound`);
    t.ok(engineVsBug > 100 * 1e-3, `${mode}: the engine does not compute the buggy variant`);
  }
});
