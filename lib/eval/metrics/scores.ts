/**
 * The per-item metric helpers of llava/eval/eval_metrics/{utils,evaluate_metrics}.py (v1.0.0).
 * Each helper normalizes its inputs again, as the original does; callers that already normalized
 * (evaluate) therefore normalize twice, which is not always idempotent (e.g. > 32 periods).
 */
import { llavaError } from '../../errors.js';
import { normalizeWord } from './glossary.js';
import { pyLower, pySplit, pyStrip } from './pystr.js';

/** utils.split_sentence: lower, strip, split, count the n-grams (insertion-ordered, like a dict). */
export function splitSentence(sentence: string, n = 1): Map<string, number> {
  const words = new Map<string, number>();
  const toks = pySplit(pyStrip(pyLower(sentence)));
  for (let i = 0; i < toks.length - n + 1; i++) {
    const gram = toks.slice(i, i + n).join(' ');
    if (gram) words.set(gram, (words.get(gram) ?? 0) + 1);
  }
  return words;
}

/** Token overlap of a prediction with a reference (calculate_f1score), each 0..1. */
export interface F1Result {
  /** Harmonic mean of precision and recall. */
  f1: number;
  /** Shared tokens / prediction tokens. */
  precision: number;
  /** Shared tokens / reference tokens. */
  recall: number;
}

/**
 * evaluate_metrics.calculate_f1score(candidate, reference). tp adds the CANDIDATE's count of a
 * shared word, so repeating a correct word raises both precision and recall (recall can exceed 1).
 * Empty side or tp == 0 → all zero.
 */
export function calculateF1score(candidate: string, reference: string): F1Result {
  const cand = splitSentence(normalizeWord(candidate), 1);
  const ref = splitSentence(normalizeWord(reference), 1);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (const [w, c] of cand) {
    if (ref.has(w)) tp += c;
    else fp += c;
  }
  for (const [w, c] of ref) if (!cand.has(w)) fn += c;
  if (cand.size === 0 || ref.size === 0) return { f1: 0, precision: 0, recall: 0 };
  const precision = tp / (tp + fp);
  const recall = tp / (tp + fn);
  if (tp === 0) return { f1: 0, precision: 0, recall: 0 };
  return { f1: (2 * precision * recall) / (precision + recall), precision, recall };
}

/**
 * evaluate_metrics.calculate_exactmatch: (reference word TYPES found in the candidate) /
 * (candidate tokens). Not an exact match despite the name; 0 for an empty candidate.
 */
export function calculateExactmatch(candidate: string, reference: string): number {
  const cand = splitSentence(normalizeWord(candidate), 1);
  const ref = splitSentence(normalizeWord(reference), 1);
  let count = 0;
  for (const w of ref.keys()) if (cand.has(w)) count += 1;
  let total = 0;
  for (const c of cand.values()) total += c;
  return total === 0 ? 0 : count / total;
}

/** evaluate_metrics.similarity_candidate_prediction: prediction word types in the candidate / candidate types. */
function similarityCandidatePrediction(candidateAnswer: string, prediction: Map<string, number>): number {
  const cand = splitSentence(candidateAnswer, 1);
  let count = 0;
  for (const w of prediction.keys()) if (cand.has(w)) count += 1;
  return cand.size === 0 ? 0 : count / cand.size;
}

/**
 * evaluate_metrics.calculate_appearance_with_normalization (run_eval.py's open "accuracy"):
 * pick the train-set open answer most similar to the prediction (first maximum), score 1 when it
 * equals the normalized reference. `candidates` is the list under key "0" of train_open_answers.json;
 * integers are stringified as the original did.
 */
export function calculateAppearanceWithNormalization(
  prediction: string,
  reference: string,
  candidates: readonly (string | number)[],
): number {
  const predWords = splitSentence(normalizeWord(prediction), 1);
  const ref = normalizeWord(reference);
  if (candidates.length === 0) {
    // Python: max() of an empty sequence raises ValueError.
    throw llavaError('ERR_EVAL', 'The candidate answer list is empty; run_eval.py would fail with "max() arg is an empty sequence".');
  }
  let best = -Infinity;
  let bestAnswer = '';
  for (const c of candidates) {
    if (typeof c === 'number' && !Number.isInteger(c)) {
      // Python: normalize_word(float) raises (floats are not converted, only ints).
      throw llavaError('ERR_EVAL', `Candidate answer ${c} is a non-integer number; the original code cannot normalize it.`);
    }
    const norm = normalizeWord(String(c));
    const sim = similarityCandidatePrediction(norm, predWords);
    if (sim > best) {
      best = sim;
      bestAnswer = norm;
    }
  }
  return bestAnswer === ref ? 1 : 0;
}
