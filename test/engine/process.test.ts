/**
 * How the process ends, watched from outside (child `node` processes running the compiled
 * engine, see child.mjs): the exit hook frees undisposed objects without a crash, exiting during
 * native work is clean, nothing is printed without a logger, terminating a worker thread
 * mid-decode leaves the main thread working. (Malformed mmproj files: mmproj-crash.test.ts.)
 */
import t from 'tap';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { makeTinyLlamaGguf, makeTinyMmproj } from '../helpers/tiny-gguf.js';
import { BIG_LLM, BIG_MMPROJ, childEnv, compiledEngine, runNode, tinyPair, type ChildResult } from './util.js';

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'llava-engine-process-'));
const env = childEnv({ LLAVA_MED_ENGINE: pathToFileURL(compiledEngine()).href });
const { llm, mm } = await tinyPair();
const big = await makeTinyLlamaGguf(undefined, BIG_LLM);
const bigMm = await makeTinyMmproj(undefined, BIG_MMPROJ);
let n = 0;

interface Run extends ChildResult {
  result: { steps: string[]; code?: string; [k: string]: unknown } | undefined;
}

async function child(scenario: string, args: object, timeoutMs = 60_000): Promise<Run> {
  const out = join(dir, `result-${n++}.json`);
  const r = await runNode(CHILD, [scenario, out, JSON.stringify(args)], timeoutMs, env);
  const result = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as Run['result']) : undefined;
  return { ...r, result };
}

function summary(r: Run): string {
  return `code ${r.code} signal ${r.signal} steps ${JSON.stringify(r.result?.steps)} stderr ${JSON.stringify(r.stderr.slice(0, 300))}`;
}

t.test('exit hook: a process that leaves model, projector, context, sampler and embedding undisposed exits 0, silently', async (t) => {
  const r = await child('leave-undisposed', { model: llm.path, mmproj: mm.path });
  t.equal(r.signal, null, `no signal (${summary(r)})`);
  t.equal(r.code, 0, 'exit code 0');
  t.same(r.result?.steps, ['all done, nothing disposed'], 'the scenario ran to its end');
  t.equal(r.stdout, '', 'nothing on stdout');
  t.equal(r.stderr, '', 'nothing on stderr');
});

t.test('process.exit(0) while native work runs: exit code 0, no signal, no output', async (t) => {
  const cases: [string, object][] = [
    ['load', { model: big.path, delay: 5 }],
    ['decode', { model: big.path, mmproj: bigMm.path, delay: 15 }],
    ['encode', { model: big.path, mmproj: bigMm.path, delay: 5 }],
    ['generate', { model: big.path, mmproj: bigMm.path, delay: 120 }],
    ['decode', { model: big.path, mmproj: bigMm.path, delay: 15, logger: true }],
  ];
  // Independent child processes: run side by side (the second core is otherwise idle under tap's one job).
  const runs = await Promise.all(cases.map(([what, args]) => child('exit-during', { what, ...args })));
  for (const [k, [what, args]] of cases.entries()) {
    const r = runs[k]!;
    const name = `${what}${(args as { logger?: boolean }).logger ? ' (with a logger installed)' : ''}`;
    t.equal(r.signal, null, `${name}: no signal (${summary(r)})`);
    t.equal(r.code, 0, `${name}: exit code 0`);
    t.same(r.result?.steps, [`started ${what}`, 'exiting'], `${name}: exited from the timer`);
    t.equal(r.stdout + r.stderr, '', `${name}: no output`);
  }
});

t.test('without a logger nothing reaches stdout or stderr (load, encode, decode, generate, native errors)', async (t) => {
  const badModel = await makeTinyLlamaGguf(undefined, { omitTensors: ['output_norm.weight'] });
  const badMmproj = await makeTinyMmproj(undefined, { omitTensors: ['v.blk.0.attn_out.weight'] });
  const r = await child('quiet', { model: llm.path, mmproj: mm.path, ctx: 256, badModel: badModel.path, badMmproj: badMmproj.path });
  t.equal(r.signal, null, summary(r));
  t.equal(r.code, 0);
  t.same(r.result?.steps, ['quiet done']);
  t.equal(r.result?.badModel, 'ERR_MODEL_LOAD', 'llama.cpp refused the model (and logged its reason nowhere)');
  t.equal(r.result?.badMmproj, 'ERR_MMPROJ_LOAD', 'mtmd refused the projector');
  t.equal(r.result?.full, 'ERR_CONTEXT_FULL');
  t.equal(r.stdout, '', 'stdout empty');
  t.equal(r.stderr, '', 'stderr empty');
});

t.test('terminating a worker thread mid-decode leaves the main thread working', async (t) => {
  const r = await child('worker-terminate', { model: big.path, mmproj: bigMm.path, delay: 30 }, 90_000);
  t.equal(r.signal, null, summary(r));
  t.equal(r.code, 0);
  t.same(r.result?.steps, ['worker decoding', 'worker terminated', 'main thread still loads models']);
  t.equal(r.result?.workerExit, 1, 'the worker exited with terminate()’s code 1');
  t.equal(r.result?.nVocab, 32004);
  t.equal(r.stderr, '');
});

