/**
 * ERR_MODEL_LOAD / ERR_MMPROJ_LOAD say why llama.cpp refused the file, without any logger: the
 * addon keeps each thread's last warn/error log lines (native/log.cpp) and puts them in the
 * message and in `cause.log`. The expected reasons are llama.cpp's and clip.cpp's own wording
 * (src/llama-model-loader.cpp "%s: tensor '%s' not found", tools/mtmd/clip.cpp "unable to find tensor %s").
 */
import t from 'tap';
import { LlavaMedError } from '../../lib/errors.js';
import { Model, loadAddon } from '../../lib/engine/index.js';
import { makeTinyLlamaGguf, makeTinyMmproj } from '../helpers/tiny-gguf.js';
import { caught, tinyPair } from './util.js';

const { llm } = await tinyPair();

t.test('a model llama.cpp refuses: the reason is in the message and in cause.log', async (t) => {
  const bad = await makeTinyLlamaGguf(undefined, { omitTensors: ['output_norm.weight'] });
  const e = await caught(() => Model.load(bad.path));
  t.ok(e instanceof LlavaMedError, 'a LlavaMedError');
  const err = e as LlavaMedError;
  t.equal(err.code, 'ERR_MODEL_LOAD');
  t.match(err.message, bad.path, 'names the file');
  t.match(err.message, "tensor 'output_norm.weight' not found", "llama.cpp's reason is in the message");
  t.notMatch(err.message, 'see the logger', 'no reference to a logger nobody registered');
  const log = (err.cause as { log?: unknown } | undefined)?.log;
  t.ok(Array.isArray(log) && log.length >= 1 && log.length <= 6, `cause.log holds 1..6 lines (${JSON.stringify(log)})`);
  t.ok((log as string[]).some((l) => l.includes("tensor 'output_norm.weight' not found")), 'cause.log has the line');
});

t.test('two failing loads at once each get their own reason', async (t) => {
  const a = await makeTinyLlamaGguf(undefined, { omitTensors: ['output_norm.weight'] });
  const b = await makeTinyLlamaGguf(undefined, { omitTensors: ['blk.1.ffn_up.weight'] });
  const addon = loadAddon();
  const runs = await Promise.all(
    [a, b, a, b].map((f) => addon.loadModel(f.path, { gpuLayers: 0, loadMode: 'none', vocabOnly: false }).then(() => undefined, (e: Error & { code?: string; log?: string[] }) => e)),
  );
  runs.forEach((e, i) => {
    const [mine, other] = i % 2 === 0 ? ['output_norm.weight', 'blk.1.ffn_up.weight'] : ['blk.1.ffn_up.weight', 'output_norm.weight'];
    t.equal(e?.code, 'ERR_MODEL_LOAD', `load ${i}: ERR_MODEL_LOAD`);
    t.match(e?.message ?? '', `tensor '${mine}' not found`, `load ${i}: its own reason`);
    t.notMatch(e?.message ?? '', other, `load ${i}: not the other load's reason`);
    t.notMatch(JSON.stringify(e?.log), other, `load ${i}: nor in its log`);
  });
});

t.test('a projector clip.cpp refuses: the native error carries the reason and the log', async (t) => {
  const noOut = await makeTinyMmproj(undefined, { omitTensors: ['v.blk.1.attn_out.weight'] });
  const addon = loadAddon();
  const model = await addon.loadModel(llm.path, { gpuLayers: 0, loadMode: 'none', vocabOnly: false });
  t.teardown(() => model.dispose());
  const e = await addon.loadProjector(model, noOut.path, { threads: 1, useGpu: false, warmup: true, flashAttn: 'off' }).then(() => undefined, (x: Error & { code?: string; log?: string[] }) => x);
  t.equal(e?.code, 'ERR_MMPROJ_LOAD');
  t.match(e?.message ?? '', 'unable to find tensor v.blk.1.attn_out.weight', "clip.cpp's reason is in the message");
  t.ok(e?.log?.some((l) => l.includes('unable to find tensor v.blk.1.attn_out.weight')), `log: ${JSON.stringify(e?.log)}`);
});

t.test('a successful load leaves nothing behind for the next failure', async (t) => {
  const addon = loadAddon();
  const ok = await addon.loadModel(llm.path, { gpuLayers: 0, loadMode: 'none', vocabOnly: false });
  await ok.dispose();
  const bad = await makeTinyLlamaGguf(undefined, { omitTensors: ['token_embd.weight'] });
  const e = await addon.loadModel(bad.path, { gpuLayers: 0, loadMode: 'none', vocabOnly: false }).then(() => undefined, (x: Error & { log?: string[] }) => x);
  t.ok(e?.log && e.log.length <= 6, 'at most 6 lines');
  t.ok(e?.log?.every((l) => !l.includes('output_norm')), 'no line from an earlier call');
  t.match(e?.message ?? '', "tensor 'token_embd.weight' not found");
});
