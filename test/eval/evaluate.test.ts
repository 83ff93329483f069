// evaluate() on a hand-built set. Expected values are worked by hand from run_eval_batch.py /
// run_eval.py (v1.0.0) and were confirmed by running the original functions under Python 3.11.
import t from 'tap';
import { evaluate } from '../../lib/eval/metrics/evaluate.js';
import type { AnswerLine, TestEntry } from '../../lib/eval/formats.js';

function entry(id: number, answerType: string, questionType: string, answer: string): TestEntry {
  return {
    id,
    image: `img${id}.jpg`,
    answer_type: answerType,
    question_type: questionType,
    conversations: [
      { from: 'human', value: `Question ${id}?\n<image>` },
      { from: 'gpt', value: answer },
    ],
  };
}
function answer(id: number, text: string): AnswerLine {
  return { question_id: id, prompt: `Question ${id}?\n<image>`, text, answer_id: 'x', model_id: 'm', metadata: {} };
}

const items: [string, string, string, string][] = [
  // [answer_type, question_type, reference, prediction]
  ['CLOSED', 'PRES', 'no', 'Not really.'], // "not really" contains "no": batch hit 1; gate: "no" present → 1
  ['CLOSED', 'POS', 'Left', 'left'], // batch hit 1; gate fails (no "yes"/"no" substring) → 0
  ['CLOSED', 'PRES', 'yes', 'Yes, there is'], // hit 1, gated 1
  ['CLOSED', 'PRES', 'yes', 'No.'], // 0, 0
  ['OPEN', 'MODALITY', 'x-ray', 'It is an X-ray.'], // gt "x ray", pred "it is x ray": substring hit 1
  ['OPEN', 'POS', 'left lung', 'lung lung'], // "left lung" not a substring of "lung lung": 0
];
const gt = items.map(([a, q, r], i) => entry(i + 1, a, q, r));
const pred = items.map(([, , , p], i) => answer(i + 1, p));

t.test('overall metrics', async (t) => {
  const r = evaluate(gt, pred);
  const o = r.overall;
  t.equal(o.numOpen, 2);
  t.equal(o.numClosed, 4);
  t.equal(o.numIgnored, 0);
  // Closed: hits 1,1,1,0 → 0.75 (substring, "no" matches "not"); gated 1,0,1,0 → 0.5.
  t.equal(o.closedAccuracy, 0.75);
  t.equal(o.closedAccuracyGated, 0.5);
  // recall_closed: "not really"/"no" → tp 0 → 0; "left"/"left" → 1; "yes there is"/"yes" → tp1 fn0 → 1; 0 → mean 0.5.
  t.equal(o.recallClosed, 0.5);
  // Open item 5: cand {it,is,x,ray}, ref {x,ray}: P 2/4, R 1, F1 2·.5·1/1.5 = 0.6666666666666666, exact 2/4.
  // Open item 6: cand "lung lung", ref "left lung": tp 2 (candidate count), fn 1 → R 2/3, P 1, F1 0.8, exact 1/2.
  t.equal(o.recall, (1 + 2 / 3) / 2); // 0.8333333333333333
  t.equal(o.precision, (0.5 + 1) / 2);
  t.equal(o.f1, (0.6666666666666666 + 0.8) / 2);
  t.equal(o.exactMatch, 0.5);
  t.equal(o.openAccuracy, 0.5);
  // BLEU-1: item 5 p1 = 2/4, bp 1 → 0.5; item 6 p1 = clipped 1/2 (one "lung" in ref) → 0.5.
  t.equal(o.bleu1, 0.5);
  // Default BLEU, from nltk: 9.53091075863908e-155 and 1.5319719891192393e-231 (tiny, not 0).
  t.equal(o.bleu, (9.53091075863908e-155 + 1.5319719891192393e-231) / 2);
  // BLEU-2: item 5 p2 = 1/3 ("x ray" of "it is","is x","x ray"); item 6 has no bigram match → exp(log(min)) = 2.2250738585072626e-308.
  t.equal(o.bleu2, (0.3333333333333333 + 2.2250738585072626e-308) / 2);
  t.equal(o.openAccuracyCandidates, null); // no candidates given
  // Paper numbers: recall × 100 and closed × 100 (Python: 0.8333333333333333*100 = 83.33333333333333).
  t.equal(r.paper.open, 83.33333333333333);
  t.equal(r.paper.closed, 75);
});

