// Run by rss-cycles.test.ts in its own plain `node` process (compiled dist/, no TypeScript loader
// inflating the heap): `cycles` load/dispose cycles of a model, recording the anonymous RSS
// (/proc/self/smaps_rollup) before the first load and after each dispose.
// Usage: node --expose-gc rss-cycles-child.mjs <result.json> <model> <mmproj> <cycles>
import { readFileSync, writeFileSync } from 'node:fs';

const [resultPath, model, mmproj, cyclesArg] = process.argv.slice(2);
const { LlavaMed } = await import(new URL('../../dist/llava-med.js', import.meta.url).href);
const { loadAddon } = await import(new URL('../../dist/engine/binding.js', import.meta.url).href);
// JS garbage is collected before every reading, so what is measured is native memory.
const anonMb = () => (globalThis.gc(), Number(/^Anonymous:\s+(\d+)/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))[1]) / 1024);
loadAddon(); // the addon and llama.cpp's backends are loaded before the baseline
const before = anonMb();
const after = [];
for (let i = 0; i < Number(cyclesArg); i++) {
  const med = await LlavaMed.load({ model, mmproj, threads: 1, contextSize: 512 });
  await med.dispose();
  after.push(anonMb());
}
writeFileSync(resultPath, JSON.stringify({ before, after }));
