/**
 * The scheduler's guarantees that only show with several sequences (tiny v0 model, 2 sequences;
 * references from a one-sequence instance): a job whose own signal aborts leaves the batch at the
 * next token while the job beside it runs on (the native step is not aborted then, so only the
 * per-job check ends it), and clearCache() waits for every running and loading job.
 */
import t from 'tap';
import { LlavaMed, engineOf, type Answer } from '../../lib/llava-med.js';
import { noisePng, tinyV0 } from '../llava-med/util.js';

const tiny = await tinyV0();
const PER_SEQ = 640;
const alone = await LlavaMed.load({ model: tiny.model, mmproj: tiny.mmproj, threads: 1, contextSize: PER_SEQ });
const med = await LlavaMed.load({ model: tiny.model, mmproj: tiny.mmproj, threads: 1, contextSize: 2 * PER_SEQ, sequences: 2, imageCache: 4 });
t.teardown(async () => {
  await Promise.all([alone.dispose(), med.dispose()]);
});
const GEN = { temperature: 0, stop: [] as string[] };
const [pa, pb] = [await noisePng(30, 30, 701), await noisePng(34, 30, 702)];

t.test("a job's own abort ends it at the next token while the job beside it runs on", async (t) => {
  const refB = await alone.ask(pb, 'Is it normal?', { ...GEN, maxTokens: 120 });
  t.equal(refB.tokens.length, 120, 'the job beside it runs for 120 tokens');
  const b = med.ask(pb, 'Is it normal?', { ...GEN, maxTokens: 120 });
  const ac = new AbortController();
  let chunks = 0;
  const a = await med.ask(pa, 'What is shown?', {
    ...GEN,
    maxTokens: 120,
    signal: ac.signal,
    stopOnAbortSignal: true,
    onTextChunk: () => {
      if (++chunks === 3) ac.abort();
    },
  });
  t.equal(a.stopReason, 'aborted', 'the aborted job ended as aborted');
  t.ok(a.tokens.length < 10, `at the token its abort came after (${a.tokens.length} tokens, 3 chunks)`);
  t.same((await b).tokens, refB.tokens, 'the job beside it answered in full, as alone');
});

t.test('clearCache() waits for the running and the loading job; their answers are untouched', async (t) => {
  const refA = await alone.ask(pa, 'What is shown?', { ...GEN, maxTokens: 40 });
  const refB = await alone.ask(pb, 'Describe it.', { ...GEN, maxTokens: 20 });
  const queue = (med as unknown as { queue: { activeJobs: number; loadingJobs: number } }).queue;
  // What the scheduler was running when clearCache() was called, and when it emptied the cells.
  let atCall: number[] = [];
  let atClear: number[] = [];
  const seq0 = engineOf(med).context.sequence(0);
  const clear = seq0.clear;
  seq0.clear = function (this: typeof seq0) {
    atClear = [queue.activeJobs, queue.loadingJobs];
    return clear.call(this);
  };
  t.teardown(() => void delete (seq0 as Partial<typeof seq0>).clear);
  let chunks = 0;
  let b: Promise<Answer> | undefined;
  let cleared: Promise<void> | undefined;
  const order: string[] = [];
  const a = await med.ask(pa, 'What is shown?', {
    ...GEN,
    maxTokens: 40,
    // While A runs: B is submitted (it loads between A's tokens), then clearCache() while B loads.
    onTextChunk: () => {
      chunks++;
      if (chunks === 1) b = med.ask(pb, 'Describe it.', { ...GEN, maxTokens: 20 }).finally(() => order.push('B'));
      if (chunks === 3) {
        atCall = [queue.activeJobs, queue.loadingJobs];
        cleared = med.clearCache().then(() => void order.push('cleared'));
      }
    },
  });
  order.push('A');
  const rb = await b!;
  await cleared;
  t.same(atCall, [1, 1], 'clearCache() was called while A ran and B loaded');
  t.same(atClear, [0, 0], 'the cells were cleared with no job running or loading');
  t.equal(order[order.length - 1], 'cleared', `after both ended (${order.join(', ')})`);
  t.same(a.tokens, refA.tokens, 'the running job: its answer alone');
  t.same(rb.tokens, refB.tokens, 'the job loading at the call: its answer alone');
  const again = await med.ask(pa, 'What is shown?', { ...GEN, maxTokens: 40 });
  t.equal(again.timings.reusedTokens, 0, 'then nothing is reused: the cells were cleared');
  t.not(again.timings.imageEncodeMs, 0, 'and the image is encoded again: the image cache was cleared');
  t.same(again.tokens, refA.tokens, 'same answer');
});

t.test('jobs that arrive together load side by side and join the batch in the same turn; answers as alone', async (t) => {
  const refA = await alone.ask(pa, 'What is shown?', { ...GEN, maxTokens: 12 });
  const refB = await alone.ask(pb, 'Is it normal?', { ...GEN, maxTokens: 12 });
  await med.clearCache(); // both prompts load whole: the same number of pieces
  const queue = (med as unknown as { queue: { waiting: number; run<T>(op: () => Promise<T>): Promise<T> } }).queue;
  const ctx = engineOf(med).context;
  // What the engine did, in order: steps (the sequences they fed) and prompt pieces (their sequence).
  const events: string[] = [];
  const step = ctx.step;
  ctx.step = function (this: typeof ctx, entries, o) {
    events.push(`step ${entries.map((e) => e.seq).join('+')}`);
    return step.call(this, entries, o);
  };
  const restore = [0, 1].map((i) => {
    const s = ctx.sequence(i);
    const [decode, decodeImage] = [s.decode, s.decodeImage];
    s.decode = function (this: typeof s, ...a: Parameters<typeof decode>) {
      events.push(`piece ${i}`);
      return decode.apply(this, a);
    };
    s.decodeImage = function (this: typeof s, ...a: Parameters<typeof decodeImage>) {
      events.push(`piece ${i}`);
      return decodeImage.apply(this, a);
    };
    return () => {
      delete (s as Partial<typeof s>).decode;
      delete (s as Partial<typeof s>).decodeImage;
    };
  });
  t.teardown(() => {
    ctx.step = step;
    restore.forEach((r) => r());
  });
  // Both requests wait behind an operation until both are queued: they arrive in the same turn.
  let open: (() => void) | undefined;
  const gate = queue.run(() => new Promise<void>((r) => (open = r)));
  const a = med.ask(pa, 'What is shown?', { ...GEN, maxTokens: 12 });
  const b = med.ask(pb, 'Is it normal?', { ...GEN, maxTokens: 12 });
  while (!open || queue.waiting < 2) await new Promise((r) => setTimeout(r, 5));
  open();
  await gate;
  const [ra, rb] = await Promise.all([a, b]);
  t.same(ra.tokens, refA.tokens, 'the first: its answer alone');
  t.same(rb.tokens, refB.tokens, 'the second: its answer alone');
  const firstStep = events.findIndex((e) => e.startsWith('step'));
  t.equal(events[firstStep], 'step 0+1', `the first step feeds both jobs (${events.slice(0, firstStep + 1).join(', ')})`);
  const pieces = events.slice(0, firstStep);
  t.equal(pieces.filter((e) => e === 'piece 0').length, 3, "the first job's 3 pieces (text, image, text) came before it");
  t.same(pieces, ['piece 0', 'piece 1', 'piece 0', 'piece 1', 'piece 0', 'piece 1'], 'one piece of each job per turn, in arrival order');
});
