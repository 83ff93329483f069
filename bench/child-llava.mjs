#!/usr/bin/env node
// One measured llava-med run in its own process (so peak RSS is per run):
//   node bench/child-llava.mjs '<json>'   json: { model, mmproj, threads, loadMode, contextSize,
//                                                 image, question, maxTokens, projectorFlashAttn?, flashAttn?,
//                                                 encodeImages? }
// stdout: "READY <json>" once loaded, then "RESULT <json>". Nothing else is printed.
// With `encodeImages` (a list of image paths) it asks nothing: it encodes each image once
// (embedImage) and reports each encoder time (the stable encode comparison, bench/full.mjs).
// It also reports what the RSS breakdown needs (bench/lib/breakdown.mjs): the process's RSS once
// its imports are done (node's own baseline), V8's heap at the end, and llama.cpp / clip's buffer
// size log lines (info level, forwarded by the addon's logger).
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { LlavaMed } = await import(pathToFileURL(path.join(root, 'dist', 'index.js')).href);
// engineOf is internal (not exported from the package): the bench reads llama.cpp's counters through it.
const { engineOf } = await import(pathToFileURL(path.join(root, 'dist', 'llava-med.js')).href);
const o = JSON.parse(process.argv[2]);
const status = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
const hwm = () => status('VmHWM');
// ms since the process started (performance.timeOrigin) and RSS with node and the imports loaded
const importsMs = performance.now();
const rssAfterImportMb = status('VmRSS');
const BUFFER_LINE = /buffer size|model size/;
const logLines = [];

const t0 = performance.now();
let modelMs; // header checks + the language model's weights (its 'model' progress reaching 1)
const med = await LlavaMed.load({
  onProgress: (p) => { if (p.phase === 'model' && p.fraction === 1 && modelMs === undefined) modelMs = performance.now() - t0; },
  model: o.model, mmproj: o.mmproj, threads: o.threads, loadMode: o.loadMode,
  contextSize: o.contextSize ?? 2048, sequences: o.sequences ?? 1, logLevel: 'info',
  logger: (_lv, m) => { if (BUFFER_LINE.test(m)) logLines.push(m.trim()); },
  ...(o.projectorFlashAttn ? { projectorFlashAttn: o.projectorFlashAttn } : {}),
  ...(o.flashAttn ? { flashAttn: o.flashAttn } : {}),
});
const loadMs = performance.now() - t0;
process.stdout.write(`READY ${JSON.stringify({ loadMs, modelMs, rssAfterLoadMb: hwm() })}\n`);
const common = () => ({ loadMs, modelMs, importsMs, rssAfterImportMb, memoryUsage: process.memoryUsage(), logLines });
if (o.encodeImages) {
  const encodes = [];
  const encodeWindows = []; // CLOCK_MONOTONIC seconds around each encode, for perf report --time
  const mono = () => Number(process.hrtime.bigint()) / 1e9;
  for (const img of o.encodeImages) {
    const a = mono();
    const h = await med.embedImage(img);
    encodeWindows.push([a, mono()]);
    encodes.push(h.embedding.encodeMs);
    await h.dispose();
  }
  process.stdout.write(`RESULT ${JSON.stringify({ ...common(), encodes, encodeWindows, peakRssMb: hwm() })}\n`);
} else {
  await engineOf(med).context.resetPerf();
  const a = await med.ask(o.image, o.question, { temperature: 0, maxTokens: o.maxTokens ?? 32 });
  const perf = await engineOf(med).context.perf();
  process.stdout.write(`RESULT ${JSON.stringify({ ...common(), timings: a.timings, stopReason: a.stopReason, perf, peakRssMb: hwm() })}\n`);
}
await med.dispose();
