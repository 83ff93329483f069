/**
 * Streaming with stop strings: text that could still become the start of a stop string is held
 * back, so the streamed chunks never contain any part of a stop string and always concatenate to
 * the final (cut) text. On the chain model the tokens are known in advance, so the expected text
 * comes from the fixture's chain.
 */
import t from 'tap';
import { generate } from '../../lib/answer/generate.js';
import { loadChain } from './chain.js';

const { chain, ctx, textOf } = await loadChain();

async function stream(stop: string[]): Promise<{ chunks: string[]; text: string; tokens: number[]; stopReason: string }> {
  await ctx.clear();
  using sampler = ctx.createSampler({ temperature: 0 });
  await ctx.decode([1, chain[0]!]);
  const first = await ctx.sample(sampler);
  const chunks: string[] = [];
  const [r] = await generate(ctx, [{ seq: 0, sampler, first, maxTokens: 12, stop, onText: (c) => chunks.push(c) }]);
  return { chunks, ...r! };
}

t.test('a stop string spanning two tokens: nothing of it is ever streamed', async (t) => {
  const expected = chain.slice(1, 13);
  const full = await textOf(expected);
  // The stop string: the end of token 4's text and the start of token 5's, so after token 4 the
  // text ends with a proper prefix of it.
  const upto4 = (await textOf(expected.slice(0, 4))).length;
  const stop = full.slice(upto4 - 2, upto4 + 2);
  t.equal(full.indexOf(stop), upto4 - 2, `the stop string ${JSON.stringify(stop)} first occurs across tokens 4 and 5`);
  const r = await stream([stop]);
  t.equal(r.stopReason, 'stop');
  t.same(r.tokens, expected.slice(0, 5));
  t.equal(r.text, full.slice(0, upto4 - 2), 'the text is cut before the stop string');
  t.equal(r.chunks.join(''), r.text, 'the chunks concatenate to the cut text: the held-back prefix was never streamed');
  t.ok(r.chunks.length >= 3, `streamed as it went (${r.chunks.length} chunks)`);
});

t.test('a held-back prefix that does not complete the stop string is streamed later', async (t) => {
  const expected = chain.slice(1, 13);
  const full = await textOf(expected);
  const upto4 = (await textOf(expected.slice(0, 4))).length;
  // Starts like the text at the end of token 4, then goes elsewhere: never matches.
  const stop = `${full.slice(upto4 - 2, upto4)}\u0000never`;
  const r = await stream([stop]);
  t.equal(r.stopReason, 'length');
  t.equal(r.text, full);
  t.equal(r.chunks.join(''), full, 'everything is streamed in the end');
});
