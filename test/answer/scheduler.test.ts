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
