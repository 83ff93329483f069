#!/usr/bin/env node
// `llava-med serve` under concurrent clients, side by side with llama-server built from the same
// patched tree (bench/build-peers.mjs; skipped when its binary is absent). For each concurrency C
// (default 1, 4, 8) both servers start with C parallel sequences / slots (`--parallel C` / `-np C`,
// separate KV per slot, same threads, same per-slot context) and stay up side by side; then
// `--rounds` rounds (default 2), each sending `--requests` requests (default max(4, 2C)) to each
// server in turn — the same images in the same round on both, each request a different image,
// greedy, the same max tokens — from C clients, one request after another per client; which server
// goes first alternates per round. Reported per server: its rounds pooled (aggregate requests per
// minute and generated tokens per second, p50/p95 request latency over all its requests) and, against
// llama-server, the median (min–max) of the per-round paired ratios. Output: the `serve` section of
// BENCHMARKS.md (bench/lib/sections.mjs).
//
// The load average (1 min) is recorded after each row: the figures are only comparable within a run.
// So is each server process's CPU time per request (user + system over the measured requests, from
// /proc): less load-dependent than wall time, but not independent of it (ggml's worker threads spin
// while they wait for a core).
//
// --flash adds a row per concurrency for llava-med serve with `--flash-attn on --projector-flash-attn on`
// (llama-server's CPU defaults: F16 K/V in the vision encoder's and the LM's attention), an option that
// trades the defaults' reproducibility decisions (ARCHITECTURE.md) for speed; it gets its own ratio row
// against llama-server.
// --one-libuv-thread adds a row for llava-med serve started with UV_THREADPOOL_SIZE=1 (an experiment,
// not a product setting). Before 0aefc0d it gave libgomp one team instead of one per libuv worker that
// ran ggml; since then every graph runs on one native thread (ComputeThread), so the row should match
// the default one (bench/README.md, "Serving").
//
//   node bench/serve.mjs [--clients 1,4,8] [--requests N] [--rounds 2] [--max-tokens 32] [--threads N] [--llama-server PATH] [--flash] [--one-libuv-thread] [--perf DIR] [--no-write]
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { llamaServer as builtLlamaServer } from './build-peers.mjs';
import { benchModels, ensureBenchModels } from './models.mjs';
import { writeSection } from './lib/sections.mjs';
import { completionBody } from './lib/server-peer.mjs';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
};
for (const a of argv) if (a.startsWith('--') && !['--clients', '--requests', '--rounds', '--max-tokens', '--threads', '--llama-server', '--flash', '--one-libuv-thread', '--no-write', '--perf'].includes(a)) throw new Error(`unknown flag ${a}`);
const clients = flag('clients', '1,4,8').split(',').map(Number);
// Requests per server per round at each C (default max(4, 2C)); rounds per C (default 2).
const requestsFlag = flag('requests', undefined) === undefined ? undefined : Number(flag('requests'));
const rounds = Number(flag('rounds', '2'));
const maxTokens = Number(flag('max-tokens', '32'));
const threads = Number(flag('threads', String(os.availableParallelism())));
const write = !argv.includes('--no-write');
const flash = argv.includes('--flash');
const oneThread = argv.includes('--one-libuv-thread');
// --perf DIR: `perf record` each server process over its measured requests (DIR/<server>-<C>.data; `perf report -i`).
const perfDir = flag('perf', undefined);
// Another build of llama-server from the same patched tree (e.g. one a sibling checkout built).
const llamaServer = path.resolve(flag('llama-server', builtLlamaServer));
const CTX_PER_SLOT = 2048;
const log = (m) => process.stderr.write(`[bench:serve] ${m}\n`);

const V0_PREAMBLE =
  "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.###Human: Hi!###Assistant: Hi there!  How can I help you today?\n###Human: ";
const QUESTIONS = ['What is shown in this image?', 'Is there any abnormality?', 'Which organ is visible?', 'Describe the findings.'];

async function images(n) {
  const sharp = (await import('sharp')).default;
  const src = path.join(root, 'assets', 'sample-xray.png');
  return Promise.all(Array.from({ length: n }, async (_, i) => (await sharp(src).modulate({ brightness: 0.8 + (i % 8) * 0.05 }).rotate(i * 3, { background: '#000' }).png().toBuffer()).toString('base64')));
}

