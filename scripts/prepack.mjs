#!/usr/bin/env node
// Before `npm pack`/`npm publish`: compile TypeScript and put the llama.cpp bundle inside
// our own tarball (llama-source/), so a user whose platform has no prebuilt binary builds
// from source without downloading node-llama-cpp (whose own binaries weigh 732 MB).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { findBundle } from './llama-source.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
// A clean dist/: tsc never deletes the output of a source file that was removed or renamed, and
// the tarball takes all of dist/.
fs.rmSync(path.join(root, 'dist'), { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
const dest = path.join(root, 'llama-source', 'gitRelease.bundle');
if (!fs.existsSync(dest)) {
  const bundle = findBundle();
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(bundle, dest);
}
process.stderr.write(`[prepack] dist/ compiled, ${path.relative(root, dest)} ready\n`);
