/** ask(): result shape, determinism, stop strings, maxTokens; stream(): same text, early break. */
import t from 'tap';
import { pyStrip } from '../../lib/prompt/index.js';
import { loadTiny, noisePng, rejectsCode, spyEngine } from './util.js';
import { engineOf } from '../../lib/llava-med.js';

const Q = 'What is shown in this image?';

t.test('ask: result shape and timings', async (t) => {
  const { med, tiny } = await loadTiny('v0');
  t.teardown(() => med.dispose());
  const png = await noisePng(32, 32, 11);
  const a = await med.ask(png, Q, { temperature: 0, maxTokens: 12, stop: [] });
  t.type(a.text, 'string');
  t.ok(Array.isArray(a.tokens) && a.tokens.every((x) => Number.isInteger(x) && x >= 0 && x < tiny.ids.nVocab), 'tokens are vocabulary ids');
  t.equal(a.tokens.length, 12, 'a random model runs to maxTokens');
  t.equal(a.stopReason, 'length');
  const tm = a.timings;
  t.ok(tm.imageEncodeMs > 0, `image encode measured (${tm.imageEncodeMs} ms)`);
  t.equal(tm.imageTokens, tiny.imageTokens, 'image tokens decoded');
  t.ok(tm.imageDecodeMs > 0, 'image decode measured');
  t.ok(tm.promptTokens > 10, `prompt tokens counted (${tm.promptTokens})`);
  t.ok(tm.promptMs > 0, 'prompt time measured');
  t.equal(tm.reusedTokens, 0, 'nothing reused on a fresh instance');
  t.equal(tm.generatedTokens, 12);
  t.ok(tm.generateMs > 0);
  t.ok(tm.totalMs >= tm.generateMs + tm.promptMs, 'total covers its parts');
  const text = await engineOf(med).model.detokenize(a.tokens);
  t.equal(a.text, pyStrip(text.split('###')[0]!), 'text = detokenized tokens, cut at ### and stripped (v0)');

  // The same question again: the system prompt is reused from the KV cache.
  const b = await med.ask(png, Q, { temperature: 0, maxTokens: 12, stop: [] });
  t.ok(b.timings.reusedTokens > 0, `second ask reuses ${b.timings.reusedTokens} cached positions`);
  t.ok(b.timings.promptTokens < tm.promptTokens, 'and decodes fewer prompt tokens');
  t.same(b.tokens, a.tokens, 'greedy: the same tokens twice (with and without reuse)');
});

t.test('ask: seeded sampling is reproducible; different seeds differ', async (t) => {
  const { med } = await loadTiny('v1.5');
  t.teardown(() => med.dispose());
  const png = await noisePng(30, 30, 12);
  const opts = { temperature: 1.5, topK: 0, topP: 1, maxTokens: 16 };
  const a = await med.ask(png, Q, { ...opts, seed: 7 });
  const b = await med.ask(png, Q, { ...opts, seed: 7 });
  t.same(b.tokens, a.tokens, 'same seed → same tokens');
  t.equal(b.text, a.text, 'same seed → same text');
  const others = await Promise.all([8, 9, 10].map((seed) => med.ask(png, Q, { ...opts, seed })));
  t.ok(others.some((o) => o.tokens.join() !== a.tokens.join()), 'other seeds give other samples');
  const greedy = await med.ask(png, Q, { temperature: 0, maxTokens: 16 });
  const greedy2 = await med.ask(png, Q, { temperature: 0, maxTokens: 16, seed: 123 });
  t.same(greedy2.tokens, greedy.tokens, 'greedy ignores the seed');
});

