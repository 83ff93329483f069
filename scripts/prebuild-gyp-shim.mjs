#!/usr/bin/env node
// Stands in for node-gyp under prebuildify: `rebuild --target=… --release [--arch=…]` becomes a
// portable cmake-js build into build/Release, where prebuildify picks up the .node file.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
if (args[0] !== 'rebuild') {
  process.stderr.write(`prebuild-gyp-shim: only 'rebuild' is supported, got ${args.join(' ')}\n`);
  process.exit(2);
}
const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.mjs'), '--portable'], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
