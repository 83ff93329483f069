/**
 * Sequence: the one owner of a sequence's cells and history. What it says it holds (items,
 * length) is what llama.cpp holds (seq_pos_max), through prompt reuse, generation steps, trims,
 * a context-wide clear and an image being forgotten.
 */
import t from 'tap';
import { Context, Model, Projector } from '../../lib/engine/index.js';
import { testImage } from '../helpers/tiny-gguf.js';
import { tinyPair } from './util.js';

const { llm, mm } = await tinyPair();
const model = await Model.load(llm.path);
const proj = await Projector.load(model, mm.path);
t.teardown(async () => {
  await proj.dispose();
  await model.dispose();
});

t.test('load reuses the longest common prefix, always decodes the last token, and Context.clear empties the history too', async (t) => {
  const ctx = await Context.create(model, { contextSize: 256, threads: 1 });
  t.teardown(() => ctx.dispose());
  const seq = ctx.sequence(0);
  using img = await proj.encode(testImage(28, 28), 28, 28);
  const prompt = [1, 450, img, 3148, llm.chainTokens[0]!];
  const a = await seq.load(prompt);
  t.same(a, { ...a, reused: 0, promptTokens: 4, imageTokens: img.nTokens }, 'the first load decodes everything');
  t.same(seq.items, prompt);
  t.equal(seq.length, 4 + img.nTokens);
  const b = await seq.load(prompt);
  t.same([b.reused, b.promptTokens, b.imageTokens], [seq.length - 1, 1, 0], 'the same prompt again: all but the last token reused');
  const c = await seq.load([1, 450, img, 3148, llm.chainTokens[5]!]);
  t.same([c.reused, c.promptTokens], [seq.length - 1, 1], 'another last token: the rest reused');
  await ctx.clear();
  t.same([seq.length, seq.items.length, await ctx.nativeLength(0)], [0, 0, 0], 'clear empties cells and history');
  const d = await seq.load(prompt);
  t.same([d.reused, d.imageTokens], [0, img.nTokens], 'after clear nothing is reported reused');
  t.same(Array.from(await ctx.logits()).indexOf(Math.max(...(await ctx.logits()))), llm.chain.get(llm.chainTokens[0]!), 'and the logits are right');
});

t.test('generation steps, trims and forgetting an image keep history and cells equal', async (t) => {
  const ctx = await Context.create(model, { contextSize: 256, threads: 1 });
  t.teardown(() => ctx.dispose());
  const seq = ctx.sequence(0);
  using img = await proj.encode(testImage(28, 28), 28, 28);
  const start = llm.chainTokens[3]!;
  await seq.load([1, img, start]);
  using s = ctx.createSampler({ temperature: 0 });
  let tok = (await ctx.sample(s)).token;
  for (let i = 0; i < 3; i++) tok = (await ctx.step([{ seq: 0, token: tok, sampler: s }]))[0]!.token;
  const fed = llm.chainTokens.slice(4, 7);
  t.same(seq.items, [1, img, start, ...fed], 'the history holds the prompt and the tokens steps fed');
  t.equal(await ctx.nativeLength(0), seq.length);
  await seq.trim(3 + img.nTokens);
  t.same(seq.items, [1, img, start, fed[0]]);
  await seq.trim(2); // inside the image: the image goes whole
  t.same(seq.items, [1], 'a trim inside an image drops the whole image');
  t.equal(await ctx.nativeLength(0), 1);
  await seq.load([1, img, start]);
  await seq.forget(img);
  t.same([seq.items, seq.length, await ctx.nativeLength(0)], [[1], 1, 1], 'forget drops the image and what follows');
});
