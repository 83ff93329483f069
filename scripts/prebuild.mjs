#!/usr/bin/env node
// Makes a portable prebuilt binary with prebuildify, in its layout
// (prebuilds/<platform>-<arch>/node.napi[.glibc].node), which lib/engine/binding.ts searches
// before the local build. prebuildify drives node-gyp; PREBUILD_NODE_GYP points it at a shim
// that builds with cmake-js instead (scripts/prebuild-gyp-shim.mjs), in portable CPU mode.
// Extra arguments go to prebuildify (e.g. --arch).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const shim = path.join(root, 'scripts', 'prebuild-gyp-shim.mjs');
const bin = require.resolve('prebuildify/bin.js');
const r = spawnSync(process.execPath, [bin, '--napi', '--strip', '--tag-libc', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, PREBUILD_NODE_GYP: `"${process.execPath}" "${shim}"` },
});
process.exit(r.status ?? 1);
