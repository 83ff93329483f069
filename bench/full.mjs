// `npm run bench -- --full`: the single-question comparison with llama-mtmd-cli at the size users
// run — the 32-layer LLaMA-7B-shaped Q4_K_M model (bench/models.mjs ensureFullBenchModel) — next to
// the 4-layer bench model, in the same rounds, both load modes. Each round runs the pairs
//   4L none, 32L none, [32L none with the LM's flash attention on], 4L mmap, 32L mmap
// (llava-med / mtmd-cli, the order inside each pair reversed in odd rounds), so every ratio is
// paired with an adjacent peer run and the 4-layer and 32-layer ratios come from the same minutes
// of a shared machine. The load average is recorded before each run. It writes its own section of
// BENCHMARKS.md (`<!-- section:full-size -->`, bench/lib/sections.mjs) and the raw rows to
// bench/.cache/full-size.json (`--full --rerender` renders the section again from them).
// With --profile, the first round's 32-layer load-mode-none runs are recorded by `perf record`
// (cpu-clock samples at PERF_HZ) and the section gets a CPU-time-per-function table: CPU time does
// not depend on how long a process waited for a core, so it compares the tools on a loaded machine.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { summary, pairedRatios, fmt, fmtS, fmtR } from './lib/stats.mjs';
import { rssBreakdown, readyTimeline } from './lib/breakdown.mjs';
import { analysisBlock } from './lib/sections.mjs';

export const FULL_SECTION = 'full-size';

/** The configurations of one round, in run order (pairs: llava-med then mtmd-cli in even rounds). */
export function fullConfigs({ lmFlashAttn = true } = {}) {
  const pair = (size, mode) => [
    { key: `lm-${size}-${mode}`, tool: 'llava-med', size, mode },
    { key: `cli-${size}-${mode}`, tool: 'mtmd-cli', size, mode },
  ];
  return [
    pair('4L', 'none'),
    pair('32L', 'none'),
    // llava-med's LM with flash attention on (mtmd-cli's default), next to the default pair: the
    // one suspect for the prompt-eval gap named in the issue, measured rather than assumed
    ...(lmFlashAttn ? [[{ key: 'lm-32L-none-fa', tool: 'llava-med', size: '32L', mode: 'none', extra: { flashAttn: 'on' } }]] : []),
    pair('4L', 'mmap'),
    pair('32L', 'mmap'),
    // the stable encode comparison: ENCODE_IMAGES images encoded in one process each (the first
    // discarded), 4-layer model (the encoder and its mmproj shapes are the 32-layer ones)
    [
      { key: 'lm-enc', tool: 'llava-med', size: '4L', mode: 'none', encode: true },
      { key: 'cli-enc', tool: 'mtmd-cli', size: '4L', mode: 'none', encode: true },
    ],
  ];
}

/** Images per process in the encode comparison (the first of each process is not counted). */
export const ENCODE_IMAGES = 4;

/**
 * Runs `runs` rounds. `run(config, image, question)` measures one process and resolves its row
 * (readyMs, encodeMs, promptRate, decodeRate, questionMs, wallMs, peakRssMb, …).
 */
export async function fullRounds({ runs, images, questions, run, settle, log, lmFlashAttn = true, wrapFor = () => [], onRound = async () => {} }) {
  const pairs = fullConfigs({ lmFlashAttn });
  const res = Object.fromEntries(pairs.flat().map((c) => [c.key, []]));
  const load = [];
  for (let round = 0; round < runs; round++) {
    const image = images[round % images.length];
    const q = questions[round % questions.length];
    for (const c of pairs.flatMap((p) => (round % 2 ? [...p].reverse() : p))) {
      await settle();
      const loadAvg = os.loadavg();
      load.push(loadAvg[0]);
      const r = await run(c, image, q, wrapFor(c, round));
      res[c.key].push({ ...r, loadAvg });
      if (r.encodes) log(`  full round ${round + 1}/${runs} ${c.key}: encodes ${r.encodes.map((x) => fmt(x, 0)).join(', ')} ms, RSS ${fmt(r.peakRssMb, 0)} MB, load ${loadAvg[0].toFixed(1)}`);
      else log(`  full round ${round + 1}/${runs} ${c.key}: ${Number.isFinite(r.touchMs) ? `pre-touch ${fmt(r.touchMs, 0)} ms, ` : ''}ready ${fmt(r.readyMs, 0)} ms, encode ${fmt(r.encodeMs, 0)} ms, prompt ${fmt(r.promptRate)} t/s (${r.promptTokens}), decode ${fmt(r.decodeRate)} t/s (${r.evalTokens}), question ${fmt(r.questionMs, 0)} ms, RSS ${fmt(r.peakRssMb, 0)} MB, load ${loadAvg[0].toFixed(1)}`);
    }
    // after every round: an interrupted run keeps the rounds it finished
    await onRound({ res, load: summary(load) }, round);
  }
  return { res, load: summary(load) };
}