t.test('breakdowns by answer type and question type', async (t) => {
  const r = evaluate(gt, pred);
  t.same(Object.keys(r.byAnswerType).sort(), ['CLOSED', 'OPEN']);
  t.equal(r.byAnswerType.CLOSED!.numOpen, 0);
  // With no OPEN item the original's unguarded means would divide by zero → null here.
  t.equal(r.byAnswerType.CLOSED!.recall, null);
  t.equal(r.byAnswerType.CLOSED!.openAccuracy, 0); // guarded in the original → 0.0
  t.equal(r.byAnswerType.OPEN!.recall, r.overall.recall);
  const pres = r.byQuestionType.PRES!;
  t.equal(pres.numClosed, 3);
  t.equal(pres.closedAccuracy, 2 / 3);
  const pos = r.byQuestionType.POS!;
  t.equal(pos.numOpen, 1);
  t.equal(pos.numClosed, 1);
  t.equal(pos.recall, 2 / 3);
  t.equal(pos.closedAccuracyGated, 0);
});

t.test('candidate open accuracy (run_eval.py)', async (t) => {
  // Item 5 picks "x ray" (similarity 1) = reference → 1; item 6: "right lung" and "left lung" tie at 1/2,
  // the first maximum "right lung" is chosen → 0. Mean 0.5.
  const r = evaluate(gt, pred, { candidates: ['right lung', 'left lung', 'x ray'] });
  t.equal(r.overall.openAccuracyCandidates, 0.5);
});

t.test('answer types other than OPEN/CLOSED are ignored, as the original does', async (t) => {
  const g = [entry(1, 'CLOSED ', 'PRES', 'yes'), entry(2, 'CLOSED', 'PRES', 'yes')];
  const r = evaluate(g, [answer(1, 'yes'), answer(2, 'no')]);
  t.equal(r.overall.numIgnored, 1);
  t.equal(r.overall.numClosed, 1);
  t.equal(r.overall.closedAccuracy, 0);
});

t.test('empty prediction and empty reference', async (t) => {
  // Empty pred: F1/recall 0 (empty candidate); substring: "x ray" not in "" → 0.
  const r = evaluate([entry(1, 'OPEN', 'X', 'x-ray')], [answer(1, '')]);
  t.equal(r.overall.recall, 0);
  t.equal(r.overall.bleu, 0);
  t.equal(r.overall.openAccuracy, 0);
  // Reference "the" normalizes to "": "" is a substring of anything → open accuracy 1, recall 0.
  const r2 = evaluate([entry(1, 'OPEN', 'X', 'The')], [answer(1, 'anything')]);
  t.equal(r2.overall.openAccuracy, 1);
  t.equal(r2.overall.recall, 0);
});

t.test('id order must match exactly', async (t) => {
  t.throws(() => evaluate(gt, pred.slice(0, 5)), { code: 'ERR_EVAL', message: /6 test entries but 5 answer lines/ });
  const swapped = [pred[1]!, pred[0]!, ...pred.slice(2)];
  t.throws(() => evaluate(gt, swapped), { code: 'ERR_EVAL', message: /position 0 test.json has id 1 but the answers file has question_id 2/ });
  // Python compares 1 == "1" as False.
  t.throws(() => evaluate([gt[0]!], [{ ...pred[0]!, question_id: '1' }]), { code: 'ERR_EVAL' });
});

t.test('misspelled "conversatons" key is read', async (t) => {
  const e: TestEntry = { id: 1, answer_type: 'CLOSED', conversatons: [{ from: 'human', value: 'q' }, { from: 'gpt', value: 'yes' }] };
  t.equal(evaluate([e], [answer(1, 'yes')]).overall.closedAccuracy, 1);
});
