#!/usr/bin/env node
// How fast llava-med stops when told, on the bench model (bench/models.mjs: CLIP ViT-L/14-224 +
// a LLaMA-7B-shaped 4-layer LLM, Q4_K_M). Each round is a fresh process that aborts, at a random
// point inside the phase, each of:
//   load     LlavaMed.load            (model read, projector read, context creation)
//   encode   embedImage               (inside the vision encoder: preprocessing time + u × encode time)
//   prefill  ask with an image handle (image embedding + prompt evaluation, KV cache cleared first)
//   decode   stream                   (after the 3rd streamed chunk + u × one token's time)
//   queued   an ask waiting behind a running ask (its signal aborts while it waits)
//   dispose  dispose() while an ask runs (prefill or generation): time until dispose() resolves
// The latency is from abort() (or the dispose() call) to the moment the caller's promise settles
// (the event loop included), i.e. what a caller sees. Target: every figure ≤ 250 ms.
// Writes its section of BENCHMARKS.md (bench/lib/sections.mjs) and bench/.cache/abort-latency.json.
//   node bench/abort-latency.mjs [--rounds 7] [--per-round 2] [--threads N] [--seed 1] [--out BENCHMARKS.md]
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { childEnv, setSpinCount } from './lib/proc.mjs';
import { writeSection } from './lib/sections.mjs';
import { fmt, summary } from './lib/stats.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (k, d) => (argv.includes(`--${k}`) ? argv[argv.indexOf(`--${k}`) + 1] : d);
const TARGET_MS = 250;
const KINDS = ['load', 'encode', 'prefill', 'decode', 'queued', 'dispose'];
const log = (m) => process.stderr.write(`[bench:abort] ${m}\n`);

// ---- one round, in a child process --------------------------------------------------------------

async function child(o) {
  const { LlavaMed } = await import(pathToFileURL(path.join(root, 'dist', 'index.js')).href);
  let seed = o.seed >>> 0;
  const rnd = () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const between = (a, b) => a + (b - a) * rnd();
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const now = () => performance.now();
  const load1 = () => os.loadavg()[0];
  const opts = { model: o.model, mmproj: o.mmproj, threads: o.threads, logLevel: 'error', logger: () => {} };
  const Q = 'What is shown in this image?';
  const out = [];
  const record = (kind, r, extra = {}) => out.push({ kind, ...r, load1: load1(), ...extra });

  /** Starts `start(signal)`, aborts after `delay` ms; the latency is abort → settled. */
  async function abortAfter(start, delay) {
    const ac = new AbortController();
    let settledAt = 0;
    let outcome = '';
    const done = start(ac.signal).then(
      () => ((settledAt = now()), (outcome = 'resolved')),
      (e) => ((settledAt = now()), (outcome = e?.code ?? String(e))),
    );
    await sleep(delay);
    const t = now();
    ac.abort();
    await done;
    return settledAt < t ? { finishedFirst: true, outcome } : { ms: settledAt - t, outcome };
  }

  // load: a full load first (also warms the page cache), then one aborted at a random point
  let t0 = now();
  const first = await LlavaMed.load(opts);
  const loadMs = now() - t0;
  await first.dispose();
  record('load', await abortAfter((signal) => LlavaMed.load({ ...opts, signal }).then((m) => m.dispose()), between(0.05, 0.9) * loadMs), { phaseMs: loadMs });

  const med = await LlavaMed.load(opts);
  // reference timings
  t0 = now();
  const ref = await med.embedImage(o.image);
  const embedMs = now() - t0;
  const encodeMs = ref.encodeMs;
  const prepMs = Math.max(0, embedMs - encodeMs);
  await med.clearCache();
  const a = await med.ask(ref, Q, { temperature: 0, maxTokens: 16, stop: [] });
  const prefillMs = a.timings.imageDecodeMs + a.timings.promptMs;
  const tokenMs = a.timings.generateMs / Math.max(1, a.timings.generatedTokens);

  for (let i = 0; i < o.perRound; i++) {
    // encode: inside the encoder (after the decode + preprocessing time)
    record('encode', await abortAfter((signal) => med.embedImage(o.image, { signal }).then((h) => h.dispose()), prepMs + between(0.05, 0.9) * encodeMs), { phaseMs: encodeMs });
    // prefill: image embedding + prompt, from an empty cache
    await med.clearCache();
    record('prefill', await abortAfter((signal) => med.ask(ref, Q, { temperature: 0, maxTokens: 16, stop: [], signal }), between(0.05, 0.9) * prefillMs), { phaseMs: prefillMs });
    // decode: a few tokens into the stream
    {
      const ac = new AbortController();
      const it = med.stream(ref, Q, { temperature: 0, maxTokens: 256, stop: [], signal: ac.signal });
      let chunks = 0;
      let at = 0;
      let r;
      try {
        for await (const _ of it) {
          if (++chunks === 3) setTimeout(() => ((at = now()), ac.abort()), between(0, 1) * tokenMs);
        }
        r = { finishedFirst: true, outcome: 'resolved' };
      } catch (e) {
        r = at ? { ms: now() - at, outcome: e?.code ?? String(e) } : { finishedFirst: true, outcome: e?.code ?? String(e) };
      }
      record('decode', r, { phaseMs: tokenMs });
    }
    // queued: an ask waiting behind a running one
    {
      await med.clearCache();
      const running = med.ask(ref, Q, { temperature: 0, maxTokens: 32, stop: [] });
      let runningDone = false;
      running.then(() => (runningDone = true), () => (runningDone = true));
      const r = await abortAfter((signal) => med.ask(ref, 'And what else?', { temperature: 0, maxTokens: 4, signal }), between(20, 200));
      record('queued', { ...r, finishedFirst: r.finishedFirst || runningDone });
      await running;
    }
  }

  // dispose: while an ask runs, at a random point of its prefill or of its first 20 tokens
  await med.clearCache();
  const running = med.ask(ref, Q, { temperature: 0, maxTokens: 256, stop: [] });
  let runningOutcome = '';
  const ran = running.then(() => (runningOutcome = 'resolved'), (e) => (runningOutcome = e?.code ?? String(e)));
  const delay = between(0.05, 1) * (prefillMs + 20 * tokenMs);
  await sleep(delay);
  t0 = now();
  await med.dispose();
  const disposeMs = now() - t0;
  await ran;
  record('dispose', { ms: disposeMs, outcome: runningOutcome, finishedFirst: runningOutcome === 'resolved' }, { phase: delay < prefillMs ? 'prefill' : 'decode' });
  await ref.dispose().catch(() => {});
  process.stdout.write(`RESULT ${JSON.stringify({ out, ref: { loadMs, embedMs, encodeMs, prefillMs, tokenMs } })}\n`);
}