export const PERF_HZ = 499;
/** The configurations --profile records (first round). */
export const PROFILED = ['lm-32L-none', 'cli-32L-none', 'lm-32L-none-fa', 'lm-32L-mmap', 'cli-32L-mmap', 'lm-enc', 'cli-enc'];
/** The whole-process profile table's columns (the encode runs have their own, windowed table). */
const WHOLE = PROFILED.filter((k) => !k.endsWith('-enc'));

/**
 * `perf report` of one recording: { totalSamples, symbols: { name: samples } } (null without perf).
 * `windows`: [[startS, endS], …] (CLOCK_MONOTONIC seconds; the recording used -k CLOCK_MONOTONIC):
 * only the samples inside them, summed, plus `seconds` (the windows' total length).
 */
export function perfSymbols(file, windows = null) {
  if (windows) {
    const acc = { totalSamples: 0, symbols: {}, seconds: 0, windows: windows.length };
    for (const [a, b] of windows) {
      const one = perfSymbols.parse(spawnSync('perf', ['report', '-i', file, '--time', `${a.toFixed(6)},${b.toFixed(6)}`, '--sort', 'sym', '--stdio', '--no-children', '-n'], { encoding: 'utf8', maxBuffer: 64 << 20 }));
      if (!one) return null;
      acc.totalSamples += one.totalSamples;
      acc.seconds += b - a;
      for (const [k, v] of Object.entries(one.symbols)) acc.symbols[k] = (acc.symbols[k] ?? 0) + v;
    }
    return acc;
  }
  return perfSymbols.parse(spawnSync('perf', ['report', '-i', file, '--sort', 'sym', '--stdio', '--no-children', '-n'], { encoding: 'utf8', maxBuffer: 64 << 20 }));
}
perfSymbols.parse = (r) => {
  if (r.status !== 0) return null;
  const symbols = {};
  let totalSamples = 0;
  for (const line of r.stdout.split('\n')) {
    const m = /^\s*[\d.]+%\s+(\d+)\s+\[[.k]\]\s+(.+?)\s*$/.exec(line);
    if (!m) continue;
    // template arguments make tinyBLAS names long: keep the kernel's name
    const name = m[2].replace(/^\(anonymous namespace\)::/, '').replace(/<.*>::/, '::');
    symbols[name] = (symbols[name] ?? 0) + Number(m[1]);
    totalSamples += Number(m[1]);
  }
  return { totalSamples, symbols };
};

