/**
 * Every stop reason the generation loop can return, on the chain model (whose greedy
 * continuation is known in advance, so each expected token list is built from the fixture's
 * chain, not from another run): 'eos' (the chain passes through EOS), 'length', 'stop',
 * 'context' (the sequence is full) and 'aborted' (shouldStop, and the AbortSignal).
 */
import t from 'tap';
import { generate, type GenerationJob, type GenerationResult } from '../../lib/answer/generate.js';
import { Context } from '../../lib/engine/index.js';
import { loadChain } from './chain.js';

const { llm, chain, model, ctx, textOf } = await loadChain({ eosInChain: true });
const EOS = 2;

/** The chain from `start` (exclusive), `n` tokens. */
const follow = (start: number, n: number): number[] => {
  const out: number[] = [];
  for (let x = start; out.length < n; ) out.push((x = llm.chain.get(x)!));
  return out;
};

/** Greedy generation after `prompt` on sequence 0 of a cleared context. */
async function run(prompt: number[], job: Partial<GenerationJob>, signal?: AbortSignal): Promise<GenerationResult> {
  await ctx.clear();
  using sampler = ctx.createSampler({ temperature: 0 });
  await ctx.decode(prompt);
  const first = await ctx.sample(sampler);
  const [r] = await generate(ctx, [{ seq: 0, sampler, first, maxTokens: 1000, stop: [], ...job }], signal);
  return r!;
}

t.test('the fixture: the cycle passes through EOS after its last ordinary token', async (t) => {
  t.equal(chain.at(-1), EOS);
  t.equal(llm.chain.get(chain.at(-2)!), EOS);
  t.equal(llm.chain.get(EOS), chain[0]);
});

t.test("'eos': generation ends at EOS, which is not part of the answer", async (t) => {
  const start = chain[40]!;
  const r = await run([1, 450, start], {});
  t.equal(r.stopReason, 'eos');
  t.same(r.tokens, chain.slice(41, chain.length - 1), 'the chain up to (not including) EOS');
  t.equal(r.text, await textOf(r.tokens));
});

t.test("'length': maxTokens tokens, no more", async (t) => {
  const r = await run([1, chain[0]!], { maxTokens: 5 });
  t.equal(r.stopReason, 'length');
  t.same(r.tokens, chain.slice(1, 6));
});

t.test("'stop': cut before the stop string; the tokens that formed it are kept", async (t) => {
  const expected = follow(chain[0]!, 6);
  const stop = (await textOf([expected[3]!])).trim();
  t.ok(stop.length > 1, `a stop string from the 4th chain token (${JSON.stringify(stop)})`);
  // Independent expectation: the first token count whose text contains the stop string.
  let k = 1;
  while (!(await textOf(expected.slice(0, k))).includes(stop)) k++;
  const full = await textOf(expected.slice(0, k));
  const r = await run([1, chain[0]!], { stop: ['zz-never-zz', stop] });
  t.equal(r.stopReason, 'stop');
  t.same(r.tokens, expected.slice(0, k));
  t.equal(r.text, full.slice(0, full.indexOf(stop)));
});

t.test("'context': the sequence fills up; the last sampled token is returned but never fed", async (t) => {
  const prompt = [1, ...new Array(220).fill(450), chain[0]!];
  const room = ctx.contextSize - prompt.length + 1;
  t.ok(room < chain.length - 2, `${room} tokens fit before the chain reaches EOS`);
  const r = await run(prompt, {});
  t.equal(r.stopReason, 'context');
  t.same(r.tokens, follow(chain[0]!, room));
  t.equal(ctx.length(), ctx.contextSize, 'the sequence is full');
  t.equal(await ctx.nativeLength(), ctx.contextSize, 'llama.cpp holds as many cells');
});

t.test("'context' with separate KV buffers: each sequence stops at its own share", async (t) => {
  const two = await Context.create(model, { contextSize: 512, sequences: 2, kvUnified: false, threads: 1 });
  t.teardown(() => two.dispose());
  const cap = two.sequence(1).capacity;
  t.equal(cap, 256, 'half of the 512 cells');
  const prompt = [1, ...new Array(cap - 22).fill(450), chain[0]!];
  using sampler = two.createSampler({ temperature: 0 });
  await two.decode(prompt, { seq: 1 });
  const first = await two.sample(sampler);
  const [r] = await generate(two, [{ seq: 1, sampler, first, maxTokens: 1000, stop: [] }]);
  t.equal(r!.stopReason, 'context');
  t.same(r!.tokens, follow(chain[0]!, cap - prompt.length + 1));
  t.equal(await two.nativeLength(1), cap);
});

t.test("'aborted': shouldStop ends the job between tokens", async (t) => {
  let calls = 0;
  const r = await run([1, chain[0]!], { shouldStop: () => ++calls > 3 });
  t.equal(r.stopReason, 'aborted');
  t.same(r.tokens, chain.slice(1, 4));
});

t.test("'aborted': an AbortSignal ends every active job", async (t) => {
  const ac = new AbortController();
  let chunks = 0;
  const r = await run([1, chain[0]!], { onText: () => ++chunks === 2 && ac.abort() }, ac.signal);
  t.equal(r.stopReason, 'aborted');
  t.same(r.tokens, chain.slice(1, 3));
});
