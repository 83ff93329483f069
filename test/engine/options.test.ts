/**
 * Engine options: the defaults come from lib/defaults.ts and native code has none of its own (it
 * requires every field and re-checks type and range, native/options.h); the projector's attention mode
 * is an explicit option that reaches clip.cpp.
 */
import t from 'tap';
import { DEFAULTS } from '../../lib/defaults.js';
import { Context, Model, Projector } from '../../lib/engine/index.js';
import { testImage } from '../helpers/tiny-gguf.js';
import { caught, describe, failsWith, tinyPair } from './util.js';

const { llm, mm } = await tinyPair();
const model = await Model.load(llm.path);
t.teardown(() => model.dispose());

const PROJ_OK = { threads: 1, useGpu: false, warmup: true, flashAttn: 'off' } as const;
const CTX_OK = { nCtx: 64, nBatch: 64, nUbatch: 64, nSeqMax: 1, threads: 1, threadsBatch: 1, flashAttn: 'off', typeK: 'f16', typeV: 'f16', kvUnified: true } as const;

t.test('the projector encodes with the attention mode it was given; default off', async (t) => {
  t.equal(DEFAULTS.projectorFlashAttn, 'off', 'documented default');
  const img = testImage(28, 28);
  const out: Record<string, Float32Array> = {};
  for (const mode of [undefined, 'off', 'on'] as const) {
    const p = await Projector.load(model, mm.path, { threads: 1, flashAttn: mode });
    t.equal(p.flashAttn, mode ?? 'off', `loaded with ${mode ?? 'the default'} → ${p.flashAttn}`);
    using e = await p.encode(img, 28, 28);
    out[mode ?? 'default'] = e.toFloat32Array();
    await p.dispose();
  }
  t.same(out.default, out.off, "the default encodes as 'off'");
  // flash attention casts K and V to F16 in clip.cpp: the embeddings change
  t.notSame(out.on, out.off, "'on' reaches clip.cpp (F16 K/V give other embeddings)");
  await failsWith(t, () => Projector.load(model, mm.path, { flashAttn: 'maybe' as never }), 'ERR_INVALID_ARGUMENT', 'an unknown mode');
  await failsWith(t, () => Projector.load(model, mm.path, { threads: 0 }), 'ERR_INVALID_ARGUMENT', 'threads 0');
});

t.test('native code re-checks every model, projector and context option (no defaults of its own)', async (t) => {
  const addon = model.addon;
  const typeErr = async (what: string, f: () => unknown, re: RegExp) => {
    const e = await caught(f);
    t.ok(e instanceof TypeError, `${what}: a TypeError (got ${e === undefined ? 'success' : describe(e)})`);
    t.equal((e as { code?: string })?.code, 'ERR_INVALID_ARGUMENT', `${what}: code ERR_INVALID_ARGUMENT`);
    t.match((e as Error)?.message ?? '', re, `${what}: names the field`);
  };
  for (const key of Object.keys(PROJ_OK) as (keyof typeof PROJ_OK)[]) {
    const { [key]: _, ...rest } = PROJ_OK;
    await typeErr(`loadProjector without ${key}`, () => addon.loadProjector(model.nativeHandle(), mm.path, rest as never), new RegExp(`options\\.${key} is required`));
  }
  await typeErr('projector flashAttn "fast"', () => addon.loadProjector(model.nativeHandle(), mm.path, { ...PROJ_OK, flashAttn: 'fast' as never }), /flashAttn/);
  await typeErr('projector threads 0', () => addon.loadProjector(model.nativeHandle(), mm.path, { ...PROJ_OK, threads: 0 }), /threads must be an integer in \[1, 1024\]/);
  for (const key of Object.keys(CTX_OK) as (keyof typeof CTX_OK)[]) {
    const { [key]: _, ...rest } = CTX_OK;
    await typeErr(`createContext without ${key}`, () => addon.createContext(model.nativeHandle(), rest as never), new RegExp(`options\\.${key} is required`));
  }
  await typeErr('nCtx -1', () => addon.createContext(model.nativeHandle(), { ...CTX_OK, nCtx: -1 }), /nCtx must be an integer/);
  await typeErr('nCtx 1.5', () => addon.createContext(model.nativeHandle(), { ...CTX_OK, nCtx: 1.5 }), /nCtx must be an integer/);
  await typeErr('nSeqMax 257', () => addon.createContext(model.nativeHandle(), { ...CTX_OK, nSeqMax: 257 }), /nSeqMax/);
  const MODEL_OK = { gpuLayers: 0, loadMode: 'none', vocabOnly: true } as const;
  for (const key of Object.keys(MODEL_OK) as (keyof typeof MODEL_OK)[]) {
    const { [key]: _, ...rest } = MODEL_OK;
    await typeErr(`loadModel without ${key}`, () => addon.loadModel(llm.path, rest as never), new RegExp(`options\\.${key} is required`));
  }
  await typeErr('loadMode "lazy"', () => addon.loadModel(llm.path, { ...MODEL_OK, loadMode: 'lazy' as never }), /loadMode must be/);
  await typeErr('gpuLayers -2', () => addon.loadModel(llm.path, { ...MODEL_OK, gpuLayers: -2 }), /gpuLayers must be an integer/);
  await typeErr('kvUnified "yes"', () => addon.createContext(model.nativeHandle(), { ...CTX_OK, kvUnified: 'yes' as never }), /kvUnified must be a boolean/);
  // the complete objects work
  const p = await addon.loadProjector(model.nativeHandle(), mm.path, PROJ_OK);
  await p.dispose();
  const c = await addon.createContext(model.nativeHandle(), CTX_OK);
  await c.dispose();
  t.pass('complete option objects load');
});

t.test('Context.create fills every field from lib/defaults.ts', async (t) => {
  const ctx = await Context.create(model, { threads: 1 });
  t.equal(ctx.contextSize, DEFAULTS.contextSize, 'contextSize');
  t.equal(ctx.batchSize, DEFAULTS.batchSize, 'batchSize');
  t.equal(ctx.sequences, DEFAULTS.sequences, 'sequences');
  await ctx.dispose();
});
