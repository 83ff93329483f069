#!/usr/bin/env node
// Builds the peer binaries (llama-mtmd-cli, llama-bench, llama-server) from the same pinned, patched
// llama.cpp tree the addon uses (deps/llama.cpp) into build-peers/ (gitignored). It configures
// this repository's own CMakeLists.txt with LLAVA_MED_PEER_TOOLS=ON, so llama.cpp gets exactly
// the addon's options (Release, GGML_NATIVE, OpenMP, static + PIC) and the two run the same ggml
// code. build-peers/ sits beside build/ (same depth, same subfolder layout) and gets the addon's
// compile flags, so with ccache and CCACHE_BASEDIR every ggml/llama/mtmd object is a cache hit
// and only llama.cpp's common library and the tools compile: ~1-2 min after `npm install`
// instead of ~10 min cold on 2 cores.
//   node bench/build-peers.mjs [--jobs N] [--force]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const peersDir = path.join(root, 'bench', 'peers');
export const buildDir = path.join(root, 'build-peers');
export const mtmdCli = path.join(buildDir, 'bin', 'llama-mtmd-cli');
export const llamaBench = path.join(buildDir, 'bin', 'llama-bench');
export const llamaServer = path.join(buildDir, 'bin', 'llama-server');

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
  // LLAVA_MED_PEERS=<folder>: peers already built from the same patched tree elsewhere (e.g. another
  // checkout's build-peers/bin), used as they are: nothing is configured or built here.
  const given = process.env.LLAVA_MED_PEERS;
  if (given) {
    const p = { mtmdCli: path.join(given, 'llama-mtmd-cli'), llamaBench: path.join(given, 'llama-bench'), llamaServer: path.join(given, 'llama-server') };
    const missing = Object.values(p).filter((f) => !fs.existsSync(f));
    if (missing.length) throw new Error(`LLAVA_MED_PEERS=${given} lacks ${missing.map((f) => path.basename(f)).join(', ')}`);
    process.stderr.write(`[build-peers] using the peers in LLAVA_MED_PEERS=${given} (not rebuilt)\n`);
    return p;
  }
  const src = path.join(root, 'deps', 'llama.cpp');
  if (!fs.existsSync(path.join(src, 'CMakeLists.txt'))) {
    // same source the addon builds from: node-llama-cpp's bundle + native/patches
    run(process.execPath, [path.join(root, 'scripts', 'llama-source.mjs')], { cwd: root });
  }
  const defs = {
    CMAKE_BUILD_TYPE: 'Release',
    LLAVA_MED_PEER_TOOLS: 'ON',
    GGML_NATIVE: 'ON',
    GGML_CUDA: 'OFF', GGML_VULKAN: 'OFF', GGML_METAL: 'OFF',
    // cmake-js passes this for the addon; the same flag here keeps ccache's hashes identical.
    CMAKE_CXX_FLAGS: '-DBUILDING_NODE_EXTENSION',
  };
  const gen = has('ninja') ? ['-G', 'Ninja'] : [];
  if (force || !fs.existsSync(path.join(buildDir, 'CMakeCache.txt'))) {
    fs.mkdirSync(buildDir, { recursive: true });
    run('cmake', ['-S', root, '-B', buildDir, ...gen, ...Object.entries(defs).map(([k, v]) => `-D${k}=${v}`)]);
  }
  // Always (incremental, ~1 s when nothing changed): the peers must match the current patched
  // tree, e.g. after native/patches changed and scripts/llama-source.mjs re-created deps/llama.cpp.
  run('cmake', ['--build', buildDir, '--parallel', String(jobs), '--target', 'llama-mtmd-cli', 'llama-bench', 'llama-server']);
  return { mtmdCli, llamaBench, llamaServer };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const a = process.argv.slice(2);
  const jobs = a.includes('--jobs') ? Number(a[a.indexOf('--jobs') + 1]) : undefined;
  buildPeers({ jobs, force: a.includes('--force') });
}
