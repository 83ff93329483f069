/**
 * The accuracy gate (issue 17). The demo model in assets/demo was trained in PyTorch (scripts/demo-model)
 * on a synthetic VQA task; at training time PyTorch answered the task's test split greedily with the
 * released weights (base + delta folded as apply_delta.py, fp16) and recorded its answers and their token
 * ids (assets/demo/reference). Here the same checkpoint goes through the whole project — delta fold,
 * converter, quantizer, image preprocessing, v0 prompt, engine, `eval answer`, `eval score` — and must
 * give the same answers: the independent reference is the PyTorch model, not llava-med itself.
 *
 * Bars: F16 within 0.5 points of PyTorch's closed accuracy and open recall, >= 98 % of the greedy answers
 * token-identical; Q8_0 within 1 point of F16, Q4_K_M within 3, an mmproj quantized to Q8_0 within 1;
 * 4 parallel sequences answer exactly as 1.
 */
import t from 'tap';
import type { Test } from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quantize } from '../../lib/convert/quantize.js';
import { DEMO_GENERATION, DEMO_REFERENCE_ANSWERS, DEMO_TEST, ensureDemoModel } from '../../lib/demo/index.js';
import { answerQuestions, evaluate, readAnswersFile, readTestFile, type EvaluateResult } from '../../lib/eval/index.js';
import { testEntryQuestion } from '../../lib/eval/formats.js';
import { LlavaMed } from '../../lib/llava-med.js';

interface Greedy {
  answers: { id: number; answer: string; tokens: number[] }[];
}

const work = await mkdtemp(join(tmpdir(), 'llava-med-demo-gate-'));
t.teardown(() => rm(work, { recursive: true, force: true }));
const demo = await ensureDemoModel(join(work, 'cache'));
const gt = await readTestFile(DEMO_TEST.questionFile);
const torch = evaluate(gt, await readAnswersFile(DEMO_REFERENCE_ANSWERS));
const greedy = JSON.parse(await readFile(join(DEMO_TEST.questionFile, '..', '..', 'reference', 'greedy.json'), 'utf8')) as Greedy;

/** `eval answer` (answerQuestions) + `eval score` (evaluate) on the test split. */
async function score(label: string, model: string, mmproj: string, parallel = 1): Promise<{ r: EvaluateResult; texts: string[] }> {
  await using med = await LlavaMed.load({ model, mmproj, threads: 2, sequences: parallel });
  const answersFile = join(work, `${label}.jsonl`);
  await answerQuestions({ med, ...DEMO_TEST, answersFile, modelId: label, parallel, generation: DEMO_GENERATION });
  const pred = await readAnswersFile(answersFile);
  return { r: evaluate(gt, pred), texts: pred.map((p) => String(p.text)) };
}

const points = (r: EvaluateResult) => ({ closed: r.paper.closed, open: r.paper.open! });

function within(t: Test, what: string, got: EvaluateResult, ref: EvaluateResult, bar: number): void {
  const g = points(got);
  const w = points(ref);
  t.ok(Math.abs(g.closed - w.closed) <= bar, `${what}: closed ${g.closed.toFixed(2)} within ${bar} of ${w.closed.toFixed(2)}`);
  t.ok(Math.abs(g.open - w.open) <= bar, `${what}: open recall ${g.open.toFixed(2)} within ${bar} of ${w.open.toFixed(2)}`);
}

const f16 = await score('f16', demo.model, demo.mmproj);

// What the released toy reaches (PyTorch, recorded): closed 100.00, open recall 100.00 (789 of 790 exact on 200
// fresh images: scripts/demo-model/README.md). The floor is the issue's aim for closed questions, so a retrained
// toy that falls back to the majority answer fails here; the token-identity test below is what catches a broken
// image path (unnormalised image, skipped crop, image tokens first: each fails it, and each also drops closed
// accuracy to 77, 63 and 0).
const TORCH_FLOOR = { closed: 95, open: 90 };

t.test('the PyTorch reference is good enough at its toy task that a regression shows', async (t) => {
  t.equal(gt.length, greedy.answers.length, 'one recorded greedy answer per test question');
  t.ok(gt.length >= 40 && gt.length <= 80, `${gt.length} questions`);
  t.ok(torch.paper.closed >= TORCH_FLOOR.closed, `PyTorch closed accuracy ${torch.paper.closed.toFixed(2)} >= ${TORCH_FLOOR.closed}`);
  t.ok(torch.paper.open! >= TORCH_FLOOR.open, `PyTorch open recall ${torch.paper.open!.toFixed(2)} >= ${TORCH_FLOOR.open}`);
});

t.test('F16: same metrics as PyTorch (0.5 points) and >= 98 % token-identical greedy answers', async (t) => {
  within(t, 'F16 vs PyTorch', f16.r, torch, 0.5);
  await using med = await LlavaMed.load({ model: demo.model, mmproj: demo.mmproj, threads: 2 });
  let same = 0;
  const diff: string[] = [];
  const texts: string[] = [];
  for (const [i, e] of gt.entries()) {
    const a = await med.ask(join(DEMO_TEST.imageFolder, e.image!), testEntryQuestion(e), DEMO_GENERATION);
    const ref = greedy.answers[i]!;
    if (ref.id !== e.id) throw new Error(`greedy.json is not in test.json order at ${i}`);
    if (a.tokens.join(',') === ref.tokens.join(',')) same++;
    else diff.push(`${e.id}: ${JSON.stringify(a.text)} vs ${JSON.stringify(ref.answer)}`);
    texts.push(a.text);
  }
  t.same(texts, f16.texts, 'ask and eval answer give the same answers');
  t.ok(same / gt.length >= 0.98, `${same}/${gt.length} greedy answers token-identical to PyTorch's${diff.length ? `; differing: ${diff.join('; ')}` : ''}`);
});

t.test('quantized: Q8_0 within 1 point of F16, Q4_K_M within 3, mmproj Q8_0 within 1', async (t) => {
  const q8 = join(work, 'q8.gguf');
  const q4 = join(work, 'q4km.gguf');
  const mq8 = join(work, 'mmproj-q8.gguf');
  await quantize({ input: demo.model, output: q8, type: 'Q8_0' });
  await quantize({ input: demo.model, output: q4, type: 'Q4_K_M' });
  await quantize({ input: demo.mmproj, output: mq8, type: 'Q8_0' });
  within(t, 'Q8_0 vs F16', (await score('q8', q8, demo.mmproj)).r, f16.r, 1);
  within(t, 'Q4_K_M vs F16', (await score('q4km', q4, demo.mmproj)).r, f16.r, 3);
  within(t, 'mmproj Q8_0 vs F16', (await score('mmproj-q8', demo.model, mq8)).r, f16.r, 1);
});

t.test('--parallel 4 answers exactly as --parallel 1', async (t) => {
  const p4 = await score('p4', demo.model, demo.mmproj, 4);
  t.same(p4.texts, f16.texts);
});
