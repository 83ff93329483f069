/**
 * Every engine error path gives a LlavaMedError with its stable code — never a process abort —
 * and the objects keep working afterwards.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, writeFileSync, readFileSync, copyFileSync, truncateSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Context, Model, Projector, checkProjectorFile } from '../../lib/engine/index.js';
import { GgufValueType as V, readGgufHeader } from '../../lib/formats/gguf.js';
import { makeTinyLlamaGguf, makeTinyMmproj, testImage } from '../helpers/tiny-gguf.js';
import { failsWith, followChain, greedy, rejectsWith, tinyPair } from './util.js';

const dir = mkdtempSync(join(tmpdir(), 'llava-engine-errors-'));
const { llm, mm } = await tinyPair();
const model = await Model.load(llm.path);
const proj = await Projector.load(model, mm.path);
t.teardown(async () => {
  await proj.dispose();
  await model.dispose();
});

/** The objects still work: tokenize, a greedy chain step, an image encode. */
async function stillWorks(t: Test): Promise<void> {
  t.same(Array.from(await model.tokenize('Hello world')), [15043, 3186], 'model still tokenizes');
  const ctx = await Context.create(model, { contextSize: 256 });
  const s = llm.chainTokens[0]!;
  t.same(await greedy(ctx, [1, s], 3), followChain(llm.chain, s, 3), 'a new context still generates');
  await ctx.dispose();
  using e = await proj.encode(testImage(28, 28), 28, 28);
  t.equal(e.nTokens, 4, 'projector still encodes');
}

t.test('missing file → ERR_FILE_NOT_FOUND (model and mmproj)', async (t) => {
  await failsWith(t, () => Model.load(join(dir, 'nope.gguf')), 'ERR_FILE_NOT_FOUND', 'missing model');
  await failsWith(t, () => Projector.load(model, join(dir, 'nope-mmproj.gguf')), 'ERR_FILE_NOT_FOUND', 'missing mmproj');
  await stillWorks(t);
});

t.test('a directory is ERR_INVALID_ARGUMENT; an empty path too', async (t) => {
  await failsWith(t, () => Model.load(dir), 'ERR_INVALID_ARGUMENT', 'directory as model');
  await failsWith(t, () => Model.load(''), 'ERR_INVALID_ARGUMENT', 'empty path');
  await failsWith(t, () => Model.load(42 as never), 'ERR_INVALID_ARGUMENT', 'number as path');
});

t.test('a text file renamed .gguf → ERR_NOT_GGUF; an empty file too', async (t) => {
  const txt = join(dir, 'readme.gguf');
  writeFileSync(txt, 'This is not a model, just some text that someone renamed.\n');
  await failsWith(t, () => Model.load(txt), 'ERR_NOT_GGUF', 'text as model');
  await failsWith(t, () => Projector.load(model, txt), 'ERR_NOT_GGUF', 'text as mmproj');
  const empty = join(dir, 'empty.gguf');
  writeFileSync(empty, '');
  await failsWith(t, () => Model.load(empty), 'ERR_NOT_GGUF', 'empty file');
  await stillWorks(t);
});

t.test('truncated GGUF → ERR_GGUF_CORRUPT (header, tensor table, data; model and mmproj)', async (t) => {
  const size = statSync(llm.path).size;
  const h = await readGgufHeader(llm.path);
  const cuts: [string, number][] = [
    ['inside the KV section', 2000],
    ['inside the tensor table', h.dataOffset - 40],
    ['just after the header', h.dataOffset + 10],
    ['one byte short of the end', size - 1],
  ];
  for (const [what, at] of cuts) {
    const p = join(dir, `trunc-${at}.gguf`);
    copyFileSync(llm.path, p);
    truncateSync(p, at);
    await failsWith(t, () => Model.load(p), 'ERR_GGUF_CORRUPT', `model cut ${what}`);
  }
  const mmSize = statSync(mm.path).size;
  const p = join(dir, 'trunc-mmproj.gguf');
  copyFileSync(mm.path, p);
  truncateSync(p, mmSize - 100);
  await failsWith(t, () => Projector.load(model, p), 'ERR_GGUF_CORRUPT', 'mmproj cut short');
  await stillWorks(t);
});

t.test('wrong mmproj for the model (width 48 vs n_embd 64) → ERR_MMPROJ_MISMATCH', async (t) => {
  const wrong = await makeTinyMmproj(undefined, { outWidth: 48 });
  const e = await failsWith(t, () => Projector.load(model, wrong.path), 'ERR_MMPROJ_MISMATCH', 'width 48');
  t.match(e?.message ?? '', /48.*64/, 'the message names both widths');
  const v15 = await makeTinyMmproj(undefined, { variant: 'v1.5' });
  await failsWith(t, () => Projector.load(model, v15.path), 'ERR_MMPROJ_MISMATCH', 'v1.5 projector for a v0 model');
  await stillWorks(t);
});

