/** chat (KV reuse across turns), embedImage handles, and score against a manual computation. */
import t from 'tap';
import { Context } from '../../lib/engine/index.js';
import type { LlavaMed } from '../../lib/llava-med.js';
import { loadTiny, noisePng, rejectsCode, spyEngine } from './util.js';
import { engineOf } from '../../lib/llava-med.js';

const GEN = { temperature: 0, maxTokens: 10, stop: [] as string[] };

t.test('chat with an ImageHandle: turn 2 reuses the cache and encodes nothing', async (t) => {
  for (const variant of ['v0', 'v1.5'] as const) {
    const { med } = await loadTiny(variant);
    const spy = spyEngine(med);
    const handle = await med.embedImage(await noisePng(30, 30, 41));
    const chat = med.chat(handle);
    const a1 = await chat.ask('What is shown?', GEN);
    const a2 = await chat.ask('Is it normal?', GEN);
    t.equal(spy.encodes(), 1, `${variant}: the image was encoded once`);
    t.equal(a2.timings.imageEncodeMs, 0, `${variant}: turn 2 imageEncodeMs 0`);
    t.equal(a2.timings.imageTokens, 0, `${variant}: turn 2 decodes no image positions`);
    t.ok(a2.timings.reusedTokens > 0, `${variant}: turn 2 reuses ${a2.timings.reusedTokens} positions`);
    t.same(chat.history.map((h) => h.question), ['What is shown?', 'Is it normal?']);
    t.equal(chat.history[0]!.answer, a1.text);
    spy.stop();

    // A fresh instance answering the same 2-turn history from scratch.
    const { med: fresh } = await loadTiny(variant);
    const fh = await fresh.embedImage(await noisePng(30, 30, 41));
    const f = await fresh.runTurn(fh, [{ question: 'What is shown?', answer: a1.text }, { question: 'Is it normal?' }], GEN);
    t.equal(f.timings.reusedTokens, 0);
    t.ok(a2.timings.promptTokens < f.timings.promptTokens, `${variant}: turn 2 decodes fewer prompt tokens (${a2.timings.promptTokens}) than a fresh ask of the history (${f.timings.promptTokens})`);
    t.equal(
      a2.timings.promptTokens + a2.timings.reusedTokens,
      f.timings.promptTokens + f.timings.imageTokens,
      `${variant}: same total positions`,
    );
    t.same(a2.tokens, f.tokens, `${variant}: same answer as the fresh run`);
    await fresh.dispose();
    await med.dispose();
  }
});

t.test('chat with a plain image input: the image is encoded once per chat', async (t) => {
  const { med } = await loadTiny('v0');
  t.teardown(() => med.dispose());
  const spy = spyEngine(med);
  const chat = med.chat(await noisePng(30, 30, 42));
  await chat.ask('What is shown?', GEN);
  const a2 = await chat.ask('Is it normal?', GEN);
  spy.stop();
  t.equal(spy.encodes(), 1, 'the chat encodes its image once, not on every turn');
  t.equal(a2.timings.imageEncodeMs, 0, 'turn 2 imageEncodeMs 0');
  t.equal(a2.timings.imageTokens, 0, 'turn 2 reuses the image positions from the KV cache');
});

t.test('embedImage: reuse across questions; dispose → ERR_DISPOSED', async (t) => {
  const { med } = await loadTiny('v0');
  const { med: other } = await loadTiny('v0');
  t.teardown(async () => {
    await med.dispose();
    await other.dispose();
  });
  const png = await noisePng(30, 30, 43);
  const spy = spyEngine(med);
  const h = await med.embedImage(png);
  t.equal(h.nTokens, 4);
  t.ok(h.encodeMs > 0);
  const q1 = await med.ask(h, 'What is shown?', GEN);
  const q2 = await med.ask(h, 'Where is the heart?', GEN);
  t.equal(spy.encodes(), 1, 'two questions, one encode');
  t.equal(q1.timings.imageEncodeMs, 0);
  t.equal(q2.timings.imageEncodeMs, 0);
  spy.stop();
  const direct = await med.ask(png, 'Where is the heart?', GEN);
  t.ok(direct.timings.imageEncodeMs > 0, 'a plain input is encoded');
  t.same(direct.tokens, q2.tokens, 'the handle answers as the image itself');
  await rejectsCode(t, other.ask(h, 'What?', GEN), 'ERR_INVALID_ARGUMENT', 'a handle from another instance');
  await h.dispose();
  t.equal(h.disposed, true);
  await rejectsCode(t, med.ask(h, 'What is shown?', GEN), 'ERR_DISPOSED', 'ask with a disposed handle');
  await rejectsCode(t, med.score(h, 'What is shown?', ['yes']), 'ERR_DISPOSED', 'score with a disposed handle');
  await rejectsCode(t, med.chat(h).ask('What is shown?', GEN), 'ERR_DISPOSED', 'chat with a disposed handle');
  const s = med.stream(h, 'What is shown?', GEN);
  await rejectsCode(t, (async () => { for await (const _ of s) void _; })(), 'ERR_DISPOSED', 'stream with a disposed handle');
  await h.dispose(); // idempotent
  t.same((await med.ask(png, 'Where is the heart?', GEN)).tokens, direct.tokens, 'the instance still answers the same');
  // await using on a handle
  let inner: typeof h | undefined;
  {
    await using h2 = await med.embedImage(png);
    inner = h2;
    t.equal(h2.disposed, false);
  }
  t.equal(inner.disposed, true, 'await using disposes the handle');
});

