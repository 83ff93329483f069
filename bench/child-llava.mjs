#!/usr/bin/env node
// One measured llava-med run in its own process (so peak RSS is per run):
//   node bench/child-llava.mjs '<json>'   json: { model, mmproj, threads, loadMode, contextSize,
//                                                 image, question, maxTokens, projectorFlashAttn?, flashAttn? }
// stdout: "READY <json>" once loaded, then "RESULT <json>". Nothing else is printed.
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { LlavaMed } = await import(pathToFileURL(path.join(root, 'dist', 'index.js')).href);
// engineOf is internal (not exported from the package): the bench reads llama.cpp's counters through it.
const { engineOf } = await import(pathToFileURL(path.join(root, 'dist', 'llava-med.js')).href);
const o = JSON.parse(process.argv[2]);
const hwm = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;

const t0 = performance.now();
let modelMs; // header checks + the language model's weights (its 'model' progress reaching 1)
const med = await LlavaMed.load({
  onProgress: (p) => { if (p.phase === 'model' && p.fraction === 1 && modelMs === undefined) modelMs = performance.now() - t0; },
  model: o.model, mmproj: o.mmproj, threads: o.threads, loadMode: o.loadMode,
  contextSize: o.contextSize ?? 2048, sequences: o.sequences ?? 1, logLevel: 'error', logger: () => {},
  ...(o.projectorFlashAttn ? { projectorFlashAttn: o.projectorFlashAttn } : {}),
  ...(o.flashAttn ? { flashAttn: o.flashAttn } : {}),
});
const loadMs = performance.now() - t0;
process.stdout.write(`READY ${JSON.stringify({ loadMs, modelMs, rssAfterLoadMb: hwm() })}\n`);
await engineOf(med).context.resetPerf();
const a = await med.ask(o.image, o.question, { temperature: 0, maxTokens: o.maxTokens ?? 32 });
const perf = await engineOf(med).context.perf();
process.stdout.write(`RESULT ${JSON.stringify({ loadMs, modelMs, timings: a.timings, stopReason: a.stopReason, perf, peakRssMb: hwm() })}\n`);
await med.dispose();
