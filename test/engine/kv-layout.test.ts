// Several sequences in one context: a shared KV buffer lets sequences share a prefix (seq_cp);
// separate buffers do not, and a partial copy there — which llama.cpp would GGML_ASSERT on,
// killing the process — is refused in TypeScript. Separate buffers also make batched logits
// bit-identical to a single-sequence run.
import t from 'tap';
import { Context, Model } from '../../lib/engine/index.js';
import { makeTinyLlamaGguf } from '../helpers/tiny-gguf.js';

const { path } = await makeTinyLlamaGguf(undefined, { mode: 'random', seed: 21 });
const model = await Model.load(path);
t.teardown(() => model.dispose());
const prompt = Array.from({ length: 40 }, (_, i) => 1000 + ((i * 37) % 500));

t.test('unified buffer: copyPrefix shares the prefix; the copy gives the same logits', async (t) => {
  const ctx = await Context.create(model, { contextSize: 512, sequences: 2, flashAttn: 'off' });
  t.teardown(() => ctx.dispose());
  await ctx.decode(prompt, { seq: 0 });
  const a = await ctx.logits();
  await ctx.copyPrefix(0, 1, prompt.length - 1);
  t.equal(ctx.length(1), prompt.length - 1);
  t.equal(await ctx.nativeLength(1), prompt.length - 1, 'llama.cpp holds the copied cells');
  await ctx.decode(prompt.slice(-1), { seq: 1 });
  const b = await ctx.logits();
  // Close, not bit-identical: seq 1's new cell sits after seq 0's in the shared buffer, which
  // changes the order attention sums in (the reason LlavaMed uses separate buffers for batches).
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += a[i]! ** 2;
  }
  t.ok(Math.sqrt(num / den) < 1e-4, `the shared prefix gives the same logits up to rounding (${Math.sqrt(num / den).toExponential(1)})`);
});

t.test('separate buffers: copyPrefix is refused, not a process abort; the context keeps working', async (t) => {
  const ctx = await Context.create(model, { contextSize: 1024, sequences: 2, kvUnified: false, flashAttn: 'off' });
  t.teardown(() => ctx.dispose());
  t.equal(ctx.kvUnified, false);
  await ctx.decode(prompt, { seq: 0 });
  await t.rejects(ctx.copyPrefix(0, 1, 10), { code: 'ERR_INVALID_ARGUMENT' });
  await ctx.decode(prompt, { seq: 1 });
  t.equal(ctx.length(1), prompt.length);
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
