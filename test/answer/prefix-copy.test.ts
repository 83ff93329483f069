/**
 * The scheduler copies a prefix another sequence holds instead of decoding it again, at the real
 * geometry: a v1.5-style prompt (the image first) with 256 image positions (CLIP 224 px / 14), 1024
 * cells a sequence, the image cache on (a question about an image sent before gets the same
 * embedding). References: a one-sequence instance whose cache is cleared before each question, so
 * it decodes every prompt whole.
 */
import t, { type Test } from 'tap';
import { LlavaMed, engineOf, type Answer } from '../../lib/llava-med.js';
import { makeTinyLlamaGguf, makeTinyMmproj } from '../helpers/tiny-gguf.js';
import { BIG_LLM, BIG_MMPROJ } from '../engine/util.js';
import { noisePng, rejectsCode } from '../llava-med/util.js';

const llm = await makeTinyLlamaGguf(undefined, { ...BIG_LLM, variant: 'v1.5' });
const mm = await makeTinyMmproj(undefined, { ...BIG_MMPROJ, imageSize: 224, variant: 'v1.5' });
const PER_SEQ = 1024;
const opts = { model: llm.path, mmproj: mm.path, threads: 1, batchSize: 128, imageCache: 4 };
const alone = await LlavaMed.load({ ...opts, contextSize: PER_SEQ, imageCache: 0 });
const med = await LlavaMed.load({ ...opts, contextSize: 2 * PER_SEQ, sequences: 2 });
t.teardown(async () => {
  await Promise.all([alone.dispose(), med.dispose()]);
});
const GEN = { temperature: 0, stop: [] as string[] };
const png = await noisePng(48, 40, 811);
const Q1 = 'What is shown in this image?';
const Q2 = 'Is there anything abnormal?';
type Queue = { stats: { copies: number; waits: number }; waiting: number; run<T>(op: () => Promise<T>): Promise<T> };
const queue = (m: LlavaMed) => (m as unknown as { queue: Queue }).queue;

/** A fresh one-sequence answer: the whole prompt decoded. */
async function fresh(q: string, maxTokens: number): Promise<Answer> {
  await alone.clearCache();
  return alone.ask(png, q, { ...GEN, maxTokens });
}
const ref1 = await fresh(Q1, 24);
const ref2 = await fresh(Q2, 8);

/** Sequence bookkeeping agrees with llama.cpp's cells. */
async function consistent(t: Test) {
  const ctx = engineOf(med).context;
  for (let i = 0; i < ctx.sequences; i++) t.equal(await ctx.nativeLength(i), ctx.sequence(i).length, `sequence ${i}: history and cells agree`);
}

t.test('a question about an image another sequence holds copies its cells (image-first prompt); answers as a fresh load', async (t) => {
  t.equal(med.imageTokens, 256, 'the real image geometry');
  t.same([ref1.timings.reusedTokens, ref2.timings.reusedTokens], [0, 0], 'the references decoded their whole prompts');
  await med.clearCache();
  const before = queue(med).stats.copies;
  let b: Promise<Answer> | undefined;
  // The second question arrives while the first generates: it goes to the other sequence.
  const a = await med.ask(png, Q1, { ...GEN, maxTokens: 24, onTextChunk: () => void (b ??= med.ask(png, Q2, { ...GEN, maxTokens: 8 })) });
  const rb = await b!;
  t.same(a.tokens, ref1.tokens, 'the first answer: as fresh');
  t.same(rb.tokens, ref2.tokens, 'the second answer (on the copied cells): as fresh');
  t.equal(queue(med).stats.copies - before, 1, 'one copy');
  const tm = rb.timings;
  t.ok(tm.copiedTokens > 256, `the image and the text before it were copied (${tm.copiedTokens} positions)`);
  t.equal(tm.reusedTokens, tm.copiedTokens, 'everything reused was copied (the sequence was empty)');
  t.equal(tm.imageTokens, 0, 'the image was not decoded again');
  t.equal(tm.promptTokens + tm.copiedTokens, ref2.timings.promptTokens + ref2.timings.imageTokens, `only the question after it was (${tm.promptTokens} tokens)`);
  await consistent(t);
});

t.test('questions that arrive together about one image: the second waits for the first to decode the image, then copies it', async (t) => {
  await med.clearCache();
  const q = queue(med);
  const [copies, waits] = [q.stats.copies, q.stats.waits];
  let open: (() => void) | undefined;
  const gate = q.run(() => new Promise<void>((r) => (open = r)));
  const a = med.ask(png, Q1, { ...GEN, maxTokens: 24 });
  const b = med.ask(png, Q2, { ...GEN, maxTokens: 8 });
  while (!open || q.waiting < 2) await new Promise((r) => setTimeout(r, 5));
  open();
  await gate;
  const [ra, rb] = await Promise.all([a, b]);
  t.same(ra.tokens, ref1.tokens, 'the first: as fresh');
  t.same(rb.tokens, ref2.tokens, 'the second: as fresh');
  t.ok(q.stats.waits - waits >= 1, `the second waited (${q.stats.waits - waits} turns) instead of decoding the image too`);
  t.equal(q.stats.copies - copies, 1, 'then copied');
  t.same([ra.timings.imageTokens, ra.timings.copiedTokens], [256, 0], 'the first decoded the image');
  t.same([rb.timings.imageTokens], [0], 'the second did not');
  t.ok(rb.timings.copiedTokens > 256, `it copied ${rb.timings.copiedTokens} positions`);
  await consistent(t);
});

