// bench/run.mjs's command line. Strict: an unknown or misspelt flag (--skip-llama-node) stops the
// bench before it spends minutes, instead of being ignored. The --skip-* flags live in cfg.skip,
// which last-run.json keeps, so --rerender renders the same sections the run measured.
import os from 'node:os';
import { parseArgs } from 'node:util';

/** --full's default round count: 2 rounds did not settle the 32-layer ratios within 10 % (bench/README.md). */
export const FULL_RUNS = 4;

export const SKIPS = ['convert', 'workload', 'llamanode', 'f16', 'encoder-fa', 'hugepages'];

const options = {
  // rounds; default 5, with --full FULL_RUNS (32-layer ratios need more rounds to settle: bench/README.md)
  runs: { type: 'string' },
  threads: { type: 'string' },
  'max-tokens': { type: 'string', default: '32' },
  questions: { type: 'string', default: '100' },
  images: { type: 'string', default: '10' },
  // one-process-per-question mtmd-cli runs are independent and identical in kind, so the
  // workload measures this many of them (evenly spread over the questions and images) and
  // scales their mean to all questions; 0 = run every question (adds ~8 min at 100)
  'cli-sample': { type: 'string', default: '10' },
  // pause between measured processes, so the previous one's teardown (freeing GBs) is over
  'settle-ms': { type: 'string', default: '500' },
  sequences: { type: 'string', default: '4' },
  // llama.node's prebuilt linux-x64 binary is a baseline x86-64 build (no FMA/F16C/AVX2 code):
  // one run takes minutes here, so it runs in the first N rounds only
  'llamanode-runs': { type: 'string', default: '1' },
  // libgomp spin count for every measured process ('default' = leave unset); see lib/proc.mjs
  spincount: { type: 'string', default: '100' },
  'convert-layers': { type: 'string', default: '1,4' },
  out: { type: 'string', default: 'BENCHMARKS.md' },
  label: { type: 'string' },
  rerender: { type: 'boolean', default: false },
  roofline: { type: 'boolean', default: false },
  // the size users run: the 32-layer model beside the 4-layer one, its own section (bench/full.mjs)
  full: { type: 'boolean', default: false },
  // with --full: perf record the first round's 32-layer load-mode-none runs (CPU time per function)
  profile: { type: 'boolean', default: false },
  ...Object.fromEntries(SKIPS.map((k) => [`skip-${k}`, { type: 'boolean', default: false }])),
};

const count = (name, v, min) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min} (got ${JSON.stringify(v)})`);
  return n;
};

/** Parses bench/run.mjs's arguments; throws (with the flag's name) on anything it does not know. */
export function parseBenchArgs(argv) {
  const { values: v } = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  return {
    runs: v.runs === undefined ? (v.full ? FULL_RUNS : 5) : count('runs', v.runs, 1),
    threads: v.threads === undefined ? os.availableParallelism() : count('threads', v.threads, 1),
    maxTokens: count('max-tokens', v['max-tokens'], 1),
    questions: count('questions', v.questions, 1),
    cliSample: count('cli-sample', v['cli-sample'], 0),
    settleMs: count('settle-ms', v['settle-ms'], 0),
    images: count('images', v.images, 1),
    sequences: count('sequences', v.sequences, 1),
    llamaNodeRuns: count('llamanode-runs', v['llamanode-runs'], 0),
    spin: v.spincount,
    convertLayers: v['convert-layers'].split(',').map((x) => count('convert-layers', x, 1)),
    out: v.out,
    label: v.label,
    rerender: v.rerender,
    roofline: v.roofline,
    full: v.full,
    profile: v.profile,
    skip: Object.fromEntries(SKIPS.map((k) => [k, v[`skip-${k}`]])),
  };
}
