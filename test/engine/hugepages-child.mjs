// Run by hugepages.test.ts in its own `node` process (compiled dist/; LLAVA_MED_HUGEPAGES is read once
// per process): loads a model with loadMode 'none' and a context, and writes the process's
// AnonHugePages (/proc/self/smaps_rollup) before the load, after the model and after the context,
// and, after the model, every mapping of at least 32 MiB in /proc/self/smaps (size, AnonHugePages).
// Usage: node hugepages-child.mjs <result.json> <model> <contextSize>
import { readFileSync, writeFileSync } from 'node:fs';

const [resultPath, modelPath, ctxArg] = process.argv.slice(2);
const { Model, Context } = await import(new URL('../../dist/engine/index.js', import.meta.url).href);
const { loadAddon } = await import(new URL('../../dist/engine/binding.js', import.meta.url).href);
const hugeMb = () => Number(/^AnonHugePages:\s+(\d+)/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))[1]) / 1024;
// [sizeKb, anonHugeKb] of each mapping of at least 32 MiB
const bigMappings = () => {
  const out = [];
  let size = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^(Size|AnonHugePages):\s+(\d+) kB/.exec(line);
    if (m?.[1] === 'Size') size = Number(m[2]);
    else if (m && size >= 32 * 1024) out.push([size, Number(m[2])]);
  }
  return out;
};
loadAddon();
const before = hugeMb();
const model = await Model.load(modelPath, { loadMode: 'none' });
const afterModel = hugeMb();
const mappings = bigMappings();
const ctx = await Context.create(model, { contextSize: Number(ctxArg), flashAttn: 'off' });
const afterContext = hugeMb();
await ctx.dispose();
await model.dispose();
writeFileSync(resultPath, JSON.stringify({ before, afterModel, afterContext, mappings }));
