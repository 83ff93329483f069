#!/usr/bin/env node
// Builds the peer binaries (llama-mtmd-cli, llama-bench) from the same pinned, patched
// llama.cpp tree the addon uses (deps/llama.cpp) into bench/peers/llama.cpp-build (gitignored),
// with the addon's compile options (Release, GGML_NATIVE, OpenMP, static + PIC) so the two
// run the same ggml code. ccache is used when on PATH. Cold: ~10 min on 2 cores.
//   node bench/build-peers.mjs [--jobs N] [--force]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const peersDir = path.join(root, 'bench', 'peers');
export const buildDir = path.join(peersDir, 'llama.cpp-build');
export const mtmdCli = path.join(buildDir, 'bin', 'llama-mtmd-cli');
export const llamaBench = path.join(buildDir, 'bin', 'llama-bench');

function run(cmd, args, opts = {}) {
  process.stderr.write(`[build-peers] ${cmd} ${args.join(' ')}\n`);
  // CCACHE_BASEDIR: a fresh clone in another folder reuses the cached objects (as the addon build does).
  const env = { CCACHE_BASEDIR: root, ...process.env };
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} failed (${r.status ?? r.signal})`);
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function buildPeers({ jobs = os.availableParallelism(), force = false } = {}) {
  if (!force && fs.existsSync(mtmdCli) && fs.existsSync(llamaBench)) return { mtmdCli, llamaBench };
  const src = path.join(root, 'deps', 'llama.cpp');
  if (!fs.existsSync(path.join(src, 'CMakeLists.txt'))) {
    // same source the addon builds from: node-llama-cpp's bundle + native/patches
    run(process.execPath, [path.join(root, 'scripts', 'llama-source.mjs')], { cwd: root });
  }
  const defs = {
    CMAKE_BUILD_TYPE: 'Release',
    BUILD_SHARED_LIBS: 'OFF',
    CMAKE_POSITION_INDEPENDENT_CODE: 'ON',
    GGML_NATIVE: 'ON',
    GGML_OPENMP: 'ON',
    GGML_BACKEND_DL: 'OFF',
    GGML_CUDA: 'OFF', GGML_VULKAN: 'OFF', GGML_METAL: 'OFF',
    LLAMA_BUILD_COMMON: 'ON',
    LLAMA_BUILD_TOOLS: 'ON',
    LLAMA_BUILD_MTMD: 'ON',
    LLAMA_BUILD_TESTS: 'OFF',
    LLAMA_BUILD_EXAMPLES: 'OFF',
    LLAMA_BUILD_SERVER: 'OFF',
    LLAMA_BUILD_APP: 'OFF',
    LLAMA_SUBPROCESS: 'OFF',
    MTMD_VIDEO: 'OFF',
    LLAMA_CURL: 'OFF',
    LLAMA_OPENSSL: 'OFF',
  };
  if (has('ccache')) Object.assign(defs, { CMAKE_C_COMPILER_LAUNCHER: 'ccache', CMAKE_CXX_COMPILER_LAUNCHER: 'ccache' });
  const gen = has('ninja') ? ['-G', 'Ninja'] : [];
  fs.mkdirSync(buildDir, { recursive: true });
  run('cmake', ['-S', src, '-B', buildDir, ...gen, ...Object.entries(defs).map(([k, v]) => `-D${k}=${v}`)]);
  run('cmake', ['--build', buildDir, '--parallel', String(jobs), '--target', 'llama-mtmd-cli', 'llama-bench']);
  return { mtmdCli, llamaBench };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const a = process.argv.slice(2);
  const jobs = a.includes('--jobs') ? Number(a[a.indexOf('--jobs') + 1]) : undefined;
  buildPeers({ jobs, force: a.includes('--force') });
}
