#!/usr/bin/env node
// Generates the benchmark model once, into bench/.cache/models (gitignored):
// random weights with real shapes — the full CLIP ViT-L/14-224 (24 layers, 1024 wide) with the
// v0 projector, and a LLaMA-7B-shaped language model cut to 4 layers (width 4096, FFN 11008,
// vocab 32004) — written as Hugging Face checkpoints by lib/demo/synthetic-v0, converted by
// the project's own converter (F16), then quantized to Q4_K_M by lib/convert/quantize.
// Needs dist/ (npx tsc -p tsconfig.json) and the native addon.
//   node bench/models.mjs [--force]
import fs from 'node:fs/promises';
import { existsSync } from 'node:fs';
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

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await ensureBenchModels({ force: process.argv.includes('--force') });
  for (const [k, v] of Object.entries(r)) if (k !== 'built') log(`${k}: ${v} (${((await fs.stat(v)).size / 1e6).toFixed(0)} MB)`);
}
