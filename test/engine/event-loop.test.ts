/**
 * The heavy work runs off the JS thread: the event loop keeps ticking while a model loads, an
 * image encodes and a prompt decodes. And aborting a long decode (ggml's abort callback between
 * graph nodes) gives ERR_ABORTED and leaves the context exactly as before the call.
 */
import t, { type Test } from 'tap';
import { Context, Model, Projector } from '../../lib/engine/index.js';
import { makeTinyLlamaGguf, makeTinyMmproj, testImage } from '../helpers/tiny-gguf.js';
import { BIG_LLM, BIG_MMPROJ, failsWith, greedy } from './util.js';

const big = await makeTinyLlamaGguf(undefined, BIG_LLM);
const bigMm = await makeTinyMmproj(undefined, BIG_MMPROJ);
const prompt = (n: number, from = 1000) => [1, ...Array.from({ length: n - 1 }, (_, i) => from + i)];

/**
 * Counts setInterval(1 ms) ticks while `op` runs. A call that blocked the JS thread would let at
 * most one tick through (timers do not catch up), however long it took.
 */
async function ticksDuring<T>(t: Test, what: string, op: () => Promise<T>, minTicks = 3): Promise<T> {
  let ticks = 0;
  let immediates = 0;
  let stop = false;
  const iv = setInterval(() => ticks++, 1);
  const spin = () => {
    if (stop) return;
    immediates++;
    setImmediate(spin);
  };
  setImmediate(spin);
  try {
    return await op();
  } finally {
    stop = true;
    clearInterval(iv);
    t.ok(ticks >= minTicks, `${what}: ${ticks} timer ticks while it ran`);
    t.ok(immediates >= minTicks, `${what}: ${immediates} setImmediate turns`);
  }
}

/** setInterval(1 ms) firings while `op` runs (see ticksDuring). */
async function countTicks(op: () => Promise<unknown>): Promise<number> {
  let ticks = 0;
  const iv = setInterval(() => ticks++, 1);
  try {
    await op();
  } finally {
    clearInterval(iv);
  }
  return ticks;
}

t.test('the event loop ticks during load, projector load, encode, decode and generation', async (t) => {
  const model = await ticksDuring(t, 'model load', () => Model.load(big.path, { loadMode: 'none' }));
  const proj = await Projector.load(model, bigMm.path);
  const size = bigMm.imageSize;
  const img = testImage(size, size);
  const e = await ticksDuring(t, 'encode', () => proj.encode(img, size, size));
  t.equal(e.nTokens, (size / 14) ** 2);
  const ctx = await Context.create(model, { contextSize: 1024 });
  await ticksDuring(t, 'image decode', () => ctx.decodeImage(e));
  await ticksDuring(t, 'decode of 400 tokens', () => ctx.decode(prompt(400)));
  // generation: each step is a worker; across 30 steps the loop must turn many times
  await ticksDuring(t, 'greedy generation (30 tokens)', () => greedy(ctx, [450], 30), 10);
  e.dispose();
  await ctx.dispose();
  await proj.dispose();
  await model.dispose();
});

t.test('abort during a long decode → ERR_ABORTED; the context rolls back and stays usable', async (t) => {
  const model = await Model.load(big.path);
  const ctx = await Context.create(model, { contextSize: 1024 });
  // baseline: what a clean context produces after [head, tail]
  const head = prompt(50);
  const tail = prompt(400, 5000).slice(1);
  const baseCtx = await Context.create(model, { contextSize: 1024 });
  const baseline = await greedy(baseCtx, [...head, ...tail.slice(0, 10)], 5);
  await baseCtx.dispose();

  // The yardstick, counted not timed: timer ticks while the same tail decodes to its end. The decode runs
  // off the JS thread, so the loop keeps turning (a blocking call would let at most one tick through).
  const yard = await Context.create(model, { contextSize: 1024 });
  await yard.decode(head);
  const fullTicks = await countTicks(() => yard.decode(tail));
  await yard.dispose();
  t.ok(fullTicks >= 10, `the loop turned ${fullTicks} times while the whole tail decoded`);

  await ctx.decode(head);
  t.equal(ctx.length(), 50);
  for (const delay of [2, 15, 40]) {
    const ac = new AbortController();
    // Ticks counted from the abort to the rejection: an abort that only took effect once the decode had
    // finished would count about as many as the whole decode minus the delay.
    let afterAbort = -1;
    const iv = setInterval(() => afterAbort >= 0 && afterAbort++, 1);
    setTimeout(() => {
      afterAbort = 0;
      ac.abort(new Error('stop'));
    }, delay);
    const e = await failsWith(t, () => ctx.decode(tail, { signal: ac.signal }), 'ERR_ABORTED', `abort after ${delay} ms`).finally(() => clearInterval(iv));
    t.ok(afterAbort >= 0, 'the abort fired while the decode ran (the loop turned)');
    t.ok(afterAbort < fullTicks / 2, `stopped early: ${afterAbort} ticks from the abort to the rejection, ${fullTicks} for the whole decode`);
    t.equal((e?.cause as Error | undefined)?.message, 'stop', 'the reason is the cause');
    t.equal(ctx.length(), 50, 'tracked length rolled back');
    t.equal(await ctx.nativeLength(), ctx.length(), 'native KV agrees with the tracked length');
  }
  // the context continues exactly like a clean one
  t.same(await greedy(ctx, tail.slice(0, 10), 5), baseline, 'same tokens as a context that never saw the aborted decodes');
  await ctx.dispose();
  await model.dispose();
});

t.test('abort during generation steps and during an image decode', async (t) => {
  const model = await Model.load(big.path);
  const proj = await Projector.load(model, bigMm.path);
  const ctx = await Context.create(model, { contextSize: 1024 });
  await ctx.decode(prompt(20));
  const before = ctx.length();
  const s = ctx.createSampler({ temperature: 0 });
  let tok = (await ctx.sample(s)).token;
  const ac = new AbortController();
  let steps = 0;
  const err = await failsWith(
    t,
    async () => {
      for (;;) {
        tok = (await ctx.step([{ seq: 0, token: tok, sampler: s }], { signal: ac.signal }))[0]!.token;
        if (++steps === 5) ac.abort();
      }
    },
    'ERR_ABORTED',
    'step after abort',
  );
  t.ok(err);
  t.equal(steps, 5, 'stopped at the first step after the abort');
  t.equal(ctx.length(), before + 5);
  t.equal(await ctx.nativeLength(), ctx.length());

  const size = bigMm.imageSize;
  using e = await proj.encode(testImage(size, size), size, size);
  const ac2 = new AbortController();
  setTimeout(() => ac2.abort(), 3);
  const r = await ctx.decodeImage(e, { signal: ac2.signal }).then(
    () => 'completed',
    (x: { code?: string }) => x.code,
  );
  t.ok(r === 'ERR_ABORTED' || r === 'completed', `image decode: ${r}`);
  t.equal(ctx.length(), before + 5 + (r === 'completed' ? e.nTokens : 0), 'length consistent either way');
  t.equal(await ctx.nativeLength(), ctx.length(), 'native KV agrees');
  // an encode aborted before it starts
  const ac3 = new AbortController();
  ac3.abort();
  await failsWith(t, () => proj.encode(testImage(size, size), size, size, { signal: ac3.signal }), 'ERR_ABORTED', 'pre-aborted encode');
  s.dispose();
  await ctx.dispose();
  await proj.dispose();
  await model.dispose();
});
