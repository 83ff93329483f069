#!/usr/bin/env node
// CPU time per token of one model, in its own process, on one thread: the work each quantization
// costs, which a machine shared with other jobs changes far less than the wall time (a single thread
// never waits at a barrier for a descheduled partner). After loading (load mode 'none'), each rep
// clears the KV cache, evaluates `prompt` text tokens in one batch (the per-token cost of an image's
// positions is the same: one row of activations through the same matrices), then decodes `decode`
// tokens one at a time; process.cpuUsage() (user + system, all threads) is read around each phase.
//   node bench/child-cputime.mjs '<json>'   json: { model, mmproj, prompt: 256, decode: 32, reps: 3 }
// stdout: "RESULT <json>" ({ prompt: [{ cpuMs, wallMs }], decode: [...], tokens: { prompt, decode } }).
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { LlavaMed } = await import(pathToFileURL(path.join(root, 'dist', 'index.js')).href);
const { engineOf } = await import(pathToFileURL(path.join(root, 'dist', 'llava-med.js')).href);
const o = { prompt: 256, decode: 32, reps: 3, ...JSON.parse(process.argv[2]) };

const med = await LlavaMed.load({ model: o.model, mmproj: o.mmproj, threads: 1, loadMode: 'none', contextSize: 2048, logLevel: 'error', logger: () => {} });
const ctx = engineOf(med).context;
// fixed, valid token ids (the vocabulary has 32004): what they are does not change the work
const ids = Array.from({ length: o.prompt }, (_, i) => 3 + ((i * 7919) % 32000));
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const timed = async (f) => { const c0 = cpu(); const t0 = performance.now(); await f(); return { cpuMs: cpu() - c0, wallMs: performance.now() - t0 }; };
const res = { prompt: [], decode: [], tokens: { prompt: o.prompt, decode: o.decode } };
for (let r = 0; r < o.reps; r++) {
  await ctx.clear();
  res.prompt.push(await timed(() => ctx.decode(ids, { logits: 'last' })));
  res.decode.push(await timed(async () => {
    for (let i = 0; i < o.decode; i++) await ctx.decode([3 + ((i * 104729) % 32000)], { logits: 'last' });
  }));
}
await med.dispose();
process.stdout.write(`RESULT ${JSON.stringify(res)}\n`);