/** Lines for the section: CPU seconds per function of the profiled runs, largest first. */
export function profileTable(prof, { top = 14 } = {}) {
  const keys = WHOLE.filter((k) => prof[k]);
  if (keys.length < 2) return [];
  const sec = (k, sym) => (prof[k].symbols[sym] ?? 0) / PERF_HZ;
  const all = new Set(keys.flatMap((k) => Object.keys(prof[k].symbols)));
  const rank = [...all].sort((a, b) => Math.max(...keys.map((k) => sec(k, b))) - Math.max(...keys.map((k) => sec(k, a)))).slice(0, top);
  const L = [];
  L.push(`**Where the CPU time goes at 32 layers** (\`--profile\`: \`perf record -F ${PERF_HZ}\` around the first round's 32-layer runs, whole process: load, encode, prompt eval, ${'decode'}; CPU seconds summed over threads, which depend far less on the machine's load than wall time):`, '');
  const diff = prof['lm-32L-none'] && prof['cli-32L-none'];
  const d = (sym) => sec('lm-32L-none', sym) - sec('cli-32L-none', sym);
  L.push(`| function | ${keys.join(' | ')} |${diff ? ' lm − cli (none) |' : ''}`, `|---|${keys.map(() => '---|').join('')}${diff ? '---|' : ''}`);
  const tot = (k) => prof[k].totalSamples / PERF_HZ;
  L.push(`| **total CPU, s** | ${keys.map((k) => `**${fmt(tot(k))}**`).join(' | ')} |${diff ? ` **${fmt(tot('lm-32L-none') - tot('cli-32L-none'))}** |` : ''}`);
  for (const sym of rank) L.push(`| \`${sym.length > 60 ? `${sym.slice(0, 57)}…` : sym}\` | ${keys.map((k) => fmt(sec(k, sym))).join(' | ')} |${diff ? ` ${fmt(d(sym))} |` : ''}`);
  L.push('');
  if (diff) {
    const more = [...all].map((sym) => [sym, d(sym)]).sort((a, b) => b[1] - a[1]).filter(([, x]) => x > 0.2).slice(0, 4);
    const less = [...all].map((sym) => [sym, d(sym)]).sort((a, b) => a[1] - b[1]).filter(([, x]) => x < -0.2).slice(0, 4);
    L.push(`Largest differences (load mode none, llava-med − mtmd-cli, CPU s): more in ${more.map(([k, x]) => `\`${k.slice(0, 50)}\` +${fmt(x)}`).join(', ') || 'nothing'}; less in ${less.map(([k, x]) => `\`${k.slice(0, 50)}\` ${fmt(x)}`).join(', ') || 'nothing'}.`, '');
  }
  // the levers, from the same recordings
  const lev = [];
  const base = prof['lm-32L-none'];
  const pct = (x) => `${x >= 0 ? '+' : '−'}${fmt(Math.abs(x) * 100, 1)} %`;
  const symSum = (k, re) => Object.entries(prof[k]?.symbols ?? {}).filter(([n]) => re.test(n)).reduce((a, [, v]) => a + v, 0) / PERF_HZ;
  // the LM's attention without flash attention: K·Q and V·softmax as F16 GEMMs (tinyBLAS, shared with the
  // vision encoder: its part is the FA run's tinyBLAS time), Q / softmax converted to F16, the softmax
  const attnOff = symSum('lm-32L-none', /tinyBLAS|fp32_to_fp16|soft_max/) - symSum('lm-32L-none-fa', /tinyBLAS|fp32_to_fp16|soft_max/);
  const attnOn = symSum('lm-32L-none-fa', /flash_attn/);
  if (base && prof['lm-32L-none-fa']) {
    // same process but the LM's attention kernel: the difference is what flash attention saves
    lev.push(`the LM's flash attention: llava-med with \`flashAttn: 'on'\` used ${fmt(tot('lm-32L-none-fa'))} CPU s against ${fmt(tot('lm-32L-none'))} (${pct((tot('lm-32L-none-fa') - tot('lm-32L-none')) / tot('lm-32L-none'))}; attention is a few CPU s either way: FA off ${fmt(attnOff)} s, FA on ${fmt(attnOn)} s)`);
  }
  if (base) {
    const q6 = Object.entries(base.symbols).filter(([k]) => /vec_dot_q6_K/.test(k)).reduce((a, [, v]) => a + v, 0) / PERF_HZ;
    const q4 = Object.entries(base.symbols).filter(([k]) => /gemm_q4_K|gemv_q4_K/.test(k)).reduce((a, [, v]) => a + v, 0) / PERF_HZ;
    lev.push(`Q6_K weights (Q4_K_M keeps the output head and part of the attn_v / ffn_down layers in Q6_K): ${fmt(q6)} CPU s in \`ggml_vec_dot_q6_K_q8_K\`, the one-row dot product, because this ggml repacks Q4_K for AVX2 (${fmt(q4)} s in its 8x8 GEMM/GEMV) but Q6_K only for ARM (NEON) — a quantization without Q6_K tensors whose blocks ggml repacks on x86 (Q4_0, IQ4_NL: the quantization table) or an x86 Q6_K repack (repack.cpp has the generic 8x4/8x8 layouts) would move it`);
    const pages = (base.symbols.clear_page_erms ?? 0) / PERF_HZ;
    if (pages) lev.push(`page zeroing (\`clear_page_erms\`, the kernel clearing fresh anonymous pages: weights read in load mode none, repacked copies, KV cache, compute buffers): ${fmt(pages)} CPU s, paid at load`);
  }
  if (lev.length) L.push(`What would move it: ${lev.join('; ')}.`, '');
  return L;
}

