/**
 * A decode longer than one batch runs as several llama_decode calls (native slices of
 * batchSize). When a later slice fails, the cells the earlier slices stored are removed again, so
 * the sequence holds what it held before the call and keeps working. The failure here is real:
 * in a shared KV buffer another sequence has taken most cells, so the second slice finds no room.
 */
import t from 'tap';
import { Context, Model } from '../../lib/engine/index.js';
import { makeTinyLlamaGguf } from '../helpers/tiny-gguf.js';

const { path } = await makeTinyLlamaGguf(undefined, { mode: 'random', seed: 31 });
const model = await Model.load(path);
t.teardown(() => model.dispose());
const tokens = (n: number, k: number) => Array.from({ length: n }, (_, i) => 1000 + ((i * k) % 700));

t.test('a failed second slice is rolled back; the sequence keeps working', async (t) => {
  const ctx = await Context.create(model, { contextSize: 512, batchSize: 64, sequences: 2, threads: 1, flashAttn: 'off' });
  t.teardown(() => ctx.dispose());
  t.equal(ctx.contextSize, 512);
  const head = tokens(10, 37);
  await ctx.decode(head, { seq: 0 });
  await ctx.decode(tokens(400, 13), { seq: 1, logits: 'none' }); // 410 of 512 cells in use
  const long = tokens(128, 29); // two slices of 64: the first fits (474), the second does not (538)
  const err = await ctx.decode(long, { seq: 0 }).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof Error, `the decode fails (${String(err)})`);
  t.equal(ctx.length(0), head.length, 'the tracked length is back to before the call');
  t.equal(await ctx.nativeLength(0), head.length, 'llama.cpp holds no cell of the failed call');
  t.equal(await ctx.nativeLength(1), 400, 'the other sequence is untouched');

  // The sequence goes on as if the call never happened: same logits as a fresh context.
  await ctx.trim(1, 0);
  await ctx.decode(long.slice(0, 20), { seq: 0 });
  const got = await ctx.logits();
  const fresh = await Context.create(model, { contextSize: 512, batchSize: 64, threads: 1, flashAttn: 'off' });
  await fresh.decode(head);
  await fresh.decode(long.slice(0, 20));
  const want = await fresh.logits();
  await fresh.dispose();
  let maxDiff = 0;
  for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
  t.ok(maxDiff < 1e-3, `logits after the rollback match a fresh context (max diff ${maxDiff.toExponential(1)})`);
});
