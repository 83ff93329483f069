/**
 * The converter fidelity gate, LLaVA-Med v0: tiny HF checkpoints (LLaMA base + LLaVA-Med delta with
 * the 4 added rows and the linear projector + CLIP), in sharded safetensors and sharded .bin, go
 * through convertV0 and then through the engine (llama.cpp + our CLS-order patch); the results are
 * compared with the float64 reference of the HF models (test/reference).
 *
 * Bounds (relative L2 error against the reference, F32 KV cache):
 *   image embeddings after the projector ≤ 1e-3 (F32 GGUF);
 *   next-token logits after an image + question prompt ≤ 1e-3 (F32), ≤ 2e-2 (F16), ≤ 5e-2 (Q8_0);
 *   greedy continuation identical for 16 tokens (F32), with the reference's top-2 margin at every
 *   step asserted to be far above the measured logit error, so a near-tie cannot make it flaky.
 * It also shows that the bound catches the two llama.cpp bugs the conversion and the patch work
 * around (CLS concatenated last, one CLIP layer too few), and breaks the error down by stage
 * (CLIP tower / projector / LLM) with a probe projector that passes the CLIP features through.
 */
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { convertV0, type ConvertResult } from '../../lib/convert/index.js';
import { readGgufHeader, readGgufTensorData } from '../../lib/formats/gguf.js';
import { makeTinyV0, TINY_CLIP, TINY_LLM, type TinyV0 } from '../helpers/tiny-hf.js';
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
import { compare, linear, project, type ClipVisionConfig, type LlamaConfig } from '../reference/index.js';

const SEED = 11;
const GREEDY = 16;
const size = TINY_CLIP.imageSize;
const rgb = testImage(size, 7);

const root = t.testdir({});
const st = await makeTinyV0({ dir: join(root, 'st'), format: 'safetensors', shards: 2, seed: SEED });
const bin = await makeTinyV0({ dir: join(root, 'bin'), format: 'bin', shards: 3, seed: SEED });

function refModel(tiny: TinyV0): RefModel {
  return {
    version: 'v0',
    llm: tiny.folded,
    llmCfg: tiny.config.llm as unknown as LlamaConfig,
    projector: tiny.folded,
    vision: tiny.vision,
    clipCfg: tiny.config.clip as unknown as ClipVisionConfig,
    imStart: tiny.config.tokens.imStart,
    imEnd: tiny.config.tokens.imEnd,
  };
}

const m = refModel(st);
const tk = st.config.tokens;
// [bos] + ordinary ids + <im_start> | image | <im_end> + a few ids (ids of the tiny vocabulary's word pieces)
const ids: PromptIds = { before: [tk.promptBos, 262, 270, 281, 300, tk.imStart!], after: [tk.imEnd!, 290, 305, 277] };
const pixels = normalizedPixels(rgb, size, await clipMeanStd(st.dirs.vision));
const ref = runReference(m, pixels, ids);
const refPath = refGreedy(m, promptEmbeds(m, ids, ref.embeds), GREEDY);

const converted = new Map<string, ConvertResult>();
async function convert(which: 'st' | 'bin', outtype: 'f32' | 'f16' | 'q8_0'): Promise<ConvertResult> {
  const key = `${which}-${outtype}`;
  let r = converted.get(key);
  if (!r) {
    const tiny = which === 'st' ? st : bin;
    r = await convertV0({ ...tiny.dirs, out: join(root, `out-${key}`), name: 'tiny', outtype });
    converted.set(key, r);
  }
  return r;
}

t.test('the fixtures are what the gate needs', async (t) => {
  t.same([...bin.folded.keys()], [...st.folded.keys()], 'bin and safetensors hold the same tensors');
  for (const [n, w] of st.folded) t.same(bin.folded.get(n)!.data, w.data, `${n}: same values in both formats`);
  t.equal(st.folded.get('model.embed_tokens.weight')!.shape[0], tk.nBaseVocab + 4, 'delta vocabulary = base + [PAD] <im_patch> <im_start> <im_end>');
  t.equal(ref.embeds.length, (size / TINY_CLIP.patchSize) ** 2, 'one embedding per patch');
  t.equal(ref.embeds[0]!.length, TINY_LLM.hidden, 'projected to the LLM width');
  // The greedy check is only meaningful if the reference never nearly ties: every step's top-2
  // margin must dwarf the logit error (asserted against the measured error below).
  t.ok(Math.min(...refPath.margins) > 0.01, `reference greedy top-2 margins ≥ ${fmt(Math.min(...refPath.margins))}`);
  t.ok(new Set(refPath.ids).size > 4, `the reference path is not a constant loop (${refPath.ids.join(' ')})`);
});

