/**
 * `npm run bench -- --full` (bench/full.mjs): the round plan pairs every llava-med run with an
 * adjacent mtmd-cli run of the same size and load mode (order reversed in odd rounds), and the
 * section reports the 32-layer ratios against the targets with the 4-layer ratios of the
 * same rounds beside them. Hand-made rows, no model runs.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { measure } from '../../bench/lib/proc.mjs';
import { parseBenchArgs } from '../../bench/lib/args.mjs';
import { fullConfigs, fullReport, fullRounds, PERF_HZ } from '../../bench/full.mjs';

const row = (o: Record<string, number> = {}) => ({
  readyMs: 1000, inProcessLoadMs: 800, modelLoadMs: 700, encodeMs: 2000, promptTokens: 495, promptMs: 30000, promptRate: 16.5,
  evalTokens: 31, evalMs: 10000, decodeRate: 3.1, questionMs: 45000, wallMs: 46000, peakRssMb: 4800, ...o,
});

t.test('--full parses; rounds run adjacent pairs, reversed in odd rounds', async (t) => {
  t.equal(parseBenchArgs(['--full', '--runs', '2']).full, true);
  t.equal(parseBenchArgs([]).full, false);
  const order: string[] = [];
  const snapshots: [number, number][] = [];
  const F = await fullRounds({
    runs: 2, images: ['a.png'], questions: ['q?'], settle: async () => {}, log: () => {},
    run: async (c: { key: string }) => { order.push(c.key); return row(); },
    // an interrupted run keeps what it finished: a snapshot after every round
    onRound: async (partial: { res: Record<string, unknown[]> }, round: number) => { snapshots.push([round, partial.res['cli-32L-mmap']!.length]); },
  });
  t.same(snapshots, [[0, 1], [1, 2]], 'a snapshot after each round, holding that round');
  const keys = fullConfigs().flat().map((c: { key: string }) => c.key);
  t.equal(order.length, 2 * keys.length);
  const r0 = order.slice(0, keys.length);
  const r1 = order.slice(keys.length);
  t.same(r0, keys, 'round 1 in plan order');
  for (const size of ['4L', '32L']) {
    for (const mode of ['none', 'mmap']) {
      const a = `lm-${size}-${mode}`;
      const b = `cli-${size}-${mode}`;
      t.equal(r0.indexOf(b) - r0.indexOf(a), 1, `${a} right before ${b} in round 1`);
      t.equal(r1.indexOf(a) - r1.indexOf(b), 1, `${b} right before ${a} in round 2`);
    }
  }
  t.equal(F.res['lm-32L-none']!.length, 2);
  t.ok(Number.isFinite(F.res['lm-32L-none']![0].loadAvg[0]), 'load average recorded per run');
});

t.test('the section: 32L ratios against the targets, 4L ratios of the same rounds beside them', async (t) => {
  const res: Record<string, ReturnType<typeof row>[]> = {};
  for (const c of fullConfigs().flat()) res[c.key] = [row(), row()];
  // 32L none: prompt 0.8x (missed), question 1.2x (missed); 32L mmap: everything 1.0 or better
  res['lm-32L-none'] = [row({ promptRate: 12, questionMs: 54000 }), row({ promptRate: 13.2, questionMs: 54000 })];
  res['cli-32L-none'] = [row({ promptRate: 15 }), row({ promptRate: 16.5 })];
  res['lm-32L-mmap'] = [row({ promptRate: 18, peakRssMb: 4850 }), row({ promptRate: 18, peakRssMb: 4850 })];
  res['lm-4L-none'] = [row({ promptRate: 120 }), row({ promptRate: 120 })];
  res['cli-4L-none'] = [row({ promptRate: 100 }), row({ promptRate: 100 })];
  const M = { cores: 2, commit: 'abc1234', date: '2026-01-01', cpu: 'test cpu' };
  const build = {
    freeBeforeGB: 55.3, minFreeGB: 17.9, q4Bytes: 4.08e9, mmprojBytes: 0.6e9,
    steps: { gen: { outBytes: 27.57e9, wallMs: 1530e3, peakRssMb: 408 }, convert: { outBytes: 14.08e9, wallMs: 828e3, peakRssMb: 1570 }, quantize: { wallMs: 1564e3, peakRssMb: 908 } },
  };
  const md = fullReport({ M, F: { res, load: { n: 4, min: 3, max: 9, median: 6 } }, build, threads: 2, maxTokens: 32, loadEnd: [5, 5, 5] });
  t.match(md, /HF write 25\.5 min, peak RSS 408 MB; conversion 13\.8 min, peak RSS 1570 MB; Q4_K_M 26\.1 min, peak RSS 908 MB/);
  t.match(md, /at most 41\.6 GB of its own files at once/);
  const line = (start: string) => md.split('\n').find((l: string) => l.startsWith(start)) ?? '';
  t.match(line('| prompt eval, tokens/s | none |'), /\*\*0\.80×\*\* \(0\.80–0\.80\) \| \*\*1\.20×\*\* .*\| ≥ 1\.00× \| \*\*no\*\* → \[profile\]\(#full-prompt\) \|$/);
  // every miss links to a paragraph the section holds
  for (const a of md.matchAll(/\]\(#([\w-]+)\)/g)) t.match(md, new RegExp(`<a id="${a[1]}"></a>`), `anchor ${a[1]} exists`);
  t.match(line('| prompt eval, tokens/s | mmap |'), /\*\*1\.09×\*\*.*\| yes \|$/);
  t.match(line('| question after load (ready → exit), ms | none |'), /\*\*1\.20×\*\*.*\| ≤ 1\.00× \| \*\*no\*\* → \[profile\]\(#full-prompt\) \|$/);
  t.match(line('| peak RSS, MB | mmap |'), /≤ mtmd-cli \+ 64 MB \| yes \(\+50 MB\) \|$/);
  t.match(md, /Measured under load: .*load average 3\.0–9\.0 \(median 6\.0\)/);
  t.match(md, /Not met at 32 layers in this run: prompt eval \(none\); question after load \(ready → exit\) \(none\)\./);
  t.match(md, /\*\*Flash attention for the LM\*\*/);
  t.notMatch(md, /NaN|undefined/);
});

