/** askBatch vs sequential ask; abort; FIFO queueing; dispose during calls; await using. */
import t from 'tap';
import { LlavaMed, engineOf } from '../../lib/llava-med.js';
import { loadTiny, noisePng, rejection, rejectsCode, spyEngine } from './util.js';

const GEN = { temperature: 0, maxTokens: 12, stop: [] as string[] };

// On these tiny models the batched answers equal the sequential ones; that is not guaranteed on every
// model (a several-row step rounds differently from a one-row step: see parallel-ties.test.ts).
t.test('askBatch with 3 sequences = sequential ask at temperature 0 (tiny models)', async (t) => {
  for (const variant of ['v0', 'v1.5'] as const) {
    const { med: seq } = await loadTiny(variant);
    const { med: par } = await loadTiny(variant, { sequences: 3 });
    t.equal(engineOf(par).context.sequences, 3);
    const reqs = [
      { image: await noisePng(30, 30, 51), question: 'What is shown?' },
      { image: await noisePng(36, 28, 52), question: 'Is there a fracture?' },
      { image: await noisePng(30, 30, 51), question: 'Where is the heart?' },
      { image: await noisePng(28, 40, 53), question: 'Is it normal?' }, // a 4th: runs as a second group
    ];
    const expected: Awaited<ReturnType<typeof seq.ask>>[] = [];
    for (const r of reqs) expected.push(await seq.ask(r.image, r.question, GEN));
    const spy = spyEngine(par);
    const got = await par.askBatch(reqs, GEN);
    spy.stop();
    t.equal(got.length, 4, `${variant}: one answer per request, in order`);
    t.ok(spy.steps.some((s) => s.length === 3), `${variant}: sequences advanced together in one step`);
    for (let i = 0; i < reqs.length; i++) {
      t.same(got[i]!.tokens, expected[i]!.tokens, `${variant}: request ${i}: same tokens as sequential ask`);
      t.equal(got[i]!.text, expected[i]!.text, `${variant}: request ${i}: same text`);
      t.equal(got[i]!.stopReason, expected[i]!.stopReason);
    }
    // Each sequence keeps its own KV buffer (so its cells sum in single-sequence order): the v0
    // system prompt is reused by every sequence from its previous question, not across sequences.
    if (variant === 'v0') {
      const again = await par.askBatch(reqs.slice(0, 3), GEN);
      again.forEach((a, i) => {
        t.ok(a.timings.reusedTokens > 0, `v0: sequence ${i} reuses its cached system prompt`);
        t.same(a.tokens, expected[i]!.tokens, `v0: request ${i} again: same tokens`);
      });
    }
    // The batched instance still answers single questions the same.
    t.same((await par.ask(reqs[1]!.image, reqs[1]!.question, GEN)).tokens, expected[1]!.tokens, `${variant}: ask after askBatch`);
    await rejectsCode(t, par.askBatch([{ image: reqs[0]!.image, question: '' }], GEN), 'ERR_INVALID_ARGUMENT', 'empty question in a batch');
    await seq.dispose();
    await par.dispose();
  }
});

t.test('two requests of a batch fail: the error is that of the first in request order, not of the first to fail', async (t) => {
  const { med } = await loadTiny('v0', { sequences: 2 });
  t.teardown(() => med.dispose());
  // Request 0 fails late (its image is decoded and encoded, then the question does not fit the
  // sequence); request 1 at once (bytes that are no image).
  const late = { image: await noisePng(30, 30, 54), question: 'Why? '.repeat(2000) };
  const early = { image: Buffer.from('not an image at all'), question: 'What?' };
  const e0 = (await rejection(med.ask(late.image, late.question, GEN))) as { code?: string; message?: string };
  const e1 = (await rejection(med.ask(early.image, early.question, GEN))) as { code?: string };
  t.not(e0?.code, e1?.code, `two different errors alone: ${e0?.code} and ${e1?.code}`);
  for (let round = 0; round < 3; round++) {
    const e = (await rejection(med.askBatch([late, early], GEN))) as { code?: string; message?: string };
    t.same([e?.code, e?.message], [e0?.code, e0?.message], `round ${round}: request 0's error`);
  }
  t.same((await med.ask(late.image, 'What is shown?', GEN)).tokens.length > 0, true, 'the instance still answers');
});

