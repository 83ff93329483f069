// Run by load-faults.test.ts in its own `node` process (compiled dist/; LLAVA_MED_HUGEPAGES is read
// once per process): loads a model with loadMode 'none' and writes the minor page faults the load
// took (getrusage, the kernel's own count) and the mapping sizes of the process before and after.
// Usage: node load-faults-child.mjs <result.json> <model>
import { writeFileSync } from 'node:fs';

const [resultPath, modelPath] = process.argv.slice(2);
const { Model } = await import(new URL('../../dist/engine/index.js', import.meta.url).href);
const { loadAddon } = await import(new URL('../../dist/engine/binding.js', import.meta.url).href);
loadAddon();
// a first load and dispose: the addon's one-time allocations (ggml's tables, the CPU backend's
// registry) are not what is measured
await (await Model.load(modelPath, { loadMode: 'none' })).dispose();
const before = process.resourceUsage().minorPageFault;
const model = await Model.load(modelPath, { loadMode: 'none' });
const faults = process.resourceUsage().minorPageFault - before;
await model.dispose();
writeFileSync(resultPath, JSON.stringify({ faults }));
