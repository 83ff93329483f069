/**
 * Abort and dispose during a long prefill, at real geometry: a 336 px encoder gives 576 image
 * tokens, more than one 512-token ubatch. ggml polls the abort flag between the chunks of an op
 * as well as between graph nodes (native/patches/0004), so a matmul can stop halfway through a
 * ubatch: that half-computed ubatch must never reach the cache. After each abort the sequence's
 * record agrees with llama.cpp's cells, and the next ask (which reuses what the cache still holds)
 * answers and scores exactly like an instance that never saw an abort.
 * No time is asserted (bench/abort-latency.mjs measures the latencies): the aborts are placed at
 * fractions of a measured prefill, and every assertion holds wherever one lands.
 */
import t from 'tap';
import { LlavaMed, engineOf } from '../../lib/llava-med.js';
import { BIG_LLM, BIG_MMPROJ } from '../engine/util.js';
import { makeTinyLlamaGguf, makeTinyMmproj, testImage } from '../helpers/tiny-gguf.js';
import { rejectsCode } from './util.js';

const llm = await makeTinyLlamaGguf(undefined, BIG_LLM);
const mm = await makeTinyMmproj(undefined, BIG_MMPROJ);
const llm15 = await makeTinyLlamaGguf(undefined, { ...BIG_LLM, variant: 'v1.5' });
const mm15 = await makeTinyMmproj(undefined, { ...BIG_MMPROJ, variant: 'v1.5' });
const size = mm.imageSize;
const image = { data: testImage(size, size, 11), width: size, height: size, channels: 3 as const };
const Q = 'What is shown in this image?';
// v1.5 puts the question after the image: a long one makes the last llama_decode of the prefill
// (the one whose logits generation starts from) long enough for aborts to land in it
const LONG_Q = `Describe ${Array.from({ length: 25 }, (_, i) => `finding ${i} of the scan,`).join(' ')} in detail.`;
const CTX = 1024;
const GEN = { temperature: 0, maxTokens: 32, stop: [] as string[] };
const CANDIDATES = ['yes', 'no', 'a chest x-ray'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = (batchSize?: number, v15 = false) =>
  LlavaMed.load({ model: (v15 ? llm15 : llm).path, mmproj: (v15 ? mm15 : mm).path, contextSize: CTX, batchSize, threads: 2, logLevel: 'error', logger: () => {} });

// v0, batchSize 512 (the default): the image is two llama_decode calls (512 + 64) and an abort
// mostly lands in the first, whose cells llama.cpp removes itself; batchSize 128: five, and an
// abort in a later one leaves the earlier ones' cells for our Sequence to remove; v1.5 with a long
// question: late aborts land in the question's decode, the last one of the prefill.
const CONFIGS = [
  { name: 'v0, batchSize 512', batchSize: undefined, v15: false, q: Q, fractions: [0.1, 0.45, 0.85] },
  { name: 'v0, batchSize 128', batchSize: 128, v15: false, q: Q, fractions: [0.3, 0.7] },
  { name: 'v1.5, a long question after the image', batchSize: undefined, v15: true, q: LONG_Q, fractions: [0.25, 0.5, 0.75], inQuestion: true },
];
for (const { name, batchSize, v15, q: Q, fractions, inQuestion } of CONFIGS) {
  t.test(`${name}: an ask aborted during its prefill rejects with ERR_ABORTED; the cache stays consistent and the next ask answers as before`, async (t) => {
    t.equal(mm.nImageTokens, 576, 'real geometry: 576 image tokens');
    const med = await load(batchSize, v15);
    t.teardown(() => med.dispose());
    const handle = await med.embedImage(image);
    const seq = engineOf(med).context.sequence(0);
    // the reference: from an empty cache, as on a fresh instance
    const ref = await med.ask(handle, Q, GEN);
    const refScores = await med.score(handle, Q, CANDIDATES);
    // the first prefill pays one-time costs: time a second one to place the aborts
    await med.clearCache();
    const timed = await med.ask(handle, Q, GEN);
    t.same(timed.tokens, ref.tokens, 'a second answer from an empty cache is the same');
    t.equal(ref.tokens.length, GEN.maxTokens, 'the reference answer runs to maxTokens (no early end of sequence)');
    t.equal(ref.timings.imageTokens, 576);
    // The aborted asks may generate far more, so that an abort placed at a fraction of the
    // reference prefill lands before their end even when the machine's load swings.
    const LONG = { ...GEN, maxTokens: Math.min(360, CTX - 576 - ref.timings.promptTokens - 4) };
    t.ok(LONG.maxTokens >= 150, `aborted asks may generate up to ${LONG.maxTokens} tokens`);
    const { imageDecodeMs, promptMs, promptTokens } = timed.timings;
    const prefillMs = imageDecodeMs + promptMs;
    t.comment(`prefill ${prefillMs.toFixed(0)} ms: image ${imageDecodeMs.toFixed(0)} ms, ${promptTokens} prompt tokens ${promptMs.toFixed(0)} ms`);
    // at a fraction of the whole prefill, or (inQuestion) of the text decoded after the image
    const delay = (f: number) => (inQuestion ? imageDecodeMs + f * promptMs : f * prefillMs);

    for (const fraction of fractions) {
      await med.clearCache();
      const ac = new AbortController();
      let chunks = 0;
      const p = med.ask(handle, Q, { ...LONG, signal: ac.signal, onTextChunk: () => chunks++ });
      await sleep(delay(fraction));
      ac.abort(new Error('stop'));
      const e = await rejectsCode(t, p, 'ERR_ABORTED', `abort at ${(fraction * 100).toFixed(0)} % of the ${inQuestion ? 'text after the image' : 'prefill'}`);
      t.equal((e?.cause as Error | undefined)?.message, 'stop', 'the signal\'s reason is the cause');
      t.comment(chunks === 0 ? `it landed in the prefill (or before the first text chunk); ${seq.length} positions kept` : `it landed in generation (${chunks} chunks)`);
      t.equal(await engineOf(med).context.nativeLength(0), seq.length, 'llama.cpp holds exactly the cells the sequence records');
      // the next ask reuses what the cache holds, so a half-computed ubatch left in it would show
      const again = await med.ask(handle, Q, GEN);
      t.same(again.tokens, ref.tokens, 'the next ask answers exactly as the reference');
      t.same(await med.score(handle, Q, CANDIDATES), refScores, 'and scores the candidates with the same log-probs');
    }
  });
}

t.test('dispose() during a prefill stops the ask (ERR_DISPOSED) and resolves; everything is freed', async (t) => {
  const probe = await load();
  const probeHandle = await probe.embedImage(image);
  const r = await probe.ask(probeHandle, Q, GEN);
  const prefillMs = r.timings.imageDecodeMs + r.timings.promptMs;
  await probe.dispose();
  for (const fraction of [0.2, 0.6]) {
    const med = await load();
    const handle = await med.embedImage(image);
    let chunks = 0;
    const running = med.ask(handle, Q, { ...GEN, maxTokens: 360, onTextChunk: () => chunks++ });
    await sleep(fraction * prefillMs);
    const disposing = med.dispose();
    await rejectsCode(t, running, 'ERR_DISPOSED', `dispose at ${(fraction * 100).toFixed(0)} % of the prefill: the running ask`);
    t.comment(chunks === 0 ? 'it landed in the prefill' : `it landed in generation (${chunks} chunks)`);
    await disposing;
    t.pass('dispose() resolved');
    const { context, projector, model } = engineOf(med);
    t.same([context.disposed, projector.disposed, model.disposed, handle.disposed], [true, true, true, true], 'context, projector, model and image handle are freed');
  }
});
