// One greedy run of the engine in its own process, for test/install/vulkan-lavapipe.test.ts and
// scripts/check-vulkan.mjs: the addon is whatever LLAVA_MED_ADDON names (the CPU build or the
// Vulkan build), so two builds never share a process.
// Usage: node vulkan-child.mjs <engine index.js> <job.json>
// job: { model, mmproj, gpuLayers, useGpu, image (raw RGB file), imageSize, prefix: number[],
//        suffix: number[], nGen, ctx }
// Prints one JSON line: the devices ggml lists, what Model resolved, the generated tokens, the
// full-vocabulary log-probabilities at every generated position, the image embedding, and the
// native log lines that say where layers and the vision encoder ran.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [enginePath, jobPath] = process.argv.slice(2);
const job = JSON.parse(readFileSync(jobPath, 'utf8'));
const { Model, Projector, Context, addLogger, loadAddon, loadedAddon } = await import(pathToFileURL(enginePath).href);

const addon = loadAddon();
const lines = [];
const removeLogger = addLogger(addon, (_level, msg) => lines.push(msg), 'debug');
const devices = addon.backends().map((d) => ({ name: d.name, type: d.type, description: d.description }));

const model = await Model.load(job.model, { gpuLayers: job.gpuLayers });
const proj = await Projector.load(model, job.mmproj, { useGpu: job.useGpu });
const ctx = await Context.create(model, { contextSize: job.ctx ?? 1024 });
const rgb = new Uint8Array(readFileSync(job.image));
const emb = await proj.encode(rgb, job.imageSize, job.imageSize);
const embedding = Array.from(emb.toFloat32Array());

await ctx.decode(job.prefix, { logits: 'none' });
await ctx.decodeImage(emb);
await ctx.decode(job.suffix);
const sampler = ctx.createSampler({ temperature: 0 });
const tokens = [];
const logprobs = [];
for (let i = 0; i < job.nGen; i++) {
  const logits = await ctx.logits(-1);
  let max = -Infinity;
  for (const x of logits) max = Math.max(max, x);
  let sum = 0;
  for (const x of logits) sum += Math.exp(x - max);
  const lse = max + Math.log(sum);
  logprobs.push(Array.from(logits, (x) => x - lse));
  const { token } = await ctx.sample(sampler);
  tokens.push(token);
  await ctx.decode([token]);
}
sampler.dispose();
emb.dispose();
await ctx.dispose();
await proj.dispose();
await model.dispose();
await new Promise((r) => setTimeout(r, 100)); // log lines arrive through a thread-safe function
removeLogger();

const where = lines.filter((l) => /offload|CLIP using|clip_ctx|using .* backend|ggml_vulkan|Vulkan/i.test(l)).map((l) => l.trim());
process.stdout.write(`${JSON.stringify({ addon: loadedAddon(), devices, gpuLayers: model.gpuLayers, offloaded: model.offloaded, tokens, logprobs, embedding, where })}\n`);
