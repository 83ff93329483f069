#!/usr/bin/env node
// One measured @fugood/llama.node run in its own process (peer; installed into bench/peers/llama.node):
//   node bench/child-llamanode.mjs '<json>'  json: { model, mmproj, threads, mmap, contextSize, image, prompt, maxTokens }
// stdout: "READY <json>" then "RESULT <json>", or "ERROR <json>".
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const hwm = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
const o = JSON.parse(process.argv[2]);
const fail = (stage, e) => { process.stdout.write(`ERROR ${JSON.stringify({ stage, message: String(e?.message ?? e) })}\n`); process.exit(0); };
try {
  const req = createRequire(path.join(root, 'bench', 'peers', 'llama.node', 'package.json'));
  const ln = req('@fugood/llama.node');
  const t0 = performance.now();
  const ctx = await ln.loadModel({
    model: o.model, n_ctx: o.contextSize ?? 2048, n_threads: o.threads, n_gpu_layers: 0, use_mmap: o.mmap, n_parallel: 1, lib_variant: 'default',
  }).catch((e) => fail('loadModel', e));
  let ok;
  try { ok = await ctx.initMultimodal({ path: o.mmproj, use_gpu: false }); } catch (e) { fail('initMultimodal', e); }
  if (!ok) fail('initMultimodal', 'initMultimodal returned false');
  const loadMs = performance.now() - t0;
  process.stdout.write(`READY ${JSON.stringify({ loadMs, rssAfterLoadMb: hwm() })}\n`);
  const t1 = performance.now();
  const r = await ctx.completion({ prompt: o.prompt, media_paths: [o.image], n_predict: o.maxTokens ?? 32, temperature: 0, top_k: 1, ignore_eos: true })
    .catch((e) => fail('completion', e));
  const totalMs = performance.now() - t1;
  process.stdout.write(`RESULT ${JSON.stringify({ loadMs, totalMs, timings: r.timings, tokens_evaluated: r.tokens_evaluated, peakRssMb: hwm() })}\n`);
  await ctx.release();
} catch (e) {
  fail('import', e);
}
