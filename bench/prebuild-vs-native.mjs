#!/usr/bin/env node
// The prebuilt binary against the -march=native source build, on this machine: the same bench
// model, question and settings (bench/child-llava.mjs, one process per run, greedy, F16 KV), the
// binary chosen with LLAVA_MED_ADDON. Rounds are paired and their order alternates (ABBA), and
// each round's ratio prebuilt / native is taken for the prompt rate (text prompt tokens/s), the
// image prefill rate (image tokens/s) and the decode rate (generated tokens/s); the medians of the
// paired ratios are the result (target >= 0.97). Writes the section between the markers
// <!-- prebuild-vs-native --> in BENCHMARKS.md.
//   node bench/prebuild-vs-native.mjs [--runs 6] [--threads N] [--max-tokens 32] [--level icelake]
//        [--model m.gguf --mmproj p.gguf] [--out BENCHMARKS.md]
// Needs build/Release/llava_med.node (npm run build:native), the level's prebuilt binary
// (npm run build:prebuilds -- --levels <level>; default: the best level this CPU runs that is
// built) and dist/ (npm run build).
import fs from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { measure, childEnv } from './lib/proc.mjs';
import { summary, pairedRatios, fmt, fmtR } from './lib/stats.mjs';
import { ensureBenchModels } from './models.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (k, d) => (argv.includes(`--${k}`) ? argv[argv.indexOf(`--${k}`) + 1] : d);
const cfg = {
  runs: Number(opt('runs', 6)),
  threads: Number(opt('threads', os.availableParallelism())),
  maxTokens: Number(opt('max-tokens', 32)),
  out: path.resolve(root, opt('out', 'BENCHMARKS.md')),
};
const log = (m) => process.stderr.write(`[bench:prebuild] ${m}\n`);
const START = '<!-- prebuild-vs-native:start -->';
const END = '<!-- prebuild-vs-native:end -->';

const binding = await import(pathToFileURL(path.join(root, 'dist', 'engine', 'binding.js')).href);
const native = path.join(root, 'build', 'Release', 'llava_med.node');
if (!existsSync(native)) throw new Error(`${native} missing: npm run build:native`);
const prebuilt = binding.addonCandidates(root, { env: {} }).filter((c) => c.level && !c.skip && existsSync(c.path));
const want = opt('level', prebuilt[0]?.level);
const pre = prebuilt.find((c) => c.level === want);
if (!pre) throw new Error(`no usable prebuilt binary of level ${want ?? '(any)'} in prebuilds/: npm run build:prebuilds -- --levels ${want ?? 'icelake'}`);

const models = opt('model') ? { q4: path.resolve(opt('model')), mmproj: path.resolve(opt('mmproj')) } : await ensureBenchModels();
const image = path.join(root, 'assets', 'sample-xray.png');
const question = 'Is there evidence of a pneumothorax in this chest X-ray?';

async function one(addon) {
  const job = { model: models.q4, mmproj: models.mmproj, threads: cfg.threads, loadMode: 'none', image, question, maxTokens: cfg.maxTokens };
  const r = await measure(process.execPath, [path.join(root, 'bench', 'child-llava.mjs'), JSON.stringify(job)], { env: childEnv(cfg.threads, { LLAVA_MED_ADDON: addon, LLAVA_MED_CPU_LEVEL: '' }) });
  const line = r.lines.find((l) => l.text.startsWith('RESULT '));
  if (r.code !== 0 || !line) throw new Error(`run with ${addon} failed (${r.code}):\n${r.lines.map((l) => l.text).join('\n').slice(-2000)}`);
  const t = JSON.parse(line.text.slice(7)).timings;
  return {
    prompt: (t.promptTokens * 1000) / t.promptMs,
    image: (t.imageTokens * 1000) / t.imageDecodeMs,
    decode: (t.generatedTokens * 1000) / t.generateMs,
    encodeMs: t.imageEncodeMs,
  };
}