const ROWS = [
  ['ready (spawn → loaded), ms', (r) => r.readyMs, 0, 'lower', 1.05],
  ['image encode, ms', (r) => r.encodeMs, 0, 'lower', 1],
  ['prompt eval, tokens/s', (r) => r.promptRate, 1, 'higher', 1],
  ['decode, tokens/s', (r) => r.decodeRate, 1, 'higher', 1],
  ['question after load (ready → exit), ms', (r) => r.questionMs, 0, 'lower', 1],
  ['process CPU time (user + sys), s', (r) => r.cpuMs / 1000, 1, 'lower', 'info'],
  ['peak RSS, MB', (r) => r.peakRssMb, 0, 'lower', null],
];

/**
 * The section's markdown. `build`: bench/models.mjs's record of the 32-layer model's build (time,
 * peak RSS per step, disk); `perf`: perfSymbols() of the --profile recordings, by configuration.
 */
// where each figure's "met?" links when it is missed: the profile paragraph that explains it
const ANCHOR = { ready: 'full-ready', image: 'full-encode', prompt: 'full-prompt', decode: 'full-prompt', question: 'full-prompt', peak: 'full-rss' };
const anchorOf = (name) => ANCHOR[name.split(' ')[0]];

/** The verdict cell: met or not, linked to its profile when not, and whether the rounds straddle the target. */
export function verdictCell(r, better, target) {
  if (!r.n) return { ok: null, cell: 'n/a' };
  const ok = better === 'higher' ? r.median >= target : r.median <= target;
  const straddles = r.min < target && r.max > target;
  return { ok, cell: `${ok ? 'yes' : '**no**'}${straddles ? ` (not settled: rounds ${fmt(r.min, 2)}–${fmt(r.max, 2)} on both sides)` : ''}` };
}

/** Phase split of one question after load (medians): encode, prompt eval, decode, the rest. */
function phaseTable(F, size) {
  const L = ['| phase, ms (median) | llava-med none | mtmd-cli none | llava-med mmap | mtmd-cli mmap |', '|---|---|---|---|---|'];
  const keys = [`lm-${size}-none`, `cli-${size}-none`, `lm-${size}-mmap`, `cli-${size}-mmap`];
  const med = (k, f) => summary((F.res[k] ?? []).map(f)).median;
  const rest = (r) => r.questionMs - r.encodeMs - r.promptMs - r.evalMs;
  for (const [label, f] of [['image encode', (r) => r.encodeMs], ['prompt eval (image + text tokens)', (r) => r.promptMs], ['decode', (r) => r.evalMs],
    ['rest (image decode and preprocessing, tokenizing, sampling, teardown; negative where a tool\'s counters overlap the other phases)', rest], ['**question after load**', (r) => r.questionMs]]) {
    L.push(`| ${label} | ${keys.map((k) => fmt(med(k, f), 0)).join(' | ')} |`);
  }
  L.push('');
  return L;
}

