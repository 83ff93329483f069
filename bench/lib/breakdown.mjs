// Where the differences between llava-med and llama-mtmd-cli come from, from data the same bench
// run collected (bench/run.mjs's runLlava / runMtmd rows): the peak RSS split into llama.cpp's and
// clip's buffers (their own "buffer size" log lines, the same on both sides), the ready time split
// into its steps, the encode windows of a CPU profile. Pure functions: test/bench/breakdown.test.ts.
import { summary, fmt, fmtS } from './stats.mjs';

/**
 * The buffer sizes (MiB) in llama.cpp / clip log lines (mtmd-cli's stderr with its timestamp
 * prefix, or the lines llava-med's logger received): language-model weights per buffer type, KV
 * cache, output, LM compute buffer, projector weights, projector compute buffer. Absent → 0.
 */
export function parseBuffers(lines) {
  const b = { model: {}, kv: 0, output: 0, lmCompute: 0, clipModel: 0, clipCompute: 0 };
  for (const raw of lines) {
    const l = String(raw);
    let m;
    if ((m = /load_tensors:\s+(\S+) model buffer size =\s+([\d.]+) MiB/.exec(l))) b.model[m[1]] = (b.model[m[1]] ?? 0) + Number(m[2]);
    else if ((m = /KV buffer size =\s+([\d.]+) MiB/.exec(l))) b.kv += Number(m[1]);
    else if ((m = /output buffer size =\s+([\d.]+) MiB/.exec(l))) b.output += Number(m[1]);
    // the scheduler may reserve more than once (each time for the worst-case graph): the last, largest stays
    else if ((m = /sched_reserve:\s+\S+ compute buffer size =\s+([\d.]+) MiB/.exec(l))) b.lmCompute = Math.max(b.lmCompute, Number(m[1]));
    else if ((m = /load_hparams: model size:\s+([\d.]+) MiB/.exec(l))) b.clipModel = Number(m[1]);
    else if ((m = /reserve_compute_meta:\s+\S+ compute buffer size =\s+([\d.]+) MiB/.exec(l))) b.clipCompute = Math.max(b.clipCompute, Number(m[1]));
  }
  return b;
}

const modelMb = (b) => Object.values(b?.model ?? {}).reduce((a, x) => a + x, 0);
const MIB_PER_MB = 1; // peak RSS (GNU time's %M / 1024) and llama.cpp's sizes are both MiB

/** Components of one row's peak RSS (MiB); `base`: the process before any model is loaded. */
export function rssComponents(row, base) {
  const b = row?.buffers;
  if (!b) return null;
  const c = {
    base,
    weights: modelMb(b),
    kv: b.kv,
    lmCompute: b.lmCompute + b.output,
    clipModel: b.clipModel,
    clipCompute: b.clipCompute,
  };
  c.rest = row.peakRssMb * MIB_PER_MB - Object.values(c).reduce((a, x) => a + (Number.isFinite(x) ? x : 0), 0);
  c.peak = row.peakRssMb;
  return c;
}

const RSS_ROWS = [
  ['base', 'process before loading (llava-med: node + its imports, RSS when the child starts; mtmd-cli: `--version` peak)'],
  ['weights', 'LM weights (llama.cpp model buffers)'],
  ['kv', 'KV cache'],
  ['lmCompute', 'LM compute + output buffers'],
  ['clipModel', 'projector weights (clip)'],
  ['clipCompute', 'projector compute buffer'],
  ['rest', 'rest: peak − the above (allocator and thread overhead, image data, JS heap growth; negative where allocated buffer pages were never touched, e.g. KV cells past the prompt; in mmap mode "LM weights" are file pages)'],
  ['peak', '**peak RSS**'],
];

/**
 * Markdown lines: the median of each RSS component for llava-med (`lm` rows) and mtmd-cli (`cli`
 * rows), the difference per component, and the components that explain most of the gap.
 * `cliBaseMb`: mtmd-cli's peak RSS running `--version` (its binary and libc), or NaN.
 * `fa`: rows of llava-med with the LM's flash attention on (their compute buffer, if measured).
 */
