/**
 * evaluate() of llava/eval/run_eval_batch.py (what the paper numbers come from) and of
 * llava/eval/run_eval.py (v1.0.0, with the yes/no gate and the candidate-based open accuracy),
 * computed together in one pass, overall and per answer_type / question_type subset.
 */
import { llavaError } from '../../errors.js';
import type { AnswerLine, TestEntry } from '../formats.js';
import { testEntryAnswer } from '../formats.js';
import { sentenceBleu } from './bleu.js';
import { normalizeWord } from './glossary.js';
import { pyLower, pySplit, pySum } from './pystr.js';
import { calculateAppearanceWithNormalization, calculateExactmatch, calculateF1score } from './scores.js';

/**
 * Every metric as a fraction (multiply by 100 for the printed tables, as the scripts do).
 * `null` where the original divides by an empty list and crashes (ZeroDivisionError: run_eval_batch
 * then skips the whole dataset); the two accuracies the original guards with `if len != 0 else 0.0`
 * are 0 instead.
 */
export interface VqaMetrics {
  /** Items with answer_type 'OPEN'. */
  numOpen: number;
  /** Items with answer_type 'CLOSED'. */
  numClosed: number;
  /** Items whose answer_type is neither 'OPEN' nor 'CLOSED' (the original silently ignores them). */
  numIgnored: number;
  /** "exact match score" (calculate_exactmatch, OPEN items). */
  exactMatch: number | null;
  /** Mean token F1 over OPEN items (calculate_f1score). */
  f1: number | null;
  /** Mean token precision over OPEN items. */
  precision: number | null;
  /** OPEN token recall: the paper's "Open" number (× 100). */
  recall: number | null;
  /** Mean sentence BLEU (nltk weights (0.25, 0.25, 0.25, 0.25)) over OPEN items. */
  bleu: number | null;
  /** Mean BLEU-1 (weights (1, 0, 0, 0)) over OPEN items. */
  bleu1: number | null;
  /** Mean BLEU-2 (weights (0, 1, 0, 0)) over OPEN items. */
  bleu2: number | null;
  /** Mean BLEU-3 (weights (0, 0, 1, 0)) over OPEN items. */
  bleu3: number | null;
  /** run_eval_batch "open accuracy": normalized gt is a substring of the normalized prediction. */
  openAccuracy: number;
  /** run_eval.py "open accuracy" via train-set candidates; null when no candidates were given. */
  openAccuracyCandidates: number | null;
  /** run_eval_batch "yes/no accuracy": gt substring of pred. The paper's "Closed" number (× 100). */
  closedAccuracy: number;
  /** run_eval.py (v1.0.0) "yes/no accuracy": ('yes' in pred or 'no' in pred) and gt in pred. */
  closedAccuracyGated: number;
  /** run_eval_batch "recall_closed": token recall over CLOSED items. */
  recallClosed: number | null;
}

/** What {@link evaluate} returns: the metrics overall and per subset. */
export interface EvaluateResult {
  /** Over every item. */
  overall: VqaMetrics;
  /** Per answer_type ('OPEN', 'CLOSED', …). */
  byAnswerType: Record<string, VqaMetrics>;
  /** Per question_type (the dataset's own categories). */
  byQuestionType: Record<string, VqaMetrics>;
  /** The paper's two numbers, already × 100: open recall and closed substring accuracy. */
  paper: {
    /** OPEN token recall × 100; null without OPEN items. */
    open: number | null;
    /** CLOSED substring accuracy × 100. */
    closed: number;
  };
}

/** Options of {@link evaluate} and {@link scoreItems}. */
export interface EvaluateOptions {
  /** The list under key "0" of train_open_answers.json (never released; see issue #26). */
  candidates?: readonly (string | number)[];
}

/** One question's scores (what the report lists). */
export interface ItemScores {
  /** The question's id. */
  id: number | string;
  /** Its answer_type. */
  answerType: string;
  /** Its question_type. */
  questionType: string;
  /** Scores of an OPEN item (each 0..1). */
  open?: {
    /** 1 when the normalized answer is a substring of the normalized prediction. */
    hit: number;
    /** Candidate-based hit (run_eval.py); null without candidates. */
    candHit: number | null;
    /** Exact-match score. */
    exact: number;
    /** Token F1. */
    f1: number;
    /** Token precision. */
    precision: number;
    /** Token recall (the paper's Open metric). */
    recall: number;
    /** Sentence BLEU with the four weightings of {@link VqaMetrics}: bleu, bleu1, bleu2, bleu3. */
    bleu: [number, number, number, number];
  };
  /** Scores of a CLOSED item (each 0..1). */
  closed?: {
    /** 1 when the answer is a substring of the prediction (the paper's Closed metric). */
    hit: number;
    /** run_eval.py's gated hit: the prediction also contains 'yes' or 'no'. */
    gatedHit: number;
    /** Token recall. */
    recall: number;
  };
}

function mean(xs: readonly number[]): number | null {
  return xs.length === 0 ? null : pySum(xs) / xs.length;
}