// ---- parent: rounds, summary, report -------------------------------------------------------------

function runChild(o, threads) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify(o)], {
      env: childEnv(threads),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    p.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    p.on('error', reject);
    p.on('close', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line) return reject(new Error(`round failed (exit ${code}): ${stdout.slice(-2000)}`));
      resolve(JSON.parse(line.slice(7)));
    });
  });
}

function render({ rows, cfg, machine, loadStart, loadEnd, refs }) {
  const L = [];
  L.push('## Abort latency', '');
  L.push(`Generated by \`node bench/abort-latency.mjs\` on ${machine.date} (commit ${machine.commit}); ${machine.cpu}, ${machine.cores} cores, node ${process.version}, ${cfg.threads} threads.`);
  L.push(`Bench model (Q4_K_M, load mode 'none', mmproj F16), one fresh process per round, ${cfg.rounds} rounds; each abort lands at a random point inside its phase (seeded).`);
  L.push('Latency = from `abort()` (or the `dispose()` call) to the moment the caller\'s promise settles, event loop included. Target: ≤ 250 ms.', '');
  L.push(`> The machine was shared: 1-minute load average ${loadStart.map((x) => x.toFixed(1)).join(', ')} at the start and ${loadEnd.map((x) => x.toFixed(1)).join(', ')} at the end, on ${machine.cores} cores. Under load the figures grow: a worker thread waits for a core before it sees the flag.`, '');
  L.push('| abort during | n | median, ms | max, ms | ≤ 250 ms | phase length, ms (median) | load average during | the call settled with |');
  L.push('|---|---|---|---|---|---|---|---|');
  for (const kind of KINDS) {
    const rs = rows.filter((r) => r.kind === kind && !r.finishedFirst);
    const s = summary(rs.map((r) => r.ms));
    const la = summary(rs.map((r) => r.load1));
    const ph = summary(rows.filter((r) => r.kind === kind && r.phaseMs !== undefined).map((r) => r.phaseMs));
    const outcomes = [...new Set(rs.map((r) => r.outcome))].join(', ');
    const early = rows.filter((r) => r.kind === kind && r.finishedFirst).length;
    const what = {
      load: 'load',
      encode: 'image encode',
      prefill: 'prefill (image + prompt)',
      decode: 'generation',
      queued: 'waiting in the queue',
      dispose: '`dispose()` of a running ask',
    }[kind];
    L.push(`| ${what} | ${s.n}${early ? ` (+${early} done first)` : ''} | ${fmt(s.median, 0)} | ${fmt(s.max, 0)} | ${s.n ? (s.max <= TARGET_MS ? 'yes' : '**no**') : 'n/a'} | ${kind === 'queued' ? '—' : fmt(ph.median, 0)} | ${fmt(la.min, 1)}–${fmt(la.max, 1)} | ${kind === 'dispose' ? `running ask: ${outcomes}` : outcomes} |`);
  }
  const d = rows.filter((r) => r.kind === 'dispose' && !r.finishedFirst);
  L.push('');
  L.push(`Phase lengths for scale: load ${fmt(summary(refs.map((r) => r.loadMs)).median, 0)} ms, image encode ${fmt(summary(refs.map((r) => r.encodeMs)).median, 0)} ms, prefill ${fmt(summary(refs.map((r) => r.prefillMs)).median, 0)} ms, one generated token ${fmt(summary(refs.map((r) => r.tokenMs)).median, 0)} ms (medians). ` +
    `\`dispose()\` landed in the prefill ${d.filter((r) => r.phase === 'prefill').length} times and in generation ${d.filter((r) => r.phase === 'decode').length} times. "done first": the call finished before the abort fired (not counted).`);
  return L.join('\n');
}

