#!/usr/bin/env node
// The quantization table, in its own BENCHMARKS.md section (quantization):
// - speed: the bench model's language model (bench/models.mjs, F16) quantized by llava-med's own
//   quantizer to each type (once, cached; wall and CPU time of the quantization recorded), then one
//   question per type per round (fresh process, load mode 'none', same image and question, types in
//   a rotated order each round), so prompt and decode rates compare on the same geometry, paired per
//   round against Q4_K_M;
// - accuracy: the demo model (assets/demo, the toy LLaVA-Med trained here) quantized to each type,
//   its test split answered greedily (closed accuracy, open recall: the paper's metrics), the answers
//   compared with the F16 GGUF's, and the mean log-probability per token of the PyTorch model's own
//   answers (a finer measure than the answers: it moves before an answer flips).
//   node bench/quant.mjs [--runs 3] [--threads N] [--types Q4_0,IQ4_NL,Q4_K_M,Q5_K_M,Q8_0,F16] [--out BENCHMARKS.md]
//                        [--max-tokens 32] [--rerender]
// Results are kept in bench/.cache/quant.json; --rerender writes the section from it (no model runs).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { measure, childEnv } from './lib/proc.mjs';
import { writeSection } from './lib/sections.mjs';
import { summary, pairedRatios, fmt, fmtS, fmtR } from './lib/stats.mjs';
import { benchModels, modelsDir, cacheDir, NAME } from './models.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const isMain = Boolean(process.argv[1]) && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
const log = (m) => process.stderr.write(`[bench:quant] ${m}\n`);
const jsonOut = path.join(cacheDir, 'quant.json');
const timesFile = path.join(cacheDir, 'quant-times.json');
const demoDir = path.join(cacheDir, 'quant-demo');
const file = (t) => (t === 'F16' ? benchModels.f16 : t === 'Q4_K_M' ? benchModels.q4 : path.join(modelsDir, `${NAME}-${t}.gguf`));

/** The type most of a file's matrices get for each --quant type (llama.cpp's mixes add others). */
export const MAIN_TYPE = { Q4_0: 'Q4_0', IQ4_NL: 'IQ4_NL', Q4_K_M: 'Q4_K', Q5_K_M: 'Q5_K', Q8_0: 'Q8_0', F16: 'F16' };

/**
 * llama.cpp's own measurement of what each type costs in quality: the perplexity increase over the
 * unquantized model on Llama-3-8B that llama-quantize lists with its types (deps/llama.cpp
 * tools/quantize/quantize.cpp; F16's is on Mistral-7B; none is listed for IQ4_NL). Not measured here:
 * the demo model is too small to tell the types apart.
 */
export const LLAMA_CPP_PPL = { Q4_0: '+0.4685', IQ4_NL: 'not listed', Q4_K_M: '+0.1754', Q5_K_M: '+0.0569', Q8_0: '+0.0026', F16: '+0.0020 (Mistral-7B)' };

/** "Q4_K 75 %, Q6_K 25 %": share of the weights of the file's matrices per tensor type, largest first. */
export function typeShares(matrices) {
  const by = new Map();
  let all = 0;
  for (const m of matrices) {
    by.set(m.type, (by.get(m.type) ?? 0) + m.params);
    all += m.params;
  }
  return [...by].sort((a, b) => b[1] - a[1]).map(([t, n]) => `${t} ${n / all >= 0.995 ? 100 : Math.max(1, Math.round((100 * n) / all))} %`).join(', ');
}

/**
 * The demo model's matrices that did not get the type's main tensor type, grouped: "12 of 16 → Q5_0
 * (rows of 64: not a multiple of Q4_K's 256-weight block)". `blockSize` gives a type's block size.
 */
