/**
 * Score output in the paper's layout: one row per run, Open (recall) / Closed (substring yes/no
 * accuracy) per dataset, × 100 with two decimals (as the notebook prints), plus a per
 * question_type breakdown, and a JSON form of the same numbers.
 */
import type { EvaluateResult, VqaMetrics } from './metrics/evaluate.js';
import { pyFixed } from './metrics/pystr.js';

/** The three VQA benchmarks of the paper. */
export type PaperDataset = 'vqa-rad' | 'slake' | 'pathvqa';

/** Display name of each {@link PaperDataset}. */
export const DATASET_LABELS: Record<PaperDataset, string> = { 'vqa-rad': 'VQA-RAD', slake: 'SLAKE', pathvqa: 'PathVQA' };

/** docs/llava_med_performance.md (= the paper's table): open recall, closed accuracy. */
export const PAPER_RESULTS: readonly {
  /** The paper's row label. */
  model: string;
  /** Per dataset, already × 100. */
  scores: Record<PaperDataset, {
    /** Open: token recall × 100. */
    open: number;
    /** Closed: yes/no accuracy × 100. */
    closed: number;
  }>;
}[] = [
  { model: 'LLaVA-Med (From LLaVA)', scores: { 'vqa-rad': { open: 61.52, closed: 84.19 }, slake: { open: 83.08, closed: 85.34 }, pathvqa: { open: 37.95, closed: 91.21 } } },
  { model: 'LLaVA-Med (From Vicuna)', scores: { 'vqa-rad': { open: 64.39, closed: 81.98 }, slake: { open: 84.71, closed: 83.17 }, pathvqa: { open: 38.87, closed: 91.65 } } },
  { model: 'LLaVA-Med (BioMed CLIP)', scores: { 'vqa-rad': { open: 64.75, closed: 83.09 }, slake: { open: 87.11, closed: 86.78 }, pathvqa: { open: 39.6, closed: 91.09 } } },
];

/** One row of the score table: a run's evaluation per dataset. */
export interface ScoreTableInput {
  /** Row label, e.g. the model file name. */
  model: string;
  /** {@link evaluate}'s result per dataset; a missing dataset prints as '–'. */
  results: Partial<Record<PaperDataset, EvaluateResult>>;
}

/** Options of {@link formatScoreTable}. */
export interface ScoreTableOptions {
  /** Add the paper's rows for comparison (default false). */
  includePaper?: boolean;
  /** Add a per-question_type table for each dataset (default true). */
  breakdown?: boolean;
}

const pct = (x: number | null | undefined): string => (x === null || x === undefined ? '–' : pyFixed(x * 100, 2));

function escapeCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

const DATASETS: PaperDataset[] = ['vqa-rad', 'slake', 'pathvqa'];

/** The paper's table in Markdown: per dataset Open and Closed × 100 with two decimals ('–' where undefined), optionally the paper's rows and per-question_type tables. Never throws. */
export function formatScoreTable(runs: ScoreTableInput | readonly ScoreTableInput[], options: ScoreTableOptions = {}): string {
  const list = Array.isArray(runs) ? (runs as ScoreTableInput[]) : [runs as ScoreTableInput];
  const lines: string[] = [];
  const header = ['Model', ...DATASETS.flatMap((d) => [`${DATASET_LABELS[d]} open`, `${DATASET_LABELS[d]} closed`])];
  lines.push(`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  for (const run of list) {
    const cells = DATASETS.flatMap((d) => {
      const r = run.results[d];
      return r ? [pct(r.overall.recall), pct(r.overall.closedAccuracy)] : ['–', '–'];
    });
    lines.push(`| ${escapeCell(run.model)} | ${cells.join(' | ')} |`);
  }
  if (options.includePaper) {
    for (const p of PAPER_RESULTS) {
      const cells = DATASETS.flatMap((d) => [p.scores[d].open.toFixed(2), p.scores[d].closed.toFixed(2)]);
      lines.push(`| ${escapeCell(p.model)} (paper) | ${cells.join(' | ')} |`);
    }
  }
  lines.push('', 'Open = token recall over OPEN questions; Closed = yes/no accuracy (reference is a substring of the answer), both × 100, as in LLaVA-Med\'s run_eval_batch.py.');
  if (options.breakdown !== false) {
    for (const run of list) {
      for (const d of DATASETS) {
        const r = run.results[d];
        if (!r) continue;
        lines.push('', `### ${escapeCell(run.model)} — ${DATASET_LABELS[d]} by question type`, '');
        lines.push('| Question type | Open n | Open recall | Closed n | Closed acc. |', '|---|---:|---:|---:|---:|');
        const keys = Object.keys(r.byQuestionType).sort();
        for (const k of keys) {
          const m: VqaMetrics = r.byQuestionType[k]!;
          lines.push(`| ${escapeCell(k || '(none)')} | ${m.numOpen} | ${m.numOpen ? pct(m.recall) : '–'} | ${m.numClosed} | ${m.numClosed ? pct(m.closedAccuracy) : '–'} |`);
        }
      }
    }
  }
  return lines.join('\n') + '\n';
}

/** The same numbers as JSON-ready data (fractions, not × 100, nulls kept): one {@link ScoreTableInput} per run. Never throws. */
export function scoreJson(runs: ScoreTableInput | readonly ScoreTableInput[]): ScoreTableInput[] {
  const list = Array.isArray(runs) ? (runs as ScoreTableInput[]) : [runs as ScoreTableInput];
  return list.map((r) => ({ model: r.model, results: r.results }));
}