t.test('--profile: CPU seconds per function, totals and the llava-med − mtmd-cli difference', async (t) => {
  const res: Record<string, ReturnType<typeof row>[]> = {};
  for (const c of fullConfigs().flat()) res[c.key] = [row()];
  const hz = PERF_HZ;
  const perf = {
    'lm-32L-none': { totalSamples: 40 * hz, symbols: { ggml_gemm_q4_K_8x8_q8_K: 25 * hz, ggml_vec_dot_f16: 10 * hz, clear_page_erms: 5 * hz } },
    'cli-32L-none': { totalSamples: 33 * hz, symbols: { ggml_gemm_q4_K_8x8_q8_K: 25 * hz, ggml_compute_forward_flash_attn_ext_tiled: 3 * hz, clear_page_erms: 5 * hz } },
  };
  const M = { cores: 2, commit: 'abc1234', date: '2026-01-01', cpu: 'test cpu' };
  const md = fullReport({ M, F: { res, load: { n: 1, min: 1, max: 1, median: 1 } }, build: null, threads: 2, maxTokens: 32, perf });
  t.match(md, /\| \*\*total CPU, s\*\* \| \*\*40\.0\*\* \| \*\*33\.0\*\* \| \*\*7\.0\*\* \|/);
  t.match(md, /\| `ggml_vec_dot_f16` \| 10\.0 \| 0\.0 \| 10\.0 \|/);
  t.match(md, /more in `ggml_vec_dot_f16` \+10\.0; less in `ggml_compute_forward_flash_attn_ext_tiled` -3\.0\./);
  t.match(md, /page zeroing .*: 5\.0 CPU s/);
  t.notMatch(md, /NaN|undefined/);
});

