/**
 * Generation: the chain model's greedy continuation is exactly the constructed chain (so the
 * whole path — decode, logits, greedy sampler, step — computes what the weights say), greedy
 * decoding is deterministic, and sequence bookkeeping matches the native KV cache.
 */
import t from 'tap';
import { Context, Model, Projector } from '../../lib/engine/index.js';
import { IM_END_ID, IM_START_ID, makeTinyLlamaGguf, testImage } from '../helpers/tiny-gguf.js';
import { followChain, greedy, tinyPair } from './util.js';

const { llm, mm } = await tinyPair();
const model = await Model.load(llm.path);
t.teardown(() => model.dispose());

t.test('chain model: greedy continuation equals the constructed chain', async (t) => {
  t.equal(llm.chainTokens.length, 50);
  t.equal(new Set(llm.chain.values()).size, 50, 'next() is a permutation of the chain tokens');
  const ctx = await Context.create(model, { contextSize: 256 });
  for (const [k, start] of [llm.chainTokens[0]!, llm.chainTokens[17]!, llm.chainTokens[49]!].entries()) {
    await ctx.clear();
    const prompt = [1, ...(await model.tokenize('Question: what comes next?')), start];
    const got = await greedy(ctx, prompt, 60);
    t.same(got, followChain(llm.chain, start, 60), `start ${start}: 60 greedy tokens follow the chain (wrapping round the cycle)`);
    t.equal(ctx.length(), prompt.length + 59, `case ${k}: length = prompt + fed tokens`);
    t.equal(await ctx.nativeLength(), ctx.length(), 'native KV agrees');
  }
  await ctx.dispose();
});

t.test('chain model: the argmax of the logits is next(last token) for every chain token', async (t) => {
  const ctx = await Context.create(model, { contextSize: 256 });
  let ok = 0;
  for (const id of llm.chainTokens) {
    await ctx.clear();
    await ctx.decode([1, 3148, id]);
    const l = await ctx.logits();
    let best = 0;
    for (let v = 1; v < l.length; v++) if (l[v]! > l[best]!) best = v;
    if (best === llm.chain.get(id)) ok++;
    else t.fail(`after ${id}: argmax ${best}, expected ${llm.chain.get(id)}`);
  }
  t.equal(ok, 50, 'all 50');
  await ctx.dispose();
});

t.test('chain model with F16 weights follows the chain too', async (t) => {
  const f16 = await makeTinyLlamaGguf(undefined, { f16: true });
  t.same(f16.chainTokens, llm.chainTokens, 'same seed → same chain');
  const m = await Model.load(f16.path);
  t.match(m.info.description, /F16/);
  const ctx = await Context.create(m, { contextSize: 256 });
  const start = f16.chainTokens[5]!;
  t.same(await greedy(ctx, [1, start], 20), followChain(f16.chain, start, 20));
  await ctx.dispose();
  await m.dispose();
});

t.test('chain model: an image in the prompt does not disturb the chain (the last token decides)', async (t) => {
  const proj = await Projector.load(model, mm.path);
  const ctx = await Context.create(model, { contextSize: 256 });
  using e = await proj.encode(testImage(28, 28), 28, 28);
  await ctx.decode([1, IM_START_ID], { logits: 'none' });
  await ctx.decodeImage(e);
  const start = llm.chainTokens[3]!;
  t.same(await greedy(ctx, [IM_END_ID, start], 10), followChain(llm.chain, start, 10));
  t.equal(ctx.length(), 2 + 4 + 2 + 9);
  await ctx.dispose();
  await proj.dispose();
});

t.test('greedy generation on a random model is deterministic (two runs, two contexts)', async (t) => {
  const rnd = await makeTinyLlamaGguf(undefined, { mode: 'random', seed: 11 });
  const m = await Model.load(rnd.path);
  const prompt = [1, ...(await m.tokenize('The chest X-ray shows'))];
  const ctxA = await Context.create(m, { contextSize: 256 });
  const a1 = await greedy(ctxA, prompt, 24);
  await ctxA.clear();
  const a2 = await greedy(ctxA, prompt, 24);
  const ctxB = await Context.create(m, { contextSize: 256, batchSize: 4 });
  const b = await greedy(ctxB, prompt, 24);
  t.same(a2, a1, 'same context, cleared: identical');
  t.same(b, a1, 'fresh context with another batch size: identical');
  t.ok(new Set(a1).size > 1, `the random model does not just repeat one token (${a1.join(' ')})`);
  // logits are bit-identical between runs
  await ctxA.clear();
  await ctxA.decode(prompt);
  const l1 = await ctxA.logits();
  await ctxA.clear();
  await ctxA.decode(prompt);
  t.same(Array.from(await ctxA.logits()), Array.from(l1), 'identical logits');
  await ctxA.dispose();
  await ctxB.dispose();
  await m.dispose();
});

t.test('sampling with a seed is reproducible; temperature 0 ignores the seed', async (t) => {
  const rnd = await makeTinyLlamaGguf(undefined, { mode: 'random', seed: 11 });
  const m = await Model.load(rnd.path);
  const ctx = await Context.create(m, { contextSize: 256 });
  const run = async (opts: { temperature: number; seed: number }) => {
    await ctx.clear();
    using s = ctx.createSampler(opts);
    await ctx.decode([1, 450, 2767]);
    let tok = (await ctx.sample(s)).token;
    const out = [tok];
    for (let i = 0; i < 15; i++) {
      tok = (await ctx.step([{ seq: 0, token: tok, sampler: s }]))[0]!.token;
      out.push(tok);
    }
    return out;
  };
  t.same(await run({ temperature: 1, seed: 42 }), await run({ temperature: 1, seed: 42 }), 'same seed → same tokens');
  t.same(await run({ temperature: 0, seed: 1 }), await run({ temperature: 0, seed: 2 }), 'greedy ignores the seed');
  await ctx.dispose();
  await m.dispose();
});

t.test('two sequences step together and each follows its own chain', async (t) => {
  const ctx = await Context.create(model, { contextSize: 256, sequences: 2 });
  const [x, y] = [llm.chainTokens[10]!, llm.chainTokens[30]!];
  using sx = ctx.createSampler({ temperature: 0 });
  using sy = ctx.createSampler({ temperature: 0 });
  await ctx.decode([1, x], { seq: 0 });
  let tx = (await ctx.sample(sx)).token;
  await ctx.decode([1, 450, y], { seq: 1 });
  let ty = (await ctx.sample(sy)).token;
  const gx = [tx];
  const gy = [ty];
  for (let i = 0; i < 8; i++) {
    const [rx, ry] = await ctx.step([
      { seq: 0, token: tx, sampler: sx },
      { seq: 1, token: ty, sampler: sy },
    ]);
    tx = rx!.token;
    ty = ry!.token;
    gx.push(tx);
    gy.push(ty);
  }
  t.same(gx, followChain(llm.chain, x, 9));
  t.same(gy, followChain(llm.chain, y, 9));
  t.equal(ctx.length(0), 2 + 8);
  t.equal(ctx.length(1), 3 + 8);
  t.equal(await ctx.nativeLength(0), 10);
  t.equal(await ctx.nativeLength(1), 11);
  await ctx.dispose();
});