for (const which of ['st', 'bin'] as const) {
  t.test(`F32 GGUF from ${which === 'st' ? 'sharded safetensors' : 'sharded .bin'}: embeddings, logits, 16 greedy tokens`, async (t) => {
    const r = await convert(which, 'f32');
    const e = await runEngine({ model: r.model, mmproj: r.mmproj, rgb, size, ids, greedy: GREEDY });
    t.equal(e.embeds.length, ref.embeds.length, 'image token count');
    t.equal(e.nVocab, tk.nBaseVocab + 4, 'vocabulary incl. the 4 added tokens');
    const ce = compare(e.embeds, ref.embeds);
    const cl = compare(e.logits, ref.logits);
    t.comment(`v0 ${which} F32: image embeddings rel ${fmt(ce.relError)} (max abs ${fmt(ce.maxAbsError)}), logits rel ${fmt(cl.relError)} (max abs ${fmt(cl.maxAbsError)})`);
    t.ok(ce.relError <= 1e-3, `image embeddings rel error ${fmt(ce.relError)} ≤ 1e-3`);
    t.ok(cl.relError <= 1e-3, `logits rel error ${fmt(cl.relError)} ≤ 1e-3`);
    t.same(e.greedy, refPath.ids, `greedy ${GREEDY} tokens identical (${e.greedy.join(' ')})`);
    // logits along the path, and the margin they must not close
    let worst = 0;
    let worstAbs = 0;
    for (let i = 0; i < Math.min(e.greedyLogits.length, refPath.logits.length); i++) {
      const c = compare(e.greedyLogits[i]!, refPath.logits[i]!);
      worst = Math.max(worst, c.relError);
      worstAbs = Math.max(worstAbs, c.maxAbsError);
    }
    t.comment(`v0 ${which} F32 along the greedy path: logits rel ≤ ${fmt(worst)}, max abs ${fmt(worstAbs)}; min top-2 margin ${fmt(Math.min(...refPath.margins))}`);
    t.ok(worst <= 1e-3, `every step's logits within 1e-3 (worst ${fmt(worst)})`);
    t.ok(Math.min(...refPath.margins) > 20 * 2 * worstAbs, 'the smallest top-2 margin is > 20× what the logit error could close');
  });
}

t.test('bin and safetensors inputs give byte-identical tensors', async (t) => {
  for (const outtype of ['f32', 'f16'] as const) {
    const a = await convert('st', outtype);
    const b = await convert('bin', outtype);
    for (const [pa, pb] of [[a.model, b.model], [a.mmproj, b.mmproj]] as const) {
      const ha = await readGgufHeader(pa);
      const hb = await readGgufHeader(pb);
      t.same(hb.tensors.map((x) => [x.name, x.type, x.shape]), ha.tensors.map((x) => [x.name, x.type, x.shape]), `${outtype} ${pa.endsWith('mmproj-tiny.gguf') ? 'mmproj' : 'LLM'}: same tensor table`);
      let differing = 0;
      for (const x of ha.tensors) if (!(await readGgufTensorData(ha, x.name)).equals(await readGgufTensorData(hb, x.name))) differing++;
      t.equal(differing, 0, `${outtype}: every tensor's bytes equal`);
    }
  }
});

