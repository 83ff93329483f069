/**
 * bench/run.mjs's flags: every combination of the --skip-* flags parses and renders a report with
 * exactly the sections that were measured (the run that skipped the llama.node step once stopped on
 * a fresh clone), and a misspelt flag stops the bench before it spends minutes. The report input
 * is a small hand-made result set (no model runs).
 */
import t from 'tap';
import { parseBenchArgs, SKIPS } from '../../bench/lib/args.mjs';
import { report } from '../../bench/run.mjs';

const round = (o: Record<string, number>) => ({
  readyMs: 900, inProcessLoadMs: 600, modelLoadMs: 500, encodeMs: 1500, promptTokens: 300, promptMs: 2000, promptRate: 150,
  evalTokens: 32, evalMs: 2000, decodeRate: 16, questionMs: 4000, wallMs: 5000, peakRssMb: 1500, ...o,
});

function results(skip: Record<string, boolean>) {
  const keys = ['lm-q4-none', 'cli-q4-none', 'lm-q4-mmap', 'cli-q4-mmap', 'lb-q4', 'lm-q4-lbctx',
    ...(skip['encoder-fa'] ? [] : ['lm-q4-none-efa']), ...(skip.hugepages ? [] : ['lm-q4-none-4k']), ...(skip.f16 ? [] : ['lm-f16-none', 'cli-f16-none']),
    ...(skip.llamanode ? [] : ['ln-q4-mmap'])];
  const res = Object.fromEntries(keys.map((k, i) => [k, [round({ decodeRate: 15 + i }), round({ decodeRate: 16 + i, encodeMs: 1400 })]]));
  const F = {
    configs: [{ key: 'lb-q4', mode: { fa: 'on', lm: 'none' } }], res, errors: {},
    lbScan: [{ fa: 'on', lm: 'none', decodeRate: 18, sd: 0.2 }],
  };
  const R = { bwGBs: 50, bw1GBs: 20, perToken: { q4: { fileBytes: 669e6, bytes: 600e6 }, f16: { fileBytes: 2144e6, bytes: 2000e6 } } };
  const W = skip.workload ? null : {
    items: Array.from({ length: 20 }, () => ({})), nImg: 10,
    lm: { wallMs: 60000, loadMs: 1000, encodeMs: 15000, questionsMs: 40000, images: 10, imageTokens: 2560, promptTokens: 900, reusedTokens: 2000, generatedTokens: 640, peakRssMb: 2000 },
    cli: { wallMs: 150000, measured: 4, sampledImages: 4, perProcessMs: [7000, 7500, 7400, 7600], peakRssMb: 1500 },
    server: { wallMs: 90000, readyMs: 2000, questionsMs: 88000, peakRssMb: 2500, questions: 20, args: '-np 4 -c 8192', promptTokens: 9000, cachedTokens: 800, generatedTokens: 640, evalMs: 30000, promptMs: 50000 },
  };
  const C = skip.convert ? null : [{ layers: 1, inBytes: 2e9, outBytes: 1.5e9, ms: 20000, peakRssMb: 900 }];
  const M = { cpu: 'test cpu', cores: 2, flags: 'avx2', memGB: 16, os: 'Linux', commit: 'abc1234', date: '2026-01-01', node: 'v20', load: [0.1, 0.1, 0.1] };
  return { M, P: { llamaNode: skip.llamanode ? null : '1.7.15' }, F, W, R, C, loadEnd: [0.1, 0.1, 0.1], elapsedMin: 1 };
}

t.test('every combination of the --skip-* flags parses and renders its sections', async (t) => {
  t.equal(SKIPS.length, 6);
  for (let mask = 0; mask < 1 << SKIPS.length; mask++) {
    const on = SKIPS.filter((_, i) => mask & (1 << i));
    const args = parseBenchArgs([...on.map((k) => `--skip-${k}`), '--runs', '2']);
    t.same(Object.keys(args.skip).filter((k) => args.skip[k]), on, `skip set for ${on.join(' ') || '(none)'}`);
    const md = report(results(args.skip), { ...args, label: '' });
    const has = (s: string) => md.includes(s);
    const want: [string, boolean][] = [
      ['### F16, load mode', !args.skip.f16],
      ['### Vision encoder precision', !args.skip['encoder-fa']],
      ['### Transparent huge pages', !args.skip.hugepages],
      ['## Workload: many questions', !args.skip.workload],
      ['**llama-server**', !args.skip.workload],
      ['## Converter (bench/convert)', !args.skip.convert],
      ['### @fugood/llama.node', !args.skip.llamanode],
      ['## Decode roofline', true],
    ];
    for (const [heading, present] of want) {
      if (has(heading) !== present) t.fail(`${on.join(' ') || '(no skips)'}: "${heading}" ${present ? 'missing' : 'present'}`);
    }
    if (/\bn\/a\b|NaN|undefined/.test(md)) t.fail(`${on.join(' ') || '(no skips)'}: a figure is missing:\n${md.split('\n').filter((l) => /\bn\/a\b|NaN|undefined/.test(l)).join('\n')}`);
  }
  t.pass('64 combinations');
});

t.test('a misspelt or malformed flag stops the bench with the flag named', async (t) => {
  t.throws(() => parseBenchArgs(['--skip-llama-node']), /skip-llama-node/);
  t.throws(() => parseBenchArgs(['--runs', 'x']), /--runs/);
  t.throws(() => parseBenchArgs(['--runs', '0']), /--runs/);
  t.throws(() => parseBenchArgs(['--convert-layers', '1,,4']), /--convert-layers/);
  const d = parseBenchArgs([]);
  t.same([d.runs, d.maxTokens, d.sequences, d.convertLayers, d.out], [5, 32, 4, [1, 4], 'BENCHMARKS.md']);
  t.notOk(Object.values(d.skip).some(Boolean));
});

t.test('workload below 1.2x llama-server: the row links to a phase table from the same run', async (t) => {
  const args = parseBenchArgs(['--skip-llamanode']);
  const met = report(results(args.skip), { ...args, label: '' });
  t.match(met, /1\.50× faster\*\* \(target ≥ 1\.2: met\)/);
  t.notMatch(met, /\]\(#workload-profile\)/, "no link when met");
  const r = results(args.skip);
  r.W!.server.wallMs = 66000; // 1.10x
  const md = report(r, { ...args, label: '' });
  t.match(md, /1\.10× faster\*\* \(target ≥ 1\.2: \*\*not met\*\* → \[profile\]\(#workload-profile\)\)/);
  t.match(md, /<a id="workload-profile"><\/a>/);
  t.match(md, /\| questions phase \| 88\.0 s \| 40\.0 s \|/);
  t.match(md, /\| prompt tokens evaluated \(reused from a cache\) \| 9000 \(800\) \| 3460 \(2000\) \|/);
  // 2560 image positions at the lm-q4-none prompt rate (150 t/s) ≈ 17.1 s
  t.match(md, /image positions alone are ≈ 17\.1 s and its text ≈ 6\.0 s of its 40\.0 s questions phase/);
});
