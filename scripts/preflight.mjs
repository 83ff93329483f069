#!/usr/bin/env node
// Before a source build: is every tool it needs here? One line per missing tool, saying what to
// install, instead of a stack trace from deep inside the build. Used by scripts/install.mjs;
// `node scripts/preflight.mjs [--cuda|--vulkan]` prints the same report.
//
// Needed: git (to unpack the pinned llama.cpp bundle and apply our patches; not once
// deps/llama.cpp is in place), cmake >= 3.18, make or ninja, a C and a C++ compiler; for
// LLAVA_MED_GPU=cuda the CUDA toolkit's nvcc and cuBLAS; for vulkan the Vulkan headers and
// loader and the glslc shader compiler.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const debianHint = (pkgs) => (process.platform === 'linux' ? ` (Debian/Ubuntu: apt-get install ${pkgs})` : '');

/** The path of `cmd` on PATH (`env.PATH`), or undefined. */
export function which(cmd, env = process.env) {
  const exts = process.platform === 'win32' ? (env.PATHEXT || '.EXE;.CMD;.BAT').split(';') : [''];
  for (const dir of (env.PATH || '').split(path.delimiter).filter(Boolean)) {
    for (const ext of exts) {
      const p = path.join(dir, cmd + ext);
      try {
        if (fs.statSync(p).isFile()) {
          fs.accessSync(p, fs.constants.X_OK);
          return p;
        }
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

function version(cmd, env) {
  const r = spawnSync(cmd, ['--version'], { encoding: 'utf8', env });
  return r.status === 0 ? r.stdout.match(/(\d+)\.(\d+)(?:\.(\d+))?/)?.slice(1, 3).map(Number) : undefined;
}

/** Where the CUDA toolkit is: CUDAToolkit_ROOT / CUDA_PATH / nvcc on PATH / /usr/local/cuda. */
export function cudaRoot(env = process.env) {
  const fromEnv = env.CUDAToolkit_ROOT || env.CUDA_PATH || env.CUDA_HOME;
  if (fromEnv && fs.existsSync(path.join(fromEnv, 'bin'))) return fromEnv;
  const nvcc = env.CUDACXX || which('nvcc', env);
  if (nvcc) {
    const real = fs.realpathSync(nvcc);
    // A wrapper script (e.g. /usr/local/bin/nvcc execing the real one) says where it points.
    if (real.endsWith(`${path.sep}bin${path.sep}nvcc`) && !/^\/usr(\/local)?\/bin\//.test(real)) return path.resolve(path.dirname(real), '..');
    const text = fs.statSync(real).size < 4096 ? fs.readFileSync(real, 'utf8') : '';
    const target = text.match(/exec\s+"?([^"\s]+\/bin\/nvcc)"?/)?.[1];
    if (target) return path.resolve(path.dirname(target), '..');
    return path.resolve(path.dirname(real), '..');
  }
  if (process.platform !== 'win32' && fs.existsSync('/usr/local/cuda/bin/nvcc')) return '/usr/local/cuda';
  return undefined;
}

function hasLib(dirs, name) {
  const re = new RegExp(`^(lib)?${name}(\\.so(\\.\\d+)*|\\.dylib|\\.lib|64_\\d+\\.dll|\\.a)$`);
  return dirs.some((d) => {
    try {
      return fs.readdirSync(d).some((f) => re.test(f));
    } catch {
      return false;
    }
  });
}

/**
 * Problems that would stop a source build with backend `gpu`, one line each ([] = all there).
 * `llamaReady`: deps/llama.cpp is already unpacked (then git is not needed).
 */
export function preflight(gpu = 'cpu', env = process.env, { llamaReady = fs.existsSync(path.join(root, 'deps', 'llama.cpp', '.llava-med-stamp')) } = {}) {
  const lines = [];
  if (!llamaReady && !which('git', env)) lines.push(`git not found: it unpacks the pinned llama.cpp source${debianHint('git')}`);
  const cmake = which('cmake', env);
  if (!cmake) lines.push(`cmake not found: version 3.18 or newer is needed${debianHint('cmake')}`);
  else {
    const v = version(cmake, env);
    if (v && (v[0] < 3 || (v[0] === 3 && v[1] < 18))) lines.push(`cmake ${v.join('.')} is too old: 3.18 or newer is needed${debianHint('cmake')}, or pip install cmake`);
  }
  if (process.platform !== 'win32') {
    if (!which('make', env) && !which('ninja', env)) lines.push(`neither make nor ninja found: CMake needs one to build${debianHint('make')}`);
    const cxx = env.CXX ? which(env.CXX, env) ?? (fs.existsSync(env.CXX) ? env.CXX : undefined) : ['c++', 'g++', 'clang++'].map((c) => which(c, env)).find(Boolean);
    const cc = env.CC ? which(env.CC, env) ?? (fs.existsSync(env.CC) ? env.CC : undefined) : ['cc', 'gcc', 'clang'].map((c) => which(c, env)).find(Boolean);
    if (!cxx || !cc) {
      const what = !cxx && !cc ? 'no C/C++ compiler found' : !cxx ? `no C++ compiler found${env.CXX ? ` (CXX=${env.CXX})` : ''}` : `no C compiler found${env.CC ? ` (CC=${env.CC})` : ''}`;
      lines.push(`${what}: a C++17 compiler is needed${process.platform === 'darwin' ? ' (xcode-select --install)' : debianHint('g++')}`);
    }
  }
  if (gpu === 'cuda') {
    const cuda = cudaRoot(env);
    if (!cuda) lines.push(`LLAVA_MED_GPU=cuda but no CUDA toolkit found (nvcc): install it (https://developer.nvidia.com/cuda-downloads) or set CUDAToolkit_ROOT`);
    else {
      const libDirs = ['lib64', 'lib', path.join('lib', 'x64'), ...['x86_64', 'sbsa', 'aarch64'].map((a) => path.join('targets', `${a}-linux`, 'lib'))].map((d) => path.join(cuda, d));
      if (process.platform === 'linux') libDirs.push('/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu');
      const major = fs.existsSync(path.join(cuda, 'version.json')) ? JSON.parse(fs.readFileSync(path.join(cuda, 'version.json'), 'utf8')).cuda?.version?.split('.')[0] : undefined;
      if (!hasLib(libDirs, 'cublas')) {
        lines.push(`the CUDA toolkit at ${cuda} has no cuBLAS (libcublas), which ggml's CUDA backend links: install it${process.platform === 'linux' ? ` (NVIDIA's apt repository: apt-get install libcublas-dev${major ? `-${major}-0` : ''}, or the full cuda-toolkit${major ? `-${major}-0` : ''})` : ''}`);
      }
    }
  }
  if (gpu === 'vulkan') {
    if (!which('glslc', env)) lines.push(`glslc not found: the Vulkan backend compiles its shaders with it${debianHint('glslc')}`);
    const sdk = env.VULKAN_SDK;
    const header = [sdk && path.join(sdk, 'include', 'vulkan', 'vulkan.h'), '/usr/include/vulkan/vulkan.h', '/usr/local/include/vulkan/vulkan.h'].filter(Boolean);
    if (!header.some((h) => fs.existsSync(h))) lines.push(`Vulkan headers not found (vulkan/vulkan.h)${debianHint('libvulkan-dev')}, or set VULKAN_SDK`);
    else if (process.platform === 'linux' && !hasLib([sdk && path.join(sdk, 'lib'), '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib', '/usr/local/lib'].filter(Boolean), 'vulkan')) {
      lines.push(`the Vulkan loader library (libvulkan.so) not found${debianHint('libvulkan-dev')}`);
    }
  }
  if (gpu === 'metal' && process.platform !== 'darwin') lines.push(`LLAVA_MED_GPU=metal needs macOS; this is ${process.platform}`);
  return lines;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const gpu = ['cuda', 'vulkan', 'metal'].find((g) => process.argv.includes(`--${g}`)) ?? (process.env.LLAVA_MED_GPU || 'cpu').toLowerCase();
  const lines = preflight(gpu);
  for (const l of lines) process.stderr.write(`[llava-med] missing: ${l}\n`);
  if (!lines.length) process.stderr.write(`[llava-med] everything a ${gpu} source build needs is here\n`);
  process.exit(lines.length ? 1 : 0);
}
