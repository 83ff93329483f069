#!/usr/bin/env node
// `npm install` hook: use a prebuilt binary when one loads on this machine, otherwise build
// llava_med.node from source (llama.cpp from the pinned node-llama-cpp bundle + our patches).
//   LLAVA_MED_SKIP_BUILD=1     do nothing (e.g. when the addon is provided by other means)
//   LLAVA_MED_FROM_SOURCE=1    ignore prebuilt binaries and always build
//   LLAVA_MED_GPU=cuda|vulkan|metal   build with that GPU backend (implies building from source)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const log = (m) => process.stderr.write(`[llava-med install] ${m}\n`);
const env = process.env;

if (env.LLAVA_MED_SKIP_BUILD === '1') {
  log('LLAVA_MED_SKIP_BUILD=1: not building the native addon');
  process.exit(0);
}

function prebuiltLoads() {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (!fs.existsSync(dir)) return false;
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.node'))) {
    // Load in a child: a binary for the wrong CPU can kill the process that loads it.
    const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(dir, f))})`], { stdio: 'ignore' });
    if (r.status === 0) {
      log(`using prebuilt ${path.relative(root, path.join(dir, f))}`);
      return true;
    }
    log(`prebuilt ${f} does not load here; building from source`);
  }
  return false;
}

const wantsGpu = env.LLAVA_MED_GPU || env.npm_config_llava_med_gpu;
if (!wantsGpu && env.LLAVA_MED_FROM_SOURCE !== '1' && prebuiltLoads()) process.exit(0);

log('building the native addon from source (llama.cpp + mtmd); a cold build takes several minutes, ccache makes rebuilds fast');
const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.mjs')], { cwd: root, stdio: 'inherit', env });
if (r.status !== 0) {
  log('building failed. It needs cmake >= 3.18, a C++17 compiler and git (Debian/Ubuntu: apt-get install cmake g++ git ccache).');
  log('Set LLAVA_MED_SKIP_BUILD=1 to install without the addon (conversion and evaluation still work).');
  process.exit(r.status ?? 1);
}

// Installed as a dependency (not a git checkout): keep only the addon. The llama.cpp clone
// (~200 MB) and the object files are not needed at run time.
if (!fs.existsSync(path.join(root, '.git')) && env.LLAVA_MED_KEEP_BUILD !== '1') {
  const addon = path.join(root, 'build', 'Release', 'llava_med.node');
  const keep = path.join(root, 'build', 'llava_med.node.keep');
  fs.renameSync(addon, keep);
  for (const e of fs.readdirSync(path.join(root, 'build'))) {
    if (e !== 'llava_med.node.keep') fs.rmSync(path.join(root, 'build', e), { recursive: true, force: true });
  }
  fs.mkdirSync(path.dirname(addon), { recursive: true });
  fs.renameSync(keep, addon);
  fs.rmSync(path.join(root, 'deps'), { recursive: true, force: true });
  log('removed the build tree and llama.cpp source (set LLAVA_MED_KEEP_BUILD=1 to keep them)');
}