t.test('F16 and Q8_0 GGUFs: logits within 2e-2 / 5e-2', async (t) => {
  for (const [which, outtype, bound] of [['st', 'f16', 2e-2], ['bin', 'f16', 2e-2], ['st', 'q8_0', 5e-2]] as const) {
    const r = await convert(which, outtype);
    const e = await runEngine({ model: r.model, mmproj: r.mmproj, rgb, size, ids, greedy: GREEDY });
    const ce = compare(e.embeds, ref.embeds);
    const cl = compare(e.logits, ref.logits);
    const agree = e.greedy.findIndex((x, i) => x !== refPath.ids[i]);
    t.comment(`v0 ${which} ${outtype.toUpperCase()}: image embeddings rel ${fmt(ce.relError)}, logits rel ${fmt(cl.relError)} (max abs ${fmt(cl.maxAbsError)}), greedy agrees for ${agree < 0 ? GREEDY : agree}/${GREEDY}`);
    // The mmproj is F16 for both (never q8_0): the CLIP weights rounded to F16 and fp16 activations
    // in its matmuls; measured ~4.4e-4, bounded at 2e-3.
    t.ok(ce.relError <= 2e-3, `${outtype}: image embeddings rel error ${fmt(ce.relError)} ≤ 2e-3 (F16 mmproj)`);
    t.ok(cl.relError <= bound, `${outtype}: logits rel error ${fmt(cl.relError)} ≤ ${bound}`);
    t.ok(cl.relError > 1e-6, `${outtype}: the weights really are reduced-precision (error ${fmt(cl.relError)} is not F32-exact)`);
  }
});

t.test('error by stage (F32): CLIP tower, projector, LLM', async (t) => {
  const r = await convert('st', 'f32');
  const probe = join(root, 'probe-v0.gguf');
  await writeClipProbe(r.mmproj, probe);
  const p = await runEngine({ model: r.model, mmproj: probe, rgb, size, ids });
  const D = TINY_CLIP.hidden;
  const feats = p.embeds.map((row) => Float64Array.from(row.subarray(0, D)));
  t.ok(p.embeds.every((row) => row.subarray(D).every((v) => v === 0)), 'the probe projector pads with exact zeros');
  const e = await runEngine({ model: r.model, mmproj: r.mmproj, rgb, size, ids });
  const clip = compare(feats, ref.features).relError;
  const proj = compare(e.embeds, project(m.projector, feats, 'linear')).relError;
  // The converted projector is W·GELU(x) − W·GELU(−x) + b; with ggml's GELU (fp16 table) simulated:
  const W = m.projector.get('model.mm_projector.weight')!;
  const b = m.projector.get('model.mm_projector.bias')!;
  const ggmlProj = feats.map((f) => linear(f.map((x) => ggmlGelu(x) - ggmlGelu(-x)), W, b));
  const projGgml = compare(e.embeds, ggmlProj).relError;
  const llm = compare(e.logits, refLogits(m, ids, e.embeds)).relError;
  const total = compare(e.logits, ref.logits).relError;
  t.comment(`v0 F32 by stage: CLIP hidden_states[-2] rel ${fmt(clip)}; projector alone (reference Linear on the engine's CLIP features) ${fmt(proj)} (against [I;-I]/[W|-W] with ggml's GELU simulated: ${fmt(projGgml)}); LLM alone (reference LLM on the engine's embeddings) ${fmt(llm)}; end to end ${fmt(total)}`);
  t.ok(clip <= 1e-3, `CLIP stage ${fmt(clip)} ≤ 1e-3`);
  t.ok(proj <= 1e-3, `[I;-I]/[W|-W] projector stage ${fmt(proj)} ≤ 1e-3`);
  t.ok(proj > 0, 'the projector stage is measured (not trivially exact)');
  t.ok(projGgml < proj / 5, `the projector's error is ggml's fp16 GELU table: with it simulated the error drops to ${fmt(projGgml)}`);
  t.ok(llm <= 1e-5, `LLM stage ${fmt(llm)} ≤ 1e-5 (F32 weights, F32 KV cache, no flash attention)`);
});

