#!/usr/bin/env node
// The Redis work queue (eval answer --queue + eval worker) against one process (eval answer), on the
// bench model (bench/models.mjs: CLIP ViT-L/14-224 — 256 image tokens — and a LLaMA-7B-shaped 4-layer
// LLM, Q4_K_M) and the first --questions questions of VQA-RAD's test split (test/fixtures/eval, real
// records and images), greedy, --max-tokens new tokens.
//   single      one `eval answer` process, -t <cores>
//   queue ×k    one producer and k `eval worker` processes started together, -t max(1, cores/k) each
// Each figure is the wall time from starting the processes to the answers file (model loads included:
// a worker loads the model as a single run does), with a Redis server started here on a loopback port.
// The configurations alternate within each round, so they share the machine's load. Overhead per
// question = (queue ×1 − single) / questions. Checks that every queued answers file equals the single
// run's (ids, order, answers).
// Writes its section of BENCHMARKS.md (bench/lib/sections.mjs) and bench/.cache/queue.json.
//   node bench/queue.mjs [--rounds 1] [--questions 24] [--max-tokens 8] [--workers 1,2,3]
//                        [--model F --mmproj F --label TEXT] [--out BENCHMARKS.md] [--rerender]
// Each --label (default: the bench model) keeps its own table; a run replaces its label's table only.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeSection } from './lib/sections.mjs';
import { ensureBenchModels, cacheDir } from './models.mjs';
import { fmt, summary } from './lib/stats.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (k, d) => (argv.includes(`--${k}`) ? argv[argv.indexOf(`--${k}`) + 1] : d);
const log = (m) => process.stderr.write(`[bench:queue] ${m}\n`);
const CLI = path.join(root, 'dist', 'cli', 'main.js');
const jsonOut = path.join(cacheDir, 'queue.json');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Everything this script started, ended with it (Ctrl-C, kill) instead of left running.
const started = new Set();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const p of started) p.kill('SIGKILL');
    process.exit(130);
  });
}

function run(args) {
  const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  started.add(p);
  p.on('exit', () => started.delete(p));
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => p.on('exit', (code) => (code === 0 ? resolve(err) : reject(new Error(`llava-med ${args.slice(0, 2).join(' ')} exited ${code}: ${err.slice(-2000)}`)))));
}

async function render(all) {
  const lines = [
    '## Work queue: one process vs. 1–3 queue workers',
    '',
    '`node bench/queue.mjs` — the first N VQA-RAD test questions (real records and images), greedy; Redis on loopback; ' +
      'configurations interleaved within each round. Wall time from starting the processes to the answers file, model loads included ' +
      '(single: one `eval answer` with all cores; queue ×k: the producer and k `eval worker` processes started together, cores/k threads each).',
  ];
  for (const [label, r] of Object.entries(all.runs)) lines.push('', ...renderRun(label, r));
  lines.push('', 'On a machine with C cores, k workers of C/k threads each cannot beat one process of C threads by much: the scaling ' +
    'shown is what a queue buys on one box; its use is spreading the work over several machines, where each worker brings its own cores.');
  writeSection(path.resolve(root, all.out), 'queue', lines.join('\n'));
  log(`wrote the queue section of ${all.out}`);
}

function renderRun(label, r) {
  const single = summary(r.rows.filter((x) => x.config === 'single').map((x) => x.ms));
  const lines = [
    `### ${label}`,
    '',
    `${r.questions} questions on ${r.images} images, ${r.maxTokens} new tokens, Redis ${r.redis}, ${r.cores} cores, ${r.rounds} round(s).`,
    '',
    '| configuration | threads each | wall s (median) | questions/s | vs. single |',
    '|---|---|---|---|---|',
  ];
  for (const c of r.configs) {
    const s = summary(r.rows.filter((x) => x.config === c.name).map((x) => x.ms));
    lines.push(`| ${c.name} | ${c.threads} | ${fmt(s.median / 1000, 1)} | ${fmt((r.questions * 1000) / s.median, 2)} | ${c.name === 'single' ? '1.00×' : `${fmt(single.median / s.median, 2)}×`} |`);
  }
  const q1 = r.rows.filter((x) => x.config === 'queue ×1');
  if (q1.length) {
    const per = summary(q1.map((x) => (x.ms - r.rows.find((y) => y.round === x.round && y.config === 'single').ms) / r.questions));
    lines.push('', `Queue overhead per question (queue ×1 − single, paired by round): median ${fmt(per.median, 0)} ms` +
      (per.median < 0 ? ' — negative: the load changed more between the paired runs than the queue costs, so this run cannot resolve it' : '') +
      ` (${q1.length} pair(s); it includes the producer's start, the image hashing and Redis round trips, and the worker's wait for its first job).`);
  }
  lines.push('', `Load average (1 min) after each run: ${r.load.map((l) => fmt(l, 1)).join(', ')}` +
    `${r.load.some((l) => l > r.cores) ? ': measured UNDER LOAD (other processes shared the cores); read the ratios between configurations, not the absolute times.' : '.'}`);
  lines.push(`All queued answers files equal the single run's (ids, order, greedy answers): ${r.allEqual ? 'yes' : 'NO'}.`);
  return lines;
}

