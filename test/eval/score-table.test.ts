import t from 'tap';
import { evaluate } from '../../lib/eval/metrics/evaluate.js';
import { formatScoreTable, scoreJson } from '../../lib/eval/score-table.js';
import type { AnswerLine, TestEntry } from '../../lib/eval/formats.js';

const e = (id: number, at: string, qt: string, a: string): TestEntry => ({ id, answer_type: at, question_type: qt, conversations: [{ from: 'human', value: 'q\n<image>' }, { from: 'gpt', value: a }] });
const p = (id: number, text: string): AnswerLine => ({ question_id: id, prompt: 'q\n<image>', text, answer_id: 'a', model_id: 'm', metadata: {} });

t.test('paper layout with breakdown', async (t) => {
  // OPEN: "left lung" vs "lung" → recall 1/2. CLOSED: only item 2 hits (see below) → 1/3.
  const gt = [e(1, 'OPEN', 'POS', 'left lung'), e(2, 'CLOSED', 'PRES', 'yes'), e(3, 'CLOSED', 'PRES', 'no'), e(4, 'CLOSED', 'SIZE', 'yes')];
  const pred = [p(1, 'lung'), p(2, 'yes'), p(3, 'none'), p(4, 'no')];
  const r = evaluate(gt, pred);
  const md = formatScoreTable({ model: 'my|model', results: { 'vqa-rad': r } }, { includePaper: true });
  const lines = md.split('\n');
  t.equal(lines[0], '| Model | VQA-RAD open | VQA-RAD closed | SLAKE open | SLAKE closed | PathVQA open | PathVQA closed |');
  // Item 3: "none" normalizes to "0", so "no" is not a substring → miss; item 4 "no" vs "yes" → miss.
  // 1/3 × 100 = 33.33333333333333 → "33.33".
  t.equal(lines[2], '| my\\|model | 50.00 | 33.33 | – | – | – | – |');
  t.ok(lines.includes('| LLaVA-Med (From Vicuna) (paper) | 64.39 | 81.98 | 84.71 | 83.17 | 38.87 | 91.65 |'));
  t.ok(lines.includes('| POS | 1 | 50.00 | 0 | – |'));
  t.ok(lines.includes('| PRES | 0 | – | 2 | 50.00 |'));
  t.ok(lines.includes('| SIZE | 0 | – | 1 | 0.00 |'));
  const j = JSON.parse(JSON.stringify(scoreJson({ model: 'x', results: { slake: r } }))) as { results: { slake: { overall: { recall: number } } } }[];
  t.equal(j[0]!.results.slake.overall.recall, 0.5);
});