t.test('the encode comparison: images after the first, paired per round, and the CPU inside the encode windows', async (t) => {
  const res: Record<string, Record<string, unknown>[]> = {};
  for (const c of fullConfigs().flat()) res[c.key] = [row(), row()];
  t.ok(fullConfigs().flat().some((c: { key: string }) => c.key === 'lm-enc'), 'the encode pair is in every round');
  res['lm-enc'] = [{ encodes: [3000, 1100, 1000, 1200] }, { encodes: [3000, 1000, 1000, 1000] }];
  res['cli-enc'] = [{ encodes: [2000, 1000, 1000, 1000] }, { encodes: [2000, 1000, 1000, 1000] }];
  const hz = PERF_HZ;
  const perf = {
    'lm-enc': { totalSamples: 6 * hz, windows: 3, seconds: 3.3, symbols: { ggml_compute_forward_soft_max: 0.6 * hz, 'tinyBLAS::gemm': 5.4 * hz } },
    'cli-enc': { totalSamples: 5.1 * hz, windows: 3, seconds: 3.0, symbols: { ggml_compute_forward_flash_attn_ext: 0.3 * hz, 'tinyBLAS::gemm': 4.8 * hz } },
  };
  const M = { cores: 2, commit: 'abc1234', date: '2026-01-01', cpu: 'test cpu' };
  const md = fullReport({ M, F: { res, load: { n: 2, min: 1, max: 1, median: 1 } }, build: null, threads: 2, maxTokens: 32, perf });
  // per process: the median of images 2-4 (1100 and 1000 → 1100 / 1000 ms), the first image apart
  t.match(md, /\| image encode, ms \(images 2–4, median per process\) \| 1050 \(1000–1100\) \| 1000 \(1000–1000\) \| \*\*1\.05×\*\* \(1\.00–1\.10\) \|/);
  t.match(md, /\| first image, ms \| 3000 \(3000–3000\) \| 2000 \(2000–2000\) \| \*\*1\.50×\*\*/);
  t.match(md, /\| \*\*total CPU per image, s\*\* \(window 1\.10 s vs 1\.00 s\) \| \*\*2\.00\*\* \| \*\*1\.70\*\* \| \*\*0\.30\*\* \|/);
  t.match(md, /llava-med spends more CPU in: `tinyBLAS::gemm` \+0\.20 s, `ggml_compute_forward_soft_max` \+0\.20 s/);
  t.notMatch(md, /waited longer for the cores/);
  t.notMatch(md, /NaN|undefined/);
  // less CPU per image but a longer window: the wall-clock difference was waiting, and the text says so
  const waited = { ...perf, 'lm-enc': { totalSamples: 4.5 * hz, windows: 3, seconds: 6, symbols: { 'tinyBLAS::gemm': 4.5 * hz } } };
  const md2 = fullReport({ M, F: { res, load: { n: 2, min: 1, max: 1, median: 1 } }, build: null, threads: 2, maxTokens: 32, perf: waited });
  t.match(md2, /Cores busy inside the windows: llava-med 0\.75, mtmd-cli 1\.70 on average: llava-med did no more work per image but waited longer/);
});

t.test('the method line says when the pre-toucher ran and how long it took', async (t) => {
  const res: Record<string, Record<string, unknown>[]> = {};
  for (const c of fullConfigs().flat()) res[c.key] = [row()];
  const M = { cores: 2, commit: 'abc1234', date: '2026-01-01', cpu: 'test cpu' };
  const F = { res, load: { n: 1, min: 1, max: 1, median: 1 } };
  t.notMatch(fullReport({ M, F, build: null, threads: 2, maxTokens: 32 }), /throw-away process/);
  res['lm-32L-none'] = [row({ touchMs: 1500 })];
  res['cli-32L-none'] = [row({ touchMs: 2500 })];
  t.match(fullReport({ M, F, build: null, threads: 2, maxTokens: 32 }), /a throw-away process \(bench\/child-touch\.mjs\).*; 2000 \(1500–2500\) ms each\)/);
});

t.test('measure(): CPU time (user + sys) from GNU time, and a command prefix (wrap) run inside the measurement', { skip: existsSync('/usr/bin/time') ? false : 'no GNU time' }, async (t) => {
  // a fixed amount of work (~0.2-0.5 s of CPU), not a wall-clock loop: CPU time is what is asserted
  const burn = 'let x = 0; for (let i = 0; i < 5e7; i++) x = (x + i) % 1000003; console.log(process.env.WRAPPED ?? "none", x > -1)';
  const plain = await measure(process.execPath, ['-e', burn]);
  t.equal(plain.code, 0);
  t.ok(plain.cpuS > 0.1, `cpu ${plain.cpuS} s > 0.1`);
  t.ok(plain.cpuS * 1000 <= plain.wallMs * 1.1 + 50, `cpu ${plain.cpuS} s within one thread's wall ${plain.wallMs} ms`);
  t.ok(plain.peakRssMb > 10);
  const wrapped = await measure(process.execPath, ['-e', burn], { wrap: ['env', 'WRAPPED=yes'] });
  t.match(wrapped.stdout, /^yes true/);
  t.match(plain.stdout, /^none true/);
});