function scoreItem(gt: TestEntry, pred: AnswerLine, candidates: EvaluateOptions['candidates']): ItemScores {
  const gtValue = normalizeWord(pyLower(testEntryAnswer(gt)));
  const predValue = normalizeWord(pyLower(pred.text));
  const item: ItemScores = { id: gt.id, answerType: gt.answer_type, questionType: String(gt.question_type ?? '') };
  if (gt.answer_type === 'OPEN') {
    const { f1, precision, recall } = calculateF1score(predValue, gtValue);
    // str(x).lower().split() on the once-normalized strings.
    const ref = [pySplit(pyLower(gtValue))];
    const hyp = pySplit(pyLower(predValue));
    item.open = {
      hit: predValue.includes(gtValue) ? 1 : 0,
      candHit: candidates ? calculateAppearanceWithNormalization(predValue, gtValue, candidates) : null,
      exact: calculateExactmatch(predValue, gtValue),
      f1,
      precision,
      recall,
      bleu: [
        sentenceBleu(ref, hyp),
        sentenceBleu(ref, hyp, [1, 0, 0, 0]),
        sentenceBleu(ref, hyp, [0, 1, 0, 0]),
        sentenceBleu(ref, hyp, [0, 0, 1, 0]),
      ],
    };
  } else if (gt.answer_type === 'CLOSED') {
    const hit = predValue.includes(gtValue) ? 1 : 0;
    const gate = predValue.includes('yes') || predValue.includes('no');
    item.closed = { hit, gatedHit: gate && hit ? 1 : 0, recall: calculateF1score(predValue, gtValue).recall };
  }
  return item;
}

function aggregate(items: readonly ItemScores[], withCandidates: boolean): VqaMetrics {
  const open = items.flatMap((i) => (i.open ? [i.open] : []));
  const closed = items.flatMap((i) => (i.closed ? [i.closed] : []));
  const guarded = (xs: number[]) => (xs.length !== 0 ? pySum(xs) / xs.length : 0);
  return {
    numOpen: open.length,
    numClosed: closed.length,
    numIgnored: items.length - open.length - closed.length,
    exactMatch: mean(open.map((o) => o.exact)),
    f1: mean(open.map((o) => o.f1)),
    precision: mean(open.map((o) => o.precision)),
    recall: mean(open.map((o) => o.recall)),
    bleu: mean(open.map((o) => o.bleu[0])),
    bleu1: mean(open.map((o) => o.bleu[1])),
    bleu2: mean(open.map((o) => o.bleu[2])),
    bleu3: mean(open.map((o) => o.bleu[3])),
    openAccuracy: guarded(open.map((o) => o.hit)),
    // run_eval.py divides without a guard: no OPEN items → crash → null here.
    openAccuracyCandidates: withCandidates ? mean(open.map((o) => o.candHit!)) : null,
    closedAccuracy: guarded(closed.map((c) => c.hit)),
    closedAccuracyGated: guarded(closed.map((c) => c.gatedHit)),
    recallClosed: mean(closed.map((c) => c.recall)),
  };
}

function groupBy(items: readonly ItemScores[], key: (i: ItemScores) => string): Map<string, ItemScores[]> {
  const m = new Map<string, ItemScores[]>();
  for (const i of items) {
    const k = key(i);
    const list = m.get(k);
    if (list) list.push(i);
    else m.set(k, [i]);
  }
  return m;
}

/**
 * Scores predictions against test.json entries with every metric of the original scripts, overall and per
 * answer type and question type. Like the original, the id sequences must be identical
 * (`assert gt_ids == pred_ids`): merge chunked runs with {@link mergeChunks} first.
 * @throws LlavaMedError `ERR_EVAL` (different lengths or ids, naming the first difference).
 */
export function evaluate(gt: readonly TestEntry[], pred: readonly AnswerLine[], options: EvaluateOptions = {}): EvaluateResult {
  const items = scoreItems(gt, pred, options);
  const withCandidates = options.candidates !== undefined;
  const overall = aggregate(items, withCandidates);
  const byAnswerType: Record<string, VqaMetrics> = {};
  for (const [k, v] of groupBy(items, (i) => i.answerType)) byAnswerType[k] = aggregate(v, withCandidates);
  const byQuestionType: Record<string, VqaMetrics> = {};
  for (const [k, v] of groupBy(items, (i) => i.questionType)) byQuestionType[k] = aggregate(v, withCandidates);
  return {
    overall,
    byAnswerType,
    byQuestionType,
    paper: { open: overall.recall === null ? null : overall.recall * 100, closed: overall.closedAccuracy * 100 },
  };
}

/**
 * Per-question scores (what the report lists), in test.json order, after the same id check as {@link evaluate}.
 * @throws LlavaMedError `ERR_EVAL` (different lengths or ids, naming the first difference).
 */
export function scoreItems(gt: readonly TestEntry[], pred: readonly AnswerLine[], options: EvaluateOptions = {}): ItemScores[] {
  if (gt.length !== pred.length) {
    throw llavaError(
      'ERR_EVAL',
      `Predictions and ground truth are not exactly matched: ${gt.length} test entries but ${pred.length} answer lines (the original asserts gt_ids == pred_ids).`,
    );
  }
  for (let i = 0; i < gt.length; i++) {
    // Python compares with ==, so int 5 and int 5 match but 5 and "5" do not.
    if (gt[i]!.id !== pred[i]!.question_id) {
      throw llavaError(
        'ERR_EVAL',
        `Predictions and ground truth are not exactly matched: at position ${i} test.json has id ${JSON.stringify(gt[i]!.id)} but the answers file has question_id ${JSON.stringify(pred[i]!.question_id)}. Answers must be in test.json order.`,
      );
    }
  }
  return gt.map((g, i) => scoreItem(g, pred[i]!, options.candidates));
}