/** The encode comparison (lm-enc / cli-enc) and, with --profile, its windowed CPU profile. */
function encodeSection(F, perf) {
  const L = [];
  const kept = (r) => summary((r.encodes ?? []).slice(1)).median;
  const a = F.res['lm-enc'] ?? [];
  const b = F.res['cli-enc'] ?? [];
  if (a.length && b.length) {
    L.push(`Each process encodes ${ENCODE_IMAGES} images (llava-med: \`embedImage\` one after another; mtmd-cli: \`--image a,b,c,d\` with ${ENCODE_IMAGES} media markers and \`-n 1\`, its per-image "mtmd batch encoding done in N ms"; mtmd-cli prefills each image between encodes, llava-med does not); the first image of each process is not counted, the rest's median is the process's figure. 4-layer model, load mode none.`, '');
    L.push('| | llava-med | mtmd-cli | llava-med / mtmd-cli (paired per round) |', '|---|---|---|---|');
    L.push(`| image encode, ms (images 2–${ENCODE_IMAGES}, median per process) | ${fmtS(summary(a.map(kept)), 0)} | ${fmtS(summary(b.map(kept)), 0)} | ${fmtR(pairedRatios(a.map(kept), b.map(kept)))} |`);
    L.push(`| first image, ms | ${fmtS(summary(a.map((r) => r.encodes?.[0])), 0)} | ${fmtS(summary(b.map((r) => r.encodes?.[0])), 0)} | ${fmtR(pairedRatios(a.map((r) => r.encodes?.[0]), b.map((r) => r.encodes?.[0])))} |`, '');
  }
  const pa = perf?.['lm-enc'];
  const pb = perf?.['cli-enc'];
  if (pa?.windows && pb?.windows) {
    const per = (p, sym) => (p.symbols[sym] ?? 0) / PERF_HZ / p.windows;
    const tot = (p) => p.totalSamples / PERF_HZ / p.windows;
    const all = [...new Set([...Object.keys(pa.symbols), ...Object.keys(pb.symbols)])];
    const rank = all.sort((x, y) => Math.max(per(pa, y), per(pb, y)) - Math.max(per(pa, x), per(pb, x))).slice(0, 12);
    L.push(`**CPU per encoded image, by function** (first round, \`perf record -k CLOCK_MONOTONIC\`, only the samples inside the encode windows: llava-med's own markers around each \`embedImage\`, mtmd-cli's "encoding mtmd batch" → "encoding done" lines; images 2–${ENCODE_IMAGES}; CPU s per image summed over threads):`, '');
    L.push('| function | llava-med | mtmd-cli | llava-med − mtmd-cli |', '|---|---|---|---|');
    L.push(`| **total CPU per image, s** (window ${fmt(pa.seconds / pa.windows, 2)} s vs ${fmt(pb.seconds / pb.windows, 2)} s) | **${fmt(tot(pa), 2)}** | **${fmt(tot(pb), 2)}** | **${fmt(tot(pa) - tot(pb), 2)}** |`);
    for (const sym of rank) L.push(`| \`${sym.length > 60 ? `${sym.slice(0, 57)}…` : sym}\` | ${fmt(per(pa, sym), 2)} | ${fmt(per(pb, sym), 2)} | ${fmt(per(pa, sym) - per(pb, sym), 2)} |`);
    const d = all.map((sym) => [sym, per(pa, sym) - per(pb, sym)]).sort((x, y) => y[1] - x[1]).filter(([, x]) => x > 0.02).slice(0, 4);
    const util = (p) => tot(p) / (p.seconds / p.windows); // cores busy on average inside the windows
    L.push('', `llava-med spends more CPU in: ${d.map(([k, x]) => `\`${k.slice(0, 50)}\` +${fmt(x, 2)} s`).join(', ') || 'nothing measurable (no function more than 0.02 s per image)'}. ` +
      `Cores busy inside the windows: llava-med ${fmt(util(pa), 2)}, mtmd-cli ${fmt(util(pb), 2)} on average` +
      (tot(pa) <= tot(pb) && pa.seconds / pa.windows > pb.seconds / pb.windows ? ': llava-med did no more work per image but waited longer for the cores in this run, so its wall-clock encode time measured the machine\'s load rather than its kernels. ' : '. ') +
      'The configured difference: llava-med keeps the vision attention\'s K and V in F32 by default (`projectorFlashAttn: \'off\'`), mtmd-cli casts them to F16 (flash attention on); the 4-layer table "Vision encoder precision" measures `projectorFlashAttn: \'on\'` next to both. ' +
      'What would move it: the functions above where llava-med spends more; the F16 attention path is an option at the precision cost in docs/conversion.md.', '');
  }
  return L;
}

