/**
 * Native logging: with addLogger, llama.cpp / ggml / mtmd lines arrive in the JS callback
 * (whole lines, known levels, filtered by level); after removal nothing more arrives. The
 * "nothing printed without a logger" half is in process.test.ts (it needs a child's stdio).
 */
import t from 'tap';
import { Context, Model, Projector, addLogger, loadAddon, type LogLevel } from '../../lib/engine/index.js';
import { makeTinyLlamaGguf, testImage } from '../helpers/tiny-gguf.js';
import { tinyPair } from './util.js';

const { llm, mm } = await tinyPair();
const addon = loadAddon();
const settle = () => new Promise((r) => setTimeout(r, 100)); // lines arrive through a thread-safe function

t.test('llama.cpp and mtmd log lines arrive in the JS callback', async (t) => {
  const lines: [LogLevel, string][] = [];
  const remove = addLogger(addon, (level, msg) => lines.push([level, msg]), 'debug');
  const model = await Model.load(llm.path);
  await settle();
  const afterModel = lines.length;
  t.ok(afterModel > 5, `${afterModel} lines while loading the model`);
  t.ok(lines.some(([, m]) => /llama_model_loader|print_info|load_tensors/.test(m)), 'llama.cpp loader lines');
  t.ok(lines.some(([, m]) => /n_embd\s*=\s*64/.test(m)), 'including the model hyperparameters (n_embd = 64)');
  const proj = await Projector.load(model, mm.path);
  await settle();
  t.ok(lines.slice(afterModel).some(([, m]) => /clip|mtmd/i.test(m)), 'clip/mtmd lines while loading the projector');
  const ctx = await Context.create(model, { contextSize: 256 });
  using e = await proj.encode(testImage(28, 28), 28, 28);
  await ctx.decodeImage(e);
  await settle();
  t.ok(lines.every(([lv]) => ['debug', 'info', 'warn', 'error'].includes(lv)), 'levels are debug/info/warn/error');
  t.ok(lines.every(([, m]) => typeof m === 'string' && m.length > 0 && !m.includes('\n')), 'one non-empty line per call, without newlines');

  remove();
  const n = lines.length;
  const m2 = await Model.load(llm.path);
  await settle();
  t.equal(lines.length, n, 'nothing after the logger was removed');
  await m2.dispose();
  await ctx.dispose();
  await proj.dispose();
  await model.dispose();
});

t.test('minimum level filters; several loggers each get their level; a throwing logger hurts no one', async (t) => {
  const all: LogLevel[] = [];
  const warnOnly: LogLevel[] = [];
  const removeThrowing = addLogger(addon, () => {
    throw new Error('bad logger');
  }, 'debug');
  const r1 = addLogger(addon, (lv) => all.push(lv), 'debug');
  const r2 = addLogger(addon, (lv) => warnOnly.push(lv), 'warn');
  // provoke a native error line: a model that passes the TS checks but llama.cpp refuses
  const bad = await makeTinyLlamaGguf(undefined, { omitTensors: ['output_norm.weight'] });
  await Model.load(bad.path).catch(() => undefined);
  const ok = await Model.load(llm.path);
  await settle();
  t.ok(all.includes('info'), 'the debug logger saw info lines');
  t.ok(warnOnly.length > 0, `the warn logger saw ${warnOnly.length} lines (the refused model logs an error)`);
  t.ok(warnOnly.every((lv) => lv === 'warn' || lv === 'error'), 'and only warn/error');
  t.ok(warnOnly.includes('error'), 'including the loader error');
  r1();
  r2();
  removeThrowing();
  await ok.dispose();
});