export function fallbacks(quant, matrices, blockSize) {
  const main = MAIN_TYPE[quant];
  const groups = new Map();
  for (const m of matrices.filter((x) => x.type !== main)) {
    const why = m.ne0 % blockSize(main) !== 0 ? `rows of ${m.ne0} weights, not a multiple of ${main}'s ${blockSize(main)}-weight block`
      : m.ne0 % 256 !== 0 && blockSize(m.type) === 32 ? `llama.cpp's mix asks a k-quant here, whose 256-weight blocks do not fit rows of ${m.ne0}`
        : 'llama.cpp\'s mix for this tensor';
    const k = `${m.type}|${why}`;
    groups.set(k, [...(groups.get(k) ?? []), m.name]);
  }
  if (groups.size === 0) return `all ${matrices.length} matrices ${main}`;
  return [...groups].sort((a, b) => b[1].length - a[1].length)
    .map(([k, names]) => { const [t, why] = k.split('|'); return `${names.length} of ${matrices.length} → ${t} (${why}${names.length <= 2 ? `: ${names.join(', ')}` : ''})`; })
    .join('; ');
}

/** The section's markdown from the measured data (no I/O; test/bench/quant.test.ts renders it from a hand-made set). */
export function quantReport(d) {
  const { cfg, types } = d;
  const L = [];
  L.push('## Quantization (bench/quant.mjs)', '');
  const quiet = d.load0[0] < d.cores * 0.75 && d.load1[0] < d.cores * 0.75;
  L.push(`${quiet ? 'The machine was quiet' : `**Indicative only**: the machine was shared (load average ${fmt(d.load0[0])} at the start, ${fmt(d.load1[0])} at the end, on ${d.cores} cores); ratios are paired per round, which cancels most drift`}. ${d.date}, commit ${d.commit}.`, '');
  L.push(`### Speed and size: the bench model (4 of LLaMA-7B's 32 layers, real widths)`, '');
  L.push(`Its F16 language model quantized by \`llava-med quantize\` (the quantization's wall and CPU time are from the run that made the cached file); the projector stays the same F16 mmproj. One question per type per round (fresh process, load mode 'none', ${cfg.threads} threads, ${cfg.maxTokens} new tokens, greedy), types in a rotated order each round, ${cfg.runs} round${cfg.runs === 1 ? '' : 's'}; median (min–max), ratios paired per round against Q4_K_M.`, '');
  L.push('| type | LLM file | bits/weight | matrices | quantize: wall s (CPU s) | prompt eval, t/s | / Q4_K_M | decode, t/s | / Q4_K_M | ready, ms | peak RSS, MB |', '|---|---|---|---|---|---|---|---|---|---|---|');
  for (const t of types) {
    const f = d.files[t];
    const rounds = d.speed[t] ?? [];
    const s = (g) => summary(rounds.map(g));
    const q = (g) => (d.speed.Q4_K_M ? fmtR(pairedRatios(rounds.map(g), d.speed.Q4_K_M.map(g))) : '');
    const qt = d.quantizeTimes[t];
    const qcell = t === 'F16' ? '(converted)' : qt ? `${fmt(qt.wallMs / 1000, 0)} (${fmt(qt.cpuS, 0)})` : 'not recorded';
    L.push(`| ${t} | ${fmt(f.bytes / 1e6, 0)} MB | ${fmt((f.bytes * 8) / f.params, 2)} | ${typeShares(f.matrices)} | ${qcell} | ${fmtS(s((x) => x.promptRate))} | ${q((x) => x.promptRate)} | ${fmtS(s((x) => x.decodeRate))} | ${q((x) => x.decodeRate)} | ${fmtS(s((x) => x.readyMs), 0)} | ${fmtS(s((x) => x.peakRssMb), 0)} |`);
  }
  const cpuTypes = types.filter((t) => d.cpu?.[t]?.length);
  if (cpuTypes.length) {
    const tok = d.cpu[cpuTypes[0]][0].tokens;
    L.push('', `CPU time per token on one thread (bench/child-cputime.mjs: after load, a ${tok.prompt}-token prompt in one batch, then ${tok.decode} tokens decoded one at a time, 3 reps per process, the median rep; ${cfg.cpuRuns} process${cfg.cpuRuns === 1 ? '' : 'es'} per type, rotated order), as tokens per CPU-second: the work each type costs, which the machine's load moves far less than the wall rates above (one thread never waits for a descheduled partner). Ratios paired per round against Q4_K_M.`, '');
    L.push('| type | prompt, tokens / CPU-s | / Q4_K_M | decode, tokens / CPU-s | / Q4_K_M |', '|---|---|---|---|---|');
    for (const t of cpuTypes) {
      const c = d.cpu[t];
      const q = (g) => (d.cpu.Q4_K_M?.length ? fmtR(pairedRatios(c.map(g), d.cpu.Q4_K_M.map(g))) : '');
      L.push(`| ${t} | ${fmtS(summary(c.map((x) => x.prompt)))} | ${q((x) => x.prompt)} | ${fmtS(summary(c.map((x) => x.decode)))} | ${q((x) => x.decode)} |`);
    }
  }
  L.push('', 'ggml repacks Q4_0, IQ4_NL and the Q4_K tensors of Q4_K_M at load into interleaved blocks for its AVX2 / AVX-512 kernels (CPU_REPACK buffers); Q5_K, Q6_K (part of Q4_K_M and Q5_K_M) and Q8_0 run the plain kernels on x86.', '');
  const iq = d.quantizeTimes.IQ4_NL;
  const q40 = d.quantizeTimes.Q4_0;
  if (iq && q40) {
    L.push(`Quantizing to IQ4_NL costs ${fmt(iq.cpuS / q40.cpuS, 0)}× the CPU time of Q4_0: llama.cpp's IQ4_NL quantizer (quantize_row_iq4_nl_impl) tries 15 scales per block of 32 weights and maps every weight of every try to the non-linear 16-value grid with a branching binary search (best_index_int8), where Q4_0 computes one scale and rounds. It is llama.cpp's algorithm, not a missing thread count: llava-med passes its \`threads\` (default 0: all cores) to llama_model_quantize. On LLaMA-7B (${fmt(6.74e9 / f16Params(d) , 1)}× this model's weights) that scales to about ${fmt((iq.cpuS * 6.74e9) / f16Params(d) / 60, 0)} CPU-minutes.`, '');
  }
  L.push('### Accuracy: the demo model\'s test split', '');
  const a = d.accuracy;
  L.push(`The demo model (assets/demo: the toy LLaVA-Med v0 trained here, 2 layers, 64 wide) quantized to each type by the same quantizer, its projector F16; the ${a.n} questions of its test split (${a.numClosed} closed, ${a.numOpen} open) answered greedily (${a.maxTokens} new tokens at most), scored as \`llava-med demo --eval\` does. "same as F16" counts answers identical to the F16 GGUF's; "log-prob / token" is the mean log-probability per token the model gives the PyTorch model's own answers (recorded at training; higher is closer), a finer measure that moves before an answer flips.`, '');
  L.push('| type | file | closed accuracy | open recall | same as F16 | log-prob / token (Δ vs F16) | llama.cpp: perplexity increase, Llama-3-8B | matrices that did not get the type |', '|---|---|---|---|---|---|---|---|');
  const f16lp = a.rows.F16?.logProbPerToken;
  for (const t of types) {
    const r = a.rows[t];
    const dl = Number.isFinite(f16lp) && t !== 'F16' ? ` (${r.logProbPerToken - f16lp >= 0 ? '+' : '−'}${fmt(Math.abs(r.logProbPerToken - f16lp), 4)})` : '';
    L.push(`| ${t} | ${fmt(r.bytes / 1e3, 0)} kB | ${fmt(100 * r.closedAccuracy)} % | ${fmt(100 * r.recall)} % | ${r.sameAsF16}/${a.n} | ${fmt(r.logProbPerToken, 4)}${dl} | ${LLAMA_CPP_PPL[t]} | ${r.fallbacks} |`);
  }
  L.push('', `PyTorch reference (recorded at training): closed ${fmt(100 * a.pytorch.closedAccuracy)} %, open recall ${fmt(100 * a.pytorch.recall)} %. The demo's 64-wide rows are too narrow for the k-quants' 256-weight blocks, so its Q4_K_M and Q5_K_M are mostly llama.cpp's 32-block fallbacks (Q5_0, Q5_1) and say little about the k-quants themselves; the 32-block types (Q4_0, IQ4_NL, Q8_0) apply as they would to LLaMA-7B. A 0.43 M-parameter toy is no proxy for a 7B model's sensitivity to quantization either: the column shows that every type keeps the pipeline's answers, not which type a 7B model tolerates. For that the table quotes llama.cpp's own measurement (the perplexity increase over the unquantized model that llama-quantize lists with each type, deps/llama.cpp tools/quantize/quantize.cpp; not measured here).`, '');
  return L.join('\n');
}