t.test('model passed as mmproj and mmproj passed as model → ERR_INVALID_ARGUMENT', async (t) => {
  const e1 = await failsWith(t, () => Projector.load(model, llm.path), 'ERR_INVALID_ARGUMENT', 'model file as mmproj');
  t.match(e1?.message ?? '', /not a projector/);
  const e2 = await failsWith(t, () => Model.load(mm.path), 'ERR_INVALID_ARGUMENT', 'mmproj file as model');
  t.match(e2?.message ?? '', /projector \(mmproj\)/);
  await stillWorks(t);
});

t.test('wrong key types in the mmproj → ERR_GGUF_CORRUPT, and this process survives', async (t) => {
  // Each of these is read by clip.cpp with a type-asserting gguf_get_val_*: loading them
  // natively would abort the whole process (see native-abort.test.ts).
  const cases: [string, V][] = [
    ['clip.vision.image_size', V.INT32],
    ['clip.vision.patch_size', V.UINT64],
    ['clip.vision.embedding_length', V.FLOAT32],
    ['clip.vision.attention.layer_norm_epsilon', V.FLOAT64],
    ['clip.has_vision_encoder', V.UINT8],
    ['clip.use_gelu', V.INT32],
    ['clip.projector_type', V.INT32],
    ['general.file_type', V.INT32],
    ['clip.vision.image_mean', V.FLOAT64], // array element type
    ['clip.vision.feature_layer', V.UINT32], // array element type
  ];
  for (const [key, type] of cases) {
    const bad = await makeTinyMmproj(undefined, { keyTypes: { [key]: type } });
    const h = await readGgufHeader(bad.path);
    const kv = h.kv.get(key)!;
    t.ok(kv.type === type || kv.elemType === type, `fixture really wrote ${key} as type ${type}`);
    const e = await failsWith(t, () => Projector.load(model, bad.path), 'ERR_GGUF_CORRUPT', `${key} as type ${type}`);
    t.match(e?.message ?? '', key, 'the message names the key');
  }
  await stillWorks(t);
});

t.test('missing required mmproj keys or projector tensors → ERR_GGUF_CORRUPT', async (t) => {
  for (const key of ['clip.vision.image_size', 'clip.vision.block_count', 'clip.vision.image_mean']) {
    const bad = await makeTinyMmproj(undefined, { omitKeys: [key] });
    await failsWith(t, () => checkProjectorFile(bad.path), 'ERR_GGUF_CORRUPT', `without ${key}`);
  }
  const noMm2 = await makeTinyMmproj(undefined, { omitTensors: ['mm.2.weight', 'mm.2.bias'] });
  await failsWith(t, () => Projector.load(model, noMm2.path), 'ERR_GGUF_CORRUPT', 'without mm.2 (clip_n_mmproj_embd would dereference null)');
  await stillWorks(t);
});

t.test('prompt longer than the context → ERR_CONTEXT_FULL; the context stays usable', async (t) => {
  const ctx = await Context.create(model, { contextSize: 256 });
  const n = ctx.contextSize;
  t.ok(n >= 256, `context of ${n}`);
  const long = Array.from({ length: n + 1 }, (_, i) => 1000 + (i % 500));
  await rejectsWith(t, () => ctx.decode(long), 'ERR_CONTEXT_FULL', `${n + 1} tokens into ${n}`);
  t.equal(ctx.length(), 0, 'nothing kept');
  t.equal(await ctx.nativeLength(), 0, 'native KV empty');
  // fill part of it, then overflow by one
  await ctx.decode(long.slice(0, n - 10));
  await rejectsWith(t, () => ctx.decode(long.slice(0, 11)), 'ERR_CONTEXT_FULL', 'overflow by one');
  t.equal(ctx.length(), n - 10, 'earlier tokens kept');
  t.equal(await ctx.nativeLength(), n - 10);
  // an image that does not fit either
  using e = await proj.encode(testImage(28, 28), 28, 28);
  await ctx.decode(long.slice(0, 7));
  await rejectsWith(t, () => ctx.decodeImage(e), 'ERR_CONTEXT_FULL', 'image beyond the context');
  t.equal(ctx.length(), n - 3);
  // the remaining room still works, to the last cell
  const s = llm.chainTokens[0]!;
  t.same(await greedy(ctx, [s], 3), followChain(llm.chain, s, 3), 'generates up to the end of the context');
  t.equal(ctx.length(), n);
  using smp = ctx.createSampler({ temperature: 0 });
  await rejectsWith(t, () => ctx.step([{ seq: 0, token: s, sampler: smp }]), 'ERR_CONTEXT_FULL', 'step on a full context');
  t.equal(ctx.length(), n, 'length unchanged');
  await ctx.dispose();
});

