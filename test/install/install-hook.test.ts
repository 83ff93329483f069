/**
 * The install hook's behaviour without a usable prebuilt binary: every missing build tool gets
 * one line saying what to install (scripts/preflight.mjs) and no stack trace; the GPU backend
 * comes from LLAVA_MED_GPU only; the CPU level options a prebuilt binary is compiled with; the
 * progress parsed from CMake's output.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cmakeDefinitions, parseProgress, selectedGpu, BuildSettingError } from '../../scripts/build-native.mjs';
import { preflight, which } from '../../scripts/preflight.mjs';
import { REPO } from '../engine/util.js';

const scratch = t.testdir({});
let made = 0;

/** A new folder of executables named `tools` (scripts that exit 0), to be the whole PATH. */
function pathWith(tools: string[]): string {
  const dir = path.join(scratch, `path-${made++}`);
  fs.mkdirSync(dir);
  for (const tool of tools) {
    const p = path.join(dir, tool);
    if (tool === 'node') fs.symlinkSync(process.execPath, p);
    else fs.writeFileSync(p, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  }
  return dir;
}

t.test('preflight: one line per missing tool, each saying what to install', async (t) => {
  const none = { PATH: pathWith([]) };
  const lines = preflight('cpu', none, { llamaReady: false });
  t.equal(lines.length, 4, lines.join('\n'));
  t.match(lines[0], /^git not found: .*apt-get install git/);
  t.match(lines[1], /^cmake not found: version 3\.18 or newer is needed .*apt-get install cmake/);
  t.match(lines[2], /^neither make nor ninja found: .*apt-get install make/);
  t.match(lines[3], /^no C\/C\+\+ compiler found: a C\+\+17 compiler is needed .*apt-get install g\+\+/);
  t.same(preflight('cpu', none, { llamaReady: true }).filter((l) => l.startsWith('git')), [], 'git is not needed once deps/llama.cpp is unpacked');

  const all = { PATH: pathWith(['git', 'cmake', 'ninja', 'cc', 'c++']) };
  t.same(preflight('cpu', all, { llamaReady: false }), [], 'all there: nothing to say');
  t.same(preflight('cpu', { PATH: pathWith(['git', 'cmake', 'make', 'cc']) }, { llamaReady: false }), ['no C++ compiler found: a C++17 compiler is needed (Debian/Ubuntu: apt-get install g++)']);
  t.same(preflight('cpu', { ...all, CXX: '/nonexistent/clang++' }, { llamaReady: false }), ['no C++ compiler found (CXX=/nonexistent/clang++): a C++17 compiler is needed (Debian/Ubuntu: apt-get install g++)']);
});

t.test('preflight: an old cmake is named with its version', async (t) => {
  const dir = pathWith(['git', 'make', 'cc', 'c++']);
  fs.writeFileSync(path.join(dir, 'cmake'), '#!/bin/sh\necho "cmake version 3.16.3"\n', { mode: 0o755 });
  t.same(preflight('cpu', { PATH: dir }, { llamaReady: false }), ['cmake 3.16 is too old: 3.18 or newer is needed (Debian/Ubuntu: apt-get install cmake), or pip install cmake']);
});

t.test('preflight: Vulkan needs glslc and the headers', async (t) => {
  const env = { PATH: pathWith(['git', 'cmake', 'make', 'cc', 'c++']), VULKAN_SDK: pathWith([]) };
  const lines = preflight('vulkan', env, { llamaReady: true });
  t.match(lines[0], /^glslc not found: .*apt-get install glslc/);
  if (!['/usr/include/vulkan/vulkan.h', '/usr/local/include/vulkan/vulkan.h'].some((h) => fs.existsSync(h))) t.match(lines[1], /^Vulkan headers not found/);
});

t.test('the install hook with no build tools and no prebuilt binary: the lines, exit 1, no stack trace', async (t) => {
  const PATH = pathWith(['node']);
  const r = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'install.mjs')], { cwd: REPO, encoding: 'utf8', env: { PATH, HOME: process.env.HOME, LLAVA_MED_FROM_SOURCE: '1' } });
  t.equal(r.status, 1);
  t.equal(r.stdout, '', 'nothing on stdout');
  const lines = r.stderr.trim().split('\n');
  t.match(lines[0], /^\[llava-med install\] cannot build the native addon from source \(backend cpu\):$/);
  const missing = lines.filter((l) => l.includes('missing:'));
  t.same(missing.map((l) => l.replace(/^\[llava-med install\] {3}missing: /, '').split(':')[0]), [
    ...(fs.existsSync(path.join(REPO, 'deps', 'llama.cpp', '.llava-med-stamp')) ? [] : ['git not found']),
    'cmake not found',
    'neither make nor ninja found',
    'no C/C++ compiler found',
  ]);
  t.match(lines.at(-1), /LLAVA_MED_SKIP_BUILD=1/);
  t.equal(lines.length, missing.length + 2, 'the header, the missing tools, the hint: nothing was started');
  t.notMatch(r.stderr, /^\s+at /m, 'no stack trace');
});

