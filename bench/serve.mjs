#!/usr/bin/env node
// `llava-med serve` under concurrent clients, side by side with llama-server built from the same
// patched tree (bench/build-peers.mjs; skipped when its binary is absent). For each concurrency C
// (default 1, 4, 8) both servers start with C parallel sequences / slots (`--parallel C` / `-np C`,
// separate KV per slot, same threads, same per-slot context), then C clients send N requests in all
// (each a different image, greedy, the same max tokens), one after another per client. Reported:
// aggregate requests per minute and generated tokens per second, p50/p95 request latency. Ours and
// the peer run interleaved per concurrency. Output: the `serve` section of BENCHMARKS.md
// (bench/lib/sections.mjs).
//
// The load average (1 min) is recorded after each row: the figures are only comparable within a run.
// So is each server process's CPU time per request (user + system over the measured requests, from
// /proc): less load-dependent than wall time, but not independent of it (ggml's worker threads spin
// while they wait for a core).
//
// --flash adds a row per concurrency for llava-med serve with `--flash-attn on --projector-flash-attn on`
// (llama-server's CPU defaults: F16 K/V in the vision encoder's and the LM's attention), an option that
// trades the defaults' reproducibility decisions (ARCHITECTURE.md) for speed; the ratios compare the
// default row.
// --one-libuv-thread adds a row for llava-med serve started with UV_THREADPOOL_SIZE=1 (an experiment,
// not a product setting): the encoder and the LM then run on one libuv worker, so libgomp manages one
// team of `threads` threads instead of one per worker that ran ggml, and does not throttle its barrier
// spinning (bench/README.md, "Serving"): on a quiet machine the barriers stop sleeping; on a loaded
// one the threads spin away their time slices, as llama-server's do.
//
//   node bench/serve.mjs [--clients 1,4,8] [--requests 8] [--max-tokens 32] [--threads N] [--llama-server PATH] [--flash] [--one-libuv-thread] [--no-write]
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
for (const a of argv) if (a.startsWith('--') && !['--clients', '--requests', '--max-tokens', '--threads', '--llama-server', '--flash', '--one-libuv-thread', '--no-write'].includes(a)) throw new Error(`unknown flag ${a}`);
const clients = flag('clients', '1,4,8').split(',').map(Number);
const requests = Number(flag('requests', '8'));
const maxTokens = Number(flag('max-tokens', '32'));
const threads = Number(flag('threads', String(os.availableParallelism())));
const write = !argv.includes('--no-write');
const flash = argv.includes('--flash');
const oneThread = argv.includes('--one-libuv-thread');
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

async function load(server, imgs, c) {
  const vcs0 = voluntarySwitches(server.child.pid);
  const cpu0 = cpuSeconds(server.child.pid);
  let next = 0;
  const lat = [];
  let tokens = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: c }, async () => {
    while (next < requests) {
      const i = next++;
      const s = performance.now();
      tokens += await server.ask(imgs[i % imgs.length], QUESTIONS[i % QUESTIONS.length]);
      lat.push(performance.now() - s);
    }
  }));
  const ms = performance.now() - t0;
  const cpu1 = cpuSeconds(server.child.pid);
  const vcs1 = voluntarySwitches(server.child.pid);
  return {
    vcs: vcs0 === undefined || vcs1 === undefined ? undefined : (vcs1 - vcs0) / requests, cpu: cpu0 === undefined || cpu1 === undefined ? undefined : (cpu1 - cpu0) / requests, rpm: (requests * 60_000) / ms, tps: (tokens * 1000) / ms, p50: pct(lat, 50), p95: pct(lat, 95), tokens };
}