t.test('abort: mid-stream and before start', async (t) => {
  const { med } = await loadTiny('v0');
  t.teardown(() => med.dispose());
  const png = await noisePng(30, 30, 61);
  const base = await med.ask(png, 'What is shown?', { ...GEN, maxTokens: 40 });
  const ac = new AbortController();
  const spy = spyEngine(med);
  let chunks = 0;
  const err = await rejectsCode(
    t,
    (async () => {
      for await (const _ of med.stream(png, 'What is shown?', { ...GEN, maxTokens: 40, signal: ac.signal })) {
        chunks++;
        ac.abort();
      }
    })(),
    'ERR_ABORTED',
    'abort after the first chunk',
  );
  spy.stop();
  t.ok(err, 'rejected');
  t.ok(chunks >= 1, `got ${chunks} chunk(s) before the abort took effect`);
  t.ok(spy.steps.length < 39, `generation stopped early (${spy.steps.length} steps)`);
  await rejectsCode(t, med.ask(png, 'What is shown?', { ...GEN, signal: AbortSignal.abort() }), 'ERR_ABORTED', 'already-aborted signal (ask)');
  await rejectsCode(t, med.score(png, 'What is shown?', ['yes'], { signal: AbortSignal.abort() }), 'ERR_ABORTED', 'already-aborted signal (score)');
  await rejectsCode(t, med.embedImage(png, { signal: AbortSignal.abort() }), 'ERR_ABORTED', 'already-aborted signal (embedImage)');
  const ac2 = new AbortController();
  const p = med.ask(png, 'What is shown?', { ...GEN, maxTokens: 40, signal: ac2.signal });
  setImmediate(() => ac2.abort());
  const e2 = await p.then(() => undefined, (e: unknown) => e);
  t.ok(e2 === undefined || (e2 as { code?: string }).code === 'ERR_ABORTED', 'abort while running: ERR_ABORTED (or done already)');
  const after = await med.ask(png, 'What is shown?', { ...GEN, maxTokens: 40 });
  t.same(after.tokens, base.tokens, 'the instance answers exactly as before the aborts');
});

t.test('a queued ask whose signal aborts rejects before the running ask finishes; the running one is unaffected', async (t) => {
  const { med } = await loadTiny('v0');
  t.teardown(() => med.dispose());
  const png = await noisePng(30, 30, 64);
  const expected = await med.ask(png, 'First?', { ...GEN, maxTokens: 40 });
  let runningDone = false;
  const running = med.ask(png, 'First?', { ...GEN, maxTokens: 40 }).finally(() => (runningDone = true));
  const ac = new AbortController();
  const queued = med.ask(png, 'Second?', { ...GEN, signal: ac.signal });
  await new Promise((r) => setImmediate(r));
  ac.abort();
  await rejectsCode(t, queued, 'ERR_ABORTED', 'the queued ask');
  t.notOk(runningDone, 'it rejected while the running ask was still running');
  t.same((await running).tokens, expected.tokens, 'the running ask answered as usual');
});

t.test('FIFO: calls resolve in call order', async (t) => {
  const { med } = await loadTiny('v0');
  t.teardown(() => med.dispose());
  const png = await noisePng(30, 30, 62);
  const order: string[] = [];
  const ps = [
    med.ask(png, 'First, long?', { ...GEN, maxTokens: 60 }).then(() => order.push('ask-long')),
    med.score(png, 'Second?', ['yes']).then(() => order.push('score')),
    med.ask(png, 'Third, short?', { ...GEN, maxTokens: 1 }).then(() => order.push('ask-short')),
    med.ask(png, 'Fourth?', { ...GEN, maxTokens: 1 }).then(() => order.push('ask-short-2')),
  ];
  await Promise.all(ps);
  t.same(order, ['ask-long', 'score', 'ask-short', 'ask-short-2'], 'in call order, although later calls are shorter');
});

