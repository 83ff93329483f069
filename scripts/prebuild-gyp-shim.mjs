#!/usr/bin/env node
// Stands in for node-gyp under prebuildify (scripts/prebuild.mjs): its own options come first
// (--level <name> | --portable, --out <folder>), then prebuildify's node-gyp arguments
// (`rebuild --target=… --devdir=… --arch=… --release`), of which only `rebuild` matters: the
// addon is N-API, so one binary serves every Node version.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
if (!args.includes('rebuild')) {
  process.stderr.write(`prebuild-gyp-shim: only 'rebuild' is supported, got ${args.join(' ')}\n`);
  process.exit(2);
}
const ours = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--level' || args[i] === '--out') ours.push(args[i], args[++i]);
  else if (args[i] === '--portable') ours.push(args[i]);
}
const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.mjs'), ...ours], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