const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const loadBefore = load();
log(`native ${path.relative(root, native)} vs prebuilt ${path.relative(root, pre.path)} (${pre.level}); ${cfg.runs} paired rounds, load average ${loadBefore}`);
await one(native); // warm the page cache for the model files
const A = [];
const B = [];
for (let i = 0; i < cfg.runs; i++) {
  const order = i % 2 === 0 ? ['native', 'prebuilt'] : ['prebuilt', 'native'];
  for (const which of order) {
    const r = await one(which === 'native' ? native : pre.path);
    (which === 'native' ? A : B).push(r);
    log(`round ${i + 1} ${which}: prompt ${fmt(r.prompt)} t/s, image prefill ${fmt(r.image)} t/s, decode ${fmt(r.decode)} t/s, encode ${fmt(r.encodeMs)} ms`);
  }
}
const loadAfter = load();
const rows = [
  ['prompt (text) t/s', 'prompt'],
  ['image prefill t/s', 'image'],
  ['decode t/s', 'decode'],
  ['image encode ms (lower is better)', 'encodeMs'],
].map(([label, k]) => {
  const a = summary(A.map((r) => r[k]));
  const b = summary(B.map((r) => r[k]));
  const ratio = pairedRatios(B.map((r) => r[k]), A.map((r) => r[k]));
  return { label, k, a, b, ratio };
});
const met = (k) => {
  const r = rows.find((x) => x.k === k).ratio;
  // Paired ratios spread wider than this say more about the machine's noise than the binaries.
  const noisy = r.max - r.min > 0.15;
  return `${fmt(r.median, 2)}× (${r.median >= 0.97 ? '**met**' : '**not met**'}${noisy ? `, but the paired ratios spread over ${fmt(r.min, 2)}–${fmt(r.max, 2)}: **inconclusive**, rerun on a quiet machine` : ''})`;
};
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const section = `${START}
## Prebuilt binary vs native build

\`node bench/prebuild-vs-native.mjs\` (${new Date().toISOString().slice(0, 10)}, ${cpu}, ${cfg.threads} threads, Node ${process.version}):
the prebuilt \`${path.relative(root, pre.path)}\` (CPU level \`${pre.level}\`, the one the loader picks on this CPU)
against \`build/Release/llava_med.node\` (\`GGML_NATIVE=ON\`, i.e. \`-march=native\` for ggml-cpu), on the bench
model (Q4_K_M, load mode 'none'), one question with the sample image, greedy, ${cfg.maxTokens} tokens; ${cfg.runs} paired rounds,
order alternating, each run its own process. Load average ${loadBefore} before, ${loadAfter} after${Number(loadBefore.split(' ')[0]) > os.availableParallelism() ? ` — **the machine was busy (more runnable tasks than its ${os.availableParallelism()} cores): the absolute rates are depressed and noisy, the paired ratios less so**` : ''}.

| | native (median, min–max) | prebuilt (median, min–max) | prebuilt / native, paired (median, min–max) |
|---|---|---|---|
${rows.map((r) => `| ${r.label} | ${fmt(r.a.median)} (${fmt(r.a.min)}–${fmt(r.a.max)}) | ${fmt(r.b.median)} (${fmt(r.b.min)}–${fmt(r.b.max)}) | ${fmtR(r.ratio)} |`).join('\n')}

Target prompt and decode rate ≥ 0.97× native: prompt ${met('prompt')}, image prefill ${met('image')}, decode ${met('decode')}.
${END}`;

let md = existsSync(cfg.out) ? await fs.readFile(cfg.out, 'utf8') : '';
md = md.includes(START) ? md.replace(new RegExp(`${START}[\\s\\S]*?${END}`), section) : `${md.trimEnd()}\n\n${section}\n`;
await fs.writeFile(cfg.out, md);
log(`wrote ${path.relative(root, cfg.out)}`);
process.stdout.write(`${section}\n`);