t.test('wrong JS types on Context methods → ERR_INVALID_ARGUMENT (a LlavaMedError, never a raw TypeError), and the context keeps working', async (t) => {
  const ctx = await Context.create(model, { contextSize: 256, sequences: 2 });
  using smp = ctx.createSampler({ temperature: 0 });
  await failsWith(t, () => ctx.decode('abc' as never), 'ERR_INVALID_ARGUMENT', "decode('abc')");
  await failsWith(t, () => ctx.decode([]), 'ERR_INVALID_ARGUMENT', 'decode([])');
  await failsWith(t, () => ctx.decode([1, 2.5]), 'ERR_INVALID_ARGUMENT', 'decode([1, 2.5])');
  await failsWith(t, () => ctx.decode([1, -3]), 'ERR_INVALID_ARGUMENT', 'decode([1, -3])');
  await failsWith(t, () => ctx.decode([32004]), 'ERR_INVALID_ARGUMENT', 'decode([32004])');
  await failsWith(t, () => ctx.decode([1, NaN]), 'ERR_INVALID_ARGUMENT', 'decode([1, NaN])');
  await failsWith(t, () => ctx.decode(null as never), 'ERR_INVALID_ARGUMENT', 'decode(null)');
  await failsWith(t, () => ctx.decode(5 as never), 'ERR_INVALID_ARGUMENT', 'decode(5)');
  await failsWith(t, () => ctx.decode([1], { seq: 2 }), 'ERR_INVALID_ARGUMENT', 'decode seq 2 of 2');
  await failsWith(t, () => ctx.decode([1], { seq: -1 }), 'ERR_INVALID_ARGUMENT', 'decode seq -1');
  await failsWith(t, () => ctx.step([]), 'ERR_INVALID_ARGUMENT', 'step([])');
  await failsWith(t, () => ctx.step([{ seq: 5, token: 1, sampler: smp }]), 'ERR_INVALID_ARGUMENT', 'step on seq 5');
  await failsWith(t, () => ctx.step([{ seq: 0, token: 99999, sampler: smp }]), 'ERR_INVALID_ARGUMENT', 'step token 99999');
  await failsWith(t, () => ctx.step([{ seq: 0, token: 1, sampler: {} as never }]), 'ERR_INVALID_ARGUMENT', 'step with a non-sampler');
  await failsWith(t, () => ctx.sample({} as never), 'ERR_INVALID_ARGUMENT', 'sample({})');
  await failsWith(t, () => ctx.logits('x' as never), 'ERR_INVALID_ARGUMENT', "logits('x')");
  await failsWith(t, () => ctx.trim(0, -1), 'ERR_INVALID_ARGUMENT', 'trim(0, -1)');
  await failsWith(t, () => ctx.trim(7, 0), 'ERR_INVALID_ARGUMENT', 'trim(7, 0)');
  await failsWith(t, () => ctx.sequence(9), 'ERR_INVALID_ARGUMENT', 'sequence(9)');
  await failsWith(t, () => ctx.setThreads(0), 'ERR_INVALID_ARGUMENT', 'setThreads(0)');
  await failsWith(t, () => ctx.createSampler({ temperature: 'hot' as never }), 'ERR_INVALID_ARGUMENT', "temperature 'hot'");
  await failsWith(t, () => ctx.createSampler({ topP: 2 }), 'ERR_INVALID_ARGUMENT', 'topP 2');
  await failsWith(t, () => ctx.createSampler({ seed: -1 }), 'ERR_INVALID_ARGUMENT', 'seed -1');
  await failsWith(t, () => Context.create(model, { contextSize: 0 }), 'ERR_INVALID_ARGUMENT', 'contextSize 0');
  await failsWith(t, () => Context.create(model, { contextSize: '512' as never }), 'ERR_INVALID_ARGUMENT', "contextSize '512'");
  await failsWith(t, () => Context.create(model, { kvCacheType: 'q2' as never }), 'ERR_INVALID_ARGUMENT', "kvCacheType 'q2'");
  await failsWith(t, () => Context.create(model, { flashAttn: 'yes' as never }), 'ERR_INVALID_ARGUMENT', "flashAttn 'yes'");
  t.equal(ctx.length(0), 0, 'nothing was decoded by the failed calls');
  t.equal(await ctx.nativeLength(0), 0);
  const s = llm.chainTokens[1]!;
  t.same(await greedy(ctx, [1, s], 4), followChain(llm.chain, s, 4), 'the context still generates');
  await ctx.dispose();
});

