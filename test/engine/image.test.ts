/**
 * Image encoding through the tiny CLIP mmproj: token count and width, determinism, decoding
 * the features into a context, argument checks and embedding disposal.
 */
import t from 'tap';
import { Context, Model, Projector } from '../../lib/engine/index.js';
import { testImage } from '../helpers/tiny-gguf.js';
import { failsWith, rejectsWith, tinyPair } from './util.js';

const { llm, mm } = await tinyPair();
const model = await Model.load(llm.path);
const proj = await Projector.load(model, mm.path);
t.teardown(async () => {
  await proj.dispose();
  await model.dispose();
});

t.test('encode: 4 tokens (28 px / patch 14, CLS dropped) of width 64 (the LLM n_embd)', async (t) => {
  const img = testImage(28, 28);
  const e = await proj.encode(img, 28, 28);
  t.equal(e.nTokens, 4);
  t.equal(e.nEmbd, 64);
  t.equal(e.width, 28);
  t.equal(e.height, 28);
  t.ok(e.encodeMs >= 0);
  const v = e.toFloat32Array();
  t.equal(v.length, 4 * 64);
  t.ok(v.every(Number.isFinite), 'all finite');
  t.ok(v.some((x) => Math.abs(x) > 1e-3), 'not all zero');
  // rows differ: each output token comes from a different patch
  const rows = [0, 1, 2, 3].map((r) => Array.from(v.subarray(r * 64, (r + 1) * 64)));
  t.notSame(rows[0], rows[1], 'patch rows differ');

  const again = await proj.encode(Buffer.from(img), 28, 28);
  t.same(Array.from(again.toFloat32Array()), Array.from(v), 'deterministic (and a Buffer works like a Uint8Array)');

  const other = await proj.encode(testImage(28, 28, 99), 28, 28);
  t.notSame(Array.from(other.toFloat32Array()), Array.from(v), 'another image gives other features');
  e.dispose();
  again.dispose();
  other.dispose();
});

t.test('decodeImage appends nTokens positions; the context stays consistent', async (t) => {
  const ctx = await Context.create(model, { contextSize: 256 });
  const e = await proj.encode(testImage(28, 28), 28, 28);
  await ctx.decode([1, 450]);
  await ctx.decodeImage(e);
  t.equal(ctx.length(), 6, '2 text + 4 image positions');
  t.equal(await ctx.nativeLength(), 6, 'native KV agrees');
  await ctx.decode([IM_END()]);
  t.equal(ctx.length(), 7);
  const logits = await ctx.logits();
  t.equal(logits.length, 32004);
  // the same image in a fresh context gives the same logits: features are position-independent
  const ctx2 = await Context.create(model, { contextSize: 256 });
  await ctx2.decode([1, 450]);
  await ctx2.decodeImage(e);
  await ctx2.decode([IM_END()]);
  t.same(Array.from(await ctx2.logits()), Array.from(logits), 'same prompt + image → identical logits');
  e.dispose();
  await ctx.dispose();
  await ctx2.dispose();
});

function IM_END(): number {
  return 32003;
}

t.test('wrong pixel buffers are ERR_INVALID_ARGUMENT, and the projector keeps working', async (t) => {
  await rejectsWith(t, () => proj.encode(testImage(28, 27), 28, 27), 'ERR_INVALID_ARGUMENT', 'wrong height');
  await rejectsWith(t, () => proj.encode(testImage(56, 56), 56, 56), 'ERR_INVALID_ARGUMENT', '56x56 (must be preprocessed to 28)');
  await rejectsWith(t, () => proj.encode(new Uint8Array(10), 28, 28), 'ERR_INVALID_ARGUMENT', 'too few bytes');
  await rejectsWith(t, () => proj.encode(new Uint8Array(28 * 28 * 4), 28, 28), 'ERR_INVALID_ARGUMENT', 'RGBA-sized buffer');
  await rejectsWith(t, () => proj.encode('pixels' as never, 28, 28), 'ERR_INVALID_ARGUMENT', 'a string');
  await rejectsWith(t, () => proj.encode(new Float32Array(28 * 28 * 3) as never, 28, 28), 'ERR_INVALID_ARGUMENT', 'a Float32Array');
  await rejectsWith(t, () => proj.encode(testImage(28, 28), '28' as never, 28), 'ERR_INVALID_ARGUMENT', "width '28'");
  const e = await proj.encode(testImage(28, 28), 28, 28);
  t.equal(e.nTokens, 4, 'still encodes');
  e.dispose();
});

t.test('a disposed embedding is ERR_DISPOSED everywhere; dispose is idempotent', async (t) => {
  const ctx = await Context.create(model, { contextSize: 256 });
  const e = await proj.encode(testImage(28, 28), 28, 28);
  e.dispose();
  e.dispose();
  t.equal(e.disposed, true);
  await failsWith(t, () => e.toFloat32Array(), 'ERR_DISPOSED', 'toFloat32Array');
  await failsWith(t, () => ctx.decodeImage(e), 'ERR_DISPOSED', 'decodeImage');
  t.equal(ctx.length(), 0, 'nothing decoded');
  {
    using e2 = await proj.encode(testImage(28, 28), 28, 28);
    await ctx.decodeImage(e2);
  }
  t.equal(ctx.length(), 4, 'a live embedding still decodes');
  await ctx.dispose();
});

t.test('decodeImage rejects things that are not an ImageEmbedding', async (t) => {
  const ctx = await Context.create(model, { contextSize: 256 });
  await failsWith(t, () => ctx.decodeImage({} as never), 'ERR_INVALID_ARGUMENT', 'decodeImage({})');
  await failsWith(t, () => ctx.decodeImage(null as never), 'ERR_INVALID_ARGUMENT', 'decodeImage(null)');
  await ctx.decode([1]);
  t.equal(ctx.length(), 1, 'context still works');
  await ctx.dispose();
});