function f16Params(d) {
  return d.files.F16?.params ?? d.files.Q4_K_M.params;
}

async function matricesOf(readGgufHeader, ggmlTypeName, f) {
  const h = await readGgufHeader(f);
  return h.tensors.filter((x) => x.shape.length > 1).map((x) => ({ name: x.name, type: ggmlTypeName(x.type), ne0: x.shape[0], params: x.shape.reduce((p, n) => p * n, 1) }));
}

async function main() {
  const { values: v } = parseArgs({
    args: process.argv.slice(2), strict: true,
    options: { runs: { type: 'string', default: '3' }, threads: { type: 'string' }, types: { type: 'string', default: 'Q4_0,IQ4_NL,Q4_K_M,Q5_K_M,Q8_0,F16' }, out: { type: 'string', default: 'BENCHMARKS.md' }, 'max-tokens': { type: 'string', default: '32' }, 'cpu-runs': { type: 'string', default: '2' }, rerender: { type: 'boolean', default: false } },
  });
  const out = path.resolve(root, v.out);
  if (v.rerender) {
    if (!existsSync(jsonOut)) throw new Error(`--rerender renders the last run from ${path.relative(root, jsonOut)}, which does not exist yet: run node bench/quant.mjs first`);
    writeSection(out, 'quantization', quantReport(JSON.parse(readFileSync(jsonOut, 'utf8'))));
    log(`wrote the quantization section of ${path.relative(root, out)} from ${path.relative(root, jsonOut)}`);
    return;
  }
  const cfg = { runs: Number(v.runs), threads: v.threads ? Number(v.threads) : os.availableParallelism(), maxTokens: Number(v['max-tokens']), cpuRuns: Number(v['cpu-runs']) };
  const types = v.types.split(',');
  for (const t of types) if (!(t in MAIN_TYPE)) throw new Error(`--types: unknown type ${t} (one of ${Object.keys(MAIN_TYPE).join(', ')})`);
  if (!(Number.isInteger(cfg.runs) && cfg.runs >= 1)) throw new Error('--runs must be an integer ≥ 1');
  if (!(Number.isInteger(cfg.cpuRuns) && cfg.cpuRuns >= 0)) throw new Error('--cpu-runs must be an integer ≥ 0');
  if (!existsSync(path.join(root, 'dist', 'index.js'))) throw new Error('build dist/ first (npm run build)');
  const dist = (p) => import(pathToFileURL(path.join(root, 'dist', p)).href);
  const { readGgufHeader, ggmlTypeName, ggmlBlockSize, GgmlType } = await dist('formats/gguf.js');
  const load0 = os.loadavg();

  // 1. the bench model in each type (cached); the quantization measured when it is made
  spawnSync(process.execPath, [path.join(root, 'bench', 'models.mjs')], { stdio: 'inherit' });
  const quantizeTimes = existsSync(timesFile) ? JSON.parse(readFileSync(timesFile, 'utf8')) : {};
  for (const t of types) {
    if (existsSync(file(t))) continue;
    log(`quantizing the bench model to ${t}`);
    const m = await measure(process.execPath, [path.join(root, 'bench', 'child-quantize.mjs'), JSON.stringify({ input: benchModels.f16, output: file(t), type: t })]);
    if (m.code !== 0) throw new Error(`quantizing to ${t} failed (${m.code}):\n${m.lines.map((l) => l.text).join('\n').slice(-2000)}`);
    quantizeTimes[t] = { wallMs: m.wallMs, cpuS: m.cpuS, load: os.loadavg()[0], at: new Date().toISOString() };
    await fs.writeFile(timesFile, JSON.stringify(quantizeTimes, null, 1));
    log(`  ${fmt(m.wallMs / 1000, 0)} s wall, ${fmt(m.cpuS, 0)} s CPU`);
  }
  // a cached file that is older than the F16 it came from has no valid time
  for (const t of Object.keys(quantizeTimes)) if (!existsSync(file(t)) || statSync(file(t)).mtimeMs < statSync(benchModels.f16).mtimeMs) delete quantizeTimes[t];
  const files = {};
  for (const t of types) {
    const matrices = await matricesOf(readGgufHeader, ggmlTypeName, file(t));
    const h = await readGgufHeader(file(t));
    files[t] = { bytes: statSync(file(t)).size, params: h.tensors.reduce((a, x) => a + x.shape.reduce((p, n) => p * n, 1), 0), matrices };
  }

  // 2. accuracy on the demo model (seconds: 0.43 M parameters)
  const accuracy = await demoAccuracy(types, { readGgufHeader, ggmlTypeName, blockSize: (name) => ggmlBlockSize(GgmlType[name]), threads: cfg.threads });

  // 3. speed, rounds of one question per type
  const image = path.join(root, 'assets', 'sample-xray.png');
  const question = 'Is there evidence of a pneumothorax in this chest X-ray?';
  const speed = Object.fromEntries(types.map((t) => [t, []]));
  for (let r = 0; r < cfg.runs; r++) {
    const order = types.map((_, i) => types[(i + r) % types.length]);
    for (const t of order) {
      const job = { model: file(t), mmproj: benchModels.mmproj, threads: cfg.threads, loadMode: 'none', image, question, maxTokens: cfg.maxTokens };
      const m = await measure(process.execPath, [path.join(root, 'bench', 'child-llava.mjs'), JSON.stringify(job)], { env: childEnv(cfg.threads) });
      const line = m.lines.find((l) => l.text.startsWith('RESULT '));
      const ready = m.lines.find((l) => l.text.startsWith('READY '));
      if (m.code !== 0 || !line) throw new Error(`${t}: child-llava exited ${m.code}:\n${m.lines.map((l) => l.text).join('\n').slice(-2000)}`);
      const o = JSON.parse(line.text.slice(7));
      const x = {
        readyMs: ready.t, promptRate: (o.perf.promptTokens / o.perf.promptMs) * 1000, decodeRate: (o.perf.evalTokens / o.perf.evalMs) * 1000,
        encodeMs: o.timings.imageEncodeMs, peakRssMb: m.peakRssMb, wallMs: m.wallMs, cpuS: m.cpuS,
      };
      speed[t].push(x);
      log(`round ${r + 1}/${cfg.runs} ${t}: ready ${fmt(x.readyMs, 0)} ms, prompt ${fmt(x.promptRate)} t/s, decode ${fmt(x.decodeRate)} t/s, RSS ${fmt(x.peakRssMb, 0)} MB`);
    }
  }
  // 4. CPU time per token on one thread (bench/child-cputime.mjs), rounds in the same rotated order
  const cpu = Object.fromEntries(types.map((t) => [t, []]));
  for (let r = 0; r < cfg.cpuRuns; r++) {
    for (const t of types.map((_, i) => types[(i + r) % types.length])) {
      const m = await measure(process.execPath, [path.join(root, 'bench', 'child-cputime.mjs'), JSON.stringify({ model: file(t), mmproj: benchModels.mmproj })], { env: childEnv(1) });
      const line = m.lines.find((l) => l.text.startsWith('RESULT '));
      if (m.code !== 0 || !line) throw new Error(`${t}: child-cputime exited ${m.code}:\n${m.lines.map((l) => l.text).join('\n').slice(-2000)}`);
      const o = JSON.parse(line.text.slice(7));
      // per process: the median rep, as tokens per CPU second
      const x = { prompt: o.tokens.prompt / (summary(o.prompt.map((p) => p.cpuMs)).median / 1000), decode: o.tokens.decode / (summary(o.decode.map((p) => p.cpuMs)).median / 1000), tokens: o.tokens };
      cpu[t].push(x);
      log(`cpu round ${r + 1}/${cfg.cpuRuns} ${t}: prompt ${fmt(x.prompt)} t/CPU-s, decode ${fmt(x.decode)} t/CPU-s`);
    }
  }
  const d = {
    cfg, types, files, quantizeTimes, accuracy, speed, cpu, load0, load1: os.loadavg(), cores: os.cpus().length,
    date: new Date().toISOString(), commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim(),
  };
  await fs.writeFile(jsonOut, JSON.stringify(d, null, 1));
  writeSection(out, 'quantization', quantReport(d));
  log(`wrote the quantization section of ${path.relative(root, out)}`);
}

