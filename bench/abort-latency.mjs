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
// --baseline-addon PATH runs every round a second time with that llava_med.node (LLAVA_MED_ADDON;
// e.g. main's build before a native change), alternating which goes first, so the two are paired
// under the same machine load; the table then has baseline columns.
// Writes its section of BENCHMARKS.md (bench/lib/sections.mjs) and bench/.cache/abort-latency.json.
//   node bench/abort-latency.mjs [--rounds 10] [--per-round 1] [--threads N] [--seed 1] [--out BENCHMARKS.md]
//                                [--baseline-addon PATH [--baseline-label TEXT]] [--rerender]
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

  // CPU time of the whole process (every thread) since `from`, in ms: the work done after an
  // abort, which the wall time divides by the share of the cores the process gets
  const cpuSince = (from) => {
    const u = process.cpuUsage(from);
    return (u.user + u.system) / 1000;
  };

  /** Starts `start(signal)`, aborts after `delay` ms; the latency is abort → settled. */
  async function abortAfter(start, delay) {
    const ac = new AbortController();
    let settledAt = 0;
    let cpuMs = 0;
    let cpu0;
    let outcome = '';
    const settle = (o) => {
      settledAt = now();
      if (cpu0) cpuMs = cpuSince(cpu0);
      outcome = o;
    };
    const done = start(ac.signal).then(
      () => settle('resolved'),
      (e) => settle(e?.code ?? String(e)),
    );
    await sleep(delay);
    const t = now();
    cpu0 = process.cpuUsage();
    ac.abort();
    await done;
    return settledAt < t ? { finishedFirst: true, outcome } : { ms: settledAt - t, cpuMs, outcome };
  }

  // load: a full load first (also warms the page cache), then one aborted at a random point
  let t0 = now();
  const first = await LlavaMed.load(opts);
  const loadMs = now() - t0;
  await first.dispose();
  for (let i = 0; i < o.perRound; i++) {
    record('load', await abortAfter((signal) => LlavaMed.load({ ...opts, signal }).then((m) => m.dispose()), between(0.05, 0.9) * loadMs), { phaseMs: loadMs });
  }

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
    // decode: a few tokens into the stream (the prompt is cached by the ask before)
    {
      const ac = new AbortController();
      const it = med.stream(ref, Q, { temperature: 0, maxTokens: 256, stop: [], signal: ac.signal });
      let chunks = 0;
      let at = 0;
      let cpuAt;
      let r;
      try {
        for await (const _ of it) {
          if (++chunks === 3) setTimeout(() => ((at = now()), (cpuAt = process.cpuUsage()), ac.abort()), between(0, 1) * tokenMs);
        }
        r = { finishedFirst: true, outcome: 'resolved' };
      } catch (e) {
        r = at ? { ms: now() - at, cpuMs: cpuSince(cpuAt), outcome: e?.code ?? String(e) } : { finishedFirst: true, outcome: e?.code ?? String(e) };
      }
      record('decode', r, { phaseMs: tokenMs });
    }
    // queued: an ask waiting behind a running one (which reuses the cached prompt: its
    // generation is what runs meanwhile)
    {
      const running = med.ask(ref, Q, { temperature: 0, maxTokens: 32, stop: [] });
      let runningDone = false;
      running.then(() => (runningDone = true), () => (runningDone = true));
      const r = await abortAfter((signal) => med.ask(ref, 'And what else?', { temperature: 0, maxTokens: 4, signal }), between(20, 200));
      record('queued', { ...r, finishedFirst: r.finishedFirst || runningDone });
      await running;
    }
    // prefill: image embedding + prompt, from an empty cache (last: it leaves the cache cold)
    await med.clearCache();
    record('prefill', await abortAfter((signal) => med.ask(ref, Q, { temperature: 0, maxTokens: 16, stop: [], signal }), between(0.05, 0.9) * prefillMs), { phaseMs: prefillMs });
    // warm the cache again for the next iteration's decode and queued phases
    if (i + 1 < o.perRound) await med.ask(ref, Q, { temperature: 0, maxTokens: 1, stop: [] });
  }

  // dispose: while an ask runs, at a random point of its prefill or of its first 20 tokens; the
  // first time on this instance, then on fresh ones (load + image encode each)
  for (let i = 0; i < o.perRound; i++) {
    const inst = i === 0 ? med : await LlavaMed.load(opts);
    const handle = i === 0 ? ref : await inst.embedImage(o.image);
    await inst.clearCache();
    const running = inst.ask(handle, Q, { temperature: 0, maxTokens: 256, stop: [] });
    let runningOutcome = '';
    let stoppedAt = 0;
    let stopCpuMs = 0;
    let cpu0;
    const ran = running.then(
      () => ((stoppedAt = now()), (runningOutcome = 'resolved')),
      (e) => ((stoppedAt = now()), cpu0 && (stopCpuMs = cpuSince(cpu0)), (runningOutcome = e?.code ?? String(e))),
    );
    const delay = between(0.05, 1) * (prefillMs + 20 * tokenMs);
    await sleep(delay);
    t0 = now();
    cpu0 = process.cpuUsage();
    await inst.dispose();
    const disposeMs = now() - t0;
    const cpuMs = cpuSince(cpu0);
    await ran;
    // stopMs: dispose() call → the running ask settled; the rest of disposeMs is freeing memory
    record('dispose', { ms: disposeMs, stopMs: stoppedAt - t0, cpuMs, stopCpuMs, outcome: runningOutcome, finishedFirst: runningOutcome === 'resolved' }, { phase: delay < prefillMs ? 'prefill' : 'decode' });
  }
  process.stdout.write(`RESULT ${JSON.stringify({ out, ref: { loadMs, embedMs, encodeMs, prefillMs, tokenMs } })}\n`);
}

