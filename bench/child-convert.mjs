#!/usr/bin/env node
// bench/convert: generates (once, cached) or converts a synthetic v0 checkpoint set in its own process.
//   node bench/child-convert.mjs gen '<json>'      json: { dir, layers }   -> writes dir/{base,delta,vision}; "RESULT <json>" (ms, bytes, peak RSS)
//   node bench/child-convert.mjs convert '<json>'  json: { dir, out, keep?, name? } -> "RESULT <json>" (ms, bytes, peak RSS);
//                                                   keep: leave the GGUFs in out (else deleted)
//   node bench/child-convert.mjs quantize '<json>' json: { input, output, type } -> "RESULT <json>" (ms, bytes, peak RSS)
import fs from 'node:fs/promises';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(pathToFileURL(path.join(root, 'dist', p)).href);
const hwm = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
const [cmd, arg] = process.argv.slice(2);
const o = JSON.parse(arg);

async function dirBytes(d) {
  let n = 0;
  for (const e of await fs.readdir(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    n += e.isDirectory() ? await dirBytes(p) : (await fs.stat(p)).size;
  }
  return n;
}

if (cmd === 'gen') {
  const { writeSyntheticV0, BENCH_DIMS } = await dist('demo/synthetic-v0.js');
  const tmp = `${o.dir}.tmp`;
  await fs.rm(tmp, { recursive: true, force: true });
  const t0 = performance.now();
  await writeSyntheticV0(tmp, { ...BENCH_DIMS, layers: o.layers }, { shards: o.shards ?? 2 });
  const ms = performance.now() - t0;
  await fs.rename(tmp, o.dir);
  process.stdout.write(`RESULT ${JSON.stringify({ ms, outBytes: await dirBytes(o.dir), peakRssMb: hwm() })}\n`);
} else if (cmd === 'convert') {
  const { convertV0 } = await dist('convert/index.js');
  const src = { base: path.join(o.dir, 'base'), delta: path.join(o.dir, 'delta'), vision: path.join(o.dir, 'vision') };
  const inBytes = await dirBytes(o.dir);
  await fs.rm(o.out, { recursive: true, force: true });
  const t0 = performance.now();
  const r = await convertV0({ ...src, out: o.out, name: o.name ?? 'convert-bench', outtype: 'f16' });
  const ms = performance.now() - t0;
  const outBytes = (await fs.stat(r.model)).size + (await fs.stat(r.mmproj)).size;
  process.stdout.write(`RESULT ${JSON.stringify({ ms, inBytes, outBytes, model: r.model, mmproj: r.mmproj, peakRssMb: hwm() })}\n`);
  if (!o.keep) await fs.rm(o.out, { recursive: true, force: true });
} else if (cmd === 'quantize') {
  const { quantize } = await dist('convert/quantize.js');
  const t0 = performance.now();
  await quantize({ input: o.input, output: o.output, type: o.type });
  const ms = performance.now() - t0;
  process.stdout.write(`RESULT ${JSON.stringify({ ms, outBytes: (await fs.stat(o.output)).size, peakRssMb: hwm() })}\n`);
}
