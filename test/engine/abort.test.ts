/**
 * Stop when told: an image encode stops inside the vision graph (ggml's abort callback, patched
 * into clip/mtmd by native/patches/0003) instead of running the whole encoder; a call waiting in
 * an object's queue rejects as soon as its signal aborts, before the running call finishes; the
 * object stays usable afterwards. Decode/step aborts: event-loop.test.ts. Latencies: bench/abort-latency.mjs.
 */
import t from 'tap';
import { Context, Model, Projector } from '../../lib/engine/index.js';
import type { NativeProjector } from '../../lib/engine/native-types.js';
import { makeTinyLlamaGguf, makeTinyMmproj, testImage } from '../helpers/tiny-gguf.js';
import { BIG_LLM, failsWith } from './util.js';

// An encoder slow enough (hundreds of ms on 2 cores) that an abort can land in the middle.
const slowMm = await makeTinyMmproj(undefined, { imageSize: 336, nEmbd: 256, nFf: 1024, nLayer: 8, nHead: 4, outWidth: 64 });
const llm = await makeTinyLlamaGguf(undefined, {});
const big = await makeTinyLlamaGguf(undefined, BIG_LLM);
const size = slowMm.imageSize;
const img = testImage(size, size);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Watches a promise without awaiting it. */
function watch<T>(p: Promise<T>) {
  const w = { settled: false, outcome: '' };
  p.then(
    () => Object.assign(w, { settled: true, outcome: 'resolved' }),
    (e: { code?: string }) => Object.assign(w, { settled: true, outcome: `rejected ${e.code}` }),
  );
  return w;
}

t.test('an encode aborted while the vision graph runs stops without producing an embedding; the projector stays usable', async (t) => {
  const model = await Model.load(llm.path);
  const proj = await Projector.load(model, slowMm.path, { threads: 2 });
  const ref = await proj.encode(img, size, size);
  // the first encode also pays one-time costs: time a second one
  const second = await proj.encode(img, size, size);
  const full = second.encodeMs;
  second.dispose();
  t.ok(full > 0, `a full encode takes ${full.toFixed(0)} ms`);
  // The native call, with its flag set a third of the way through the encode: the worker has
  // already passed its check before mtmd_encode_chunk, so only the abort callback inside the
  // graph can stop it (without it, the call resolves with an embedding).
  const native = (proj as unknown as { native: NativeProjector }).native;
  // Where the flag lands is wall-clock timing, known only afterwards: when this encode outran the
  // sleep (the machine got faster since the timed encode), the flag came too late to test anything,
  // and the try is repeated with an earlier flag. An embedding from an encode whose flag was set
  // before nine tenths of its run is the failure guarded here.
  const abortDuring = async (fraction: number, start: () => Promise<{ encodeMs: number; dispose(): void }>, abort: () => void) => {
    for (let at = fraction, tries = 0; tries < 6; tries++, at /= 2) {
      const t0 = performance.now();
      const p = start();
      await sleep(full * at);
      abort();
      const setAt = performance.now() - t0;
      const outcome = await p.then(
        (e) => {
          const ms = e.encodeMs;
          e.dispose();
          return setAt < ms * 0.9 ? `an embedding, although the flag was set at ${setAt.toFixed(0)} ms of its ${ms.toFixed(0)} ms` : 'too late';
        },
        (e: { code?: string; cause?: { message?: string } }) => `rejected ${e.code}${e.cause?.message ? ` (${e.cause.message})` : ''}`,
      );
      if (outcome !== 'too late') return outcome;
    }
    return 'every flag came after the encode had finished';
  };
  for (const fraction of [1 / 3, 2 / 3]) {
    let flag = new Int32Array(1);
    const outcome = await abortDuring(fraction, () => native.encode(img, size, size, (flag = new Int32Array(1))), () => Atomics.store(flag, 0, 1));
    t.equal(outcome, 'rejected ERR_ABORTED', `flag set at ${(fraction * 100).toFixed(0)} % of the encode: the encode stopped`);
  }
  // the public API: ERR_ABORTED with the signal's reason
  let ac = new AbortController();
  const outcome = await abortDuring(1 / 3, () => proj.encode(img, size, size, { signal: (ac = new AbortController()).signal }), () => ac.abort(new Error('enough')));
  t.equal(outcome, 'rejected ERR_ABORTED (enough)', "encode aborted through its signal: ERR_ABORTED with the signal's reason");
  // nothing of the aborted encodes is left behind: the next encode is the same, bit for bit
  const again = await proj.encode(img, size, size);
  t.same(Buffer.from(again.toFloat32Array().buffer), Buffer.from(ref.toFloat32Array().buffer), 'the next encode equals the first');
  ref.dispose();
  again.dispose();
  await proj.dispose();
  await model.dispose();
});

t.test('a call waiting behind a running encode rejects as soon as its signal aborts', async (t) => {
  const model = await Model.load(llm.path);
  const proj = await Projector.load(model, slowMm.path, { threads: 2 });
  const running = proj.encode(img, size, size);
  const runningState = watch(running);
  const ac = new AbortController();
  const queued = proj.encode(img, size, size, { signal: ac.signal });
  const queuedState = watch(queued);
  await sleep(1);
  ac.abort();
  await failsWith(t, () => queued, 'ERR_ABORTED', 'the queued encode');
  t.notOk(runningState.settled, 'it rejected while the running encode was still running');
  const e = await running;
  t.equal(runningState.outcome, 'resolved', 'the running encode completed normally');
  t.equal(e.nTokens, slowMm.nImageTokens);
  t.equal(queuedState.outcome, 'rejected ERR_ABORTED');
  e.dispose();
  await proj.dispose();
  await model.dispose();
});

t.test('a decode waiting behind a long decode rejects as soon as its signal aborts; the queue goes on in order', async (t) => {
  const model = await Model.load(big.path);
  const ctx = await Context.create(model, { contextSize: 1024 });
  const prompt = Array.from({ length: 400 }, (_, i) => 1000 + i);
  const running = ctx.decode(prompt);
  const runningState = watch(running);
  const ac = new AbortController();
  const queued = ctx.decode([5, 6, 7], { signal: ac.signal });
  const after = ctx.nativeLength();
  await sleep(1);
  ac.abort();
  await failsWith(t, () => queued, 'ERR_ABORTED', 'the queued decode');
  t.notOk(runningState.settled, 'it rejected while the long decode was still running');
  await running;
  t.equal(await after, 400, 'the call behind it ran next and saw only the long decode');
  t.equal(ctx.length(), 400);
  await ctx.dispose();
  await model.dispose();
});