/** log softmax in float64 from raw logits. */
function logSoftmaxAt(logits: Float32Array, target: number): number {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return logits[target]! - max - Math.log(sum);
}

async function manualScore(med: LlavaMed, before: number[], image: Parameters<Context['decodeImage']>[0], after: number[], cand: number[]): Promise<number> {
  const ctx = await Context.create(engineOf(med).model, { contextSize: engineOf(med).context.contextSize, batchSize: engineOf(med).context.batchSize, threads: 1, flashAttn: 'off' /* as LlavaMed on CPU */ });
  try {
    await ctx.decode(before, { logits: 'none' });
    await ctx.decodeImage(image);
    await ctx.decode(after, { logits: 'last' });
    await ctx.trim(0, ctx.length(0) - 1);
    await ctx.decode([after[after.length - 1]!, ...cand.slice(0, -1)], { logits: 'all' });
    let lp = 0;
    for (let i = 0; i < cand.length; i++) lp += logSoftmaxAt(await ctx.logits(i), cand[i]!);
    return lp;
  } finally {
    await ctx.dispose();
  }
}

t.test('score: log-probs equal a manual computation; stable across calls', async (t) => {
  for (const variant of ['v0', 'v1.5'] as const) {
    const { med } = await loadTiny(variant);
    const h = await med.embedImage(await noisePng(30, 30, 44));
    const cands = ['yes', 'no', 'the left lung', 'no'];
    const spy = spyEngine(med);
    const s = await med.score(h, 'Is there an effusion?', cands);
    spy.stop();
    // The prompt LlavaMed decoded: everything up to the first scoring decode (logits 'all').
    const firstScore = spy.fed.findIndex((f) => f.logits === 'all');
    const promptFed = spy.fed.slice(0, firstScore);
    const imgAt = promptFed.findIndex((f) => f.image);
    const before = promptFed.slice(0, imgAt).flatMap((f) => f.tokens!);
    const after = promptFed.slice(imgAt + 1).flatMap((f) => f.tokens!);
    t.same(s.map((x) => x.candidate), cands, `${variant}: results in candidate order`);
    for (const x of s) {
      const expectTokens = Array.from(await engineOf(med).model.tokenize(x.candidate, { addSpecial: false, parseSpecial: false }));
      t.same(x.tokens, expectTokens, `${variant}: ${x.candidate} tokens = plain SentencePiece encoding`);
      const manual = await manualScore(med, before, h.embedding, after, expectTokens);
      t.ok(Math.abs(manual - x.logProb) < 1e-9, `${variant}: ${x.candidate}: ${x.logProb} = manual ${manual}`);
      t.ok(x.logProb < 0, 'a log-probability is negative');
    }
    t.equal(s[1]!.logProb, s[3]!.logProb, `${variant}: a repeated candidate scores the same`);
    t.not(s[0]!.logProb, s[1]!.logProb, `${variant}: different candidates score differently`);
    const again = await med.score(h, 'Is there an effusion?', cands);
    t.same(again, s, `${variant}: identical across calls`);
    // Scoring leaves the instance answering as before.
    const a1 = await med.ask(h, 'Is there an effusion?', GEN);
    await med.score(h, 'Is there an effusion?', ['yes']);
    t.same((await med.ask(h, 'Is there an effusion?', GEN)).tokens, a1.tokens, `${variant}: ask unaffected by score`);
    // score's first token agrees with greedy generation: the greedy token has the best 1-token log-prob.
    const piece = await engineOf(med).model.detokenize([a1.tokens[0]!]);
    if (piece.length > 0 && !piece.includes('\ufffd')) {
      const first = Array.from(await engineOf(med).model.tokenize(piece.trimStart(), { addSpecial: false }));
      if (first.length === 1 && first[0] === a1.tokens[0]) {
        const [best] = await med.score(h, 'Is there an effusion?', [piece.trimStart()]);
        const [worse] = await med.score(h, 'Is there an effusion?', ['yes']);
        t.ok(best!.logProb >= worse!.logProb || best!.candidate === 'yes', `${variant}: the greedy token scores at least as high as "yes"`);
      }
    }
    await rejectsCode(t, med.score(h, 'q?', []), 'ERR_INVALID_ARGUMENT', 'no candidates');
    await rejectsCode(t, med.score(h, 'q?', ['']), 'ERR_INVALID_ARGUMENT', 'empty candidate');
    await med.dispose();
  }
});
