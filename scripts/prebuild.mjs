#!/usr/bin/env node
// `npm run build:prebuilds`: the prebuilt binaries that go into the npm tarball, made with
// prebuildify in its layout: prebuilds/<platform>-<arch>/llava_med[.<level>][.<libc>].node.
// The same script is what a release machine of each platform runs (docs/build.md):
//   x64 (linux, win32, darwin)  one binary per CPU level of native/cpu-levels.json; the loader
//                               (lib/engine/binding.ts) picks the best level the CPU has
//   arm64 (linux, darwin)       one portable binary (GGML_NATIVE=OFF, ggml's defaults);
//                               on darwin with Metal (the default backend there)
// Options:
//   --levels a,b   only these x64 levels (CI builds one: test/install/packed-install.test.ts)
//   --list         print the binaries this machine would make, build nothing
// Each level builds in its own folder build-<level>/ next to build/: only ggml-cpu's sources
// depend on the level, and with folders at the same depth ccache reuses every other object
// (CCACHE_BASEDIR, scripts/build-native.mjs). prebuildify drives a node-gyp stand-in
// (scripts/prebuild-gyp-shim.mjs) and picks the result up from <cwd>/build/Release: the cwd
// given to it is a staging folder whose `build` links to build-<level>, so the developer's own
// build/Release is never touched.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { cpuLevels } from './build-native.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const prebuildify = require('prebuildify');
const args = process.argv.slice(2);
const log = (m) => process.stderr.write(`[prebuild] ${m}\n`);

export function plannedBuilds(arch = process.arch, only) {
  const levels = arch === 'x64' ? cpuLevels('x64').map((l) => l.name) : [undefined];
  if (!only) return levels;
  const unknown = only.filter((l) => !levels.includes(l));
  if (unknown.length) throw new Error(`unknown level(s) ${unknown.join(', ')}: ${arch} has ${levels.join(', ')}`);
  return levels.filter((l) => only.includes(l));
}

function buildOne(level) {
  const tag = level ?? 'portable';
  const out = `build-${tag}`;
  const stage = path.join(root, '.prebuild-stage', tag);
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(path.join(root, out), { recursive: true });
  fs.mkdirSync(stage, { recursive: true });
  fs.symlinkSync(path.join(root, out), path.join(stage, 'build'), process.platform === 'win32' ? 'junction' : 'dir');
  // prebuildify moves the first .node it finds in <cwd>/build/Release: start without one.
  fs.rmSync(path.join(root, out, 'Release', 'llava_med.node'), { force: true });
  const shim = path.join(root, 'scripts', 'prebuild-gyp-shim.mjs');
  const cpu = level ? ['--level', level] : ['--portable'];
  const started = Date.now();
  log(`building ${tag} in ${out}/`);
  return new Promise((resolve, reject) => {
    prebuildify(
      {
        cwd: stage,
        out: root,
        name: level ? `llava_med.${level}` : 'llava_med',
        napi: true,
        targets: [{ runtime: 'node', target: process.versions.node }],
        strip: process.platform === 'linux' || process.platform === 'darwin',
        tagLibc: process.platform === 'linux',
        // One command line, run through a shell: prebuildify appends node-gyp's arguments.
        nodeGyp: [process.execPath, shim, ...cpu, '--out', out].map((a) => JSON.stringify(a)).join(' '),
        shell: true,
      },
      (err) => {
        fs.rmSync(stage, { recursive: true, force: true });
        if (err) return reject(err);
        log(`${tag} done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
        resolve();
      },
    );
  });
}

async function main() {
  const at = args.indexOf('--levels');
  const only = at >= 0 ? args[at + 1].split(',').filter(Boolean) : undefined;
  const builds = plannedBuilds(process.arch, only);
  const dir = path.join('prebuilds', `${process.platform}-${process.arch}`);
  if (args.includes('--list')) {
    for (const l of builds) process.stdout.write(`${dir}/${l ? `llava_med.${l}` : 'llava_med'}${process.platform === 'linux' ? '.glibc' : ''}.node\n`);
    return;
  }
  for (const l of builds) await buildOne(l);
  fs.rmSync(path.join(root, '.prebuild-stage'), { recursive: true, force: true });
  for (const f of fs.readdirSync(path.join(root, dir))) log(`${dir}/${f}: ${(fs.statSync(path.join(root, dir, f)).size / 1e6).toFixed(1)} MB`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    log(`failed: ${e.message}`);
    process.exit(1);
  });
}