async function main() {
  const cfg = {
    rounds: Number(opt('rounds', 7)),
    perRound: Number(opt('per-round', 2)),
    threads: Number(opt('threads', os.availableParallelism())),
    seed: Number(opt('seed', 1)),
    out: path.resolve(root, opt('out', 'BENCHMARKS.md')),
  };
  setSpinCount(opt('spincount', '100') === 'default' ? null : opt('spincount', '100'));
  if (!existsSync(path.join(root, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const { ensureBenchModels } = await import('./models.mjs');
  const models = await ensureBenchModels();
  const image = path.join(root, 'assets', 'sample-xray.png');
  const { machine } = await import('./run.mjs');
  const M = machine();
  const loadStart = os.loadavg();
  log(`machine: ${M.cpu}, ${M.cores} cores, load ${loadStart.map((x) => x.toFixed(2)).join(' ')}; ${cfg.rounds} rounds`);
  const rows = [];
  const refs = [];
  for (let r = 0; r < cfg.rounds; r++) {
    const res = await runChild({ model: models.q4, mmproj: models.mmproj, image, threads: cfg.threads, perRound: cfg.perRound, seed: cfg.seed * 1000 + r }, cfg.threads);
    rows.push(...res.out.map((x) => ({ ...x, round: r })));
    refs.push(res.ref);
    log(`round ${r + 1}: ${res.out.map((x) => `${x.kind} ${x.finishedFirst ? 'done first' : `${fmt(x.ms, 0)} ms`}`).join(', ')} (load avg ${os.loadavg()[0].toFixed(1)})`);
  }
  const loadEnd = os.loadavg();
  await fs.mkdir(path.join(root, 'bench', '.cache'), { recursive: true });
  await fs.writeFile(path.join(root, 'bench', '.cache', 'abort-latency.json'), JSON.stringify({ cfg, M, loadStart, loadEnd, rows, refs }, null, 1));
  const md = render({ rows, cfg, machine: M, loadStart, loadEnd, refs });
  writeSection(cfg.out, 'abort-latency', md);
  process.stderr.write(`${md}\n`);
  log(`wrote the abort-latency section of ${path.relative(root, cfg.out)}`);
}

if (argv[0] === '--child') {
  child(JSON.parse(argv[1])).catch((e) => {
    process.stderr.write(`${e?.stack ?? e}\n`);
    process.exit(1);
  });
} else if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`${e?.stack ?? e}\n`);
    process.exit(1);
  });
}

