/**
 * The public options schemas (lib/options.ts) and the generation options that change how an answer
 * is delivered: onTextChunk (the callback form of stream) and stopOnAbortSignal (the partial answer
 * instead of ERR_ABORTED).
 */
import t from 'tap';
import { LlavaMed } from '../../lib/llava-med.js';
import { nearestKey } from '../../lib/options.js';
import { loadTiny, noisePng, rejectsCode, tinyV0 } from './util.js';

const Q = 'What is shown in this image?';

t.test('unknown keys are refused with the nearest valid name', async (t) => {
  const v0 = await tinyV0();
  const e = await rejectsCode(t, LlavaMed.load({ model: v0.model, mmproj: v0.mmproj, contextsize: 512 } as never), 'ERR_INVALID_ARGUMENT', 'load: contextsize');
  t.match(e?.message, /^LlavaMed\.load: unknown option 'contextsize' \(did you mean 'contextSize'\?\)/);
  const { med } = await loadTiny('v0');
  t.teardown(() => med.dispose());
  const png = await noisePng(20, 20, 5);
  const g = await rejectsCode(t, med.ask(png, Q, { temprature: 0 } as never), 'ERR_INVALID_ARGUMENT', 'ask: temprature');
  t.match(g?.message, /unknown option 'temprature' \(did you mean 'temperature'\?\)/);
  const far = await rejectsCode(t, med.ask(png, Q, { colour: 'red' } as never), 'ERR_INVALID_ARGUMENT', 'ask: a key like no other');
  t.notMatch(far?.message, /did you mean/, 'no suggestion when nothing is close');
  t.match(far?.message, /Valid options: temperature, topK/);
  await rejectsCode(t, med.score(png, Q, ['yes'], { signl: undefined } as never), 'ERR_INVALID_ARGUMENT', 'score: signl');
  await rejectsCode(t, med.embedImage(png, { maxTokens: 3 } as never), 'ERR_INVALID_ARGUMENT', 'embedImage: a generation key');
  t.equal(nearestKey('maxtokens', ['maxTokens', 'minP']), 'maxTokens');
  t.equal(nearestKey('topk', ['topK', 'topP']), 'topK');
});

t.test('ranges and types name the key and the value', async (t) => {
  const { med } = await loadTiny('v0');
  t.teardown(() => med.dispose());
  const png = await noisePng(20, 20, 6);
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ temperature: -1 }, /temperature must be >= 0, got -1/],
    [{ topP: 0 }, /topP must be > 0, got 0/],
    [{ topP: 2 }, /topP must be <= 1, got 2/],
    [{ topK: 1.5 }, /topK must be an integer, got 1\.5/],
    [{ seed: -1 }, /seed must be >= 0/],
    [{ seed: 2 ** 32 }, /seed must be <= 4294967295/],
    [{ maxTokens: 0 }, /maxTokens must be >= 1, got 0/],
    [{ minP: 1.5 }, /minP must be <= 1/],
    [{ repeatPenalty: 0 }, /repeatPenalty must be > 0/],
    [{ temperature: '0.5' }, /temperature must be a number, got "0\.5"/],
    [{ stop: 'x' }, /stop must be/],
    [{ onTextChunk: 'x' }, /onTextChunk must be a function/],
    [{ stopOnAbortSignal: 1 }, /stopOnAbortSignal must be a boolean/],
    [{ signal: {} }, /signal must be an AbortSignal/],
  ];
  for (const [opts, msg] of cases) {
    const e = await rejectsCode(t, med.ask(png, Q, opts as never), 'ERR_INVALID_ARGUMENT', JSON.stringify(opts));
    t.match(e?.message, msg);
  }
  const v0 = await tinyV0();
  for (const [opts, msg] of [
    [{ threads: 0 }, /threads must be >= 1, got 0/],
    [{ variant: 'v2' }, /variant must be one of "v0", "v1\.5"/],
    [{ gpuLayers: -1 }, /gpuLayers/],
    [{ flashAttn: true }, /flashAttn must be one of/],
    [{ onProgress: 3 }, /onProgress must be a function/],
  ] as const) {
    const e = await rejectsCode(t, LlavaMed.load({ model: v0.model, mmproj: v0.mmproj, ...opts } as never), 'ERR_INVALID_ARGUMENT', `load ${JSON.stringify(opts)}`);
    t.match(e?.message, msg);
  }
  // null and undefined mean "the default", as everywhere.
  const a = await med.ask(png, Q, { temperature: 0, maxTokens: 3, seed: null, topK: undefined } as never);
  t.equal(a.tokens.length, 3);
});

