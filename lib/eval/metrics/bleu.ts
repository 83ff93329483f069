/**
 * nltk.translate.bleu_score.sentence_bleu as the original eval scripts call it (nltk 3.8.x,
 * no smoothing, auto_reweigh False), for one reference:
 *
 *   p_n = modified precision Fraction(clipped matches, max(1, hypothesis n-grams)) for n = 1..len(weights)
 *   bp  = 1 if c > r; 0 if c == 0; else exp(1 - r/c)
 *   if p_1's numerator == 0: return 0            (no unigram match: plain 0, no warning)
 *   method0 smoothing: every p_n with numerator 0 becomes sys.float_info.min (2.2250738585072014e-308)
 *   return bp * exp(fsum(w_n * log(p_n)))
 *
 * Consequences the eval relies on:
 *  - The default weights (0.25 x4) on a hypothesis with unigram matches but no 4-gram match do NOT
 *    give 0: log(float_info.min) = -708.39…, so the score is a tiny positive number (~1e-154 … 1e-231).
 *  - A weight of 0 cancels its term exactly (0 * log(min) = -0), so weights (1,0,0,0) is
 *    bp * clipped unigram precision, even for a one-word hypothesis.
 *  - (0,1,0,0) and (0,0,1,0) still return 0 whenever there is no unigram match, and a tiny
 *    number (not 0) when there are unigram matches but no bigram/trigram match: exp(-708.39…) * bp.
 * log/exp are the correctly rounded ones of libm.ts (see there for how they relate to glibc).
 */
import { crExp, crLog } from './libm.js';
import { fsum } from './pystr.js';

const FLOAT_INFO_MIN = 2.2250738585072014e-308;

/** nltk's default sentence_bleu weights: uniform over 1- to 4-grams. */
export const DEFAULT_BLEU_WEIGHTS: readonly number[] = Object.freeze([0.25, 0.25, 0.25, 0.25]);

function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  if (tokens.length < n) return m;
  for (let i = 0; i + n <= tokens.length; i++) {
    // \u0000 cannot occur inside a token, so joined keys are unambiguous n-gram tuples.
    const key = tokens.slice(i, i + n).join('\u0000');
    m.set(key, (m.get(key) ?? 0) + 1);
  }
  return m;
}

function modifiedPrecision(references: readonly (readonly string[])[], hypothesis: readonly string[], n: number) {
  const counts = ngramCounts(hypothesis, n);
  const maxCounts = new Map<string, number>();
  for (const ref of references) {
    const refCounts = ngramCounts(ref, n);
    for (const g of counts.keys()) maxCounts.set(g, Math.max(maxCounts.get(g) ?? 0, refCounts.get(g) ?? 0));
  }
  let numerator = 0;
  let total = 0;
  for (const [g, c] of counts) {
    numerator += Math.min(c, maxCounts.get(g) ?? 0);
    total += c;
  }
  return { numerator, denominator: Math.max(1, total) };
}

function closestRefLength(references: readonly (readonly string[])[], hypLen: number): number {
  let best = Infinity;
  for (const r of references) {
    const len = r.length;
    if (Math.abs(len - hypLen) < Math.abs(best - hypLen) || (Math.abs(len - hypLen) === Math.abs(best - hypLen) && len < best)) best = len;
  }
  return best;
}

function brevityPenalty(closestRefLen: number, hypLen: number): number {
  if (hypLen > closestRefLen) return 1;
  if (hypLen === 0) return 0;
  return crExp(1 - closestRefLen / hypLen);
}

/** nltk sentence_bleu(references, hypothesis, weights) with no smoothing. Tokens are pre-split. */
export function sentenceBleu(
  references: readonly (readonly string[])[],
  hypothesis: readonly string[],
  weights: readonly number[] = DEFAULT_BLEU_WEIGHTS,
): number {
  const pn: { numerator: number; denominator: number }[] = [];
  for (let i = 1; i <= weights.length; i++) pn.push(modifiedPrecision(references, hypothesis, i));
  const bp = brevityPenalty(closestRefLength(references, hypothesis.length), hypothesis.length);
  if (pn[0]!.numerator === 0) return 0;
  const terms = pn.map((p, i) => {
    // float(Fraction) is the correctly rounded quotient, as is JS division of two safe integers.
    const v = p.numerator !== 0 ? p.numerator / p.denominator : FLOAT_INFO_MIN;
    return weights[i]! * crLog(v);
  });
  return bp * crExp(fsum(terms));
}
