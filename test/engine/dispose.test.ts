/**
 * Dispose rules (better-sqlite3 style, anchors.md): dispose is idempotent; afterwards every
 * method fails with ERR_DISPOSED; dispose stops the running call (decode, step, encode: it
 * rejects with ERR_DISPOSED) and resolves once it has settled; calls still queued behind it
 * are rejected at once; calls run in FIFO order; `await using` disposes.
 */
import t from 'tap';
import { Context, Model, Projector, type Sampler } from '../../lib/engine/index.js';
import { makeTinyLlamaGguf, makeTinyMmproj, testImage } from '../helpers/tiny-gguf.js';
import { BIG_LLM, BIG_MMPROJ, failsWith, followChain, greedy, tinyPair } from './util.js';

const { llm, mm } = await tinyPair();
const big = await makeTinyLlamaGguf(undefined, BIG_LLM);
const bigMm = await makeTinyMmproj(undefined, BIG_MMPROJ);
const longPrompt = Array.from({ length: 400 }, (_, i) => 1000 + i);

t.test('dispose is idempotent (model, projector, context, sampler, embedding)', async (t) => {
  const model = await Model.load(llm.path);
  const proj = await Projector.load(model, mm.path);
  const ctx = await Context.create(model, { contextSize: 256 });
  const s = ctx.createSampler({ temperature: 0 });
  const e = await proj.encode(testImage(28, 28), 28, 28);
  s.dispose();
  s.dispose();
  e.dispose();
  e.dispose();
  const [a, b] = [ctx.dispose(), ctx.dispose()];
  t.equal(a, b, 'context: the same promise twice');
  await Promise.all([a, b, ctx.dispose()]);
  await proj.dispose();
  await proj.dispose();
  await Promise.all([model.dispose(), model.dispose()]);
  await model.dispose();
  t.equal(ctx.disposed, true);
  t.equal(proj.disposed, true);
  t.equal(model.disposed, true);
});

t.test('every Context method after dispose → ERR_DISPOSED', async (t) => {
  const model = await Model.load(llm.path);
  const proj = await Projector.load(model, mm.path);
  const ctx = await Context.create(model, { contextSize: 256, sequences: 2 });
  const s = ctx.createSampler({ temperature: 0 });
  const e = await proj.encode(testImage(28, 28), 28, 28);
  await ctx.decode([1, 450]);
  await ctx.dispose();
  const calls: [string, () => unknown][] = [
    ['decode', () => ctx.decode([1])],
    ['decodeImage', () => ctx.decodeImage(e)],
    ['sample', () => ctx.sample(s)],
    ['step', () => ctx.step([{ seq: 0, token: 1, sampler: s }])],
    ['logits', () => ctx.logits()],
    ['logProbs', () => ctx.logProbs([0], [1])],
    ['trim', () => ctx.trim(0, 0)],
    ['clear', () => ctx.clear()],
    ['nativeLength', () => ctx.nativeLength()],
    ['perf', () => ctx.perf()],
    ['resetPerf', () => ctx.resetPerf()],
    ['setThreads', () => ctx.setThreads(2)],
    ['createSampler', () => ctx.createSampler({ temperature: 0 })],
    ['length', () => ctx.length()],
  ];
  for (const [name, f] of calls) await failsWith(t, f, 'ERR_DISPOSED', `context.${name}`);
  // the model, projector, sampler and embedding are independent of the context
  t.same(Array.from(await model.tokenize('Hello world')), [15043, 3186]);
  s.accept([1]);
  t.equal(e.toFloat32Array().length, 4 * 64);
  s.dispose();
  e.dispose();
  await proj.dispose();
  await model.dispose();
});

