#!/usr/bin/env node
// `npm install` hook: use a prebuilt binary when one loads on this machine, otherwise build
// llava_med.node from source (llama.cpp from the pinned node-llama-cpp bundle + our patches).
//   LLAVA_MED_SKIP_BUILD=1            do nothing (e.g. when the addon is provided by other means)
//   LLAVA_MED_FROM_SOURCE=1           ignore prebuilt binaries and always build
//   LLAVA_MED_GPU=cuda|vulkan|metal   build with that GPU backend (implies building from source)
//   LLAVA_MED_KEEP_BUILD=1            keep the build tree and llama.cpp source after a build
//
// npm shows nothing of an install script's output while it runs (only when it fails), so a
// source build reports its progress on the terminal itself (/dev/tty, when there is one) and
// writes a status line to stderr every 30 s (visible with --foreground-scripts and in CI logs);
// the full compiler output goes to build/llava-med-build.log.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BuildSettingError, ourMessages, parseProgress, selectedGpu } from './build-native.mjs';
import { preflight } from './preflight.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const log = (m) => process.stderr.write(`[llava-med install] ${m}\n`);
const env = process.env;

if (env.LLAVA_MED_SKIP_BUILD === '1') {
  log('LLAVA_MED_SKIP_BUILD=1: not building the native addon');
  process.exit(0);
}

let gpu;
try {
  gpu = selectedGpu([], env);
} catch (e) {
  if (!(e instanceof BuildSettingError)) throw e;
  log(e.message);
  process.exit(1);
}

/**
 * Asks the package's own loader (dist/engine/binding.js, present in a packed tarball) which
 * prebuilt binary it picks for this CPU, and loads it in a child process: a binary that cannot
 * run here must not take the install down with it.
 */
function prebuiltLoads() {
  const binding = path.join(root, 'dist', 'engine', 'binding.js');
  if (!fs.existsSync(path.join(root, 'prebuilds')) || !fs.existsSync(binding)) return false;
  const script = `
    const b = await import(${JSON.stringify(new URL(`file://${binding}`).href)});
    const all = b.addonCandidates();
    const pre = all.filter((c) => c.path.includes(${JSON.stringify(`${path.sep}prebuilds${path.sep}`)}));
    try { b.loadAddon(pre); } catch (e) { process.stderr.write(e.message + '\\n'); process.exit(3); }
    process.stdout.write(JSON.stringify(b.loadedAddon()));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...env, LLAVA_MED_ADDON: '' } });
  if (r.status === 0) {
    const got = JSON.parse(r.stdout);
    log(`using the prebuilt ${path.relative(root, got.path)}${got.level ? ` (CPU level ${got.level})` : ''}`);
    return true;
  }
  log(`no prebuilt binary loads here; building from source.${r.stderr ? `\n${r.stderr.trim()}` : ''}`);
  return false;
}

if (!env.LLAVA_MED_GPU && env.LLAVA_MED_FROM_SOURCE !== '1' && prebuiltLoads()) process.exit(0);

const missing = preflight(gpu, env);
if (missing.length) {
  log(`cannot build the native addon from source (backend ${gpu}):`);
  for (const m of missing) log(`  missing: ${m}`);
  log('Or set LLAVA_MED_SKIP_BUILD=1 to install without the addon (conversion and evaluation still work).');
  process.exit(1);
}

const fmt = (ms) => {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s` : `${s} s`;
};

async function buildFromSource() {
  fs.mkdirSync(path.join(root, 'build'), { recursive: true });
  const logFile = path.join(root, 'build', 'llava-med-build.log');
  const out = fs.createWriteStream(logFile);
  let tty;
  try {
    tty = fs.openSync('/dev/tty', 'w');
  } catch {
    tty = undefined;
  }
  const started = Date.now();
  log(`building the native addon from source (backend ${gpu}): llama.cpp takes about 5-15 min cold on 2 cores, seconds with a warm ccache. Full log: ${logFile}`);
  let progress = { pct: 0 };
  let phase = 'preparing llama.cpp';
  const status = () => `${phase}${progress.total ? ` ${progress.done}/${progress.total} (${progress.pct}%)` : progress.pct ? ` ${progress.pct}%` : ''}, ${fmt(Date.now() - started)}`;
  let lastTty = 0;
  const toTty = (force = false) => {
    if (tty === undefined || (!force && Date.now() - lastTty < 500)) return;
    lastTty = Date.now();
    try {
      fs.writeSync(tty, `\r\x1b[K[llava-med install] ${status()}`);
    } catch {
      tty = undefined;
    }
  };
  const timer = setInterval(() => log(status()), Number(env.LLAVA_MED_PROGRESS_MS) || 30000);
  const child = spawn(process.execPath, [path.join(root, 'scripts', 'build-native.mjs')], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const onData = (chunk) => {
    out.write(chunk);
    tail = (tail + chunk.toString()).slice(-200000);
    for (const line of chunk.toString().split(/\r?\n/)) {
      if (/Configuring|-- /.test(line) && !progress.pct) phase = 'configuring';
      const p = parseProgress(line);
      if (p) {
        phase = 'compiling';
        progress = p;
      }
    }
    toTty();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const code = await new Promise((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  clearInterval(timer);
  await new Promise((resolve) => out.end(resolve));
  if (tty !== undefined) {
    toTty(true);
    fs.writeSync(tty, '\n');
    fs.closeSync(tty);
  }
  if (code !== 0) {
    // Our own CMake checks (CMakeLists.txt) say what is wrong in lines starting with "llava-med:".
    const ours = ourMessages(tail);
    log(`building failed after ${fmt(Date.now() - started)}.`);
    if (ours.length) for (const l of ours) log(`  ${l}`);
    else for (const l of tail.trimEnd().split('\n').slice(-15)) log(`  | ${l}`);
    log(`Full log: ${logFile}`);
    log('Set LLAVA_MED_SKIP_BUILD=1 to install without the addon (conversion and evaluation still work).');
    process.exit(1);
  }
  log(`built in ${fmt(Date.now() - started)}`);
}

await buildFromSource();

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