t.test('an unknown logits mode is ERR_INVALID_ARGUMENT (not silently a decode without logits)', async (t) => {
  const ctx = await Context.create(model, { contextSize: 256 });
  await failsWith(t, () => ctx.decode([1, 450], { logits: 'some' as never }), 'ERR_INVALID_ARGUMENT', "logits 'some'");
  t.equal(ctx.length(), 0, 'nothing decoded');
  await ctx.dispose();
});

t.test('Promise-returning methods reject instead of throwing synchronously', async (t) => {
  // x.method(bad).catch(handler) must not turn into an uncaught exception.
  const ctx = await Context.create(model, { contextSize: 256, sequences: 2 });
  using smp = ctx.createSampler({ temperature: 0 });
  await rejectsWith(t, () => ctx.decode([1], { seq: 2 }), 'ERR_INVALID_ARGUMENT', 'decode seq 2 of 2');
  await rejectsWith(t, () => ctx.decode(null as never), 'ERR_INVALID_ARGUMENT', 'decode(null)');
  await rejectsWith(t, () => ctx.step([{ seq: 5, token: 1, sampler: smp }]), 'ERR_INVALID_ARGUMENT', 'step on seq 5');
  await rejectsWith(t, () => ctx.step([{ seq: 0, token: 1, sampler: {} as never }]), 'ERR_INVALID_ARGUMENT', 'step with a non-sampler');
  await rejectsWith(t, () => ctx.trim(7, 0), 'ERR_INVALID_ARGUMENT', 'trim(7, 0)');
  await rejectsWith(t, () => ctx.setThreads(0), 'ERR_INVALID_ARGUMENT', 'setThreads(0)');
  await rejectsWith(t, () => ctx.decodeImage({} as never), 'ERR_INVALID_ARGUMENT', 'decodeImage({})');
  await rejectsWith(t, () => model.tokenPieces([99999]), 'ERR_INVALID_ARGUMENT', 'tokenPieces([99999])');
  await ctx.dispose();
});

t.test('sample before any decode, or at an index without logits → ERR_INVALID_ARGUMENT', async (t) => {
  const ctx = await Context.create(model, { contextSize: 256 });
  using smp = ctx.createSampler({ temperature: 0 });
  await rejectsWith(t, () => ctx.sample(smp), 'ERR_INVALID_ARGUMENT', 'sample with no logits');
  await ctx.decode([1, 450, 3148], { logits: 'last' });
  await rejectsWith(t, () => ctx.sample(smp, { index: 0 }), 'ERR_INVALID_ARGUMENT', 'index 0 has no logits');
  await rejectsWith(t, () => ctx.logits(5), 'ERR_INVALID_ARGUMENT', 'logits(5) past the batch');
  t.equal((await ctx.logits()).length, 32004, 'the last position still has logits');
  await ctx.dispose();
});

t.test('a corrupt file in the middle of the tensor data with a valid header still fails cleanly', async (t) => {
  // header intact, tensor data table says more bytes than exist: caught by the TS bounds check
  const p = join(dir, 'short-data.gguf');
  const buf = readFileSync(llm.path);
  writeFileSync(p, buf.subarray(0, buf.length - 4096));
  await failsWith(t, () => Model.load(p), 'ERR_GGUF_CORRUPT', 'data section short by 4 KiB');
  await stillWorks(t);
});

t.test('files that pass the TS checks but llama.cpp / mtmd refuse → ERR_MODEL_LOAD / ERR_MMPROJ_LOAD', async (t) => {
  const noOutputNorm = await makeTinyLlamaGguf(undefined, { omitTensors: ['output_norm.weight'] });
  const e1 = await failsWith(t, () => Model.load(noOutputNorm.path), 'ERR_MODEL_LOAD', 'model without output_norm.weight');
  t.match(e1?.message ?? '', noOutputNorm.path, 'the message names the file');
  // attn_out is the one layer tensor clip.cpp requires itself (a clean throw, ERR_MMPROJ_LOAD from
  // the native layer); the others it loads as optional and then crashes on (mmproj-crash.test.ts).
  // gguf-check.ts now refuses every missing llava tensor before native code runs.
  const noOut = await makeTinyMmproj(undefined, { omitTensors: ['v.blk.1.attn_out.weight'] });
  await failsWith(t, () => Projector.load(model, noOut.path), 'ERR_GGUF_CORRUPT', 'mmproj without v.blk.1.attn_out.weight (TS check)');
  const native = await model.addon.loadProjector(model.nativeHandle(), noOut.path, { threads: 1, useGpu: false, warmup: true, flashAttn: 'off' }).then(
    () => undefined,
    (e: { code?: string }) => e,
  );
  t.equal(native?.code, 'ERR_MMPROJ_LOAD', 'the native loader maps clip.cpp\'s refusal to ERR_MMPROJ_LOAD');
  await stillWorks(t);
});
