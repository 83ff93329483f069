/**
 * bench/lib/breakdown.mjs and what the reports build from it: llama.cpp / clip buffer lines parsed
 * into the RSS breakdown (lines copied from a real llama-mtmd-cli run and from llava-med's logger),
 * the encode windows and times read from mtmd-cli's stderr, the "met?" verdict with its link and
 * its "not settled" flag, and hand-written analysis kept across a re-render. No model runs.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseBuffers, rssBreakdown, readyTimeline, cliEncodeTimes, cliEncodeWindows } from '../../bench/lib/breakdown.mjs';
import { keepAnalysis, analysisBlock } from '../../bench/lib/sections.mjs';
import { writeSection } from '../../bench/lib/sections.mjs';
import { verdictCell } from '../../bench/full.mjs';
import { parseBenchArgs, FULL_RUNS } from '../../bench/lib/args.mjs';

// llama-mtmd-cli -lv 4 stderr (4-layer bench model, --no-mmap), timestamps included
const CLI = [
  '0.00.390.742 I load_tensors:          CPU model buffer size =   269.81 MiB',
  '0.00.390.761 I load_tensors:   CPU_REPACK model buffer size =   367.88 MiB',
  '0.05.480.225 I llama_context:        CPU  output buffer size =     0.12 MiB',
  '0.05.480.319 I llama_kv_cache:        CPU KV buffer size =   128.00 MiB',
  '0.06.128.199 I sched_reserve:        CPU compute buffer size =    98.51 MiB',
  '0.06.304.619 I load_hparams: model size:         575.36 MiB',
  '0.10.062.902 I reserve_compute_meta:        CPU compute buffer size =     8.60 MiB',
];
// llava-med's logger (the same model, its default flash attention off)
const LM = [
  'load_tensors:          CPU model buffer size =   269.81 MiB',
  'load_tensors:   CPU_REPACK model buffer size =   367.88 MiB',
  'llama_context:        CPU  output buffer size =     0.12 MiB',
  'llama_kv_cache:        CPU KV buffer size =   128.00 MiB',
  'load_hparams: model size:         575.36 MiB',
  'sched_reserve:        CPU compute buffer size =   188.01 MiB',
  'reserve_compute_meta:        CPU compute buffer size =     8.60 MiB',
];

t.test('buffer lines parse the same from both tools', async (t) => {
  const b = parseBuffers(CLI);
  t.same(b, { model: { CPU: 269.81, CPU_REPACK: 367.88 }, kv: 128, output: 0.12, lmCompute: 98.51, clipModel: 575.36, clipCompute: 8.6 });
  t.equal(parseBuffers(LM).lmCompute, 188.01);
  // a second, larger reservation replaces the first
  t.equal(parseBuffers([...CLI, 'sched_reserve:        CPU compute buffer size =   120.00 MiB']).lmCompute, 120);
  t.same(parseBuffers(['unrelated']).model, {});
});

t.test('the RSS breakdown names the component that differs', async (t) => {
  const lm = [{ peakRssMb: 1539, rssAfterImportMb: 70, buffers: parseBuffers(LM), memoryUsage: { heapTotal: 32 << 20, external: 3 << 20 } }];
  const cli = [{ peakRssMb: 1441, buffers: parseBuffers(CLI) }];
  const L = rssBreakdown(lm, cli, { cliBaseMb: 6, title: 'T' }).join('\n');
  t.match(L, /\| LM compute \+ output buffers \| 188 \| 99 \| \+89 \|/);
  t.match(L, /\| KV cache \| 128 \| 128 \| \+0 \|/);
  t.match(L, /process before loading[^|]*\| 70 \| 6 \| \+64 \|/);
  t.match(L, /\*\*peak RSS\*\* \| 1539 \| 1441 \| \+98 \|/);
  t.match(L, /differ by 8 MiB or more: LM compute \+ output buffers \+89, process before loading \+64/);
  t.match(L, /attention scores/);
  // without the buffer lines (a run from before they were recorded): nothing
  t.same(rssBreakdown([{ peakRssMb: 1 }], [{ peakRssMb: 1 }]), []);
});

t.test('the ready timeline splits both tools into steps', async (t) => {
  const lm = [{ readyMs: 1300, importsMs: 250, inProcessModelMs: 700, inProcessLoadMs: 1000 }];
  const cli = [{ readyMs: 1150, modelCtxMs: 760, warmupDecodeMs: 90, mmprojMs: 300, modelLoadMs: 740 }];
  const L = readyTimeline(lm, cli).join('\n');
  t.match(L, /spawn → node up \+ imports done \| 250 \(250–250\) \| spawn → model \+ context loaded[^|]*\| 760/);
  t.match(L, /projector \+ context \(side by side\) \| 300 /);
  t.match(L, /READY line reaches the parent[^|]*\| 50 /);
  t.match(L, /\*\*ready\*\* \| \*\*1300 \(1300–1300\)\*\*/);
  // 250 + 50 before loading; 700 − 760 for the weights; 300 − (90 + 300) for the rest: largest first
  t.match(L, /Step differences, llava-med − mtmd-cli \(medians\): node and its imports[^;]* \+300 ms; the rest[^;]* -90 ms; the LM weights[^.]* -60 ms\./);
});

