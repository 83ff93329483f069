#!/usr/bin/env node
// Compiles lib/ into dist/ (or --out-dir DIR) and keeps the CLI executable.
//   --clean   remove the output folder first (prepack: files of removed sources must not be published)
// tsc writes new files without the executable bit, so a clean build would leave the bin
// (dist/cli/main.js) unrunnable: `npx llava-med` in a checkout then fails with "Permission denied".
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const at = args.indexOf('--out-dir');
const outDir = at >= 0 ? path.resolve(args[at + 1]) : path.join(root, 'dist');
if (args.includes('--clean')) fs.rmSync(outDir, { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json'), '--outDir', outDir], { stdio: 'inherit' });
fs.chmodSync(path.join(outDir, 'cli', 'main.js'), 0o755);
