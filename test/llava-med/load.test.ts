/** LlavaMed.load errors, variant detection and override. */
import t from 'tap';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { LlavaMed, engineOf } from '../../lib/llava-med.js';
import { Projector } from '../../lib/engine/projector.js';
import { Context } from '../../lib/engine/context.js';
import { Model } from '../../lib/engine/model.js';
import { llavaError } from '../../lib/errors.js';
import { flatten, loadTiny, noisePng, rejectsCode, spyEngine, tinyV0, tinyV15 } from './util.js';

t.test('load errors', async (t) => {
  const v0 = await tinyV0();
  const v15 = await tinyV15();
  const load = (model: string, mmproj: string, extra = {}) => LlavaMed.load({ model, mmproj, threads: 1, contextSize: 512, ...extra });
  await rejectsCode(t, load(v0.model, v15.mmproj), 'ERR_MMPROJ_MISMATCH', 'v0 model + v1.5 mmproj');
  await rejectsCode(t, load(v15.model, v0.mmproj), 'ERR_MMPROJ_MISMATCH', 'v1.5 model + v0 mmproj');
  const missing = join(tmpdir(), 'llava-med-no-such-file.gguf');
  await rejectsCode(t, load(missing, v0.mmproj), 'ERR_FILE_NOT_FOUND', 'missing model');
  await rejectsCode(t, load(v0.model, missing), 'ERR_FILE_NOT_FOUND', 'missing mmproj');
  const swapped = await rejectsCode(t, load(v0.mmproj, v0.model), 'ERR_INVALID_ARGUMENT', 'model and mmproj swapped');
  t.match(swapped?.message, /projector \(mmproj\) file; pass it as `mmproj`/, 'the message says how to fix it');
  await rejectsCode(t, load(v0.model, v0.mmproj, { variant: 'v2' }), 'ERR_INVALID_ARGUMENT', 'unknown variant');
  await rejectsCode(t, LlavaMed.load({ model: v0.model } as never), 'ERR_INVALID_ARGUMENT', 'no mmproj');
  await rejectsCode(t, load(v0.model, v0.mmproj, { signal: AbortSignal.abort() }), 'ERR_ABORTED', 'aborted load');
  await rejectsCode(t, load(v15.model, v15.mmproj, { variant: 'v0' }), 'ERR_MMPROJ_MISMATCH', 'v1.5 files forced to v0 (no <im_start> token)');
  // The projector and the context load side by side: a failure of either rejects the load
  // (the projector's error first when both fail) and frees the one that did load.
  // (Option values are checked before anything loads, so the context's failure is staged.)
  const disposed: Projector[] = [];
  const realDispose = Projector.prototype.dispose;
  const realCreate = Context.create;
  Projector.prototype.dispose = function (this: Projector) {
    disposed.push(this);
    return realDispose.call(this);
  };
  Context.create = async () => {
    throw llavaError('ERR_CONTEXT_CREATE', 'staged context failure');
  };
  try {
    await rejectsCode(t, load(v0.model, v0.mmproj), 'ERR_CONTEXT_CREATE', 'the context fails while the projector loads');
    t.equal(disposed.length, 1, 'the projector that did load was freed');
    t.ok(disposed[0]?.disposed, 'and is disposed');
    await rejectsCode(t, load(v0.model, missing), 'ERR_FILE_NOT_FOUND', 'both fail: the projector error wins');
  } finally {
    Projector.prototype.dispose = realDispose;
    Context.create = realCreate;
  }
  await rejectsCode(t, load(v0.model, v0.mmproj, { contextSize: -1 }), 'ERR_INVALID_ARGUMENT', 'bad contextSize');
  // Still loads fine afterwards.
  const ok = await load(v0.model, v0.mmproj);
  t.equal(ok.variant, 'v0');
  await ok.dispose();
});