t.test('mtmd-cli encode times and windows; the first image is dropped from the windows', async (t) => {
  const lines = [
    { text: '0.06.569 I encoding mtmd batch, n_chunks = 1 (done = 1, total = 5)', mono: 10 },
    { text: '0.11.189 I mtmd batch encoding done in 4621 ms', mono: 14.6 },
    { text: '0.11.190 I decoding image batch 1/1, n_tokens_batch = 256', mono: 14.7 },
    { text: '0.16.447 I encoding mtmd batch, n_chunks = 1 (done = 3, total = 5)', mono: 20 },
    { text: '0.20.195 I mtmd batch encoding done in 3748 ms', mono: 23.7 },
  ];
  t.same(cliEncodeWindows(lines), [[20, 23.7]]);
  t.same(cliEncodeTimes(lines.map((l) => l.text).join('\n')), [4621, 3748]);
});

t.test('a missed target links to its profile and says when the rounds straddle it', async (t) => {
  t.same(verdictCell({ n: 4, median: 0.98, min: 0.95, max: 0.99 }, 'higher', 1), { ok: false, cell: '**no**' });
  t.same(verdictCell({ n: 4, median: 0.98, min: 0.91, max: 1.09 }, 'higher', 1), { ok: false, cell: '**no** (not settled: rounds 0.91–1.09 on both sides)' });
  t.same(verdictCell({ n: 4, median: 0.97, min: 0.9, max: 1.0 }, 'lower', 1), { ok: true, cell: 'yes' });
  t.same(verdictCell({ n: 0, median: NaN, min: NaN, max: NaN }, 'lower', 1).ok, null);
});

t.test('--full defaults to FULL_RUNS rounds; --runs still wins', async (t) => {
  t.ok(FULL_RUNS >= 4);
  t.equal(parseBenchArgs(['--full']).runs, FULL_RUNS);
  t.equal(parseBenchArgs(['--full', '--runs', '2']).runs, 2);
  t.equal(parseBenchArgs([]).runs, 5);
});

t.test('hand-written analysis survives regeneration of its section', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-analysis-'));
  const file = path.join(dir, 'B.md');
  const gen = (n: number) => [`figure ${n}`, ...analysisBlock('full-size'), 'tail'].join('\n');
  writeSection(file, 'full-size', gen(1));
  // a person writes the analysis into the empty block
  writeFileSync(file, readFileSync(file, 'utf8').replace('<!-- analysis:full-size -->\n', '<!-- analysis:full-size -->\nThe compute buffer explains it.\n'));
  writeSection(file, 'full-size', gen(2));
  const text = readFileSync(file, 'utf8');
  t.match(text, /figure 2\n<!-- analysis:full-size -->\nThe compute buffer explains it.\n<!-- \/analysis:full-size -->\ntail/);
  t.notMatch(text, /figure 1/);
  // keepAnalysis alone: a block the new text does not emit is gone; a filled new block is not overwritten
  t.equal(keepAnalysis('<!-- analysis:a -->\nold\n<!-- /analysis:a -->', 'x'), 'x');
  t.equal(keepAnalysis('<!-- analysis:a -->\nold\n<!-- /analysis:a -->', '<!-- analysis:a -->\nnew\n<!-- /analysis:a -->'), '<!-- analysis:a -->\nnew\n<!-- /analysis:a -->');
});