function startProcess(bin, args, ready, now = false, env = {}) {
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LLAMA_MEDIA_MARKER: '<__media__>', ...env } });
  let stderr = '';
  return new Promise((resolve, reject) => {
    // llama-server: readiness is polled on /health (its log lines vary with the verbosity)
    if (now) resolve({ child, url: ready('') });
    child.stderr.setEncoding('utf8').on('data', (d) => {
      stderr = (stderr + d).slice(-8000);
      const url = ready(stderr);
      if (url) resolve({ child, url });
    });
    child.on('exit', (c, s) => reject(new Error(`${path.basename(bin)} exited (${c ?? s}):\n${stderr}`)));
  });
}

const freePort = async () => {
  const net = await import('node:net');
  return new Promise((resolve) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); }); });
};

async function ours(slots, extra = [], env = {}) {
  const { child, url } = await startProcess(process.execPath, [path.join(root, 'dist', 'cli', 'main.js'), 'serve', '-q', '-m', benchModels.q4, '-p', benchModels.mmproj, '-t', String(threads),
    '--parallel', String(slots), '-c', String(CTX_PER_SLOT * slots), '--port', '0', '--queue', '64', '--image-cache', '0', '--name', 'bench', ...extra], (s) => /listening on (http:\/\/[^\s;]+)/.exec(s)?.[1], false, env);
  return {
    child,
    async ask(image, q) {
      const r = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({
        model: 'bench', temperature: 0, max_tokens: maxTokens,
        messages: [{ role: 'user', content: [{ type: 'text', text: q }, { type: 'image_url', image_url: { url: `data:image/png;base64,${image}` } }] }],
      }) });
      if (!r.ok) throw new Error(`llava-med serve: HTTP ${r.status} ${await r.text()}`);
      return (await r.json()).usage.completion_tokens;
    },
  };
}

async function peer(slots) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const { child } = await startProcess(llamaServer, ['-m', benchModels.q4, '--mmproj', benchModels.mmproj, '-np', String(slots), '-c', String(CTX_PER_SLOT * slots), '--no-kv-unified',
    '-t', String(threads), '-tb', String(threads), '-ngl', '0', '--host', '127.0.0.1', '--port', String(port), '--no-webui'], () => base, true);
  for (;;) {
    if (await fetch(`${base}/health`).then((r) => r.status === 200, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    async ask(image, q) {
      const r = await fetch(`${base}/completion`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(completionBody({ prompt: `${V0_PREAMBLE}${q}\n<im_start><__media__><im_end>###`, image, maxTokens })) });
      if (!r.ok) throw new Error(`llama-server: HTTP ${r.status} ${await r.text()}`);
      return (await r.json()).timings?.predicted_n ?? 0;
    },
  };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

// CPU seconds (user + system) a process has used so far; undefined where /proc is absent.
function cpuSeconds(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100 on Linux)
  } catch {
    return undefined;
  }
}

// Voluntary context switches of all a process's threads so far (a thread that sleeps at a barrier
// makes one); undefined where /proc is absent.
function voluntarySwitches(pid) {
  try {
    let n = 0;
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'));
      if (m) n += Number(m[1]);
    }
    return n;
  } catch {
    return undefined;
  }
}

async function perfStart(pid, name) {
  if (!perfDir) return undefined;
  await fs.mkdir(perfDir, { recursive: true });
  const out = path.join(perfDir, `${name.replace(/[^\w.-]+/g, '_')}.data`);
  const p = spawn('perf', ['record', '-F', '299', '-p', String(pid), '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  await new Promise((r) => setTimeout(r, 500));
  if (p.exitCode !== null) throw new Error(`perf record failed: ${err}`);
  return async () => {
    p.kill('SIGINT');
    await new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)));
    log(`perf: ${out}`);
  };
}

// One round on one server: C clients send `n` requests in all (images imgs[first..first+n), each a
// different one), one after another per client.
async function load(server, imgs, c, n, first) {
  const vcs0 = voluntarySwitches(server.child.pid);
  const cpu0 = cpuSeconds(server.child.pid);
  let next = 0;
  const lat = [];
  let tokens = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: c }, async () => {
    while (next < n) {
      const i = first + next++;
      const s = performance.now();
      // Not `tokens += await ...`: that reads `tokens` before the await, so concurrent clients overwrote each other's counts.
      const t = await server.ask(imgs[i % imgs.length], QUESTIONS[i % QUESTIONS.length]);
      tokens += t;
      lat.push(performance.now() - s);
    }
  }));
  const ms = performance.now() - t0;
  const cpu1 = cpuSeconds(server.child.pid);
  const vcs1 = voluntarySwitches(server.child.pid);
  return {
    n, ms, lat, tokens, load: os.loadavg()[0],
    cpu: cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0,
    vcs: vcs0 === undefined || vcs1 === undefined ? undefined : vcs1 - vcs0,
    rpm: (n * 60_000) / ms, p95: pct(lat, 95),
  };
}