t.test('variant detection and override', async (t) => {
  const { med: auto, tiny } = await loadTiny('v0');
  t.equal(auto.variant, 'v0', 'detected from llava_med.variant');
  t.equal(auto.imageTokens, 4);
  await auto.dispose();
  const { med } = await loadTiny(tiny, { variant: 'v1.5' });
  t.teardown(() => med.dispose());
  t.equal(med.variant, 'v1.5', 'the override wins');
  const h = await med.embedImage(await noisePng(30, 30, 71));
  const spy = spyEngine(med);
  const a = await med.ask(h, 'What is shown?', { maxTokens: 3 });
  spy.stop();
  const sp = async (s: string) => Array.from(await engineOf(med).model.tokenize(s, { addSpecial: false, parseSpecial: false }));
  t.same(
    flatten(spy.fed),
    [engineOf(med).model.info.bos, ...(await sp('[INST] ')), 'IMG', ...(await sp('\nWhat is shown? [/INST]'))],
    'the v1.5 prompt layout is used with the override',
  );
  t.equal(a.tokens.length, 3);
});

t.test('an aborted load rejects at once, even while a part cannot stop; every part that loads is freed', async (t) => {
  const v0 = await tinyV0();
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const disposed: string[] = [];
  const spies: [{ prototype: { dispose(): Promise<void> } }, string][] = [[Model, 'model'], [Projector, 'projector'], [Context, 'context']];
  const real = spies.map(([c]) => c.prototype.dispose);
  spies.forEach(([c, name], i) => {
    c.prototype.dispose = function (this: never) {
      disposed.push(name);
      return real[i]!.call(this);
    };
  });
  const realCreate = Context.create;
  const realTokenize = Model.prototype.tokenize;
  const realProjectorLoad = Projector.load;
  let projectorLoaded = false;
  Projector.load = async (...args: Parameters<typeof realProjectorLoad>) => {
    const p = await realProjectorLoad(...args);
    projectorLoaded = true;
    return p;
  };
  t.teardown(() => {
    Projector.load = realProjectorLoad;
    spies.forEach(([c], i) => (c.prototype.dispose = real[i]!));
    Context.create = realCreate;
    Model.prototype.tokenize = realTokenize;
  });
  // Holds one step of the load (context creation, which llama.cpp cannot interrupt; or the
  // tokenizer calls after everything has loaded) until the test lets it go.
  for (const held of ['context creation', 'the prompt ids'] as const) {
    disposed.length = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let reached = false;
    if (held === 'context creation') {
      Context.create = async (...args: Parameters<typeof realCreate>) => {
        reached = true;
        await gate;
        return realCreate(...args);
      };
    } else {
      Context.create = realCreate;
      Model.prototype.tokenize = async function (this: Model, ...args: Parameters<typeof realTokenize>) {
        reached = true;
        await gate;
        return realTokenize.apply(this, args);
      };
    }
    const ac = new AbortController();
    let settled = false;
    projectorLoaded = false;
    const loading = LlavaMed.load({ model: v0.model, mmproj: v0.mmproj, threads: 1, contextSize: 512, signal: ac.signal }).finally(() => (settled = true));
    loading.catch(() => {});
    while (!reached || !projectorLoaded) await sleep(1);
    ac.abort(new Error('changed my mind'));
    await Promise.race([loading.catch(() => {}), sleep(5000)]); // the held step never ends by itself
    t.ok(settled, `${held} held: the load settled anyway`);
    if (!settled) release(); // (a load that waited for the held step would hang here)
    const e = await rejectsCode(t, loading, 'ERR_ABORTED', `${held} held: the load`);
    t.equal((e?.cause as Error | undefined)?.message, 'changed my mind', "the signal's reason is the cause");
    release();
    for (let i = 0; i < 500 && disposed.length < 3; i++) await sleep(10);
    t.same([...disposed].sort(), ['context', 'model', 'projector'], `${held} held: the model, the projector and the context are all freed once they have loaded`);
    Model.prototype.tokenize = realTokenize;
  }
});
