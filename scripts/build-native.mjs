#!/usr/bin/env node
// Builds llava_med.node with cmake-js from the patched llama.cpp tree (into build/Release, or
// <out>/Release with --out).
//
// GPU backend, by flag or environment (first match wins; no npm config keys):
//   --cuda | --vulkan | --metal | --cpu
//   LLAVA_MED_GPU=cuda|vulkan|metal|cpu
// Extra CMake definitions: LLAVA_MED_CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=90 ...".
// CPU code:
//   (default)        GGML_NATIVE=ON: tuned for the CPU it is built on (a local build never moves)
//   --level <name>   one x86-64 level of native/cpu-levels.json (GGML_NATIVE=OFF + that level's
//                    GGML_<feature> options): what the prebuilt binaries are (scripts/prebuild.mjs)
//   --portable       GGML_NATIVE=OFF with ggml's defaults (non-x86 prebuilds)
// --configure-only   run CMake's configure step and stop (test/install/cuda-configure.test.ts)
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
const option = (f) => (flag(f) ? args[args.indexOf(f) + 1] : undefined);

export const GPUS = ['cuda', 'vulkan', 'metal', 'cpu'];

/** Thrown for bad settings: the message is one line meant for the user, no stack trace. */
export class BuildSettingError extends Error {}

export function selectedGpu(argv = args, env = process.env) {
  for (const g of GPUS) if (argv.includes(`--${g}`)) return g;
  const v = (env.LLAVA_MED_GPU || '').toLowerCase();
  if (v && !GPUS.includes(v)) throw new BuildSettingError(`LLAVA_MED_GPU=${env.LLAVA_MED_GPU}: expected one of ${GPUS.join(', ')}`);
  return v || (process.platform === 'darwin' ? 'metal' : 'cpu');
}

/** The CPU levels of prebuilt binaries for an architecture (node's process.arch), best first. */
export function cpuLevels(arch = process.arch) {
  const all = JSON.parse(fs.readFileSync(path.join(root, 'native', 'cpu-levels.json'), 'utf8'));
  return all[arch] ?? [];
}

// Every x86 instruction-set option of ggml (ggml/CMakeLists.txt). With GGML_NATIVE=OFF ggml turns
// on an x86-64-v3 set by default, so a level names all of them, ON or OFF.
const GGML_X86_FEATURES = ['SSE42', 'AVX', 'AVX_VNNI', 'AVX2', 'BMI2', 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI', 'AVX512_BF16', 'FMA', 'F16C', 'AMX_TILE', 'AMX_INT8', 'AMX_BF16'];

export function cmakeDefinitions(gpu, { portable = false, level, extra = process.env.LLAVA_MED_CMAKE_ARGS } = {}) {
  const defs = {
    GGML_CUDA: gpu === 'cuda' ? 'ON' : 'OFF',
    GGML_VULKAN: gpu === 'vulkan' ? 'ON' : 'OFF',
    GGML_METAL: gpu === 'metal' ? 'ON' : 'OFF',
    GGML_NATIVE: portable || level ? 'OFF' : 'ON',
    CMAKE_BUILD_TYPE: 'Release',
  };
  if (level) {
    const l = cpuLevels('x64').find((x) => x.name === level);
    if (!l) throw new BuildSettingError(`unknown CPU level ${level}: expected one of ${cpuLevels('x64').map((x) => x.name).join(', ')} (native/cpu-levels.json)`);
    for (const f of GGML_X86_FEATURES) defs[`GGML_${f}`] = l.ggml.includes(f) ? 'ON' : 'OFF';
  }
  // Instruction sets ggml has no GGML_<feature> option for (GFNI, VBMI2, LZCNT, ...): added to
  // ggml-cpu's compile options only (CMakeLists.txt), so every other object stays shared.
  // Always passed, so a reused build folder never keeps an older level's flags.
  const l = level ? cpuLevels('x64').find((x) => x.name === level) : undefined;
  defs.LLAVA_MED_CPU_FLAGS = (l?.cflags ?? []).join(';');
  const out = Object.entries(defs).map(([k, v]) => `--CD${k}=${v}`);
  for (const a of (extra || '').split(/\s+/).filter(Boolean)) out.push(a.startsWith('-D') ? `--C${a.slice(1)}` : a);
  return out;
}

// cmake-js downloads Node's headers unless told where they are. Official Node builds and
// distro packages install them next to the binary (<prefix>/include/node): use those, so a
// source build needs no network.
export function buildEnv(env = process.env) {
  // ccache hashes absolute paths unless told a base directory: with it, a second checkout in
  // another folder (CI's fresh clone, a reinstall) reuses the cached objects. Build folders at
  // the same depth (build/, build-<level>/) then also share every object outside ggml-cpu.
  const out = { CCACHE_BASEDIR: root, ...env };
  if (out.npm_config_nodedir) return out;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) out.npm_config_nodedir = prefix;
  return out;
}

/** Progress of a CMake build from a line of its output: ninja's `[12/264]` or make's `[ 45%]`. */
export function parseProgress(line) {
  const n = line.match(/^\[(\d+)\/(\d+)\]/);
  if (n) return { done: Number(n[1]), total: Number(n[2]), pct: Math.floor((100 * Number(n[1])) / Number(n[2])) };
  const m = line.match(/^\[\s*(\d+)%\]/);
  if (m) return { pct: Number(m[1]) };
  return undefined;
}

/**
 * The messages of our own CMake checks (CMakeLists.txt) in a build's output: each starts with
 * "llava-med:"; CMake wraps a FATAL_ERROR message over indented lines, joined here into one.
 */
export function ourMessages(output) {
  // Status lines ("-- llava-med: …") are not errors: only a message at the start of a line counts.
  const found = output.match(/^ {0,2}llava-med: [^\n]*(?:\n {2}\S[^\n]*)*/gm) ?? [];
  return [...new Set(found.map((m) => m.replace(/\s*\n\s+/g, ' ').trim()))];
}

function main() {
  const gpu = selectedGpu();
  const level = option('--level');
  const defs = cmakeDefinitions(gpu, { portable: flag('--portable'), level });
  ensureLlamaSource({ quiet: true });
  const jobs = String(Number(process.env.LLAVA_MED_JOBS) || os.availableParallelism?.() || os.cpus().length);
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const out = option('--out') ?? 'build';
  // A configure step that failed leaves CMakeCache.txt without a build file, and cmake-js then
  // skips configuring forever: start that folder over.
  const outDir = path.resolve(root, out);
  if (fs.existsSync(path.join(outDir, 'CMakeCache.txt')) && !['build.ninja', 'Makefile'].some((f) => fs.existsSync(path.join(outDir, f)))) {
    fs.rmSync(outDir, { recursive: true, force: true });
  }
  const verb = flag('--configure-only') ? 'configure' : 'build';
  const cli = [cmakeJs, verb, '--out', out, ...(verb === 'build' ? ['--parallel', jobs] : []), ...defs];
  process.stderr.write(`[build-native] backend=${gpu} cpu=${level ?? (flag('--portable') ? 'portable' : 'native')} jobs=${jobs} out=${out}\n`);
  const r = spawnSync(process.execPath, cli, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: buildEnv() });
  process.exit(r.status ?? 1);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (e) {
    if (!(e instanceof BuildSettingError)) throw e;
    process.stderr.write(`[build-native] ${e.message}\n`);
    process.exit(2);
  }
}