t.test('every Model / Projector / Sampler method after dispose → ERR_DISPOSED', async (t) => {
  const model = await Model.load(llm.path);
  const proj = await Projector.load(model, mm.path);
  const ctx = await Context.create(model, { contextSize: 256 });
  const s = ctx.createSampler({ temperature: 0 });
  await proj.dispose();
  await failsWith(t, () => proj.encode(testImage(28, 28), 28, 28), 'ERR_DISPOSED', 'projector.encode');
  s.dispose();
  await failsWith(t, () => s.accept([1]), 'ERR_DISPOSED', 'sampler.accept');
  await failsWith(t, () => s.reset(), 'ERR_DISPOSED', 'sampler.reset');
  await ctx.decode([1, 450]);
  await failsWith(t, () => ctx.sample(s), 'ERR_DISPOSED', 'context.sample with a disposed sampler');
  await failsWith(t, () => ctx.step([{ seq: 0, token: 1, sampler: s }]), 'ERR_DISPOSED', 'context.step with a disposed sampler');
  t.equal(ctx.length(), 2, 'the failed step decoded nothing');
  await ctx.dispose();
  await model.dispose();
  await failsWith(t, () => model.tokenize('x'), 'ERR_DISPOSED', 'model.tokenize');
  await failsWith(t, () => model.detokenize([1]), 'ERR_DISPOSED', 'model.detokenize');
  await failsWith(t, () => model.tokenPieces([1]), 'ERR_DISPOSED', 'model.tokenPieces');
  await failsWith(t, () => Context.create(model), 'ERR_DISPOSED', 'Context.create on a disposed model');
  await failsWith(t, () => Projector.load(model, mm.path), 'ERR_DISPOSED', 'Projector.load on a disposed model');
});