await ensureBenchModels();
if (!existsSync(path.join(root, 'dist', 'cli', 'main.js'))) throw new Error('run `npm run build` first');
const hasPeer = existsSync(llamaServer);
if (!hasPeer) log(`llama-server not built (${llamaServer}): node bench/build-peers.mjs; measuring llava-med only`);
const imgs = await images(Math.max(requests, 8));
const rows = [];
// Optional llava-med rows (each with its own ratio columns).
const variants = [
  ...(flash ? [{ name: 'flash attention on', args: ['--flash-attn', 'on', '--projector-flash-attn', 'on'], env: {} }] : []),
  ...(oneThread ? [{ name: 'UV_THREADPOOL_SIZE=1', args: [], env: { UV_THREADPOOL_SIZE: '1' } }] : []),
];
for (const [ci, c] of clients.entries()) {
  // Alternating which server goes first, so a load that drifts during the run favours neither.
  const pair = [
    ['llava-med serve', ours],
    ...variants.map((v) => [`llava-med serve, ${v.name}`, (n) => ours(n, v.args, v.env)]),
    ...(hasPeer ? [['llama-server', peer]] : []),
  ];
  for (const [name, start] of ci % 2 === 0 ? pair : pair.reverse()) {
    const s = await start(c);
    try {
      await s.ask(imgs[0], 'Warm-up?');
      const r = await load(s, imgs, c);
      log(`${name}, ${c} client(s): ${r.rpm.toFixed(1)} req/min, ${r.tps.toFixed(1)} tok/s, p50 ${(r.p50 / 1000).toFixed(2)} s, p95 ${(r.p95 / 1000).toFixed(2)} s${r.cpu === undefined ? '' : `, ${r.cpu.toFixed(2)} CPU s/request, ${Math.round(r.vcs ?? 0)} switches/request`}`);
      rows.push({ name, c, ...r, load: os.loadavg()[0] });
    } finally {
      s.child.kill('SIGTERM');
      await new Promise((r) => (s.child.exitCode !== null ? r() : s.child.once('exit', r)));
    }
  }
}

const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? os.cpus()[0]?.model;
const md = [
  '## Serving: concurrent clients (llava-med serve vs llama-server)',
  '',
  `\`node bench/serve.mjs\` on ${new Date().toISOString().slice(0, 10)}, ${cpu}, ${threads} threads; bench model Q4_K_M + mmproj, ${requests} requests per row`,
  `(each a different image), greedy, up to ${maxTokens} tokens, C clients each sending its next request when its previous one is answered;`,
  `both servers with C parallel sequences / slots of ${CTX_PER_SLOT} positions (separate KV), run one after the other for each C (which goes first alternates). llava-med: /v1/chat/completions`,
  'with the image as a data URL (image cache off); llama-server: /completion with the v0 prompt and the image as multimodal data, prompt cache on.',
  'Latency = request sent → full answer received.',
  '',
  `p95 = the ${Math.ceil(0.95 * requests)}th fastest of ${requests} requests${Math.ceil(0.95 * requests) === requests ? ' (the slowest)' : ''}. Load average (1 min) after each row, as \`os.loadavg()\` read it: ${Math.min(...rows.map((r) => r.load)).toFixed(1)}–${Math.max(...rows.map((r) => r.load)).toFixed(1)} on ${os.availableParallelism()} cores.`,
  '',
  'Server CPU s/request: the server process\'s user + system CPU time over the measured requests, divided by their number;',
  'switches/request: its threads\' voluntary context switches (a worker that sleeps at a barrier makes one), likewise.',
  '',
  '| clients | server | requests/min | generated tok/s | p50 latency (s) | p95 latency (s) | server CPU s/request | switches/request | load after |',
  '|---:|---|---:|---:|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.c} | ${r.name} | ${r.rpm.toFixed(1)} | ${r.tps.toFixed(1)} | ${(r.p50 / 1000).toFixed(2)} | ${(r.p95 / 1000).toFixed(2)} | ${r.cpu === undefined ? '–' : r.cpu.toFixed(2)} | ${r.vcs === undefined ? '–' : Math.round(r.vcs)} | ${r.load.toFixed(1)} |`),
  '',
];
if (hasPeer) {
  md.push(
    `| clients | requests/min, llava-med / llama-server | p95, llava-med / llama-server |${variants.map((v) => ` ${v.name}: requests/min | p95 |`).join('')}`,
    `|---:|---:|---:|${variants.map(() => '---:|---:|').join('')}`,
  );
  for (const c of clients) {
    const a = rows.find((r) => r.c === c && r.name === 'llava-med serve');
    const b = rows.find((r) => r.c === c && r.name === 'llama-server');
    const more = variants.map((v) => rows.find((r) => r.c === c && r.name === `llava-med serve, ${v.name}`));
    if (a && b) md.push(`| ${c} | ${(a.rpm / b.rpm).toFixed(2)}× | ${(a.p95 / b.p95).toFixed(2)}× |${more.map((f) => (f ? ` ${(f.rpm / b.rpm).toFixed(2)}× | ${(f.p95 / b.p95).toFixed(2)}× |` : ' – | – |')).join('')}`);
  }
  md.push('');
}
process.stdout.write(`${md.join('\n')}\n`);
if (write) writeSection(path.join(root, 'BENCHMARKS.md'), 'serve', md.join('\n'));
