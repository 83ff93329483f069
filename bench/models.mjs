#!/usr/bin/env node
// Generates the benchmark model once, into bench/.cache/models (gitignored):
// random weights with real shapes — the full CLIP ViT-L/14-224 (24 layers, 1024 wide) with the
// v0 projector, and a LLaMA-7B-shaped language model cut to 4 layers (width 4096, FFN 11008,
// vocab 32004) — written as Hugging Face checkpoints by lib/demo/synthetic-v0, converted by
// the project's own converter (F16), then quantized to Q4_K_M by lib/convert/quantize.
// Needs dist/ (npx tsc -p tsconfig.json) and the native addon.
//
// --full: the size users run — the same pipeline with all 32 LLaMA-7B layers (ensureFullBenchModel).
// Its checkpoints are 27.6 GB and its F16 GGUF 13.5 GB, so every step runs in its own process and
// streams (writeSyntheticV0 draws one tensor's values at a time, the converter folds and writes
// tensor by tensor, llama.cpp's quantizer reads tensor by tensor), and the HF folders and the F16
// GGUF are deleted once they are used: bench/.cache/models keeps only the Q4_K_M (4.1 GB) and its
// mmproj. Peak disk use ≈ HF 27.6 GB + F16 13.5 GB during the conversion.
//   node bench/models.mjs [--force] [--full]
import fs from 'node:fs/promises';
import { existsSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const cacheDir = path.join(root, 'bench', '.cache');
export const modelsDir = path.join(cacheDir, 'models');
export const NAME = 'llava-med-bench';
export const benchModels = {
  f16: path.join(modelsDir, `${NAME}-F16.gguf`),
  q4: path.join(modelsDir, `${NAME}-Q4_K_M.gguf`),
  mmproj: path.join(modelsDir, `mmproj-${NAME}.gguf`),
};

const dist = (p) => import(pathToFileURL(path.join(root, 'dist', p)).href);
const log = (m) => process.stderr.write(`[bench:models] ${m}\n`);

export async function ensureBenchModels({ force = false } = {}) {
  if (!force && Object.values(benchModels).every((p) => existsSync(p))) return { ...benchModels, built: false };
  const { writeSyntheticV0, BENCH_DIMS } = await dist('demo/synthetic-v0.js');
  const { convertV0 } = await dist('convert/index.js');
  const { quantize } = await dist('convert/quantize.js');
  await fs.mkdir(cacheDir, { recursive: true });
  const work = await fs.mkdtemp(path.join(cacheDir, 'models.build-'));
  try {
    let t = Date.now();
    log(`writing random-weight HF checkpoints (${BENCH_DIMS.layers} x ${BENCH_DIMS.hidden} LLaMA, CLIP ViT-L/14-224)`);
    const src = await writeSyntheticV0(path.join(work, 'hf'), BENCH_DIMS, { shards: 2 });
    log(`  ${((Date.now() - t) / 1000).toFixed(1)} s; converting (delta fold + GGUF, F16)`);
    t = Date.now();
    const out = path.join(work, 'gguf');
    await convertV0({ base: src.base, delta: src.delta, vision: src.vision, out, name: NAME, outtype: 'f16' });
    // keep the checkpoint set: bench/convert converts it again (its 4-layer size)
    const keep = path.join(cacheDir, `convert-${BENCH_DIMS.layers}L`);
    if (existsSync(keep)) await fs.rm(path.join(work, 'hf'), { recursive: true, force: true });
    else await fs.rename(path.join(work, 'hf'), keep);
    await fs.rename(path.join(out, `${NAME}.gguf`), path.join(out, path.basename(benchModels.f16)));
    log(`  ${((Date.now() - t) / 1000).toFixed(1)} s; quantizing to Q4_K_M`);
    t = Date.now();
    await quantize({ input: path.join(out, path.basename(benchModels.f16)), output: path.join(out, path.basename(benchModels.q4)), type: 'Q4_K_M' });
    log(`  ${((Date.now() - t) / 1000).toFixed(1)} s`);
    await fs.rm(modelsDir, { recursive: true, force: true });
    await fs.rename(out, modelsDir);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  return { ...benchModels, built: true };
}

export const FULL_LAYERS = 32;
const FULL_NAME = `${NAME}-${FULL_LAYERS}L`;
export const fullBenchModels = {
  q4: path.join(modelsDir, `${FULL_NAME}-Q4_K_M.gguf`),
  mmproj: path.join(modelsDir, `mmproj-${FULL_NAME}.gguf`),
};
/** What building the full model cost (time, peak RSS per step, disk), written next to it. */
export const fullBuildLog = path.join(modelsDir, `${FULL_NAME}.build.json`);
// HF base + delta (2 x 13.5 GB) + CLIP, then the F16 GGUF (13.5 GB) beside them, and a margin
export const FULL_DISK_NEED_GB = 44;

const freeGB = (dir) => {
  const s = statfsSync(dir);
  return (s.bavail * s.bsize) / 1e9;
};

/**
 * The 32-layer LLaMA-7B-shaped bench model (Q4_K_M + mmproj), built once with bounded memory and
 * disk (see the header). Each step runs in its own process (bench/child-convert.mjs) under
 * /usr/bin/time, so its peak RSS is its own (the quantizer's child process included); the free
 * disk space is sampled every 2 s. Throws before writing anything when the disk is short.
 */
export async function ensureFullBenchModel({ force = false, log: say = log } = {}) {
  if (!force && Object.values(fullBenchModels).every((p) => existsSync(p))) return { ...fullBenchModels, built: false };
  const { measure } = await import('./lib/proc.mjs');
  await fs.mkdir(modelsDir, { recursive: true });
  const free0 = freeGB(cacheDir);
  if (free0 < FULL_DISK_NEED_GB) {
    throw new Error(`the ${FULL_LAYERS}-layer bench model needs ~${FULL_DISK_NEED_GB} GB of free disk while it is built (HF checkpoints + F16 GGUF); ${free0.toFixed(1)} GB free under ${cacheDir}`);
  }
  const work = await fs.mkdtemp(path.join(cacheDir, 'models-full.build-'));
  let minFree = free0;
  const sampler = setInterval(() => { minFree = Math.min(minFree, freeGB(cacheDir)); }, 2000);
  const steps = {};
  const child = async (stage, job) => {
    const r = await measure(process.execPath, [path.join(root, 'bench', 'child-convert.mjs'), stage, JSON.stringify(job)], { timeoutMs: 60 * 60_000 });
    const res = r.lines.find((l) => l.text.startsWith('RESULT '));
    if (r.code !== 0 || !res) throw new Error(`${stage} failed (exit ${r.code}):\n${r.lines.map((l) => l.text).join('\n').slice(-3000)}`);
    minFree = Math.min(minFree, freeGB(cacheDir));
    steps[stage] = { ...JSON.parse(res.text.slice(7)), wallMs: r.wallMs, peakRssMb: r.peakRssMb };
    say(`  ${stage}: ${(r.wallMs / 1000).toFixed(0)} s, peak RSS ${r.peakRssMb.toFixed(0)} MB, ${minFree.toFixed(1)} GB free at the lowest so far`);
    return steps[stage];
  };
  try {
    say(`full-size bench model: ${FULL_LAYERS} x 4096 LLaMA + CLIP ViT-L/14 (${free0.toFixed(1)} GB free; the build peaks at ~41 GB)`);
    const hf = path.join(work, 'hf');
    await child('gen', { dir: hf, layers: FULL_LAYERS, shards: 6 });
    const out = path.join(work, 'gguf');
    const conv = await child('convert', { dir: hf, out, keep: true, name: FULL_NAME });
    await fs.rm(hf, { recursive: true, force: true });
    const q4tmp = path.join(out, path.basename(fullBenchModels.q4));
    await child('quantize', { input: conv.model, output: q4tmp, type: 'Q4_K_M' });
    await fs.rm(conv.model, { force: true });
    await fs.rename(q4tmp, fullBenchModels.q4);
    await fs.rename(conv.mmproj, fullBenchModels.mmproj);
    const rec = { layers: FULL_LAYERS, at: new Date().toISOString(), freeBeforeGB: free0, minFreeGB: minFree, diskPeakGB: free0 - minFree, steps,
      q4Bytes: (await fs.stat(fullBenchModels.q4)).size, mmprojBytes: (await fs.stat(fullBenchModels.mmproj)).size };
    await fs.writeFile(fullBuildLog, `${JSON.stringify(rec, null, 1)}\n`);
    say(`  done: Q4_K_M ${(rec.q4Bytes / 1e9).toFixed(2)} GB + mmproj; disk peak ${rec.diskPeakGB.toFixed(1)} GB above the start`);
  } finally {
    clearInterval(sampler);
    await fs.rm(work, { recursive: true, force: true });
  }
  return { ...fullBenchModels, built: true };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const full = process.argv.includes('--full');
  const r = full ? await ensureFullBenchModel({ force: process.argv.includes('--force') }) : await ensureBenchModels({ force: process.argv.includes('--force') });
  for (const [k, v] of Object.entries(r)) if (k !== 'built') log(`${k}: ${v} (${((await fs.stat(v)).size / 1e6).toFixed(0)} MB)`);
}
