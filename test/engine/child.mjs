// Scenarios run in a separate `node` process (or worker thread) by the engine tests that watch
// how a process ends: exit code, signal, and everything written to stdout/stderr.
// Usage: node child.mjs <scenario> <result.json> <json args>
// LLAVA_MED_ENGINE is the file URL of the compiled lib/engine/index.js (test/engine/util.ts
// compiledEngine()); LLAVA_MED_ADDON points at the built addon. Results go to result.json, never
// to stdout, so a test can require the output streams to be empty.
import { writeFileSync } from 'node:fs';
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';

const [scenario, resultPath, rawArgs] = isMainThread ? process.argv.slice(2) : workerData.argv;
const args = JSON.parse(rawArgs ?? '{}');
const E = await import(process.env.LLAVA_MED_ENGINE);
const { Model, Projector, Context } = E;

const result = { scenario, steps: [] };
const save = () => {
  if (isMainThread) writeFileSync(resultPath, JSON.stringify(result));
  else parentPort.postMessage(result);
};
const step = (s) => {
  result.steps.push(s);
  save();
};
const image = (n) => {
  const a = new Uint8Array(n * n * 3);
  for (let i = 0; i < a.length; i++) a[i] = (i * 37 + 11) & 255;
  return a;
};
const tokens = (n) => [1, ...Array.from({ length: n - 1 }, (_, i) => 1000 + i)];

async function loadAll() {
  const model = await Model.load(args.model);
  const proj = await Projector.load(model, args.mmproj);
  const ctx = await Context.create(model, { contextSize: args.ctx ?? 1024 });
  return { model, proj, ctx };
}

async function codeOf(p) {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e?.code ?? `uncoded ${e?.name}: ${e?.message}`;
  }
}

switch (scenario) {
  // Projector.load through the TS checks: must end in an error code, never a signal.
  case 'load-projector': {
    const model = await Model.load(args.model);
    step('model loaded');
    result.code = await codeOf(Projector.load(model, args.mmproj));
    step('projector load settled');
    break;
  }
  // The raw addon, bypassing gguf-check: shows what the TS checks protect against.
  case 'raw-load-projector': {
    const addon = E.loadAddon();
    const model = await addon.loadModel(args.model, { gpuLayers: 0, loadMode: 'none', vocabOnly: false });
    step('model loaded');
    result.code = await codeOf(addon.loadProjector(model, args.mmproj, { threads: 1, useGpu: false, warmup: true, flashAttn: 'off' }));
    step('projector load settled');
    break;
  }
  // Everything loaded and used, nothing disposed: the process must still exit cleanly.
  case 'leave-undisposed': {
    const { proj, ctx } = await loadAll();
    const size = proj.imageSize;
    const e = await proj.encode(image(size), size, size);
    await ctx.decode(tokens(20));
    await ctx.decodeImage(e);
    const s = ctx.createSampler({ temperature: 0 });
    await ctx.decode([450]);
    await ctx.sample(s);
    step('all done, nothing disposed');
    break;
  }
  // process.exit() while a native worker is running.
  case 'exit-during': {
    const what = args.what;
    let p;
    if (what === 'load') {
      p = Model.load(args.model);
    } else {
      const { proj, ctx } = await loadAll();
      const size = proj.imageSize;
      if (what === 'decode') p = ctx.decode(tokens(400));
      else if (what === 'encode') p = proj.encode(image(size), size, size);
      else if (what === 'generate') {
        p = (async () => {
          const s = ctx.createSampler({ temperature: 0 });
          await ctx.decode(tokens(50));
          let tok = (await ctx.sample(s)).token;
          for (;;) tok = (await ctx.step([{ seq: 0, token: tok, sampler: s }]))[0].token;
        })();
      }
    }
    if (args.logger) E.addLogger(E.loadAddon(), () => {}, 'debug');
    p.catch(() => {});
    step(`started ${what}`);
    setTimeout(() => {
      step('exiting');
      process.exit(0);
    }, args.delay ?? 10);
    break;
  }
  // No logger: load, encode, decode, generate, and hit native error paths. Nothing may print.
  case 'quiet': {
    const { model, proj, ctx } = await loadAll();
    const size = proj.imageSize;
    const e = await proj.encode(image(size), size, size);
    await ctx.decodeImage(e);
    const s = ctx.createSampler({ temperature: 0 });
    await ctx.decode(tokens(30));
    let tok = (await ctx.sample(s)).token;
    for (let i = 0; i < 5; i++) tok = (await ctx.step([{ seq: 0, token: tok, sampler: s }]))[0].token;
    result.badModel = await codeOf(Model.load(args.badModel));
    // gguf-check refuses this file in TS; the native loader is called directly so that clip.cpp's
    // own refusal (and whatever it logs) is exercised too.
    result.badMmprojChecked = await codeOf(Projector.load(model, args.badMmproj));
    result.badMmproj = await codeOf(model.addon.loadProjector(model.nativeHandle(), args.badMmproj, { threads: 1, useGpu: false, warmup: true, flashAttn: 'off' }));
    result.full = await codeOf(ctx.decode(tokens(2000)));
    s.dispose();
    e.dispose();
    await ctx.dispose();
    await proj.dispose();
    await model.dispose();
    step('quiet done');
    break;
  }
  // A worker thread that decodes forever; the main thread terminates it, then keeps working.
  case 'worker-terminate': {
    if (isMainThread) {
      const w = new Worker(new URL(import.meta.url), { workerData: { argv: ['worker-body', '', rawArgs] }, env: process.env });
      const started = new Promise((resolve) => w.on('message', (m) => m.steps?.includes('worker decoding') && resolve()));
      const exited = new Promise((resolve) => w.on('exit', resolve));
      await started;
      step('worker decoding');
      await new Promise((r) => setTimeout(r, args.delay ?? 20));
      await w.terminate();
      result.workerExit = await exited;
      step('worker terminated');
      const model = await Model.load(args.model);
      result.nVocab = model.info.nVocab;
      await model.dispose();
      step('main thread still loads models');
    }
    break;
  }
  case 'worker-body': {
    const { ctx } = await loadAll();
    const s = ctx.createSampler({ temperature: 0 });
    step('worker decoding');
    for (;;) {
      await ctx.clear();
      await ctx.decode(tokens(400));
      await ctx.sample(s);
    }
  }
  default:
    throw new Error(`unknown scenario ${scenario}`);
}