t.test('a context outlives its disposed model (the native side shares ownership)', async (t) => {
  const model = await Model.load(llm.path);
  const ctx = await Context.create(model, { contextSize: 256 });
  const s = ctx.createSampler({ temperature: 0 });
  await model.dispose();
  const start = llm.chainTokens[2]!;
  await ctx.decode([1, start]);
  let tok = (await ctx.sample(s)).token;
  const out = [tok];
  for (let i = 0; i < 4; i++) out.push((tok = (await ctx.step([{ seq: 0, token: tok, sampler: s }]))[0]!.token));
  t.same(out, followChain(llm.chain, start, 5), 'still generates the chain');
  s.dispose();
  await ctx.dispose();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('dispose while a decode runs: queued calls are rejected at once, the decode is stopped (ERR_DISPOSED), then dispose resolves', async (t) => {
  const model = await Model.load(big.path);
  const ctx = await Context.create(model, { contextSize: 1024 });
  const events: string[] = [];
  let settled = false;
  const running = ctx.decode(longPrompt).then(
    () => events.push('decode resolved'),
    (e: { code?: string }) => events.push(`decode rejected ${e.code}`),
  ).finally(() => (settled = true));
  await sleep(15); // let the worker start: the 400-token decode takes ~100 ms alone, more on a busy machine
  const queued = ctx.nativeLength().then(
    () => events.push('queued resolved'),
    (e: { code?: string }) => events.push(`queued rejected ${e.code}`),
  );
  t.notOk(settled, 'the decode is still running when dispose() is called');
  const disposing = ctx.dispose().then(() => events.push('dispose resolved'));
  t.equal(ctx.disposed, true, 'disposed at once (no new calls accepted)');
  await failsWith(t, () => ctx.decode([1]), 'ERR_DISPOSED', 'a call made after dispose()');
  await Promise.all([running, queued, disposing]);
  t.same(events, ['queued rejected ERR_DISPOSED', 'decode rejected ERR_DISPOSED', 'dispose resolved'], 'order of settlement');
  await model.dispose();
});

t.test('dispose while an encode runs: the encode is stopped (ERR_DISPOSED); an embedding made before outlives its projector', async (t) => {
  const model = await Model.load(big.path);
  const proj = await Projector.load(model, bigMm.path);
  const size = bigMm.imageSize;
  const done = await proj.encode(testImage(size, size), size, size);
  const events: string[] = [];
  let settled = false;
  const enc = proj.encode(testImage(size, size), size, size).then(
    () => events.push('encode resolved'),
    (e: { code?: string }) => events.push(`encode rejected ${e.code}`),
  ).finally(() => (settled = true));
  await sleep(5);
  t.notOk(settled, 'the encode is still running when dispose() is called');
  const disposing = proj.dispose().then(() => events.push('dispose resolved'));
  await Promise.all([enc, disposing]);
  t.same(events, ['encode rejected ERR_DISPOSED', 'dispose resolved']);
  await failsWith(t, () => proj.encode(testImage(size, size), size, size), 'ERR_DISPOSED', 'an encode after dispose()');
  t.equal(done.nTokens, (size / 14) ** 2);
  t.equal(done.toFloat32Array().length, done.nTokens * 512, 'the embedding outlives its projector');
  // and it still decodes into a context of the same model
  const ctx = await Context.create(model, { contextSize: 1024 });
  await ctx.decodeImage(done);
  t.equal(ctx.length(), done.nTokens);
  done.dispose();
  await ctx.dispose();
  await model.dispose();
});

t.test('dispose while a model call runs waits for it', async (t) => {
  const model = await Model.load(llm.path);
  const events: string[] = [];
  const text = 'The quick brown fox jumps over the lazy dog. '.repeat(20000);
  let settled = false;
  const tok = model.tokenize(text).then((ids) => {
    events.push('tokenize resolved');
    settled = true;
    return ids;
  });
  await sleep(2);
  t.notOk(settled, 'tokenize is still running when dispose() is called');
  const disposing = model.dispose().then(() => events.push('dispose resolved'));
  const ids = await tok;
  await disposing;
  t.ok(ids.length > 10000, `${ids.length} tokens`);
  t.same(events, ['tokenize resolved', 'dispose resolved']);
});

t.test('queued calls run one at a time in FIFO order', async (t) => {
  const model = await Model.load(llm.path);
  const ctx = await Context.create(model, { contextSize: 512 });
  const order: number[] = [];
  const c = llm.chainTokens;
  const calls: Promise<unknown>[] = [
    ctx.decode(longPrompt.slice(0, 300)),
    ctx.nativeLength(),
    ctx.decode([c[0]!]),
    ctx.logits(),
    ctx.trim(0, 100),
    ctx.nativeLength(),
    ctx.decode([c[1]!]),
    ctx.perf(),
    ctx.logits(),
  ].map((p, i) => p.then((v) => (order.push(i), v)));
  const results = await Promise.all(calls);
  t.same(order, [0, 1, 2, 3, 4, 5, 6, 7, 8], 'completion order = call order');
  t.equal(results[1], 300, 'nativeLength saw the first decode');
  const argmax = (l: Float32Array) => l.reduce((b, x, i) => (x > l[b]! ? i : b), 0);
  t.equal(argmax(results[3] as Float32Array), llm.chain.get(c[0]!), 'logits are those of the decode just before');
  t.equal(results[5], 100, 'nativeLength saw the trim');
  t.equal(argmax(results[8] as Float32Array), llm.chain.get(c[1]!), 'logits after the last decode');
  t.equal(ctx.length(), 101);
  // a failing call in the middle does not break the queue
  const order2: string[] = [];
  const mark = (name: string) => [() => order2.push(`${name} ok`), (e: { code?: string }) => order2.push(`${name} ${e.code}`)] as const;
  await Promise.all([
    ctx.decode([c[2]!]).then(...mark('a')),
    ctx.decode(Array.from({ length: 600 }, () => 1000)).then(...mark('too long')),
    ctx.logits().then(...mark('logits')),
  ]);
  t.same(order2, ['a ok', 'too long ERR_CONTEXT_FULL', 'logits ok']);
  await ctx.dispose();
  await model.dispose();
});

t.test('await using / using dispose at the end of the block', async (t) => {
  let model!: Model;
  let proj!: Projector;
  let ctx!: Context;
  let s!: Sampler;
  {
    await using m = await Model.load(llm.path);
    await using p = await Projector.load(m, mm.path);
    await using c = await Context.create(m, { contextSize: 256 });
    using smp = c.createSampler({ temperature: 0 });
    [model, proj, ctx, s] = [m, p, c, smp];
    const start = llm.chainTokens[4]!;
    t.same(await greedy(c, [1, start], 3), followChain(llm.chain, start, 3));
    t.equal(m.disposed || p.disposed || c.disposed, false, 'live inside the block');
  }
  t.equal(ctx.disposed, true, 'context disposed');
  t.equal(proj.disposed, true, 'projector disposed');
  t.equal(model.disposed, true, 'model disposed');
  await failsWith(t, () => s.reset(), 'ERR_DISPOSED', 'sampler disposed');
  // Symbol.asyncDispose is the same operation as dispose()
  const m2 = await Model.load(llm.path);
  await m2[Symbol.asyncDispose]();
  t.equal(m2.disposed, true);
  await m2.dispose();
});