t.test('onTextChunk receives the answer as it is generated', async (t) => {
  const { med } = await loadTiny('v0');
  t.teardown(() => med.dispose());
  const png = await noisePng(24, 24, 7);
  const gen = { temperature: 0, maxTokens: 12, stop: [] as string[] };
  const chunks: string[] = [];
  const a = await med.ask(png, Q, { ...gen, onTextChunk: (c) => chunks.push(c) });
  t.ok(chunks.length > 1, 'several chunks');
  t.equal(chunks.join('').trim(), a.text, 'the chunks make up the answer');
  const streamed: string[] = [];
  for await (const c of med.stream(png, Q, gen)) streamed.push(c);
  t.same(chunks, streamed, 'the same pieces as stream()');
  const chat = med.chat(png);
  const turn: string[] = [];
  const ca = await chat.ask(Q, { ...gen, onTextChunk: (c) => turn.push(c) });
  t.equal(turn.join('').trim(), ca.text, 'ChatSession.ask too');
  await chat.dispose();
});

t.test('stopOnAbortSignal: the partial answer instead of ERR_ABORTED', async (t) => {
  const { med } = await loadTiny('v0');
  t.teardown(() => med.dispose());
  const png = await noisePng(24, 24, 8);
  const gen = { temperature: 0, maxTokens: 40, stop: [] as string[] };
  const full = await med.ask(png, Q, gen);
  t.equal(full.tokens.length, 40);
  const abortAfter = (n: number) => {
    const ac = new AbortController();
    let seen = 0;
    return { signal: ac.signal, onTextChunk: () => (++seen === n ? ac.abort() : undefined) };
  };
  const partial = await med.ask(png, Q, { ...gen, ...abortAfter(3), stopOnAbortSignal: true });
  t.equal(partial.stopReason, 'aborted');
  t.ok(partial.tokens.length >= 3 && partial.tokens.length < 40, `stopped early (${partial.tokens.length} tokens)`);
  t.same(partial.tokens, full.tokens.slice(0, partial.tokens.length), 'the tokens so far are the full answer\'s prefix');
  // The abort lands while the next step runs natively (setImmediate fires before the pool's work
  // completes): the step is rolled back and the answer still ends cleanly.
  const ac = new AbortController();
  let n = 0;
  const inStep = await med.ask(png, Q, { ...gen, signal: ac.signal, stopOnAbortSignal: true, onTextChunk: () => (++n === 3 ? setImmediate(() => ac.abort()) : undefined) });
  t.equal(inStep.stopReason, 'aborted', 'aborted inside a step');
  t.same(inStep.tokens, full.tokens.slice(0, inStep.tokens.length), 'a prefix of the full answer');
  await rejectsCode(t, med.ask(png, Q, { ...gen, ...abortAfter(3) }), 'ERR_ABORTED', 'without the option the call rejects');
  await rejectsCode(t, med.ask(png, Q, { ...gen, signal: AbortSignal.abort(), stopOnAbortSignal: true }), 'ERR_ABORTED', 'aborted before the answer started');
  const streamed: string[] = [];
  const s = abortAfter(2);
  for await (const c of med.stream(png, Q, { ...gen, signal: s.signal, stopOnAbortSignal: true })) {
    streamed.push(c);
    s.onTextChunk();
  }
  t.ok(streamed.length >= 2 && streamed.length < 40, 'a stream ends without an error');
  const again = await med.ask(png, Q, gen);
  t.same(again.tokens, full.tokens, 'the instance answers as before');
});
