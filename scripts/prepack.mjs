#!/usr/bin/env node
// Before `npm pack`/`npm publish`: compile TypeScript and put the llama.cpp bundle inside
// our own tarball (llama-source/), so a user whose platform has no prebuilt binary builds
// from source without downloading node-llama-cpp (whose own binaries weigh 732 MB).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findBundle } from './llama-source.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// A clean dist/: tsc never deletes the output of a source file that was removed or renamed, and
// the tarball takes all of dist/.
execFileSync(process.execPath, [path.join(root, 'scripts', 'build-ts.mjs'), '--clean'], { stdio: 'inherit' });
const dest = path.join(root, 'llama-source', 'gitRelease.bundle');
if (!fs.existsSync(dest)) {
  const bundle = findBundle();
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(bundle, dest);
}
process.stderr.write(`[prepack] dist/ compiled, ${path.relative(root, dest)} ready\n`);
