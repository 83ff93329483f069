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
const size = mm.imageSize;
const image = { data: testImage(size, size, 11), width: size, height: size, channels: 3 as const };
const Q = 'What is shown in this image?';
const GEN = { temperature: 0, maxTokens: 32, stop: [] as string[] };
// The aborted asks may generate far more: an abort placed at a fraction of the reference prefill
// lands before their end even when the machine's load swings.
const LONG = { ...GEN, maxTokens: 360 };
const CANDIDATES = ['yes', 'no', 'a chest x-ray'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = (batchSize?: number) => LlavaMed.load({ model: llm.path, mmproj: mm.path, contextSize: 1024, batchSize, threads: 2, logLevel: 'error', logger: () => {} });

// batchSize 512 (the default): the image is two llama_decode calls (512 + 64) and an abort mostly
// lands in the first, whose cells llama.cpp removes itself; batchSize 128: five, and an abort in a
// later one leaves the earlier ones' cells for our Sequence to remove.
for (const [batchSize, fractions] of [[undefined, [0.1, 0.45, 0.85]], [128, [0.3, 0.7]]] as const) {
  t.test(`batchSize ${batchSize ?? 'default'}: an ask aborted during its prefill rejects with ERR_ABORTED; the cache stays consistent and the next ask answers as before`, async (t) => {
    t.equal(mm.nImageTokens, 576, 'real geometry: 576 image tokens');
    const med = await load(batchSize);
    t.teardown(() => med.dispose());
    const handle = await med.embedImage(image);
    const seq = engineOf(med).context.sequence(0);
    // the reference: from an empty cache, as on a fresh instance
    const ref = await med.ask(handle, Q, GEN);
    const refScores = await med.score(handle, Q, CANDIDATES);
    t.equal(ref.tokens.length, GEN.maxTokens, 'the reference answer runs to maxTokens (no early end of sequence)');
    t.equal(ref.timings.imageTokens, 576);
    t.ok(576 + ref.timings.promptTokens + LONG.maxTokens <= 1024, 'an aborted ask could run to its end within the context');
    const prefillMs = ref.timings.imageDecodeMs + ref.timings.promptMs;
    t.comment(`prefill ${prefillMs.toFixed(0)} ms (${ref.timings.promptTokens} prompt tokens)`);

    for (const fraction of fractions) {
      await med.clearCache();
      const ac = new AbortController();
      let chunks = 0;
      const p = med.ask(handle, Q, { ...LONG, signal: ac.signal, onTextChunk: () => chunks++ });
      await sleep(fraction * prefillMs);
      ac.abort(new Error('stop'));
      const e = await rejectsCode(t, p, 'ERR_ABORTED', `abort at ${(fraction * 100).toFixed(0)} % of the prefill`);
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
    const running = med.ask(handle, Q, { ...LONG, onTextChunk: () => chunks++ });
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