async function main() {
  if (argv.includes('--rerender')) return render(JSON.parse(await fs.readFile(jsonOut, 'utf8')));
  const rounds = Number(opt('rounds', '1'));
  const nq = Number(opt('questions', '24'));
  const maxTokens = opt('max-tokens', '8');
  const workerCounts = opt('workers', '1,2,3').split(',').map(Number);
  const cores = os.availableParallelism();
  const models = opt('model') ? { q4: opt('model'), mmproj: opt('mmproj') } : await ensureBenchModels();
  if (spawnSync('redis-server', ['--version']).status !== 0) throw new Error('redis-server is not installed');
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'llava-med-bench-queue-'));
  const { prepareDataset } = await import(pathToFileURL(path.join(root, 'dist', 'eval', 'prepare', 'index.js')).href);
  await prepareDataset({ dataset: 'vqa-rad', src: path.join(root, 'test', 'fixtures', 'eval', 'vqa-rad', 'data_RAD'), out: path.join(work, 'rad') });
  const split = JSON.parse(await fs.readFile(path.join(work, 'rad', 'test.json'), 'utf8'));
  const subset = split.slice(0, nq);
  const qfile = path.join(work, 'questions.json');
  await fs.writeFile(qfile, JSON.stringify(subset));
  const port = await freePort();
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', work], { stdio: 'ignore' });
  started.add(redis);
  await new Promise((r) => setTimeout(r, 500));
  const redisVersion = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.match(/v=([\d.]+)/)?.[1] ?? '?';
  const configs = [{ name: 'single', threads: cores }, ...workerCounts.map((k) => ({ name: `queue ×${k}`, k, threads: Math.max(1, Math.floor(cores / k)) }))];
  const common = ['--question-file', qfile, '--image-folder', path.join(work, 'rad', 'images'), '--temperature', '0', '--max-tokens', maxTokens];
  const rows = [];
  const load = [];
  const texts = new Map();
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 ? [...configs].reverse() : configs;
      for (const c of order) {
        const out = path.join(work, `answers-${round}-${c.name.replace(/\W+/g, '')}.jsonl`);
        const m = ['-m', models.q4, '-p', models.mmproj, '-t', String(c.threads)];
        const t0 = performance.now();
        if (c.name === 'single') {
          await run(['eval', 'answer', ...m, ...common, '--answers-file', out]);
        } else {
          const url = `redis://127.0.0.1:${port}/bench-${round}-${c.k}`;
          await Promise.all([
            // The producer loads no model: engine flags (-t) are the workers' (it refuses them).
            run(['eval', 'answer', '-m', models.q4, '-p', models.mmproj, ...common, '--answers-file', out, '--queue', url]),
            ...Array.from({ length: c.k }, () => run(['eval', 'worker', ...m, '--queue', url])),
          ]);
        }
        const ms = performance.now() - t0;
        load.push(os.loadavg()[0]);
        const lines = (await fs.readFile(out, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));
        texts.set(`${round}/${c.name}`, JSON.stringify(lines.map((l) => [l.question_id, l.text])));
        rows.push({ round, config: c.name, ms });
        log(`round ${round + 1}/${rounds} ${c.name}: ${(ms / 1000).toFixed(1)} s (load ${os.loadavg()[0].toFixed(1)})`);
      }
    }
  } finally {
    redis.kill('SIGTERM');
  }
  const ref = texts.get('0/single');
  const allEqual = [...texts.values()].every((v) => v === ref);
  const images = new Set(subset.map((e) => e.image)).size;
  const r = { questions: nq, images, maxTokens, rounds, cores, redis: redisVersion, configs, rows, load, allEqual };
  // One run per model label; a new run of a label replaces the old one, the others stay.
  const all = await fs.readFile(jsonOut, 'utf8').then((t) => JSON.parse(t), () => ({ runs: {} }));
  if (!all.runs) all.runs = {};
  all.runs[opt('label', opt('model') ? path.basename(opt('model')) : 'bench model (256 image tokens, Q4_K_M)')] = r;
  all.out = opt('out', 'BENCHMARKS.md');
  await fs.mkdir(cacheDir, { recursive: true });
  await fs.writeFile(jsonOut, JSON.stringify(all, null, 2));
  await fs.rm(work, { recursive: true, force: true });
  await render(all);
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