t.test("a new conversation about the image copies into the empty sequence rather than trimming another conversation's turns", async (t) => {
  await med.clearCache();
  const turn1 = await med.ask(png, Q1, { ...GEN, maxTokens: 24 });
  const [held0, held1] = [0, 1].map((i) => engineOf(med).context.sequence(i).length);
  t.ok(held0 > 263 && held1 === 0, `the conversation holds sequence 0 (${held0} positions), sequence 1 is empty`);
  const other = await med.ask(png, Q2, { ...GEN, maxTokens: 8 });
  t.same(other.tokens, ref2.tokens, 'the other question: as fresh');
  t.ok(other.timings.copiedTokens > 256, `it copied the image (${other.timings.copiedTokens} positions) into the empty sequence`);
  // The conversation's next turn, its first turn sent again (as OpenAI clients do).
  const turn2 = await med.runTurn(png, [{ question: Q1, answer: turn1.text }, { question: 'Is it normal?' }], { ...GEN, maxTokens: 4 });
  const prompt1 = turn1.timings.reusedTokens + turn1.timings.promptTokens + turn1.timings.imageTokens;
  t.ok(turn2.timings.reusedTokens >= prompt1, `the next turn reuses at least the first turn's prompt, ${prompt1} positions (${turn2.timings.reusedTokens})`);
  t.equal(turn2.timings.copiedTokens, 0, 'its own cells, not a copy');
  await consistent(t);
});

t.test('aborting the job that copied leaves the sequence it copied from intact', async (t) => {
  await med.clearCache();
  const ctx = engineOf(med).context;
  const ac = new AbortController();
  // Abort the second job at its first decode after the copy.
  const s1 = ctx.sequence(1);
  const decode = s1.decode;
  let decodes = 0;
  s1.decode = function (this: typeof s1, ...args: Parameters<typeof decode>) {
    if (decodes++ === 0) ac.abort();
    return decode.apply(this, args);
  };
  t.teardown(() => void delete (s1 as Partial<typeof s1>).decode);
  let b: Promise<unknown> | undefined;
  const a = await med.ask(png, Q1, {
    ...GEN,
    maxTokens: 24,
    onTextChunk: () => {
      if (b) return;
      b = med.ask(png, Q2, { ...GEN, maxTokens: 8, signal: ac.signal });
      b.catch(() => {}); // looked at below
    },
  });
  await rejectsCode(t, b!, 'ERR_ABORTED', 'the job that copied');
  t.same(a.tokens, ref1.tokens, 'the job it copied from answered in full, as fresh');
  t.ok(decodes >= 1, 'the abort came after the copy');
  t.ok(s1.length > 256, `the copied prefix stays in its sequence (${s1.length} positions)`);
  await consistent(t);
  // Both sequences still answer as fresh from what they hold.
  delete (s1 as Partial<typeof s1>).decode;
  const again = await Promise.all([med.ask(png, Q2, { ...GEN, maxTokens: 8 }), med.ask(png, Q1, { ...GEN, maxTokens: 24 })]);
  t.same(again[0].tokens, ref2.tokens, 'Q2 again: as fresh');
  t.same(again[1].tokens, ref1.tokens, 'Q1 again: as fresh');
  t.ok(again.every((x) => x.timings.imageTokens === 0), 'neither decoded the image again');
  await consistent(t);
});

t.test('dispose while the job that copied loads: both calls reject with ERR_DISPOSED, the process goes on', async (t) => {
  const m = await LlavaMed.load({ ...opts, contextSize: 2 * PER_SEQ, sequences: 2 });
  const s1 = engineOf(m).context.sequence(1);
  let disposing: Promise<void> | undefined;
  const decode = s1.decode;
  s1.decode = function (this: typeof s1, ...args: Parameters<typeof decode>) {
    disposing ??= m.dispose();
    return decode.apply(this, args);
  };
  let b: Promise<unknown> | undefined;
  const a = m.ask(png, Q1, {
    ...GEN,
    maxTokens: 24,
    onTextChunk: () => {
      if (b) return;
      b = m.ask(png, Q2, { ...GEN, maxTokens: 8 });
      b.catch(() => {}); // looked at below
    },
  });
  await rejectsCode(t, a, 'ERR_DISPOSED', 'the job copied from');
  await rejectsCode(t, b!, 'ERR_DISPOSED', 'the job that copied');
  await disposing;
  t.equal(queue(m).stats.copies, 1, 'the second job had copied');
});
