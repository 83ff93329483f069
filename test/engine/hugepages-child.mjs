// Run by hugepages.test.ts in its own `node` process (compiled dist/; LLAVA_MED_HUGEPAGES is read once
// per process): loads a model with loadMode 'none' and a context, and writes the process's
// AnonHugePages (/proc/self/smaps_rollup) before the load, after the model and after the context.
// Usage: node hugepages-child.mjs <result.json> <model> <contextSize>
import { readFileSync, writeFileSync } from 'node:fs';

const [resultPath, modelPath, ctxArg] = process.argv.slice(2);
const { Model, Context } = await import(new URL('../../dist/engine/index.js', import.meta.url).href);
const { loadAddon } = await import(new URL('../../dist/engine/binding.js', import.meta.url).href);
const hugeMb = () => Number(/^AnonHugePages:\s+(\d+)/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))[1]) / 1024;
loadAddon();
const before = hugeMb();
const model = await Model.load(modelPath, { loadMode: 'none' });
const afterModel = hugeMb();
const ctx = await Context.create(model, { contextSize: Number(ctxArg), flashAttn: 'off' });
const afterContext = hugeMb();
await ctx.dispose();
await model.dispose();
writeFileSync(resultPath, JSON.stringify({ before, afterModel, afterContext }));
