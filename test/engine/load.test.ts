/**
 * Loading: progress reporting, abort before and during the native load, the model's info from
 * the real vocabulary, and projector loading.
 */
import t from 'tap';
import { Model, Projector } from '../../lib/engine/index.js';
import { BIG_LLM, failsWith, tinyPair } from './util.js';
import { makeTinyLlamaGguf } from '../helpers/tiny-gguf.js';

const { llm, mm } = await tinyPair();
const big = await makeTinyLlamaGguf(undefined, BIG_LLM);

t.test('progress: values in [0, 1], non-decreasing, at least two, the last is 1 when load resolves', async (t) => {
  for (const loadMode of ['none', 'mmap'] as const) {
    const seen: number[] = [];
    const model = await Model.load(big.path, { loadMode, onProgress: (p) => seen.push(p) });
    t.ok(seen.length >= 2, `${loadMode}: ${seen.length} progress updates`);
    t.ok(seen.every((p) => typeof p === 'number' && p >= 0 && p <= 1), `${loadMode}: every value in [0, 1]`);
    t.ok(seen.every((p, i) => i === 0 || p >= seen[i - 1]!), `${loadMode}: non-decreasing (${seen.map((p) => p.toFixed(2)).join(' ')})`);
    t.equal(seen.at(-1), 1, `${loadMode}: the last update is 1 by the time load() resolves`);
    const n = seen.length;
    await new Promise((r) => setTimeout(r, 50));
    t.equal(seen.length, n, `${loadMode}: no progress arrives after load() resolved`);
    await model.dispose();
  }
});

t.test('model info comes from the GGUF (real vocabulary + 4 added tokens)', async (t) => {
  const model = await Model.load(llm.path);
  t.equal(model.info.nVocab, 32004);
  t.equal(model.info.nEmbd, 64);
  t.equal(model.info.nLayer, 2);
  t.equal(model.info.nHead, 4);
  t.equal(model.info.nCtxTrain, 512);
  t.equal(model.info.bos, 1);
  t.equal(model.info.eos, 2);
  t.equal(model.info.pad, 32000);
  t.equal(model.info.addBos, true);
  t.equal(model.metadata['general.architecture'], 'llama');
  t.equal(model.metadata['llava_med.variant'], 'v0');
  t.equal(model.file.variant, 'v0');
  t.equal(model.file.nEmbd, 64);
  t.equal(model.disposed, false);
  await model.dispose();
  t.equal(model.disposed, true);
});

t.test('abort before start: a signal that already fired rejects with ERR_ABORTED', async (t) => {
  const ac = new AbortController();
  ac.abort(new Error('user gave up'));
  let progress = 0;
  const e = await failsWith(t, () => Model.load(llm.path, { signal: ac.signal, onProgress: () => progress++ }), 'ERR_ABORTED', 'pre-aborted model load');
  t.equal((e?.cause as Error | undefined)?.message, 'user gave up', 'the signal reason is the cause');
  t.equal(progress, 0, 'nothing was loaded');

  const model = await Model.load(llm.path);
  await failsWith(t, () => Projector.load(model, mm.path, { signal: ac.signal }), 'ERR_ABORTED', 'pre-aborted projector load');
  // the model is unaffected and a projector still loads
  const proj = await Projector.load(model, mm.path);
  t.equal(proj.imageTokens, 4);
  await proj.dispose();
  await model.dispose();
});

t.test('abort during load: aborting from the first progress update rejects with ERR_ABORTED', async (t) => {
  for (const loadMode of ['none', 'mmap'] as const) {
    const ac = new AbortController();
    const seen: number[] = [];
    await failsWith(
      t,
      () =>
        Model.load(big.path, {
          loadMode,
          signal: ac.signal,
          onProgress: (p) => {
            seen.push(p);
            if (p < 1) ac.abort();
          },
        }),
      'ERR_ABORTED',
      `${loadMode}: abort mid-load`,
    );
    t.ok(seen.length >= 1, `${loadMode}: load had started (progress ${seen.join(', ')})`);
    t.not(seen.at(-1), 1, `${loadMode}: the load never reported completion`);
  }
  // a later load of the same file is unaffected
  const model = await Model.load(big.path);
  t.equal(model.info.nEmbd, 512);
  await model.dispose();
});

t.test('abort during load via a timer (the signal fires while the worker runs)', async (t) => {
  const ac = new AbortController();
  const seen: number[] = [];
  const p = Model.load(big.path, { loadMode: 'none', signal: ac.signal, onProgress: (x) => seen.push(x) });
  setTimeout(() => ac.abort(), 1);
  const e = await p.then(
    async (m) => {
      await m.dispose();
      return undefined;
    },
    (err: unknown) => err,
  );
  // Either the abort landed (ERR_ABORTED) or the load had already finished before the timer:
  // then the model must be complete. Anything else is a bug.
  if (e === undefined) t.equal(seen.at(-1), 1, 'load finished before the abort: it completed');
  else t.equal((e as { code?: string }).code, 'ERR_ABORTED', 'aborted load rejects with ERR_ABORTED');
});

t.test('projector loads against the model and reports 4 image tokens for 28 px / patch 14', async (t) => {
  const model = await Model.load(llm.path);
  const proj = await Projector.load(model, mm.path);
  t.equal(proj.imageTokens, 4);
  t.equal(proj.imageSize, 28);
  t.equal(proj.file.patchSize, 14);
  t.equal(proj.file.nEmbdOut, 64);
  t.equal(proj.file.projectorType, 'mlp');
  t.ok(proj.loadMs >= 0);
  await proj.dispose();
  await model.dispose();
});

t.test('invalid load options are ERR_INVALID_ARGUMENT', async (t) => {
  await failsWith(t, () => Model.load(llm.path, { gpuLayers: 1.5 }), 'ERR_INVALID_ARGUMENT', 'gpuLayers 1.5');
  await failsWith(t, () => Model.load(llm.path, { loadMode: 'fast' as never }), 'ERR_INVALID_ARGUMENT', "loadMode 'fast'");
  await failsWith(t, () => Model.load(llm.path, { onProgress: 5 as never }), 'ERR_INVALID_ARGUMENT', 'onProgress 5');
  const model = await Model.load(llm.path);
  await failsWith(t, () => Projector.load(model, mm.path, { threads: 0 }), 'ERR_INVALID_ARGUMENT', 'threads 0');
  await model.dispose();
});
