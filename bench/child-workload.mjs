#!/usr/bin/env node
// The many-questions workload on ONE persistent llava-med instance: load once, encode each
// image once (embedImage), then answer all questions with askBatch on `sequences` parallel
// sequences. node bench/child-workload.mjs '<json>'
//   json: { model, mmproj, threads, loadMode, sequences, maxTokens, items: [{ image, question }] }
// stdout: "RESULT <json>".
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { LlavaMed } = await import(pathToFileURL(path.join(root, 'dist', 'index.js')).href);
const o = JSON.parse(process.argv[2]);
const hwm = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;

const t0 = performance.now();
const S = o.sequences ?? 1;
const med = await LlavaMed.load({
  model: o.model, mmproj: o.mmproj, threads: o.threads, loadMode: o.loadMode,
  contextSize: o.contextSize ?? 2048 * S, sequences: S, logLevel: 'error', logger: () => {},
});
const loadMs = performance.now() - t0;
const handles = new Map();
let encodeMs = 0;
for (const it of o.items) {
  if (handles.has(it.image)) continue;
  const t = performance.now();
  handles.set(it.image, await med.embedImage(it.image));
  encodeMs += performance.now() - t;
}
const tq = performance.now();
const answers = await med.askBatch(o.items.map((it) => ({ image: handles.get(it.image), question: it.question })), { temperature: 0, maxTokens: o.maxTokens ?? 32 });
const questionsMs = performance.now() - tq;
const sum = (k) => answers.reduce((a, x) => a + x.timings[k], 0);
process.stdout.write(`RESULT ${JSON.stringify({
  loadMs, encodeMs, questionsMs, images: handles.size, questions: answers.length,
  imageTokens: sum('imageTokens'), imageDecodeMs: sum('imageDecodeMs'), promptTokens: sum('promptTokens'), promptMs: sum('promptMs'),
  reusedTokens: sum('reusedTokens'), generatedTokens: sum('generatedTokens'), peakRssMb: hwm(),
})}\n`);
await med.dispose();
