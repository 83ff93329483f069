#!/usr/bin/env node
// How long a running stream stalls while a newcomer's prompt loads (BENCHMARKS.md, serve section):
// bench model, 2 sequences; request A streams 40 tokens greedily, request B (another image) arrives
// after A's 3rd token. Prints per round: A's longest gap between two tokens once B arrived (and before),
// B's time to first token, both totals, and B's encode / image / text prefill times.
//   node bench/serve-stall.mjs [dist dir (default dist/)] [--rounds 2] [--threads N]
// To compare schedulers, copy dist/ to another folder inside the checkout (so packages resolve) and
// replace its answer/scheduler.js by the other version.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { benchModels, ensureBenchModels } from './models.mjs';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name, def) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : def);
const dist = path.resolve(argv[0] && !argv[0].startsWith('--') ? argv[0] : path.join(root, 'dist'));
const rounds = Number(opt('rounds', '2'));
const threads = Number(opt('threads', String(os.availableParallelism())));
await ensureBenchModels();
const { LlavaMed } = await import(pathToFileURL(path.join(dist, 'llava-med.js')).href);
const sharp = (await import('sharp')).default;
const src = path.join(root, 'assets', 'sample-xray.png');
const img = async (i) => sharp(src).modulate({ brightness: 0.8 + i * 0.05 }).rotate(i * 3, { background: '#000' }).png().toBuffer();
const med = await LlavaMed.load({ model: benchModels.q4, mmproj: benchModels.mmproj, sequences: 2, contextSize: 4096, threads });
await med.ask(await img(7), 'Warm-up?', { temperature: 0, maxTokens: 2 });
const G = { temperature: 0, stop: [] };
const s = (ms) => +(ms / 1000).toFixed(2);
const longestGap = (ts) => ts.reduce((m, t, i) => (i ? Math.max(m, t - ts[i - 1]) : m), 0);
for (let round = 0; round < rounds; round++) {
  const [ia, ib] = [await img(2 * round), await img(2 * round + 1)];
  const times = [];
  let bStart = 0;
  let bFirst = 0;
  let b;
  const t0 = performance.now();
  const a = await med.ask(ia, 'What is shown in this image?', {
    ...G,
    maxTokens: 40,
    onTextChunk: () => {
      times.push(performance.now());
      if (times.length !== 3) return;
      bStart = performance.now();
      b = med.ask(ib, 'Is there any abnormality?', { ...G, maxTokens: 8, onTextChunk: () => (bFirst ||= performance.now()) });
    },
  });
  const aEnd = performance.now();
  const rb = await b;
  const bEnd = performance.now();
  console.log(JSON.stringify({
    round,
    aTokens: a.tokens.length,
    longestGapAfterB_s: s(longestGap(times.filter((t) => t >= bStart))),
    longestGapBeforeB_s: s(longestGap(times.filter((t) => t < bStart))),
    bTimeToFirstToken_s: s(bFirst - bStart),
    aTotal_s: s(aEnd - t0),
    bTotal_s: s(bEnd - bStart),
    bEncode_s: s(rb.timings.imageEncodeMs),
    bImageDecode_s: s(rb.timings.imageDecodeMs),
    bPrompt_s: s(rb.timings.promptMs),
    load: os.loadavg()[0],
  }));
}
await med.dispose();