t.test('ask: stop strings cut the text; maxTokens gives length', async (t) => {
  const { med } = await loadTiny('v1.5');
  t.teardown(() => med.dispose());
  const png = await noisePng(30, 30, 13);
  const full = await med.ask(png, Q, { temperature: 0, maxTokens: 24 });
  t.equal(full.stopReason, 'length');
  const raw = await engineOf(med).model.detokenize(full.tokens);
  // Pick a stop string from the greedy answer itself: two characters (not U+FFFD) starting after the 3rd token.
  const start = (await engineOf(med).model.detokenize(full.tokens.slice(0, 3))).length;
  let at = -1;
  for (let i = start; i < raw.length - 1; i++) {
    const s = raw.slice(i, i + 2);
    if (!s.includes('\ufffd') && s.trim().length === 2) {
      at = i;
      break;
    }
  }
  t.ok(at > 0, 'found a stop string in the greedy answer');
  const stop = raw.slice(at, at + 2);
  const cut = await med.ask(png, Q, { temperature: 0, maxTokens: 24, stop: ['never-generated-zzz', stop] });
  t.equal(cut.stopReason, 'stop', `stop string ${JSON.stringify(stop)} stops generation`);
  t.equal(cut.text, pyStrip(raw.slice(0, raw.indexOf(stop))), 'text is cut before the first occurrence');
  t.ok(cut.tokens.length < full.tokens.length, 'fewer tokens were generated');
  t.same(cut.tokens, full.tokens.slice(0, cut.tokens.length), 'the same greedy tokens up to the stop');
  t.notOk(cut.text.includes(stop), 'the stop string is not in the text');

  const one = await med.ask(png, Q, { temperature: 0, maxTokens: 1 });
  t.equal(one.stopReason, 'length');
  t.same(one.tokens, full.tokens.slice(0, 1));
  const five = await med.ask(png, Q, { temperature: 0, maxTokens: 5 });
  t.same(five.tokens, full.tokens.slice(0, 5));
  t.equal(five.stopReason, 'length');
  await rejectsCode(t, med.ask(png, Q, { maxTokens: 0 }), 'ERR_INVALID_ARGUMENT', 'maxTokens 0');
  await rejectsCode(t, med.ask(png, Q, { stop: [1 as unknown as string] }), 'ERR_INVALID_ARGUMENT', 'non-string stop');
  await rejectsCode(t, med.ask(png, '   '), 'ERR_INVALID_ARGUMENT', 'blank question');
});

t.test('stream: chunks concatenate to ask()\'s text; breaking out stops generation', async (t) => {
  for (const variant of ['v0', 'v1.5'] as const) {
    const { med } = await loadTiny(variant);
    const png = await noisePng(30, 30, 14);
    const opts = { temperature: 0, maxTokens: 40, stop: [] as string[] };
    const spy = spyEngine(med);
    const a = await med.ask(png, Q, opts);
    const askSteps = spy.steps.length;
    t.equal(a.stopReason, 'length', `${variant}: full run`);
    const chunks: string[] = [];
    for await (const c of med.stream(png, Q, opts)) chunks.push(c);
    t.ok(chunks.length > 1, `${variant}: streamed in ${chunks.length} chunks`);
    t.ok(chunks.every((c) => c.length > 0), `${variant}: no empty chunks`);
    const joined = chunks.join('');
    t.equal(joined, await engineOf(med).model.detokenize(a.tokens), `${variant}: concatenation = the generated text, unstripped`);
    t.equal(pyStrip(joined.split('###')[0]!), a.text, `${variant}: ... which post-processes to ask()'s text`);

    const before = spy.steps.length;
    const got: string[] = [];
    for await (const c of med.stream(png, Q, opts)) {
      got.push(c);
      if (got.length === 2) break;
    }
    const brokenSteps = spy.steps.length - before;
    t.ok(brokenSteps < askSteps / 2, `${variant}: break stopped generation early (${brokenSteps} steps vs ${askSteps})`);
    t.same(got, chunks.slice(0, 2), `${variant}: the chunks before the break are the same`);
    spy.stop();
    const again = await med.ask(png, Q, opts);
    t.same(again.tokens, a.tokens, `${variant}: the instance answers the same afterwards`);
    await med.dispose();
  }
});