// A server's rounds pooled into one row: rates over the summed time, percentiles over all latencies.
function pool(name, c, rs) {
  const n = rs.reduce((a, r) => a + r.n, 0);
  const ms = rs.reduce((a, r) => a + r.ms, 0);
  const lat = rs.flatMap((r) => r.lat);
  const sum = (k) => (rs.some((r) => r[k] === undefined) ? undefined : rs.reduce((a, r) => a + r[k], 0) / n);
  return {
    name, c, n, rounds: rs,
    rpm: (n * 60_000) / ms, tps: (rs.reduce((a, r) => a + r.tokens, 0) * 1000) / ms, tpr: rs.reduce((a, r) => a + r.tokens, 0) / n, p50: pct(lat, 50), p95: pct(lat, 95),
    cpu: sum('cpu'), vcs: sum('vcs'), load: Math.max(...rs.map((r) => r.load)),
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
// Median (min–max) over the rounds of a / b, each round's a against the same round's b.
function paired(a, b, f) {
  const xs = a.rounds.map((r, i) => f(r) / f(b.rounds[i]));
  return `${median(xs).toFixed(2)}× (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
}

await ensureBenchModels();
if (!existsSync(path.join(root, 'dist', 'cli', 'main.js'))) throw new Error('run `npm run build` first');
const hasPeer = existsSync(llamaServer);
if (!hasPeer) log(`llama-server not built (${llamaServer}): node bench/build-peers.mjs; measuring llava-med only`);
const perRound = (c) => requestsFlag ?? Math.max(4, 2 * c);
const imgs = await images(Math.max(8, ...clients.map((c) => perRound(c) * rounds)));
const rows = [];
// Optional llava-med rows (each with its own ratio columns).
const variants = [
  ...(flash ? [{ name: 'flash attention on', args: ['--flash-attn', 'on', '--projector-flash-attn', 'on'], env: {} }] : []),
  ...(oneThread ? [{ name: 'UV_THREADPOOL_SIZE=1', args: [], env: { UV_THREADPOOL_SIZE: '1' } }] : []),
];
for (const [ci, c] of clients.entries()) {
  const kinds = [
    ['llava-med serve', ours],
    ...variants.map((v) => [`llava-med serve, ${v.name}`, (n) => ours(n, v.args, v.env)]),
    ...(hasPeer ? [['llama-server', peer]] : []),
  ];
  // All the servers of this C stay up for its rounds (each idle while another is measured).
  const started = [];
  const perfStops = [];
  try {
    for (const [name, start] of kinds) {
      const s = await start(c);
      started.push({ name, s, rounds: [] });
      // C warm-up requests at once, so every sequence / slot has served one (holds the v0 system prompt)
      // before the measured rounds: a running server's steady state. A fresh server's first request per
      // sequence decodes the system prompt (~190 tokens of ~470 on the bench vocabulary); llama-server can
      // restore it into another slot from its RAM prompt cache, llava-med reuses a prefix within a sequence only.
      await Promise.all(Array.from({ length: c }, () => s.ask(imgs[0], 'Warm-up?')));
    }
    for (const x of started) {
      const stop = await perfStart(x.s.child.pid, `${x.name}-${c}`);
      if (stop) perfStops.push(stop);
    }
    const n = perRound(c);
    for (let round = 0; round < rounds; round++) {
      // Which server goes first alternates from round to round (and C to C), so a load that drifts favours none.
      for (const x of (ci + round) % 2 === 0 ? started : [...started].reverse()) {
        const r = await load(x.s, imgs, c, n, round * n);
        x.rounds.push(r);
        log(`${x.name}, ${c} client(s), round ${round + 1}/${rounds}: ${r.rpm.toFixed(1)} req/min, p95 ${(r.p95 / 1000).toFixed(2)} s${r.cpu === undefined ? '' : `, ${(r.cpu / n).toFixed(2)} CPU s/request`}, load ${r.load.toFixed(1)}`);
      }
    }
    for (const stop of perfStops) await stop();
    for (const x of started) rows.push(pool(x.name, c, x.rounds));
  } finally {
    for (const { s } of started) {
      s.child.kill('SIGTERM');
      await new Promise((r) => (s.child.exitCode !== null ? r() : s.child.once('exit', r)));
    }
  }
}

const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? os.cpus()[0]?.model;
const nOf = (c) => perRound(c) * rounds;
const md = [
  '## Serving: concurrent clients (llava-med serve vs llama-server)',
  '',
  `\`node bench/serve.mjs\` on ${new Date().toISOString().slice(0, 10)}, ${cpu}, ${threads} threads; bench model Q4_K_M + mmproj, greedy, up to ${maxTokens} tokens per answer.`,
  `For each C, both servers start with C parallel sequences / slots of ${CTX_PER_SLOT} positions (separate KV) and stay up side by side, each warmed up by C requests at once`,
  `(so every sequence / slot holds the v0 system prompt, as on a server that has been running); then ${rounds} rounds,`,
  `each sending ${clients.map((c) => `${perRound(c)} requests at C = ${c}`).join(', ')} to each server in turn (which goes first alternates per round), the same images in the same`,
  'round on both (each request a different image): C clients, each sending its next request when its previous one is answered. llava-med: /v1/chat/completions',
  'with the image as a data URL (image cache off); llama-server: /completion with the v0 prompt and the image as multimodal data, prompt cache on.',
  'Latency = request sent → full answer received.',
  '',
  `Rows pool each server's rounds: requests/min and tok/s over their summed time; p50/p95 = nearest-rank percentiles of all ${clients.map(nOf).join(' / ')} latencies`,
  `(with fewer than 20 requests, p95 is the slowest). Ratios: the median (min–max) over the rounds of llava-med's round against llama-server's same round.`,
  `Load average (1 min) as \`os.loadavg()\` read it, the highest after a server's rounds: ${Math.min(...rows.map((r) => r.load)).toFixed(1)}–${Math.max(...rows.map((r) => r.load)).toFixed(1)} on ${os.availableParallelism()} cores.`,
  '',
  'Server CPU s/request: the server process\'s user + system CPU time over the measured requests, divided by their number;',
  'switches/request: its threads\' voluntary context switches (a worker that sleeps at a barrier makes one), likewise.',
  'Tokens/answer: generated tokens per request. The bench model has random weights, so greedy answers end at an end-of-sequence',
  'token or run to the limit by chance, and a step of several rows rounds differently from a step of one (ARCHITECTURE.md): the answers,',
  'and so the work per request, change with C — compare the servers within a C, not across Cs.',
  '',
  '| clients | server | requests | requests/min | tokens/answer | generated tok/s | p50 latency (s) | p95 latency (s) | server CPU s/request | switches/request | load |',
  '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.c} | ${r.name} | ${r.n} | ${r.rpm.toFixed(1)} | ${r.tpr.toFixed(1)} | ${r.tps.toFixed(1)} | ${(r.p50 / 1000).toFixed(2)} | ${(r.p95 / 1000).toFixed(2)} | ${r.cpu === undefined ? '–' : r.cpu.toFixed(2)} | ${r.vcs === undefined ? '–' : Math.round(r.vcs)} | ${r.load.toFixed(1)} |`),
  '',
];
if (hasPeer) {
  const kinds = ['llava-med serve', ...variants.map((v) => `llava-med serve, ${v.name}`)];
  md.push(
    '| clients | server | requests/min / llama-server | p95 / llama-server | CPU s/request / llama-server |',
    '|---:|---|---:|---:|---:|',
  );
  for (const c of clients) {
    const b = rows.find((r) => r.c === c && r.name === 'llama-server');
    for (const k of kinds) {
      const a = rows.find((r) => r.c === c && r.name === k);
      if (a && b) md.push(`| ${c} | ${k} | ${paired(a, b, (r) => r.rpm)} | ${paired(a, b, (r) => r.p95)} | ${a.cpu === undefined || b.cpu === undefined ? '–' : paired(a, b, (r) => r.cpu / r.n)} |`);
    }
  }
  md.push('');
}
process.stdout.write(`${md.join('\n')}\n`);
if (write) writeSection(path.join(root, 'BENCHMARKS.md'), 'serve', md.join('\n'));