export function rssBreakdown(lm, cli, { cliBaseMb = NaN, fa = [], title = '' } = {}) {
  const L = [];
  const med = (rows, k, base) => summary(rows.map((r) => rssComponents(r, base(r))?.[k])).median;
  const lmBase = (r) => r.rssAfterImportMb;
  const cliBase = () => cliBaseMb;
  if (!lm.some((r) => r.buffers) || !cli.some((r) => r.buffers)) return L;
  if (title) L.push(title, '');
  L.push('| component, MiB (median) | llava-med | mtmd-cli | llava-med − mtmd-cli |', '|---|---|---|---|');
  const diffs = [];
  for (const [k, label] of RSS_ROWS) {
    const a = med(lm, k, lmBase);
    const b = med(cli, k, cliBase);
    const d = a - b;
    if (k !== 'peak' && k !== 'rest' && Number.isFinite(d)) diffs.push([label, d]);
    L.push(`| ${label} | ${fmt(a, 0)} | ${fmt(b, 0)} | ${Number.isFinite(d) ? `${d >= 0 ? '+' : ''}${fmt(d, 0)}` : 'n/a'} |`);
  }
  const heap = summary(lm.map((r) => r.memoryUsage?.heapTotal / 2 ** 20));
  const ext = summary(lm.map((r) => r.memoryUsage?.external / 2 ** 20));
  L.push('');
  const big = diffs.filter(([, d]) => Math.abs(d) >= 8).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  let s = `Buffer sizes are llama.cpp's and clip's own log lines on both sides (the same code allocates them). V8 heap at the end of llava-med's run: ${fmt(heap.median, 0)} MiB (heapTotal), external ${fmt(ext.median, 0)} MiB: part of "process before loading" and "rest".`;
  if (big.length) s += ` The components that differ by 8 MiB or more: ${big.map(([l, d]) => `${l.replace(/\s*\(.*$/, '')} ${d >= 0 ? '+' : ''}${fmt(d, 0)}`).join(', ')}.`;
  const faCompute = summary(fa.map((r) => (r.buffers ? r.buffers.lmCompute + r.buffers.output : NaN))).median;
  const lmCompute = med(lm, 'lmCompute', lmBase);
  const cliCompute = med(cli, 'lmCompute', cliBase);
  if (Number.isFinite(lmCompute) && lmCompute - cliCompute >= 8) {
    s += ` The LM compute buffer is sized for the worst-case graph of one micro-batch: with flash attention off (llava-med's default, ARCHITECTURE.md) it holds the attention scores (context cells × micro-batch × heads × 4 bytes), which the flash-attention kernel mtmd-cli runs by default does not materialise`;
    s += Number.isFinite(faCompute) ? `; llava-med with \`flashAttn: 'on'\` in the same rounds: ${fmt(faCompute, 0)} MiB (mtmd-cli ${fmt(cliCompute, 0)}). ` : '. ';
    s += 'What would move it: a smaller micro-batch for the prompt (n_ubatch) or a smaller context, or flash attention where its reproducibility trade-off is acceptable.';
  }
  if (Number.isFinite(med(lm, 'base', lmBase)) && med(lm, 'base', lmBase) - med(cli, 'base', cliBase) >= 8) {
    s += ` The process baseline (node, V8, the imported modules) is a fixed cost mtmd-cli does not have; it shrinks only with fewer or lazier imports.`;
  }
  L.push(s, '');
  return L;
}

/**
 * Markdown lines: the ready time of both tools split into steps (medians over rows).
 * llava-med: spawn → node up and imports done (`importsMs`, from the child's time origin) → header
 * checks + model (`inProcessModelMs`) → projector + context → READY line; mtmd-cli: spawn → model +
 * context with its memory-fit pass → warm-up decode → mmproj → ready line (line arrival times).
 */
export function readyTimeline(lm, cli) {
  const m = (rows, f) => summary(rows.map(f));
  const steps = [
    ['spawn → node up + imports done', m(lm, (r) => r.importsMs), 'spawn → model + context loaded (incl. its memory-fit pass)', m(cli, (r) => r.modelCtxMs)],
    ['header checks + LM weights', m(lm, (r) => r.inProcessModelMs), 'warm-up decode (llava-med has none)', m(cli, (r) => r.warmupDecodeMs)],
    ['projector + context (side by side)', m(lm, (r) => r.inProcessLoadMs - r.inProcessModelMs), 'mmproj', m(cli, (r) => r.mmprojMs)],
    ['READY line reaches the parent (pipe, event loop)', m(lm, (r) => r.readyMs - r.importsMs - r.inProcessLoadMs), '', null],
  ];
  if (!lm.some((r) => Number.isFinite(r.importsMs))) return [];
  const L = ['| llava-med step | ms (median, min–max) | mtmd-cli step | ms (median, min–max) |', '|---|---|---|---|'];
  for (const [a, sa, b, sb] of steps) L.push(`| ${a} | ${fmtS(sa, 0)} | ${b} | ${sb ? fmtS(sb, 0) : ''} |`);
  L.push(`| **ready** | **${fmtS(m(lm, (r) => r.readyMs), 0)}** | **ready** (its t_load ${fmtS(m(cli, (r) => r.modelLoadMs), 0)}) | **${fmtS(m(cli, (r) => r.readyMs), 0)}** |`, '');
  // the step-by-step differences, largest first: what would move the ready ratio
  const med = (rows, f) => m(rows, f).median;
  const parts = [
    ['node and its imports before any loading (mtmd-cli has no such step)', med(lm, (r) => r.importsMs) + med(lm, (r) => r.readyMs - r.importsMs - r.inProcessLoadMs)],
    ['the LM weights (llava-med: with its header checks, mtmd-cli: with its context and memory-fit pass)', med(lm, (r) => r.inProcessModelMs) - med(cli, (r) => r.modelCtxMs)],
    ['the rest (llava-med: projector and context side by side, mtmd-cli: warm-up decode and the mmproj)', med(lm, (r) => r.inProcessLoadMs - r.inProcessModelMs) - med(cli, (r) => r.warmupDecodeMs + r.mmprojMs)],
  ].filter(([, d]) => Number.isFinite(d)).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  if (parts.length) L.push(`Step differences, llava-med − mtmd-cli (medians): ${parts.map(([l, d]) => `${l} ${d >= 0 ? '+' : ''}${fmt(d, 0)} ms`).join('; ')}. The largest positive one is where llava-med's ready time would move.`, '');
  return L;
}

/**
 * Encode windows for `perf report --time`: [[startS, endS], …] in CLOCK_MONOTONIC seconds.
 * llava-med prints them itself (ENC lines); mtmd-cli's are its "encoding mtmd batch" → "mtmd
 * batch encoding done" stderr lines, at their arrival times (`lines[i].mono`). The first is dropped
 * (it pays one-time costs: first touches of the weights and buffers).
 */
export function cliEncodeWindows(lines) {
  const w = [];
  let start = null;
  for (const l of lines) {
    if (/encoding mtmd batch/.test(l.text)) start = l.mono;
    else if (/mtmd batch encoding done/.test(l.text) && start !== null) { w.push([start, l.mono]); start = null; }
  }
  return w.slice(1);
}

/** Every encoder time mtmd-cli printed (ms), in order. */
export function cliEncodeTimes(text) {
  return [...String(text).matchAll(/mtmd batch encoding done in (\d+) ms/g)].map((m) => Number(m[1]));
}
