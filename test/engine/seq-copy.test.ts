/**
 * Copying a prefix between sequences (native seqCopy, Sequence.copyPrefix / loadPieces' `from`), at
 * the real geometry: 256 image positions (CLIP 224 px / 14), 1024 cells a sequence, one KV buffer
 * per sequence as LlavaMed runs them. The reference is independent of the copy: a context with one
 * sequence that decodes the whole prompt itself. A copied prefix must give the logits of that
 * context, bit for bit, at the prompt's last token and at every greedy step after it; the
 * destination held other values in the same cells before, so a copy that moved only llama.cpp's
 * bookkeeping (not the K/V values) fails.
 */
import t from 'tap';
import { Context, Model, Projector, type Sequence, type SequenceItem } from '../../lib/engine/index.js';
import type { NativeContext } from '../../lib/engine/native-types.js';
import { makeTinyLlamaGguf, makeTinyMmproj, testImage } from '../helpers/tiny-gguf.js';
import { BIG_LLM, BIG_MMPROJ, caught, rejectsWith } from './util.js';

const llm = await makeTinyLlamaGguf(undefined, BIG_LLM);
const mm = await makeTinyMmproj(undefined, { ...BIG_MMPROJ, imageSize: 224 });
const model = await Model.load(llm.path);
const proj = await Projector.load(model, mm.path);
const PER_SEQ = 1024;
const BATCH = 128;
const img = await proj.encode(testImage(224, 224, 5), 224, 224);
const other = await proj.encode(testImage(224, 224, 6), 224, 224);
t.teardown(async () => {
  img.dispose();
  other.dispose();
  await proj.dispose();
  await model.dispose();
});

const text = (seed: number, n: number) => Array.from({ length: n }, (_, i) => 100 + ((seed * 7919 + i * 104729) % 30000));
// Image first (as v1.5 prompts): a short text before it, a question after it. A and B differ from
// their first token after the image, so the shared prefix ends where a fresh load's pieces end.
const PRE = [1, ...text(1, 6)];
const promptA: SequenceItem[] = [...PRE, img, ...text(2, 40)];
const promptB: SequenceItem[] = [...PRE, img, ...text(3, 30)];
const STEPS = 6;

const nativeOf = (ctx: Context) => (ctx as unknown as { native: NativeContext }).native;
const same = (a: Float32Array, b: Float32Array) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

/** The logits after loading `prompt` into `seq` (optionally from another sequence), then after each of STEPS greedy steps. */
async function run(ctx: Context, seq: Sequence, prompt: readonly SequenceItem[], from?: Sequence) {
  const stats = await seq.load(prompt, undefined, from);
  const logits = [await ctx.logits()];
  using s = ctx.createSampler({ temperature: 0 });
  let tok = (await ctx.sample(s)).token;
  const tokens = [tok];
  for (let i = 0; i < STEPS; i++) {
    tok = (await ctx.step([{ seq: seq.id, token: tok, sampler: s }]))[0]!.token;
    logits.push(await ctx.logits());
    tokens.push(tok);
  }
  return { stats, logits, tokens };
}

const create = (sequences: number, kvUnified = false) => Context.create(model, { contextSize: sequences * PER_SEQ, sequences, kvUnified, batchSize: BATCH, threads: 1 });

// The reference: B decoded whole in a context of one sequence.
const ref = await (async () => {
  const ctx = await create(1);
  try {
    return await run(ctx, ctx.sequence(0), promptB);
  } finally {
    await ctx.dispose();
  }
})();

t.test('a copied prefix gives the logits of a fresh load, at the prompt and at every step', async (t) => {
  t.equal(img.nTokens, 256, 'the real image geometry');
  const ctx = await create(2);
  t.teardown(() => ctx.dispose());
  t.equal(ctx.sequence(1).capacity, PER_SEQ, `${PER_SEQ} cells a sequence`);
  const [s0, s1] = [ctx.sequence(0), ctx.sequence(1)];
  // s1 first holds something else in the cells the copy overwrites.
  await s1.load([1, ...text(9, 4), other, ...text(8, 20)]);
  await s0.load(promptA);
  const a0 = s0.items.slice();
  const shared = PRE.length + img.nTokens;
  t.equal(s0.sharedPrefix(promptB), shared, 'A and B share the text before the image and the image');

  const got = await run(ctx, s1, promptB, s0);
  t.same([got.stats.copied, got.stats.reused], [shared, shared], `the shared ${shared} positions were copied`);
  t.same([got.stats.imageTokens, got.stats.promptTokens], [0, promptB.length - PRE.length - 1], 'only the question after the image was decoded');
  t.ok(
    got.logits.every((l, i) => same(l, ref.logits[i]!)),
    `the logits at the last prompt token and after each of ${STEPS} steps equal the one-sequence reference`,
  );
  t.same(got.tokens, ref.tokens, 'the greedy tokens too');
  t.same(s1.items.slice(0, promptB.length), promptB, 'the destination lists the copied prefix, then what it decoded');
  t.equal(await ctx.nativeLength(1), s1.length, "and llama.cpp's cells agree");
  t.same(s0.items, a0, 'the source is untouched');
  t.equal(await ctx.nativeLength(0), s0.length);
  // The source answers as before: its next load reuses its own cells.
  const again = await run(ctx, s0, promptB);
  t.same([again.stats.copied, again.stats.reused], [0, shared], 'the source reuses its own prefix');
  t.ok(again.logits.every((l, i) => same(l, ref.logits[i]!)), 'with the reference logits');
});

