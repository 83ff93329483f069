/**
 * What a user gets from npm: the baseline x86-64 prebuilt binary is made with the release script
 * (`npm run build:prebuilds -- --levels x86-64-v2`: only ggml-cpu's 16 sources compile, the rest
 * comes from ccache), `npm pack` puts it in the tarball, and the tarball installs into an empty
 * folder with a PATH holding only node, npm, npx and sh — no git, cmake, make or compiler, so a
 * source build could not even start. Then `npx llava-med demo` answers, and the installed binary,
 * forced to the baseline level, passes the converter fidelity gate against the float64 reference
 * (test/convert/fidelity.test.ts): the baseline kernels compute what the reference computes.
 * Install time is measured and printed, not asserted (the 30 s target is for a quiet machine).
 * Linux x64 only: the levels are x86-64 levels.
 */
import t from 'tap';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { which } from '../../scripts/preflight.mjs';
import { REPO } from '../engine/util.js';

if (process.platform !== 'linux' || process.arch !== 'x64') {
  t.comment(`packed install: x86-64 Linux only (this is ${process.platform}-${process.arch})`);
  t.end();
} else {
  const BASELINE = 'prebuilds/linux-x64/llava_med.x86-64-v2.glibc.node';
  const tmp = t.testdir({ bin: {}, proj: { 'package.json': JSON.stringify({ name: 'user-project', version: '1.0.0', private: true }) } });
  const bin = path.join(tmp, 'bin');
  for (const tool of ['node', 'npm', 'npx', 'sh']) fs.symlinkSync(which(tool)!, path.join(bin, tool));
  // A clean environment: nothing from the test runner or an enclosing `npm test` leaks in.
  const userEnv: NodeJS.ProcessEnv = { PATH: bin, HOME: process.env.HOME, LANG: 'C.UTF-8' };
  if (process.env.npm_config_cache) userEnv.npm_config_cache = process.env.npm_config_cache;
  const run = (cmd: string, args: string[], opts: SpawnSyncOptions) => {
    const started = Date.now();
    const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
    return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}`, stdout: String(r.stdout ?? ''), seconds: (Date.now() - started) / 1000 };
  };
  const devEnv = { ...process.env, CCACHE_DIR: process.env.CCACHE_DIR ?? path.join(process.env.HOME ?? '', '.cache', 'ccache') };

  t.test('the stripped PATH really has no build tools', async (t) => {
    for (const tool of ['git', 'cmake', 'make', 'ninja', 'cc', 'c++', 'gcc', 'g++', 'clang', 'nvcc']) t.equal(which(tool, userEnv), undefined, `${tool} is not on it`);
    t.ok(which('npm', userEnv), 'npm is');
  });

  let tarball = '';
  t.test('build:prebuilds makes the baseline binary and npm pack ships it', async (t) => {
    const pb = run(process.execPath, ['scripts/prebuild.mjs', '--levels', 'x86-64-v2'], { cwd: REPO, env: devEnv });
    t.equal(pb.status, 0, `prebuild (${pb.seconds.toFixed(0)} s)${pb.status ? `\n${pb.out.slice(-3000)}` : ''}`);
    t.ok(fs.existsSync(path.join(REPO, BASELINE)), BASELINE);
    const pack = run('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: REPO, env: devEnv });
    t.equal(pack.status, 0, `npm pack (${pack.seconds.toFixed(0)} s)${pack.status ? `\n${pack.out.slice(-3000)}` : ''}`);
    const info = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string; size: number; unpackedSize: number; files: { path: string; size: number }[] }[];
    const files = info[0]!.files.map((f) => f.path);
    tarball = path.join(tmp, info[0]!.filename);
    t.ok(files.includes(BASELINE), 'the tarball carries the baseline prebuilt binary');
    t.ok(files.includes('dist/engine/binding.js') && files.includes('native/cpu-levels.json'), 'and the loader with its level table');
    t.ok(files.includes('scripts/install.mjs') && files.includes('scripts/preflight.mjs') && files.includes('scripts/build-native.mjs'), 'and the install hook with what it imports');
    // prepack's clean TypeScript build (scripts/build-ts.mjs --clean) leaves the bin executable: tsc writes
    // new files without the executable bit, so `npx llava-med` in a checkout would fail with "Permission denied".
    t.ok(fs.statSync(path.join(REPO, 'dist', 'cli', 'main.js')).mode & 0o111, "after prepack's clean build, dist/cli/main.js is executable");
    t.notOk(files.some((f) => /^(build|deps|build-[^/]+)\//.test(f)), 'but no build tree or llama.cpp checkout');
    const prebuilt = info[0]!.files.filter((f) => f.path.startsWith('prebuilds/'));
    t.comment(`tarball ${(info[0]!.size / 1e6).toFixed(1)} MB (unpacked ${(info[0]!.unpackedSize / 1e6).toFixed(1)} MB); prebuilt: ${prebuilt.map((f) => `${path.basename(f.path)} ${(f.size / 1e6).toFixed(1)} MB`).join(', ')}`);
  });

  const installed = path.join(tmp, 'proj', 'node_modules', 'llava-med');
  t.test('npm install of the tarball with no build tools uses the prebuilt binary', async (t) => {
    const r = run('npm', ['install', tarball, '--no-audit', '--no-fund', '--foreground-scripts'], { cwd: path.join(tmp, 'proj'), env: userEnv });
    t.equal(r.status, 0, `npm install${r.status ? `\n${r.out.slice(-4000)}` : ''}`);
    t.match(r.out, /\[llava-med install\] using the prebuilt prebuilds\/linux-x64\/llava_med\.[\w-]+\.glibc\.node \(CPU level [\w-]+\)/, 'the hook says which binary it uses');
    t.notOk(fs.existsSync(path.join(installed, 'build')), 'nothing was built');
    t.comment(`npm install took ${r.seconds.toFixed(1)} s on this machine (load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}; target < 30 s on a quiet machine)`);
  });

  t.test('npx llava-med demo answers, on the baseline level', async (t) => {
    const env = { ...userEnv, LLAVA_MED_CPU_LEVEL: 'x86-64-v2' };
    const r = run('npx', ['llava-med', 'demo', '--cache', path.join(tmp, 'demo-cache')], { cwd: path.join(tmp, 'proj'), env });
    t.equal(r.status, 0, `demo${r.status ? `\n${r.out.slice(-3000)}` : ''}`);
    t.match(r.stdout, /^Answer: {3}\S.*$/m, 'an answer line with text');
    t.match(r.stdout, /generated \d+ tokens/);
    // Which binary the installed package's loader picks, and what ggml says it was compiled with.
    const probe = `const b = await import(${JSON.stringify(path.join(installed, 'dist', 'engine', 'binding.js'))});
      const a = b.loadAddon(); process.stdout.write(JSON.stringify({ loaded: b.loadedAddon(), info: a.systemInfo() }));`;
    const p = run(process.execPath, ['--input-type=module', '-e', probe], { cwd: path.join(tmp, 'proj'), env });
    t.equal(p.status, 0, `loader probe${p.status ? `\n${p.out.slice(-2000)}` : ''}`);
    const got = JSON.parse(p.stdout) as { loaded: { path: string; level: string }; info: string };
    t.equal(got.loaded.path, path.join(installed, BASELINE));
    t.equal(got.loaded.level, 'x86-64-v2');
    t.notMatch(got.info, /AVX = 1|AVX2 = 1|AVX512 = 1/, `ggml reports no AVX in the baseline binary (${got.info.trim()})`);
    t.match(got.info, /SSE3 = 1/);
  });

  t.test('the installed baseline binary passes the converter fidelity gate (float64 reference)', async (t) => {
    const addon = path.join(installed, BASELINE);
    const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAP')));
    env.LLAVA_MED_ADDON = addon;
    const r = run(process.execPath, [path.join(REPO, 'node_modules', 'tap', 'dist', 'esm', 'run.mjs'), '--reporter=terse', '--disable-coverage', 'test/convert/fidelity.test.ts'], { cwd: REPO, env });
    t.equal(r.status, 0, `fidelity gate with LLAVA_MED_ADDON=${addon} (${r.seconds.toFixed(0)} s)${r.status ? `\n${r.out.slice(-4000)}` : ''}`);
    const totals = r.out.match(/total: (\d+), pass: (\d+)/);
    t.ok(totals && Number(totals[1]) > 50 && totals[1] === totals[2], `all assertions passed (${totals?.[0]})`);
  });
}
