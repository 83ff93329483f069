// Several sequences in one context: each sequence's capacity (one shared KV buffer, or one
// buffer per sequence), and on this model, two sequences stepped together in separate buffers
// give the single-sequence continuations (see test/llava-med/parallel-ties.test.ts for why that
// is not guaranteed on every model: 1-row and 2-row steps use different matrix kernels).
import t from 'tap';
import { Context, Model } from '../../lib/engine/index.js';
import { makeTinyLlamaGguf } from '../helpers/tiny-gguf.js';

const { path } = await makeTinyLlamaGguf(undefined, { mode: 'random', seed: 21 });
const model = await Model.load(path);
t.teardown(() => model.dispose());
const prompt = Array.from({ length: 40 }, (_, i) => 1000 + ((i * 37) % 500));

t.test("a sequence's capacity is llama.cpp's n_ctx_seq: the whole buffer when shared, its share when separate", async (t) => {
  const shared = await Context.create(model, { contextSize: 512, sequences: 2, flashAttn: 'off' });
  t.teardown(() => shared.dispose());
  t.same([shared.sequence(0).capacity, shared.sequence(1).capacity], [512, 512]);
  const ctx = await Context.create(model, { contextSize: 1024, sequences: 2, kvUnified: false, flashAttn: 'off' });
  t.teardown(() => ctx.dispose());
  t.equal(ctx.kvUnified, false);
  t.same([ctx.sequence(0).capacity, ctx.sequence(1).capacity], [512, 512], 'separate buffers: 1024 cells split in two');
  await ctx.decode(prompt, { seq: 0 });
  const err = await ctx.decode(new Array(512 - prompt.length + 1).fill(1000), { seq: 0, logits: 'none' }).then(() => undefined, (e: unknown) => e);
  t.equal((err as { code?: string } | undefined)?.code, 'ERR_CONTEXT_FULL', 'one position past its share is refused before llama.cpp sees it');
  t.equal(ctx.length(0), prompt.length);
  await ctx.decode(new Array(512 - prompt.length).fill(1000), { seq: 0, logits: 'none' });
  t.equal(await ctx.nativeLength(0), 512, 'its whole share can be filled');
  await ctx.decode(prompt, { seq: 1 });
  t.equal(ctx.length(1), prompt.length, 'and the other sequence still has its own');
});

t.test('separate buffers: two sequences stepped together = each alone, bit for bit', async (t) => {
  const run = async (ctx: Context, seqs: number[][]) => {
    const samplers = seqs.map(() => ctx.createSampler({ temperature: 0 }));
    const firsts = [];
    for (let s = 0; s < seqs.length; s++) {
      await ctx.decode(seqs[s]!, { seq: s });
      firsts.push(await ctx.sample(samplers[s]!));
    }
    const out = firsts.map((f) => [f.token]);
    let cur = firsts.map((f) => f.token);
    for (let step = 0; step < 24; step++) {
      const r = await ctx.step(cur.map((token, s) => ({ seq: s, token, sampler: samplers[s]! })));
      cur = r.map((x) => x.token);
      r.forEach((x, s) => out[s]!.push(x.token));
    }
    samplers.forEach((s) => s.dispose());
    return out;
  };
  const other = prompt.map((x) => x + 3);
  const alone = [];
  for (const p of [prompt, other]) {
    const ctx = await Context.create(model, { contextSize: 512, flashAttn: 'off' });
    alone.push((await run(ctx, [p]))[0]);
    await ctx.dispose();
  }
  const ctx = await Context.create(model, { contextSize: 1024, sequences: 2, kvUnified: false, flashAttn: 'off' });
  const together = await run(ctx, [prompt, other]);
  await ctx.dispose();
  t.same(together, alone, 'greedy continuations equal the single-sequence ones');
});