t.test('copyPrefix keeps the bookkeeping: the prefix of the source, trimmed; nothing when it would not gain', async (t) => {
  const ctx = await create(3);
  t.teardown(() => ctx.dispose());
  const [s0, s1, s2] = [ctx.sequence(0), ctx.sequence(1), ctx.sequence(2)];
  await s0.load(promptA);
  await s2.load([...PRE, other, 5]);
  t.equal(await s1.copyPrefix(s0, promptB), PRE.length + img.nTokens, 'positions copied');
  t.same(s1.items, [...PRE, img], 'the destination holds the shared items, the image the same object');
  t.same([s1.length, await ctx.nativeLength(1)], [PRE.length + img.nTokens, PRE.length + img.nTokens], 'trimmed to the shared prefix, in the cells too');
  t.equal(s1.sharedPrefix(promptB), s0.sharedPrefix(promptB), 'it now shares what the source shares');
  t.equal(await s1.copyPrefix(s2, promptB), 0, 'a source sharing less: no copy');
  t.same(s1.items, [...PRE, img], 'and nothing changed');
  // The whole prompt held by the source: its last item is never copied (it is decoded for its logits).
  t.equal(await s2.copyPrefix(s0, promptA), PRE.length + img.nTokens + 39, 'all of A but its last token');
  t.same(s2.items, promptA.slice(0, -1));
  t.equal(await ctx.nativeLength(2), s2.length);
  // A copy between two contexts, or onto itself, is refused; so is anything but a Sequence.
  const ctx2 = await create(2);
  t.teardown(() => ctx2.dispose());
  await rejectsWith(t, () => ctx2.sequence(1).copyPrefix(s0, promptB), 'ERR_INVALID_ARGUMENT', 'a sequence of another context');
  await rejectsWith(t, () => s0.copyPrefix(s0, promptB), 'ERR_INVALID_ARGUMENT', 'itself');
  await rejectsWith(t, () => s1.copyPrefix({ id: 0 } as unknown as Sequence, promptB), 'ERR_INVALID_ARGUMENT', 'a look-alike object');
  await rejectsWith(t, () => s1.copyPrefix(s0, 'abc' as unknown as SequenceItem[]), 'ERR_INVALID_ARGUMENT', 'items not an array');
});

t.test('in one shared KV buffer the copy shares the cells; same logits', async (t) => {
  const ctx = await create(2, true);
  t.teardown(() => ctx.dispose());
  const [s0, s1] = [ctx.sequence(0), ctx.sequence(1)];
  await s0.load(promptA);
  await s1.load([1, ...text(9, 4), other, ...text(8, 20)]);
  const got = await run(ctx, s1, promptB, s0);
  t.equal(got.stats.copied, PRE.length + img.nTokens);
  t.equal(await ctx.nativeLength(1), s1.length);
  // Unified: the cells sit elsewhere in the buffer, so only the greedy answer is compared.
  t.same(got.tokens, ref.tokens, 'the greedy tokens of the reference');
});

t.test('native seqCopy / seqRm / seqPosMax check their arguments (a TypeError, never a llama.cpp assert)', async (t) => {
  const ctx = await create(2);
  t.teardown(() => ctx.dispose());
  const n = nativeOf(ctx);
  const bad: [string, () => unknown][] = [
    ['seqCopy()', () => (n.seqCopy as (...a: unknown[]) => void)()],
    ['seqCopy(0, "1")', () => n.seqCopy(0, '1' as unknown as number)],
    ['seqCopy(0, 2): past n_seq_max', () => n.seqCopy(0, 2)],
    ['seqCopy(-1, 0)', () => n.seqCopy(-1, 0)],
    ['seqCopy(0, 0.5)', () => n.seqCopy(0, 0.5)],
    ['seqCopy(NaN, 1)', () => n.seqCopy(Number.NaN, 1)],
    ['seqCopy(2 ** 32, 1)', () => n.seqCopy(2 ** 32, 1)],
    ['seqCopy(1, 1)', () => n.seqCopy(1, 1)],
    ['seqRm(2, 0, -1)', () => n.seqRm(2, 0, -1)],
    ['seqRm(-1, 0, -1)', () => n.seqRm(-1, 0, -1)],
    ['seqPosMax(7)', () => n.seqPosMax(7)],
  ];
  for (const [what, f] of bad) {
    const e = await caught(f);
    t.ok(e instanceof TypeError, `${what}: TypeError (${String(e)})`);
  }
  t.equal(n.seqPosMax(1), -1, 'the context still works');
  // Busy: a sync call while a decode runs is refused.
  // (the native decode directly: it holds the context from the call on; the context is thrown away after)
  const toks = Int32Array.from(text(4, 100));
  const running = n.decode({ tokens: toks, pos: Int32Array.from(toks, (_, i) => i), seq: new Int32Array(toks.length), logits: new Uint8Array(toks.length) });
  const e = await caught(() => n.seqCopy(0, 1));
  t.equal((e as { code?: string } | undefined)?.code, 'ERR_BUSY', 'seqCopy while a decode runs: ERR_BUSY');
  await running;
  await ctx.dispose();
  t.equal((await caught(() => n.seqCopy(0, 1)) as { code?: string } | undefined)?.code, 'ERR_DISPOSED', 'after dispose: ERR_DISPOSED');
});