async function demoAccuracy(types, { readGgufHeader, ggmlTypeName, blockSize, threads }) {
  const dist = (p) => import(pathToFileURL(path.join(root, 'dist', p)).href);
  const { ensureDemoModel, DEMO_TEST, DEMO_GENERATION, DEMO_REFERENCE_ANSWERS } = await dist('demo/index.js');
  const { quantize } = await dist('convert/quantize.js');
  const ev = await dist('eval/index.js');
  const { testEntryQuestion } = await dist('eval/formats.js');
  const { LlavaMed } = await dist('index.js');
  const demo = await ensureDemoModel(path.join(demoDir, 'f16'), (m) => log(`demo model: ${m}`));
  const gt = await ev.readTestFile(DEMO_TEST.questionFile);
  const ref = await ev.readAnswersFile(DEMO_REFERENCE_ANSWERS);
  const refText = new Map(ref.map((x) => [x.question_id, x.text]));
  const pytorch = ev.evaluate(gt, ref).overall;
  const rows = {};
  let f16Answers;
  // F16 first: the others are compared with its answers
  for (const t of ['F16', ...types.filter((x) => x !== 'F16')]) {
    // F16 is the converter's own output; the others are quantized from it (each run: seconds)
    const f = t === 'F16' ? demo.model : path.join(demoDir, `llava-med-demo-${t}.gguf`);
    if (t !== 'F16') await quantize({ input: demo.model, output: f, type: t });
    const answersFile = path.join(demoDir, `answers-${t}.jsonl`);
    await fs.rm(answersFile, { force: true });
    const med = await LlavaMed.load({ model: f, mmproj: demo.mmproj, threads, logLevel: 'error', logger: () => {} });
    let lp = 0;
    let nTok = 0;
    try {
      await ev.answerQuestions({ med, ...DEMO_TEST, answersFile, modelId: `llava-med-demo-${t}`, generation: DEMO_GENERATION });
      for (const e of gt) {
        const [s] = await med.score(path.join(DEMO_TEST.imageFolder, e.image), testEntryQuestion(e), [refText.get(e.id)]);
        lp += s.logProb;
        nTok += s.tokens.length;
      }
    } finally {
      await med.dispose();
    }
    const answers = await ev.readAnswersFile(answersFile);
    const m = ev.evaluate(gt, answers).overall;
    const byId = new Map(answers.map((x) => [x.question_id, x.text]));
    if (t === 'F16') f16Answers = byId;
    const matrices = await matricesOf(readGgufHeader, ggmlTypeName, f);
    rows[t] = {
      bytes: statSync(f).size, closedAccuracy: m.closedAccuracy, recall: m.recall,
      sameAsF16: [...byId].filter(([id, text]) => f16Answers.get(id) === text).length,
      logProbPerToken: lp / nTok, fallbacks: fallbacks(t, matrices, blockSize),
    };
    log(`demo ${t}: closed ${fmt(100 * m.closedAccuracy)} %, open recall ${fmt(100 * m.recall)} %, same as F16 ${rows[t].sameAsF16}/${gt.length}, log-prob/token ${fmt(lp / nTok, 4)}`);
  }
  const o = ev.evaluate(gt, ref).overall;
  return { n: gt.length, numClosed: o.numClosed, numOpen: o.numOpen, maxTokens: DEMO_GENERATION.maxTokens, pytorch, rows };
}

if (isMain) {
  main().catch((e) => { process.stderr.write(`${e.stack ?? e}\n`); process.exit(1); });
}
