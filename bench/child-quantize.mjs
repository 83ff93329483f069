#!/usr/bin/env node
// One quantization in its own process, so bench/lib/proc.mjs's measure() reports its wall and CPU
// time (GNU time counts the quantizer child that quantize() forks, once it is waited for):
//   node bench/child-quantize.mjs '<json>'   json: { input, output, type, threads? }
// stdout: "RESULT <json>" ({ ms, bytes }).
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { quantize } = await import(pathToFileURL(path.join(root, 'dist', 'convert', 'quantize.js')).href);
const o = JSON.parse(process.argv[2]);
const t0 = performance.now();
const r = await quantize({ input: o.input, output: o.output, type: o.type, threads: o.threads });
process.stdout.write(`RESULT ${JSON.stringify({ ms: performance.now() - t0, bytes: r.bytes })}\n`);