t.test('the GPU backend comes from LLAVA_MED_GPU only (no npm config key)', async (t) => {
  t.equal(selectedGpu([], { LLAVA_MED_GPU: 'CUDA' }), 'cuda');
  t.equal(selectedGpu(['--vulkan'], { LLAVA_MED_GPU: 'cuda' }), 'vulkan', 'a flag wins');
  t.equal(selectedGpu([], { npm_config_llava_med_gpu: 'cuda' }), process.platform === 'darwin' ? 'metal' : 'cpu', 'npm config is ignored');
  t.throws(() => selectedGpu([], { LLAVA_MED_GPU: 'rocm' }), new BuildSettingError('LLAVA_MED_GPU=rocm: expected one of cuda, vulkan, metal, cpu'));
  const r = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'install.mjs')], { cwd: REPO, encoding: 'utf8', env: { PATH: process.env.PATH, LLAVA_MED_GPU: 'rocm' } });
  t.equal(r.status, 1);
  t.equal(r.stderr, '[llava-med install] LLAVA_MED_GPU=rocm: expected one of cuda, vulkan, metal, cpu\n', 'one line');
});

t.test('a CPU level compiles ggml-cpu with exactly its instruction sets', async (t) => {
  const on = (level: string) => cmakeDefinitions('cpu', { level, extra: '' }).filter((d) => d.endsWith('=ON')).map((d) => d.slice(4, -3));
  t.same(on('x86-64-v2'), ['GGML_SSE42']);
  t.same(on('x86-64-v3').sort(), ['GGML_AVX', 'GGML_AVX2', 'GGML_BMI2', 'GGML_F16C', 'GGML_FMA', 'GGML_SSE42']);
  t.same(on('icelake').sort(), ['GGML_AVX', 'GGML_AVX2', 'GGML_AVX512', 'GGML_AVX512_VBMI', 'GGML_AVX512_VNNI', 'GGML_BMI2', 'GGML_F16C', 'GGML_FMA', 'GGML_SSE42']);
  t.ok(cmakeDefinitions('cpu', { level: 'x86-64-v2', extra: '' }).includes('--CDGGML_NATIVE=OFF'));
  t.ok(cmakeDefinitions('cpu', { level: 'x86-64-v2', extra: '' }).includes('--CDGGML_AVX2=OFF'), 'ggml would turn AVX2 on by default with GGML_NATIVE=OFF');
  t.ok(cmakeDefinitions('cpu', { extra: '' }).includes('--CDGGML_NATIVE=ON'), 'a local build is native');
  t.throws(() => cmakeDefinitions('cpu', { level: 'pentium' }), /unknown CPU level pentium/);
  t.ok(cmakeDefinitions('cpu', { level: 'icelake', extra: '' }).includes('--CDLLAVA_MED_CPU_FLAGS=-mgfni;-mavx512vbmi2;-mavx512bitalg;-mavx512vpopcntdq;-mavx512ifma;-mvaes;-mvpclmulqdq;-mbmi;-mlzcnt;-mpopcnt;-mmovbe'), "icelake: the ISA gcc's -march=native adds on an Ice Lake server, for ggml-cpu");
  t.ok(cmakeDefinitions('cpu', { level: 'x86-64-v2', extra: '' }).includes('--CDLLAVA_MED_CPU_FLAGS='), 'no extra flags, passed empty so a reused folder forgets them');
});

t.test('progress from CMake output (ninja and make)', async (t) => {
  t.same(parseProgress('[120/264] Building CXX object llama.cpp/src/CMakeFiles/llama.dir/llama-model.cpp.o'), { done: 120, total: 264, pct: 45 });
  t.same(parseProgress('[ 45%] Building CXX object ...'), { pct: 45 });
  t.equal(parseProgress('-- Configuring done'), undefined);
});

t.test('which() only finds executables', async (t) => {
  const dir = t.testdir({ tool: 'x' });
  t.equal(which('tool', { PATH: dir }), undefined, 'not executable');
  fs.chmodSync(path.join(dir, 'tool'), 0o755);
  t.equal(which('tool', { PATH: dir }), path.join(dir, 'tool'));
});