// ---- parent: rounds, summary, report -------------------------------------------------------------

function runChild(o, threads, addon) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify(o)], {
      env: childEnv(threads, addon ? { LLAVA_MED_ADDON: addon } : {}),
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

const WHAT = {
  load: 'load',
  encode: 'image encode',
  prefill: 'prefill (image + prompt)',
  decode: 'generation',
  queued: 'waiting in the queue',
  dispose: '`dispose()` of a running ask',
};

function render({ rows, cfg, machine, loadStart, loadEnd, refs: allRefs }) {
  const refs = allRefs.filter((r) => r.addon !== 'baseline');
  const mine = rows.filter((r) => r.addon !== 'baseline');
  const base = rows.filter((r) => r.addon === 'baseline');
  const counted = (rs, kind) => rs.filter((r) => r.kind === kind && !r.finishedFirst);
  const L = [];
  L.push('## Abort latency', '');
  L.push(`Generated by \`node bench/abort-latency.mjs\` on ${machine.date} (commit ${machine.commit}); ${machine.cpu}, ${machine.cores} cores, node ${process.version}, ${cfg.threads} threads.`);
  L.push(`Bench model (Q4_K_M, load mode 'none', mmproj F16), one fresh process per round, ${cfg.rounds} rounds of ${cfg.perRound} abort(s) per phase (\`dispose()\` after the first on a freshly loaded instance each); each abort lands at a random point inside its phase (seeded).`);
  L.push('Latency = from `abort()` (or the `dispose()` call) to the moment the caller\'s promise settles, event loop included. Target: ≤ 250 ms.');
  if (base.length) {
    L.push(`Baseline: the same rounds run with \`${cfg.baselineLabel}\` (\`--baseline-addon\`), each round right before or after this build's (alternating), so both saw the same machine load.`);
  }
  L.push('');
  L.push(`> The machine was shared: 1-minute load average ${loadStart.map((x) => x.toFixed(1)).join(', ')} at the start and ${loadEnd.map((x) => x.toFixed(1)).join(', ')} at the end, on ${machine.cores} cores. Under load the figures grow: a worker thread waits for a core before it sees the flag.`, '');
  const bh = base.length ? ' baseline min / median / max, ms |' : '';
  const hasCpu = rows.some((r) => r.cpuMs !== undefined);
  const cpuCell = (rs) => {
    const c = summary(rs.filter((r) => r.cpuMs !== undefined).map((r) => r.cpuMs));
    return c.n ? `${fmt(c.median, 0)} / ${fmt(c.max, 0)} (n ${c.n})` : 'n/a';
  };
  const ch = hasCpu ? ` CPU ms after the abort, median / max${base.length ? ' (baseline)' : ''} |` : '';
  L.push(`| abort during | n | min, ms | median, ms | max, ms | ≤ 250 ms |${bh}${ch} phase length, ms (median) | load average during | the call settled with |`);
  L.push(`|---|---|---|---|---|---|${base.length ? '---|' : ''}${hasCpu ? '---|' : ''}---|---|---|`);
  for (const kind of KINDS) {
    const rs = counted(mine, kind);
    const s = summary(rs.map((r) => r.ms));
    const la = summary(rs.map((r) => r.load1));
    const ph = summary(mine.filter((r) => r.kind === kind && r.phaseMs !== undefined).map((r) => r.phaseMs));
    const outcomes = [...new Set(rs.map((r) => r.outcome))].join(', ');
    const early = mine.filter((r) => r.kind === kind && r.finishedFirst).length;
    const b = summary(counted(base, kind).map((r) => r.ms));
    const bc = base.length ? ` ${b.n ? `${fmt(b.min, 0)} / ${fmt(b.median, 0)} / ${fmt(b.max, 0)}` : 'n/a'} |` : '';
    const cc = hasCpu ? ` ${cpuCell(rs)}${base.length ? ` (${cpuCell(counted(base, kind))})` : ''} |` : '';
    L.push(`| ${WHAT[kind]} | ${s.n}${early ? ` (+${early} done first)` : ''} | ${fmt(s.min, 0)} | ${fmt(s.median, 0)} | ${fmt(s.max, 0)} | ${s.n ? (s.max <= TARGET_MS ? 'yes' : '**no**') : 'n/a'} |${bc}${cc} ${kind === 'queued' ? '—' : fmt(ph.median, 0)} | ${fmt(la.min, 1)}–${fmt(la.max, 1)} | ${kind === 'dispose' ? `running ask: ${outcomes}` : outcomes} |`);
  }
  const d = counted(mine, 'dispose');
  const stop = summary(d.map((r) => r.stopMs));
  const free = summary(d.map((r) => r.ms - r.stopMs));
  const bd = counted(base, 'dispose');
  L.push('');
  L.push(`Phase lengths for scale: load ${fmt(summary(refs.map((r) => r.loadMs)).median, 0)} ms, image encode ${fmt(summary(refs.map((r) => r.encodeMs)).median, 0)} ms, prefill ${fmt(summary(refs.map((r) => r.prefillMs)).median, 0)} ms, one generated token ${fmt(summary(refs.map((r) => r.tokenMs)).median, 0)} ms (medians). ` +
    `\`dispose()\` landed in the prefill ${d.filter((r) => r.phase === 'prefill').length} times and in generation ${d.filter((r) => r.phase === 'decode').length} times; of its time, stopping the running ask took ${fmt(stop.min, 0)} / ${fmt(stop.median, 0)} / ${fmt(stop.max, 0)} ms (min / median / max) and freeing the model, projector and context the rest, ${fmt(free.min, 0)} / ${fmt(free.median, 0)} / ${fmt(free.max, 0)} ms` +
    (bd.length ? ` (baseline: stopping ${fmt(summary(bd.map((r) => r.stopMs)).median, 0)}, freeing ${fmt(summary(bd.map((r) => r.ms - r.stopMs)).median, 0)} ms, medians)` : '') +
    '. "done first": the call finished before the abort fired (not counted).' +
    (hasCpu ? ' CPU ms: the process\'s CPU time (all threads) from the abort to the settle, i.e. the work the abort left to do; on a busy machine the wall time is that divided by the share of the cores the process gets, plus waits for a core (n: the rows that recorded it).' : ''));
  return L.join('\n');
}

async function main() {
  const cacheFile = path.join(root, 'bench', '.cache', 'abort-latency.json');
  if (argv.includes('--rerender')) {
    const saved = JSON.parse(await fs.readFile(cacheFile, 'utf8'));
    const out = path.resolve(root, opt('out', saved.cfg.out));
    const md = render({ ...saved, machine: saved.M });
    writeSection(out, 'abort-latency', md);
    process.stderr.write(`${md}\n`);
    return;
  }
  const baselineAddon = opt('baseline-addon', undefined);
  const cfg = {
    rounds: Number(opt('rounds', 10)),
    perRound: Number(opt('per-round', 1)),
    threads: Number(opt('threads', os.availableParallelism())),
    seed: Number(opt('seed', 1)),
    out: path.resolve(root, opt('out', 'BENCHMARKS.md')),
    baselineLabel: opt('baseline-label', baselineAddon && path.relative(root, path.resolve(baselineAddon))),
  };
  if (baselineAddon && !existsSync(baselineAddon)) throw new Error(`--baseline-addon ${baselineAddon}: no such file`);
  setSpinCount(opt('spincount', '100') === 'default' ? null : opt('spincount', '100'));
  if (!existsSync(path.join(root, 'dist', 'index.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const { ensureBenchModels } = await import('./models.mjs');
  const models = await ensureBenchModels();
  const image = path.join(root, 'assets', 'sample-xray.png');
  const { machine } = await import('./run.mjs');
  const M = machine();
  const loadStart = os.loadavg();
  log(`machine: ${M.cpu}, ${M.cores} cores, load ${loadStart.map((x) => x.toFixed(2)).join(' ')}; ${cfg.rounds} rounds${baselineAddon ? `, paired with ${baselineAddon}` : ''}`);
  const rows = [];
  const refs = [];
  for (let r = 0; r < cfg.rounds; r++) {
    const o = { model: models.q4, mmproj: models.mmproj, image, threads: cfg.threads, perRound: cfg.perRound, seed: cfg.seed * 1000 + r };
    const order = !baselineAddon ? ['this'] : r % 2 ? ['baseline', 'this'] : ['this', 'baseline'];
    for (const addon of order) {
      const res = await runChild(o, cfg.threads, addon === 'baseline' ? baselineAddon : undefined);
      rows.push(...res.out.map((x) => ({ ...x, round: r, addon })));
      refs.push({ ...res.ref, addon });
      log(`round ${r + 1} (${addon}): ${res.out.map((x) => `${x.kind} ${x.finishedFirst ? 'done first' : `${fmt(x.ms, 0)} ms`}`).join(', ')} (load avg ${os.loadavg()[0].toFixed(1)})`);
    }
  }
  const loadEnd = os.loadavg();
  await fs.mkdir(path.dirname(cacheFile), { recursive: true });
  await fs.writeFile(cacheFile, JSON.stringify({ cfg, M, loadStart, loadEnd, rows, refs }, null, 1));
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

