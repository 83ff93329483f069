#!/usr/bin/env node
// Builds build/Release/llava_med.node with cmake-js from the patched llama.cpp tree.
//
// GPU backends are chosen by flag, environment or npm config (first match wins):
//   --cuda | --vulkan | --metal | --cpu
//   LLAVA_MED_GPU=cuda|vulkan|metal|cpu
//   npm config: `npm install --llava-med-gpu=cuda` (npm_config_llava_med_gpu)
// Extra CMake definitions: LLAVA_MED_CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90 ...".
// --portable builds for ggml's x86-64-v3 baseline instead of this CPU (used for prebuilds).
// ccache is used automatically when it is on PATH (CMakeLists.txt).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { ensureLlamaSource } from './llama-source.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const flag = (f) => args.includes(f);

export function selectedGpu(argv = args, env = process.env) {
  for (const g of ['cuda', 'vulkan', 'metal', 'cpu']) if (argv.includes(`--${g}`)) return g;
  const v = (env.LLAVA_MED_GPU || env.npm_config_llava_med_gpu || '').toLowerCase();
  if (v && !['cuda', 'vulkan', 'metal', 'cpu'].includes(v)) throw new Error(`LLAVA_MED_GPU=${v}: expected cuda, vulkan, metal or cpu`);
  return v || (process.platform === 'darwin' ? 'metal' : 'cpu');
}

export function cmakeDefinitions(gpu, { portable = false, extra = process.env.LLAVA_MED_CMAKE_ARGS } = {}) {
  const defs = {
    GGML_CUDA: gpu === 'cuda' ? 'ON' : 'OFF',
    GGML_VULKAN: gpu === 'vulkan' ? 'ON' : 'OFF',
    GGML_METAL: gpu === 'metal' ? 'ON' : 'OFF',
    GGML_NATIVE: portable ? 'OFF' : 'ON',
    CMAKE_BUILD_TYPE: 'Release',
  };
  const out = Object.entries(defs).map(([k, v]) => `--CD${k}=${v}`);
  for (const a of (extra || '').split(/\s+/).filter(Boolean)) out.push(a.startsWith('-D') ? `--C${a.slice(1)}` : a);
  return out;
}

// cmake-js downloads Node's headers unless told where they are. Official Node builds and
// distro packages install them next to the binary (<prefix>/include/node): use those, so a
// source build needs no network.
export function buildEnv(env = process.env) {
  // ccache hashes absolute paths unless told a base directory: with it, a second checkout in
  // another folder (CI's fresh clone, a reinstall) reuses the cached objects.
  const out = { CCACHE_BASEDIR: root, ...env };
  if (out.npm_config_nodedir) return out;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) out.npm_config_nodedir = prefix;
  return out;
}

function main() {
  ensureLlamaSource({ quiet: true });
  const gpu = selectedGpu();
  const jobs = String(Number(process.env.LLAVA_MED_JOBS) || os.availableParallelism?.() || os.cpus().length);
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const out = flag('--out') ? args[args.indexOf('--out') + 1] : 'build';
  // A configure step that failed leaves CMakeCache.txt without a build file, and cmake-js then
  // skips configuring forever: start that folder over.
  const outDir = path.resolve(root, out);
  if (fs.existsSync(path.join(outDir, 'CMakeCache.txt')) && !['build.ninja', 'Makefile'].some((f) => fs.existsSync(path.join(outDir, f)))) {
    fs.rmSync(outDir, { recursive: true, force: true });
  }
  const cli = [cmakeJs, 'build', '--out', out, '--parallel', jobs, ...cmakeDefinitions(gpu, { portable: flag('--portable') })];
  process.stderr.write(`[build-native] backend=${gpu} jobs=${jobs} out=${out}\n`);
  const r = spawnSync(process.execPath, cli, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: buildEnv() });
  process.exit(r.status ?? 1);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
