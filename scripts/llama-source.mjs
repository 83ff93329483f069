#!/usr/bin/env node
// Puts the pinned llama.cpp source in deps/llama.cpp and applies native/patches/*.diff.
//
// The source is the git bundle that the npm package node-llama-cpp carries
// (llama/gitRelease.bundle). It is looked for, in order:
//   1. llama-source/gitRelease.bundle — copied into our own npm tarball at prepack, so an
//      `npm install llava-med` that must build from source downloads nothing more;
//   2. node_modules/node-llama-cpp/llama/gitRelease.bundle — if someone installed it;
//   3. .cache/node-llama-cpp-<version>.tgz — fetched once with `npm pack` (the npm registry
//      only), checked against the integrity pinned in package.json, and only the bundle
//      extracted. node-llama-cpp is never installed: its prebuilt binaries weigh 732 MB.
// A stamp file records the bundle commit and the patch hashes, so a changed patch set
// re-creates the tree and an unchanged one is a no-op.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const src = pkg.llamaCppSource;
const dest = path.join(root, 'deps', 'llama.cpp');
const patchDir = path.join(root, 'native', 'patches');
const log = (m) => process.stderr.write(`[llama-source] ${m}\n`);

function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...opts });
}

function sriOf(file) {
  const [algo] = src.integrity.split('-');
  return `${algo}-${createHash(algo).update(fs.readFileSync(file)).digest('base64')}`;
}

export function findBundle() {
  const tried = [];
  const packed = path.join(root, 'llama-source', 'gitRelease.bundle');
  if (fs.existsSync(packed)) return packed;
  tried.push(packed);
  const installed = path.join(root, 'node_modules', src.package, src.bundle);
  if (fs.existsSync(installed)) {
    const v = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', src.package, 'package.json'), 'utf8')).version;
    if (v === src.version) return installed;
    tried.push(`${installed} (version ${v}, want ${src.version})`);
  } else tried.push(installed);

  const cacheDir = path.join(root, '.cache');
  const tgz = path.join(cacheDir, `${src.package}-${src.version}.tgz`);
  const bundle = path.join(cacheDir, `${src.package}-${src.version}.bundle`);
  if (fs.existsSync(bundle)) return bundle;
  fs.mkdirSync(cacheDir, { recursive: true });
  if (!fs.existsSync(tgz)) {
    log(`fetching ${src.package}@${src.version} with npm pack (source only, no install)`);
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    run(npm, ['pack', `${src.package}@${src.version}`, '--pack-destination', cacheDir, '--silent'], { cwd: cacheDir });
  }
  const got = sriOf(tgz);
  if (got !== src.integrity) {
    fs.rmSync(tgz, { force: true });
    throw new Error(`${tgz}: integrity ${got} does not match the pinned ${src.integrity}`);
  }
  const tmp = fs.mkdtempSync(path.join(cacheDir, 'x-'));
  try {
    run('tar', ['-xzf', tgz, '-C', tmp, `package/${src.bundle}`]);
    fs.renameSync(path.join(tmp, 'package', src.bundle), bundle);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return bundle;
}

function patchFiles() {
  if (!fs.existsSync(patchDir)) return [];
  return fs.readdirSync(patchDir).filter((f) => f.endsWith('.diff')).sort().map((f) => path.join(patchDir, f));
}

function wantedStamp(patches) {
  const h = createHash('sha256');
  h.update(`${src.version}:${src.tag}\n`);
  for (const p of patches) h.update(path.basename(p)).update(fs.readFileSync(p));
  return h.digest('hex');
}

export function ensureLlamaSource({ quiet = false } = {}) {
  const patches = patchFiles();
  const stamp = wantedStamp(patches);
  const stampFile = path.join(dest, '.llava-med-stamp');
  if (fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) {
    if (!quiet) log(`deps/llama.cpp is up to date (${src.tag}, ${patches.length} patches)`);
    return dest;
  }
  const bundle = findBundle();
  if (fs.existsSync(path.join(dest, '.git'))) {
    log('resetting deps/llama.cpp to the pinned commit');
    run('git', ['-C', dest, 'reset', '--hard', '-q']);
    run('git', ['-C', dest, 'clean', '-fdq']);
  } else {
    fs.rmSync(dest, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    log(`cloning ${path.relative(root, bundle)} into deps/llama.cpp`);
    run('git', ['clone', '-q', '-c', 'advice.detachedHead=false', bundle, dest]);
  }
  const head = run('git', ['-C', dest, 'rev-parse', '--short=7', 'HEAD']).trim();
  if (!head.startsWith(src.commit)) throw new Error(`bundle commit ${head} is not the pinned ${src.commit}`);
  for (const p of patches) {
    log(`applying ${path.basename(p)}`);
    run('git', ['-C', dest, 'apply', '--whitespace=nowarn', p]);
  }
  fs.writeFileSync(stampFile, stamp);
  return dest;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    ensureLlamaSource();
  } catch (e) {
    log(`failed: ${e.message}`);
    process.exit(1);
  }
}