t.test('the bound catches the CLS-order bug and the missing CLIP layer', async (t) => {
  const r = await convert('st', 'f32');
  const e = await runEngine({ model: r.model, mmproj: r.mmproj, rgb, size, ids });
  for (const [mode, what] of [['stock-cls-last', 'CLS concatenated after the patches (unpatched llama.cpp)'], ['hidden-3', 'hidden_states[-3] (block_count n-1 without feature_layer)']] as const) {
    const bug = runReference(m, pixels, ids, mode);
    const emb = compare(bug.embeds, ref.embeds).relError;
    const lg = compare(bug.logits, ref.logits).relError;
    const engineVsBug = compare(e.embeds, bug.embeds).relError;
    t.comment(`v0 ${what}: image embeddings off by ${fmt(emb)}, logits by ${fmt(lg)}; the engine is ${fmt(engineVsBug)} from it`);
    t.ok(emb > 100 * 1e-3, `${mode}: image embeddings off by ${fmt(emb)} > 100× the 1e-3 bound`);
    t.ok(lg > 10 * 1e-3, `${mode}: logits off by ${fmt(lg)} > 10× the 1e-3 bound`);
    t.ok(engineVsBug > 100 * 1e-3, `${mode}: the engine does not compute the buggy variant (${fmt(engineVsBug)} from it)`);
  }
});

t.test('F16 KV cache and flash attention (the engine defaults) for comparison', async (t) => {
  const r = await convert('st', 'f32');
  for (const [kv, fa] of [['f16', 'off'], ['f16', 'auto']] as const) {
    const e = await runEngine({ model: r.model, mmproj: r.mmproj, rgb, size, ids, greedy: GREEDY, kvCacheType: kv, flashAttn: fa });
    const cl = compare(e.logits, ref.logits).relError;
    const llm = compare(e.logits, refLogits(m, ids, e.embeds)).relError;
    t.comment(`v0 F32 GGUF, ${kv.toUpperCase()} KV cache, flash attention ${fa}: logits rel ${fmt(cl)} (LLM stage alone ${fmt(llm)})`);
    t.ok(cl <= 2e-3, `logits rel error ${fmt(cl)} ≤ 2e-3`);
    t.ok(llm > 1e-6, `an F16 KV cache is visible in the LLM stage (${fmt(llm)})`);
    t.same(e.greedy, refPath.ids, 'greedy still identical');
  }
});

// With flash attention on (what 'auto' picks on the CPU backend) llama.cpp casts an F32 KV cache to
// F16 before attending (src/llama-graph.cpp build_attn_mha: `if (k->type == GGML_TYPE_F32) k =
// ggml_cast(ctx0, k, GGML_TYPE_F16)`), so Context.create turns flash attention off for an F32 cache
// unless the caller chose: the default must give real F32 attention.
t.test("kvCacheType 'f32' with the default flashAttn gives F32 attention", async (t) => {
  const r = await convert('st', 'f32');
  const e = await runEngine({ model: r.model, mmproj: r.mmproj, rgb, size, ids, kvCacheType: 'f32', flashAttn: 'default' });
  const f16 = await runEngine({ model: r.model, mmproj: r.mmproj, rgb, size, ids, kvCacheType: 'f16', flashAttn: 'auto' });
  const llm = compare(e.logits, refLogits(m, ids, e.embeds)).relError;
  t.comment(`v0 F32 GGUF, F32 KV cache, flash attention default: LLM stage ${fmt(llm)}; logits vs an F16 KV cache differ by ${fmt(compare(e.logits, f16.logits).relError)}`);
  t.ok(llm <= 1e-5, `LLM stage ${fmt(llm)} ≤ 1e-5 as with flashAttn 'off'`);
  t.notSame(e.logits, f16.logits, "an F32 KV cache gives other logits than an F16 one");
});

t.test('the GGUF carries the LLaVA-Med v0 metadata the gate relied on', async (t) => {
  const r = await convert('st', 'f32');
  const h = await readGgufHeader(r.mmproj);
  t.same(h.kv.get('clip.vision.feature_layer')?.value, [TINY_CLIP.layers - 1], 'feature_layer = [n-1]');
  t.equal(h.kv.get('clip.vision.block_count')?.value, TINY_CLIP.layers - 1, 'block_count = n-1');
  const pre = JSON.parse(await readFile(join(st.dirs.vision, 'preprocessor_config.json'), 'utf8')) as { image_mean: number[] };
  t.same(h.kv.get('clip.vision.image_mean')?.value, pre.image_mean.map(Math.fround), 'image_mean from the preprocessor config');
});
