#!/usr/bin/env node
// The bad-input campaign (test/campaign/): every case in a child process, classified as typed error,
// success, crash or hang. CI runs a sample (all hand-made cases, 500 of the 4,000 seeded GGUF mutants
// drawn with the day's seed); this script runs the full set or another seed.
//   node scripts/campaign.mjs            the sample, today's seed
//   node scripts/campaign.mjs --full     all 4,000 mutants
//   node scripts/campaign.mjs --seed N   the sample drawn with seed N (reproduce a CI run)
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const env = { ...process.env };
if (args.includes('--full')) env.LLAVA_MED_CAMPAIGN = 'full';
const at = args.indexOf('--seed');
if (at >= 0) {
  if (!/^\d+$/.test(args[at + 1] ?? '')) {
    console.error('--seed takes a non-negative integer');
    process.exit(2);
  }
  env.LLAVA_MED_CAMPAIGN_SEED = args[at + 1];
}
const tap = createRequire(import.meta.url).resolve('tap/package.json').replace(/package\.json$/, '');
const bin = path.join(tap, 'dist', 'esm', 'run.mjs');
const r = spawnSync(process.execPath, [bin, '--timeout=3600', '--reporter=tap', 'test/campaign/campaign.test.ts'], { cwd: root, env, stdio: 'inherit' });
process.exit(r.status ?? 1);
