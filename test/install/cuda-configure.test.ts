/**
 * CUDA builds are checked where no GPU is: CMake's configure step runs with the explicit default
 * architecture list of CMakeLists.txt instead of `native` (which needs a GPU), an override is
 * honoured, and a toolkit without cuBLAS (this machine: nvcc 13.0, no math libraries) is one
 * clear line naming the missing library — from the preflight (before CMake) and from CMake
 * itself. The full CUDA compile needs a complete toolkit: see docs/build.md.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ourMessages } from '../../scripts/build-native.mjs';
import { cudaRoot, preflight } from '../../scripts/preflight.mjs';
import { REPO } from '../engine/util.js';

const scratch = t.testdir({});

/** A fake toolkit: bin/nvcc and the given files under lib64/. */
function fakeToolkit(name: string, libs: string[]): string {
  const root = path.join(scratch, name);
  fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
  fs.mkdirSync(path.join(root, 'lib64'));
  fs.writeFileSync(path.join(root, 'bin', 'nvcc'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  for (const l of libs) fs.writeFileSync(path.join(root, 'lib64', l), '');
  return root;
}
const tools = path.join(scratch, 'tools');
fs.mkdirSync(tools);
for (const tool of ['git', 'cmake', 'make', 'cc', 'c++']) fs.writeFileSync(path.join(tools, tool), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
const cudaLines = (env: NodeJS.ProcessEnv) => preflight('cuda', { PATH: tools, ...env }, { llamaReady: true });

t.test('preflight: a toolkit without cuBLAS is one line naming it; with it, nothing', async (t) => {
  const without = fakeToolkit('no-cublas', ['libcudart.so', 'libcudart.so.13']);
  const lines = cudaLines({ CUDAToolkit_ROOT: without });
  t.equal(lines.length, 1, lines.join('\n'));
  t.match(lines[0], new RegExp(`^the CUDA toolkit at ${without} has no cuBLAS \\(libcublas\\), which ggml's CUDA backend links: install it`));
  const withIt = fakeToolkit('with-cublas', ['libcudart.so', 'libcublas.so.13', 'libcublasLt.so.13']);
  t.same(cudaLines({ CUDAToolkit_ROOT: withIt }), []);
});

// The real toolkit of this machine, if it has one, and whether it has cuBLAS (looked up here
// with a plain directory walk, independently of the preflight's search).
const realRoot = cudaRoot();
const hasCublas = (root: string) => {
  const walk = (d: string, depth: number): boolean =>
    depth < 4 && fs.readdirSync(d, { withFileTypes: true }).some((e) => (e.isDirectory() ? walk(path.join(d, e.name), depth + 1) : e.name.startsWith('libcublas.')));
  return walk(root, 0);
};

if (!realRoot) {
  t.comment('no CUDA toolkit on this machine: the CMake configure checks need nvcc');
} else {
  const configure = (out: string, extra: NodeJS.ProcessEnv = {}) => {
    const r = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'build-native.mjs'), '--cuda', '--configure-only', '--out', out], {
      cwd: REPO,
      encoding: 'utf8',
      env: { ...process.env, LLAVA_MED_CMAKE_ARGS: '', ...extra },
    });
    fs.rmSync(path.join(REPO, out), { recursive: true, force: true });
    return { status: r.status, out: r.stdout + r.stderr };
  };

  t.test(`CMake configures CUDA ${realRoot} without a GPU: explicit architectures, then the cuBLAS check`, async (t) => {
    const r = configure('build-cuda-check');
    const line = r.out.match(/-- llava-med: CUDA (\S+) at \S+, architectures (\S+)/);
    t.ok(line, 'the architectures line');
    const archs = line?.[2]?.split(';') ?? [];
    t.notOk(archs.includes('native'), `not "native" (${line?.[2]})`);
    t.ok(archs.length >= 3 && archs.every((a) => /^\d+a?-(real|virtual)$/.test(a)), 'an explicit list of real/virtual architectures');
    if (Number(line?.[1]?.split('.')[0]) >= 13) t.notOk(archs.some((a) => Number.parseInt(a) < 75), 'CUDA 13 dropped everything before Turing (sm_75)');
    t.match(r.out, /The CUDA compiler identification is NVIDIA/, 'nvcc compiled CMake\'s probe without a GPU');
    t.notMatch(r.out, /CUDA_ARCHITECTURES.*native|No CUDA devices/i, 'no "native" architecture error');
    if (!hasCublas(realRoot)) {
      t.equal(r.status, 1);
      t.same(ourMessages(r.out).map((m) => m.replace(/\(NVIDIA.*$/, '')), [`llava-med: the CUDA toolkit at ${fs.realpathSync(realRoot)} has no cublas library (libcublas), which ggml's CUDA backend links: install it `]);
      t.same(preflight('cuda').filter((l) => /cuBLAS/.test(l)).length, 1, 'the preflight says the same before CMake runs');
    } else {
      t.equal(r.status, 0, 'a complete toolkit configures');
    }
  });

  t.test('an explicit architecture list is honoured', async (t) => {
    const r = configure('build-cuda-check', { LLAVA_MED_CMAKE_ARGS: '-DCMAKE_CUDA_ARCHITECTURES=90-real' });
    t.match(r.out, /-- llava-med: CUDA \S+ at \S+, architectures 90-real\n/);
  });
}
