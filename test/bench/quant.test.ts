/**
 * bench/quant.mjs's table from a small hand-made result set (no model runs): the matrices that did not
 * get a type are named with llama.cpp's reason (a 64-weight row takes no 256-weight k-quant block), the
 * weight shares per tensor type add up, ratios are paired against Q4_K_M, and no figure is missing.
 */
import t from 'tap';
import { fallbacks, typeShares, quantReport } from '../../bench/quant.mjs';
import { ggmlBlockSize, GgmlType } from '../../lib/formats/gguf.js';

const bs = (name: string) => ggmlBlockSize(GgmlType[name as keyof typeof GgmlType]);
const m = (name: string, type: string, ne0: number, rows: number) => ({ name, type, ne0, params: ne0 * rows });

// what llama.cpp wrote for the demo model's Q4_K_M (64-wide rows; ffn_down rows are 256 wide)
const demoQ4KM = [
  m('output.weight', 'Q8_0', 64, 704), m('token_embd.weight', 'Q5_0', 64, 704),
  m('blk.0.attn_q.weight', 'Q5_0', 64, 64), m('blk.0.ffn_down.weight', 'Q4_K', 256, 64),
  m('blk.1.ffn_down.weight', 'Q6_K', 256, 64), m('blk.1.attn_v.weight', 'Q8_0', 64, 64),
];

t.test('fallbacks name the matrices that did not get the type and why', async (t) => {
  const s = fallbacks('Q4_K_M', demoQ4KM, bs);
  t.match(s, /2 of 6 → Q5_0 \(rows of 64 weights, not a multiple of Q4_K's 256-weight block: token_embd\.weight, blk\.0\.attn_q\.weight\)/);
  t.match(s, /2 of 6 → Q8_0 \(rows of 64 weights, not a multiple of Q4_K's 256-weight block: output\.weight, blk\.1\.attn_v\.weight\)/);
  t.match(s, /1 of 6 → Q6_K \(llama\.cpp's mix for this tensor: blk\.1\.ffn_down\.weight\)/);
  t.notMatch(s, /Q4_K \(/, 'the matrix that got Q4_K is not listed');
  // Q4_0 fits 64-wide rows; llama.cpp's mix asks Q6_K for the output, which falls back to Q8_0
  t.equal(fallbacks('Q4_0', [m('output.weight', 'Q8_0', 64, 704), m('blk.0.attn_q.weight', 'Q4_0', 64, 64)], bs),
    '1 of 2 → Q8_0 (llama.cpp\'s mix asks a k-quant here, whose 256-weight blocks do not fit rows of 64: output.weight)');
  t.equal(fallbacks('Q8_0', [m('a', 'Q8_0', 64, 2), m('b', 'Q8_0', 256, 2)], bs), 'all 2 matrices Q8_0');
});

t.test('type shares are weighted by parameters', async (t) => {
  t.equal(typeShares([m('a', 'Q4_K', 4096, 3), m('b', 'Q6_K', 4096, 1)]), 'Q4_K 75 %, Q6_K 25 %');
  t.equal(typeShares([m('a', 'Q8_0', 64, 1000)]), 'Q8_0 100 %');
});

t.test('the section renders every type with paired ratios and no missing figure', async (t) => {
  const types = ['Q4_0', 'Q4_K_M', 'F16'];
  const round = (p: number, d: number) => ({ readyMs: 900, promptRate: p, decodeRate: d, encodeMs: 1500, peakRssMb: 1500, wallMs: 5000, cpuS: 9 });
  const cpu = (prompt: number, decode: number) => ({ prompt, decode, tokens: { prompt: 256, decode: 32 } });
  const file = (bytes: number, type: string) => ({ bytes, params: 1e9, matrices: [m('x', type, 4096, 1000)] });
  const row = (lp: number) => ({ bytes: 2e5, closedAccuracy: 0.8, recall: 0.8, sameAsF16: 80, logProbPerToken: lp, fallbacks: 'all 16 matrices Q4_0' });
  const md = quantReport({
    cfg: { runs: 2, threads: 2, maxTokens: 32, cpuRuns: 2 }, types, cores: 2, load0: [0.5], load1: [0.6], date: '2026-01-01', commit: 'abc1234',
    files: { Q4_0: file(5.6e8, 'Q4_0'), Q4_K_M: file(6.0e8, 'Q4_K'), F16: file(2e9, 'F16') },
    quantizeTimes: { Q4_0: { wallMs: 20000, cpuS: 12 }, Q4_K_M: { wallMs: 60000, cpuS: 50 }, IQ4_NL: { wallMs: 600000, cpuS: 300 } },
    speed: { Q4_0: [round(110, 40), round(90, 36)], Q4_K_M: [round(100, 40), round(100, 40)], F16: [round(50, 15), round(50, 15)] },
    cpu: { Q4_0: [cpu(60, 11), cpu(66, 11)], Q4_K_M: [cpu(60, 10), cpu(60, 10)], F16: [cpu(30, 4), cpu(30, 4)] },
    accuracy: { n: 80, numClosed: 30, numOpen: 50, maxTokens: 12, pytorch: { closedAccuracy: 0.8, recall: 0.8 }, rows: { Q4_0: row(-0.13), Q4_K_M: row(-0.125), F16: row(-0.12) } },
  });
  t.match(md, /\| Q4_0 \| 560 MB \| 4\.48 \| Q4_0 100 % \| 20 \(12\) \| 100\.0 \(90\.0–110\.0\) \| \*\*1\.00×\*\* \(0\.90–1\.10\) \| 38\.0 \(36\.0–40\.0\) \| \*\*0\.95×\*\* \(0\.90–1\.00\) \|/);
  t.match(md, /\| F16 \| 2000 MB \| 16\.00 \| F16 100 % \| \(converted\) \|/);
  t.match(md, /\| Q4_0 \| 200 kB \| 80\.0 % \| 80\.0 % \| 80\/80 \| -0\.1300 \(−0\.0100\) \| \+0\.4685 \| all 16 matrices Q4_0 \|/);
  t.match(md, /\| Q4_0 \| 63\.0 \(60\.0–66\.0\) \| \*\*1\.05×\*\* \(1\.00–1\.10\) \| 11\.0 \(11\.0–11\.0\) \| \*\*1\.10×\*\* \(1\.10–1\.10\) \|/);
  t.match(md, /a 256-token prompt in one batch, then 32 tokens decoded one at a time/);
  t.match(md, /Quantizing to IQ4_NL costs 25× the CPU time of Q4_0/);
  t.match(md, /The machine was quiet/);
  t.notMatch(md, /\bn\/a\b|NaN|undefined/);
});