t.test('dispose during a call: the running call is stopped (ERR_DISPOSED), queued calls are rejected; await using', async (t) => {
  const { med } = await loadTiny('v0');
  const png = await noisePng(30, 30, 63);
  const it = med.stream(png, 'What is shown?', { ...GEN, maxTokens: 30 });
  const first = await it.next(); // the call is now running
  t.equal(first.done, false);
  const queued = med.ask(png, 'Queued?', GEN);
  const queuedScore = med.score(png, 'Queued?', ['yes']);
  for (const p of [queued, queuedScore]) p.catch(() => {}); // they reject at once, checked below
  const disposed = med.dispose();
  t.equal(med.disposed, true, 'disposed as soon as dispose() is called');
  let chunks = 1;
  const streamEnd = await (async () => {
    for (;;) {
      const r = await it.next();
      if (r.done) return 'ran to its end';
      chunks++;
    }
  })().catch((e: { code?: string }) => `rejected ${e.code}`);
  t.equal(streamEnd, 'rejected ERR_DISPOSED', `the running stream stopped after ${chunks} of 30 chunks`);
  await rejectsCode(t, queued, 'ERR_DISPOSED', 'a queued ask');
  await rejectsCode(t, queuedScore, 'ERR_DISPOSED', 'a queued score');
  await disposed;
  t.equal(engineOf(med).context.disposed, true, 'the context is freed');
  t.equal(engineOf(med).projector.disposed, true, 'the projector is freed');
  t.equal(engineOf(med).model.disposed, true, 'the model is freed');
  await rejectsCode(t, med.ask(png, 'After?', GEN), 'ERR_DISPOSED', 'ask after dispose');
  await rejectsCode(t, med.score(png, 'After?', ['yes']), 'ERR_DISPOSED', 'score after dispose');
  await rejectsCode(t, med.embedImage(png), 'ERR_DISPOSED', 'embedImage after dispose');
  await rejectsCode(t, med.askBatch([{ image: png, question: 'q?' }]), 'ERR_DISPOSED', 'askBatch after dispose');
  await rejectsCode(t, () => med.chat(png), 'ERR_DISPOSED', 'chat after dispose');
  await med.dispose(); // idempotent
  t.pass('dispose twice is fine');

  // A running ask (not a stream): stopped mid-generation, rejected with ERR_DISPOSED.
  const { med: m2 } = await loadTiny('v0');
  const spy = spyEngine(m2);
  const running = m2.ask(png, 'What is shown?', { ...GEN, maxTokens: 30 });
  while (spy.steps.length === 0) await new Promise((r) => setImmediate(r)); // wait until it generates
  const d2 = m2.dispose();
  await rejectsCode(t, running, 'ERR_DISPOSED', 'the running ask');
  t.ok(spy.steps.length < 29, `it stopped after ${spy.steps.length} of 29 steps`);
  await d2;
  spy.stop();

  // An image being embedded (outside the instance queue): stopped as well.
  const { med: m4 } = await loadTiny('v0');
  const embedding = m4.embedImage(png);
  await new Promise((r) => setImmediate(r));
  const d4 = m4.dispose();
  const outcome = await embedding.then(
    () => 'embedded',
    (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
  );
  t.match(outcome, /^(ERR_DISPOSED: The LlavaMed instance has been disposed|embedded)/, 'embedImage during dispose: ERR_DISPOSED in the instance\'s words (or done before)');
  await d4;

  let ref: LlavaMed | undefined;
  {
    const tiny = (await loadTiny('v0')).tiny;
    await using m3 = await LlavaMed.load({ model: tiny.model, mmproj: tiny.mmproj, threads: 1, contextSize: 512 });
    ref = m3;
    t.equal((await m3.ask(png, 'What?', { ...GEN, maxTokens: 2 })).tokens.length, 2);
  }
  t.equal(ref.disposed, true, 'await using disposed the instance');
  t.equal(engineOf(ref).model.disposed, true, 'and freed the model');
  await rejectsCode(t, ref.ask(png, 'What?', GEN), 'ERR_DISPOSED', 'ask after await using');
});
