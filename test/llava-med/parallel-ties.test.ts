/**
 * Parallel answers do not depend on their neighbours. The model is built so that every greedy
 * choice is a near-tie decided by float rounding (makeTinyLlamaGguf mode 'ties'): any change in
 * the order a sum runs in upstream picks another token. Each sequence of an askBatch has its own
 * KV buffer, laid out as if it ran alone, so request A's answer is the same next to B or next to
 * C. (The same is not true against a sequential ask: a step that feeds one row and a step that
 * feeds two take different matrix kernels in ggml, which round differently.)
 *
 * The control shows the fixture has teeth: with one shared KV buffer, the neighbour's cells sit
 * between A's, attention sums A's cells in another grouping, and A's answer changes.
 */
import t from 'tap';
import { Context, Model, type SampledToken } from '../../lib/engine/index.js';
import { generate } from '../../lib/answer/generate.js';
import { LlavaMed } from '../../lib/llava-med.js';
import { makeTinyLlamaGguf, makeTinyMmproj } from '../helpers/tiny-gguf.js';
import { noisePng } from './util.js';

const llm = await makeTinyLlamaGguf(undefined, { mode: 'ties', seed: 5 });
const mm = await makeTinyMmproj(undefined, {});
const GEN = { temperature: 0, maxTokens: 24, stop: [] as string[] };

t.test('askBatch: request A gets the same answer whichever request runs beside it', async (t) => {
  const A = { image: await noisePng(30, 30, 81), question: 'What is shown in this image?' };
  const B = { image: await noisePng(30, 30, 82), question: 'Is there a fracture?' };
  const C = { image: await noisePng(40, 28, 83), question: 'Which structures are visible, and is any of them abnormal in size or shape?' };
  const answers = [];
  for (const neighbour of [B, C]) {
    // a fresh instance each time, so nothing is reused from an earlier batch
    const med = await LlavaMed.load({ model: llm.path, mmproj: mm.path, threads: 1, contextSize: 1024, sequences: 2 });
    answers.push(await med.askBatch([A, neighbour], GEN));
    await med.dispose();
  }
  const [withB, withC] = answers as [Awaited<ReturnType<LlavaMed['askBatch']>>, Awaited<ReturnType<LlavaMed['askBatch']>>];
  for (const a of [...withB, ...withC]) {
    t.equal(a.stopReason, 'length', 'every request runs to maxTokens (the batch width stays 2)');
    t.ok(a.tokens.every((x) => llm.tiedTokens.includes(x)), 'every token is one of the tied tokens');
  }
  t.not(withB[1]!.tokens.join(), withC[1]!.tokens.join(), 'the neighbours answer differently');
  t.same(withC[0]!.tokens, withB[0]!.tokens, "A's answer does not depend on its neighbour");
});

t.test('control: in one shared KV buffer the neighbour changes the answer', async (t) => {
  const model = await Model.load(llm.path);
  t.teardown(() => model.dispose());
  const prompt = (n: number, k: number) => [1, ...Array.from({ length: n }, (_, i) => 1000 + ((i * k) % 900))];
  const run = async (kvUnified: boolean, neighbour: number[]) => {
    const ctx = await Context.create(model, { contextSize: 1024, sequences: 2, kvUnified, threads: 1, flashAttn: 'off' });
    const samplers = [0, 1].map(() => ctx.createSampler({ temperature: 0 }));
    const firsts: SampledToken[] = [];
    for (const [seq, p] of [prompt(30, 7), neighbour].entries()) {
      await ctx.decode(p, { seq });
      firsts.push(await ctx.sample(samplers[seq]!));
    }
    const r = await generate(ctx, [0, 1].map((seq) => ({ seq, sampler: samplers[seq]!, first: firsts[seq]!, maxTokens: 24, stop: [] })));
    samplers.forEach((s) => s.dispose());
    await ctx.dispose();
    return r[0]!.tokens.join();
  };
  const [b, c] = [prompt(9, 11), prompt(22, 13)];
  t.equal(await run(false, c), await run(false, b), 'separate buffers: the same answer beside either neighbour');
  t.not(await run(true, c), await run(true, b), 'a shared buffer: the answer depends on the neighbour');
});