export function fullReport({ M, F, build, threads, maxTokens, loadEnd, perf = null, cliBaseMb = NaN }) {
  const L = [];
  const s = (key, f) => summary((F.res[key] ?? []).map(f));
  const ratio = (a, b, f) => pairedRatios((F.res[a] ?? []).map(f), (F.res[b] ?? []).map(f));
  const rounds = Math.max(0, ...Object.values(F.res).map((x) => x.length));
  L.push('## At the size users run: 32-layer 7B-shaped model (`npm run bench -- --full`)', '');
  L.push(`Measured under load: the machine (${M.cores} cores) was shared with other work; load average ${fmt(F.load.min)}–${fmt(F.load.max)} (median ${fmt(F.load.median)}) at the start of the runs` +
    `${loadEnd ? `, ${loadEnd.map((x) => x.toFixed(1)).join(', ')} at the end` : ''}. Each ratio is paired with the adjacent peer run of the same round; absolute figures move more than ratios.`, '');
  L.push(`commit ${M.commit}, ${M.date}, ${M.cpu}; ${threads} threads (OMP_NUM_THREADS, GOMP_SPINCOUNT as above); rounds: ${rounds}; one question per process, ${maxTokens} new tokens max, greedy, context 2048.`, '');
  const touched = (F.res['lm-32L-none'] ?? []).some((r) => Number.isFinite(r.touchMs));
  const touchS = summary(Object.values(F.res).flat().map((r) => r.touchMs));
  const touchText = ` and a throw-away process (bench/child-touch.mjs) maps, touches and frees as much memory as that configuration's peak RSS in the previous round (round 1: an estimate from the file sizes; ${fmtS(touchS, 0)} ms each), so the kernel's cost of freeing memory after a change in memory use is not charged to whichever tool runs first`;
  L.push(`Method: every pair runs llava-med first in odd rounds and mtmd-cli first in even ones (counterbalanced); before each measured process its model and mmproj are read into the page cache${touched ? touchText : ''}. Ratios are the median (min–max) of the per-round paired ratios; a target whose rounds fall on both sides of it is marked "not settled".`, '');
  if (build) {
    const st = build.steps ?? {};
    const step = (k, label) => (st[k] ? `${label} ${fmt(st[k].wallMs / 60000, 1)} min, peak RSS ${fmt(st[k].peakRssMb, 0)} MB` : null);
    L.push(`**Model**: random weights in the real shapes, generated by the bench (bench/models.mjs \`--full\`): LLaMA-7B-shaped LLM with all 32 layers (4096 wide, FFN 11008, vocab 32004) + CLIP ViT-L/14-224 with the v0 projector, ` +
      `written as HF checkpoints (${fmt((st.gen?.outBytes ?? 0) / 1e9, 1)} GB), converted by llava-med (delta fold, F16) and quantized to Q4_K_M (${fmt(build.q4Bytes / 1e9, 2)} GB; mmproj ${fmt(build.mmprojBytes / 1e9, 2)} GB). ` +
      `Built once, streamed: ${[step('gen', 'HF write'), step('convert', 'conversion'), step('quantize', 'Q4_K_M')].filter(Boolean).join('; ')}; ` +
      `disk: at most ${fmt(((st.gen?.outBytes ?? NaN) + (st.convert?.outBytes ?? NaN)) / 1e9, 1)} GB of its own files at once (HF checkpoints + the F16 GGUF and mmproj, at the end of the conversion; ${fmt(build.freeBeforeGB, 1)} GB were free before, ${fmt(build.minFreeGB, 1)} GB at the lowest on the shared disk); the HF folders and the F16 GGUF are deleted once used.`, '');
  }
  L.push('| figure | mode | llava-med 32L | mtmd-cli 32L | **32L ratio** | 4L ratio (same rounds) | target | met at 32L? |', '|---|---|---|---|---|---|---|---|');
  const verdicts = [];
  for (const [name, f, d, better, target] of ROWS) {
    for (const mode of ['none', 'mmap']) {
      const r32 = ratio(`lm-32L-${mode}`, `cli-32L-${mode}`, f);
      const r4 = ratio(`lm-4L-${mode}`, `cli-4L-${mode}`, f);
      let tgt = '';
      let met = '';
      if (target === 'info') {
        tgt = '(not a target: CPU time depends less on the load than wall time; spin-waits and shared caches still enter)';
        met = '';
      } else if (target !== null) {
        tgt = `${better === 'higher' ? '≥' : '≤'} ${target.toFixed(2)}×`;
        const v = verdictCell(r32, better, target);
        const ok = v.ok;
        met = ok === false ? `${v.cell} → [profile](#${anchorOf(name)})` : v.cell;
        verdicts.push({ name, mode, ok, median: r32.median });
      } else {
        const diff = s(`lm-32L-${mode}`, f).median - s(`cli-32L-${mode}`, f).median;
        tgt = '≤ mtmd-cli + 64 MB';
        const ok = Number.isFinite(diff) ? diff <= 64 : null;
        met = ok === null ? 'n/a' : `${ok ? 'yes' : '**no**'} (${diff >= 0 ? '+' : ''}${fmt(diff, 0)} MB)${ok ? '' : ` → [profile](#${anchorOf(name)})`}`;
        verdicts.push({ name, mode, ok, median: diff });
      }
      L.push(`| ${name} | ${mode} | ${fmtS(s(`lm-32L-${mode}`, f), d)} | ${fmtS(s(`cli-32L-${mode}`, f), d)} | ${fmtR(r32)} | ${fmtR(r4)} | ${tgt} | ${met} |`);
    }
  }
  L.push('');
  const a = F.res['lm-32L-none']?.[0];
  const b = F.res['cli-32L-none']?.[0];
  if (a && b) L.push(`Prompt tokens: llava-med ${a.promptTokens} (256 image + text), mtmd-cli ${b.promptTokens}; decode steps ${a.evalTokens} vs ${b.evalTokens}. "question after load" = ready → exit: encode + prompt eval + decode + teardown, the time a user waits per question once the model is loaded. Load split (32L): llava-med's \`LlavaMed.load()\` ${fmtS(s('lm-32L-none', (r) => r.inProcessLoadMs), 0)} ms (none), ${fmtS(s('lm-32L-mmap', (r) => r.inProcessLoadMs), 0)} ms (mmap); mtmd-cli's t_load ${fmtS(s('cli-32L-none', (r) => r.modelLoadMs), 0)} / ${fmtS(s('cli-32L-mmap', (r) => r.modelLoadMs), 0)} ms.`, '');
  if ((F.res['lm-32L-none-fa'] ?? []).length) {
    const pr = (r) => r.promptRate;
    const dr = (r) => r.decodeRate;
    L.push(`**Flash attention for the LM** (llava-med \`flashAttn: 'on'\`, load mode none, run right after the default pair): prompt eval ${fmtS(s('lm-32L-none-fa', pr))} tokens/s, ` +
      `/ mtmd-cli (same round) ${fmtR(ratio('lm-32L-none-fa', 'cli-32L-none', pr))}, / llava-med default ${fmtR(ratio('lm-32L-none-fa', 'lm-32L-none', pr))}; decode ${fmtS(s('lm-32L-none-fa', dr))} tokens/s, / default ${fmtR(ratio('lm-32L-none-fa', 'lm-32L-none', dr))}; ` +
      `process CPU time / default ${fmtR(ratio('lm-32L-none-fa', 'lm-32L-none', (r) => r.cpuMs))} (the wall-clock ratios follow the machine's load between the two runs; the CPU time does not). ` +
      'The default stays off on CPU (ARCHITECTURE.md: the kernel\'s split-KV and tiled/one-row paths make greedy answers depend on earlier questions).', '');
  }
  // the profiles the "met?" column links to, from this run's data
  const rows = (k) => F.res[k] ?? [];
  L.push('<a id="full-ready"></a>', '### Ready: where the load time goes', '');
  for (const [size, mode] of [['32L', 'none'], ['32L', 'mmap'], ['4L', 'none'], ['4L', 'mmap']]) {
    const tl = readyTimeline(rows(`lm-${size}-${mode}`), rows(`cli-${size}-${mode}`));
    if (tl.length) L.push(`${size}, load mode ${mode}:`, '', ...tl);
  }
  L.push('<a id="full-rss"></a>', '### Peak RSS: where the memory goes', '');
  for (const [size, mode] of [['32L', 'none'], ['32L', 'mmap'], ['4L', 'none']]) {
    L.push(...rssBreakdown(rows(`lm-${size}-${mode}`), rows(`cli-${size}-${mode}`), { cliBaseMb, fa: size === '32L' && mode === 'none' ? rows('lm-32L-none-fa') : [], title: `${size}, load mode ${mode}:` }));
  }
  L.push('<a id="full-encode"></a>', '### Image encode: a stable comparison and where the time goes', '');
  L.push(...encodeSection(F, perf));
  L.push('<a id="full-prompt"></a>', '### Prompt eval and question after load: phases and CPU by function', '');
  L.push('32 layers, one question after load, split by phase (llama.cpp\'s own counters on both sides):', '', ...phaseTable(F, '32L'));
  if (perf) L.push(...profileTable(perf));
  else L.push('(no CPU profile in this run: `--profile` adds one)', '');
  L.push('### Analysis (hand-written, kept when the section is regenerated)', '', ...analysisBlock('full-size'), '');
  const missed = verdicts.filter((v) => v.ok === false).map((v) => `${v.name.split(',')[0]} (${v.mode})`);
  L.push(missed.length ? `Not met at 32 layers in this run: ${missed.join('; ')}.` : 'Every target above is met at 32 layers in this run.', '');
  return L.join('\n');
}
