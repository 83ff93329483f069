#!/usr/bin/env node
// The quantization table: the bench model's language model (bench/models.mjs, F16) quantized by
// llava-med's own quantizer to each type, then one question per type per round (fresh process,
// load mode 'none', same image and question, types in a rotated order each round), so prompt and
// decode rates compare on the same geometry. Writes its own BENCHMARKS.md section (quantization).
// Accuracy needs a model that answers (the demo model); until then the column says so.
//   node bench/quant.mjs [--runs 3] [--threads N] [--types Q4_0,IQ4_NL,Q4_K_M,Q5_K_M,Q8_0,F16] [--out BENCHMARKS.md]
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { measure, childEnv } from './lib/proc.mjs';
import { writeSection } from './lib/sections.mjs';
import { summary, pairedRatios, fmt, fmtS, fmtR } from './lib/stats.mjs';
import { benchModels, modelsDir, NAME } from './models.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: v } = parseArgs({
  args: process.argv.slice(2), strict: true,
  options: { runs: { type: 'string', default: '3' }, threads: { type: 'string' }, types: { type: 'string', default: 'Q4_0,IQ4_NL,Q4_K_M,Q5_K_M,Q8_0,F16' }, out: { type: 'string', default: 'BENCHMARKS.md' }, 'max-tokens': { type: 'string', default: '32' } },
});
const runs = Number(v.runs);
const threads = v.threads ? Number(v.threads) : os.availableParallelism();
const types = v.types.split(',');
const maxTokens = Number(v['max-tokens']);
const log = (m) => process.stderr.write(`[bench:quant] ${m}\n`);
const file = (t) => (t === 'F16' ? benchModels.f16 : t === 'Q4_K_M' ? benchModels.q4 : path.join(modelsDir, `${NAME}-${t}.gguf`));

if (!existsSync(path.join(root, 'dist', 'index.js'))) throw new Error('build dist/ first (npm run build)');
spawnSync(process.execPath, [path.join(root, 'bench', 'models.mjs')], { stdio: 'inherit' });
const { quantize } = await import(pathToFileURL(path.join(root, 'dist', 'convert', 'quantize.js')).href);
const { readGgufHeader } = await import(pathToFileURL(path.join(root, 'dist', 'formats', 'gguf-read.js')).href);
for (const t of types) {
  if (existsSync(file(t))) continue;
  log(`quantizing the bench model to ${t}`);
  const t0 = Date.now();
  await quantize({ input: benchModels.f16, output: file(t), type: t });
  log(`  ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

const image = path.join(root, 'assets', 'sample-xray.png');
const question = 'Is there evidence of a pneumothorax in this chest X-ray?';
const res = Object.fromEntries(types.map((t) => [t, []]));
const load0 = os.loadavg();
for (let r = 0; r < runs; r++) {
  const order = types.map((_, i) => types[(i + r) % types.length]);
  for (const t of order) {
    const job = { model: file(t), mmproj: benchModels.mmproj, threads, loadMode: 'none', image, question, maxTokens };
    const m = await measure(process.execPath, [path.join(root, 'bench', 'child-llava.mjs'), JSON.stringify(job)], { env: childEnv(threads) });
    const line = m.lines.find((l) => l.text.startsWith('RESULT '));
    const ready = m.lines.find((l) => l.text.startsWith('READY '));
    if (m.code !== 0 || !line) throw new Error(`${t}: child-llava exited ${m.code}:\n${m.lines.map((l) => l.text).join('\n').slice(-2000)}`);
    const o = JSON.parse(line.text.slice(7));
    const x = {
      readyMs: ready.t, promptRate: (o.perf.promptTokens / o.perf.promptMs) * 1000, decodeRate: (o.perf.evalTokens / o.perf.evalMs) * 1000,
      encodeMs: o.timings.imageEncodeMs, peakRssMb: m.peakRssMb, wallMs: m.wallMs,
    };
    res[t].push(x);
    log(`round ${r + 1}/${runs} ${t}: ready ${fmt(x.readyMs, 0)} ms, prompt ${fmt(x.promptRate)} t/s, decode ${fmt(x.decodeRate)} t/s, RSS ${fmt(x.peakRssMb, 0)} MB`);
  }
}
const load1 = os.loadavg();

const L = [];
L.push('## Quantization (bench/quant.mjs)', '');
const quiet = load0[0] < os.cpus().length * 0.75 && load1[0] < os.cpus().length * 0.75;
L.push(`The bench model's language model (4 of LLaMA-7B's 32 layers, real widths) quantized by \`llava-med quantize\` from its F16 GGUF; the projector stays the same F16 mmproj. One question per type per round (fresh process, load mode 'none', ${threads} threads, ${maxTokens} new tokens, greedy), types in a rotated order each round, ${runs} rounds; median (min–max), ratios paired per round against Q4_K_M. ${quiet ? 'The machine was quiet.' : `**Indicative only**: the machine was shared (load average ${load0[0].toFixed(1)} at the start, ${load1[0].toFixed(1)} at the end, on ${os.cpus().length} cores).`} ${new Date().toISOString()}, commit ${spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim()}.`, '');
L.push('| type | LLM file | LLM bits/weight | prompt eval, t/s | / Q4_K_M | decode, t/s | / Q4_K_M | ready, ms | peak RSS, MB | accuracy |', '|---|---|---|---|---|---|---|---|---|---|');
for (const t of types) {
  const bytes = statSync(file(t)).size;
  const h = await readGgufHeader(file(t));
  const params = h.tensors.reduce((a, x) => a + x.shape.reduce((p, d) => p * d, 1), 0);
  const s = (f) => summary(res[t].map(f));
  const q = (f) => (res.Q4_K_M ? fmtR(pairedRatios(res[t].map(f), res.Q4_K_M.map(f))) : '');
  L.push(`| ${t} | ${fmt(bytes / 1e6, 0)} MB | ${fmt((bytes * 8) / params, 2)} | ${fmtS(s((x) => x.promptRate))} | ${q((x) => x.promptRate)} | ${fmtS(s((x) => x.decodeRate))} | ${q((x) => x.decodeRate)} | ${fmtS(s((x) => x.readyMs), 0)} | ${fmtS(s((x) => x.peakRssMb), 0)} | pending: needs the demo model that answers |`);
}
L.push('', 'ggml repacks Q4_0, IQ4_NL and the Q4_K tensors of Q4_K_M at load into interleaved blocks for its AVX2 / AVX-512 kernels (CPU_REPACK buffers); Q5_K, Q6_K (part of Q4_K_M and Q5_K_M) and Q8_0 run the plain kernels on x86.', '');
const out = path.resolve(root, v.out);
writeSection(out, 'quantization', L.join('\n'));
log(`wrote the quantization section of ${path.relative(root, out)}`);
