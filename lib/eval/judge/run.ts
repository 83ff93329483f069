/**
 * The GPT-assisted chat evaluation (eval_multimodal_chat_gpt_score.py + summarize_gpt_review.py):
 * for each question of llava_med_eval_qa50_qa.jsonl and the model's answer, ask the judge to score
 * the GPT-4 reference answer (Assistant 1) and the model's (Assistant 2), store one review line,
 * then summarize. Reviews are appended one line at a time with fsync and skipped on re-run.
 */
import { constants } from 'node:fs';
import { open, truncate } from 'node:fs/promises';
import { z } from 'zod';
import { isLlavaMedError, llavaError } from '../../errors.js';
import { pyStrip, pySum } from '../metrics/pystr.js';
import { chatComplete, type ChatClientOptions } from './client.js';
import { compareMessages } from './prompt.js';
import { MAX_DATA_FILE_BYTES, readRegularFile, readTextFile } from '../../formats/file-read.js';

/**
 * One question of the chat benchmark (a line of llava_med_eval_qa50_qa.jsonl), as {@link readChatQuestions}
 * returns it: the defaults are filled in, other keys are kept.
 */
export interface ChatQuestion {
  /** The question's id. */
  question_id: number | string;
  /** The question, ending in `"\n<image>"` in the released file. */
  text: string;
  /** GPT-4's reference answer (Assistant 1 for the judge). */
  gpt4_answer: string;
  /** The figure's caption, shown to the judge in place of the image (default `""`). */
  fig_caption: string;
  /** The figure's label (default `""`). */
  fig_label: string;
  /** Sentences of the paper that mention the figure, shown to the judge as Python would print them (optional). */
  in_text_mention?: unknown;
  /** The question's kind: `"conversation"` or `"detailed_description"` in the benchmark (a summary group). */
  type: string;
  /** Image-domain flags (`chest_xray`, `mri`, `histology`, `gross`, `ct_scan`); the first true one is the question's domain group (default `{}`). */
  domain: Record<string, unknown>;
  /** Any other key the file has. */
  [key: string]: unknown;
}

/** The zod schema of a {@link ChatQuestion}. */
export const ChatQuestionSchema = z.looseObject({
  question_id: z.union([z.number(), z.string()]),
  text: z.string(),
  gpt4_answer: z.string(),
  fig_caption: z.string().default(''),
  fig_label: z.string().default(''),
  in_text_mention: z.unknown().optional(),
  type: z.string(),
  domain: z.record(z.string(), z.unknown()).default({}),
});

const ReviewLineSchema = z.looseObject({
  question_id: z.union([z.number(), z.string()]),
  question: z.string(),
  ans1: z.string(),
  ans2: z.string(),
  gpt_eval: z.string(),
  type: z.string(),
  domain: z.record(z.string(), z.unknown()).optional(),
});

/** The image domains of the chat benchmark, in get_domain's order. */
export const DOMAINS = ['chest_xray', 'mri', 'histology', 'gross', 'ct_scan'] as const;

/** get_domain: the first domain flag that is truthy, in this fixed order; undefined when none. */
export function getDomain(q: { domain?: Record<string, unknown> }): string | undefined {
  return DOMAINS.find((d) => Boolean(q.domain?.[d]));
}

/**
 * `gpt_eval.split('\n')[0].split(' ')` unpacked into exactly two values, each through float().
 * Anything else made the original crash; here it is ERR_JUDGE naming the reply.
 */
export function parseScores(reply: string): [number, number] {
  const first = reply.split('\n')[0]!;
  const parts = first.split(' ');
  const num = /^[+-]?(\d+(_\d+)*\.?(\d+(_\d+)*)?|\.\d+(_\d+)*)([eE][+-]?\d+)?$/;
  const vals = parts.map((p) => pyStrip(p));
  if (parts.length !== 2 || !vals.every((v) => num.test(v))) {
    throw llavaError('ERR_JUDGE', `The judge's first line must be two numbers separated by one space, got ${JSON.stringify(first.slice(0, 200))}.`);
  }
  return [Number(vals[0]!.replace(/_/g, '')), Number(vals[1]!.replace(/_/g, ''))];
}

/** One line of the reviews jsonl {@link runJudge} writes (the question's other fields are kept too). */
export interface ReviewLine extends Record<string, unknown> {
  /** The question's id. */
  question_id: number | string;
  /** The question's kind (its summary group), copied from the question. */
  type: string;
  /** The question's image-domain flags, copied from the question. */
  domain?: Record<string, unknown>;
  /** The question as sent to the judge. */
  question: string;
  /** Assistant 1: the GPT-4 reference answer. */
  ans1: string;
  /** Assistant 2: the model's answer. */
  ans2: string;
  /** The judge's reply; its first line is the two scores. */
  gpt_eval: string;
}

/** A model answer the judge reviews: a line of an answers jsonl, of which only these fields are read. */
export interface JudgeAnswer {
  /** When present, must equal the question's id at the same position. */
  question_id?: number | string;
  /** The model's answer. */
  text: string;
}

/** Options of {@link runJudge}: the questions, the answers, the output, and the judge's endpoint. */
export interface JudgeOptions extends ChatClientOptions {
  /** The benchmark questions (llava_med_eval_qa50_qa.jsonl). */
  questions: readonly ChatQuestion[];
  /** Model answers in the same order as `questions`, one each. */
  answers: readonly JudgeAnswer[];
  /** Output jsonl; existing reviews are kept and their questions skipped. */
  out: string;
  /**
   * 'v0': question = text[:-8] (drops "\n<image>"), as LLaVA-Med v1.0.0 did;
   * 'v1.5': the full text, as the later script does. Default 'v0'.
   */
  questionMode?: 'v0' | 'v1.5';
  /** Called after each review: `done` counts the questions reviewed now plus those skipped (already in `out`), of `total`. */
  onProgress?: (p: { done: number; total: number; skipped: number }) => void;
}

async function readExisting(path: string): Promise<Set<string>> {
  const done = new Set<string>();
  let buf: Buffer;
  try {
    buf = await readRegularFile(path, { what: 'Reviews file' });
  } catch (e) {
    if (isLlavaMedError(e, 'ERR_FILE_NOT_FOUND')) return done;
    throw e;
  }
  const keep = buf.lastIndexOf(0x0a) + 1;
  if (keep < buf.length) await truncate(path, keep); // torn last line from a crash
  const rows = buf.subarray(0, keep).toString('utf8').split('\n');
  rows.forEach((row, i) => {
    if (!row.trim()) return;
    let obj: { question_id?: unknown };
    try {
      obj = JSON.parse(row);
    } catch (e) {
      throw llavaError('ERR_JUDGE', `${path}:${i + 1} is not valid JSON.`, e);
    }
    done.add(JSON.stringify(obj.question_id));
  });
  return done;
}

/**
 * Runs (or resumes) the judge over all questions; returns how many were reviewed now and skipped.
 * @throws LlavaMedError `ERR_JUDGE` (questions and answers do not line up, an unreadable reviews file, a judge
 *   reply without two scores, HTTP failures), `ERR_ABORTED`.
 */
export async function runJudge(o: JudgeOptions): Promise<{
  /** Questions reviewed by this call. */
  reviewed: number;
  /** Questions already in `out`, skipped. */
  skipped: number;
}> {
  if (o.questions.length !== o.answers.length) {
    throw llavaError('ERR_JUDGE', `${o.questions.length} questions but ${o.answers.length} answers; the two files must line up.`);
  }
  const done = await readExisting(o.out);
  const fh = await open(o.out, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o644);
  let reviewed = 0;
  let skipped = 0;
  try {
    for (let i = 0; i < o.questions.length; i++) {
      const q = o.questions[i]!;
      const a = o.answers[i]!;
      if (a.question_id !== undefined && a.question_id !== q.question_id) {
        throw llavaError('ERR_JUDGE', `Answer ${i} has question_id ${JSON.stringify(a.question_id)} but question ${i} is ${JSON.stringify(q.question_id)}.`);
      }
      if (done.has(JSON.stringify(q.question_id))) {
        skipped++;
        continue;
      }
      const question = (o.questionMode ?? 'v0') === 'v0' ? q.text.slice(0, -8) : q.text;
      const messages = compareMessages(q.fig_label, q.fig_caption, q.in_text_mention, question, q.gpt4_answer, a.text);
      const reply = pyStrip(await chatComplete(messages, o));
      parseScores(reply); // refuse an unusable review now rather than at summary time
      const { gpt4_answer: _ans1, ...rest } = q;
      const line: ReviewLine = { ...rest, question, ans1: q.gpt4_answer, ans2: a.text, gpt_eval: reply };
      await fh.write(JSON.stringify(line) + '\n');
      await fh.sync();
      reviewed++;
      o.onProgress?.({ done: reviewed + skipped, total: o.questions.length, skipped });
    }
  } finally {
    await fh.close();
  }
  return { reviewed, skipped };
}

/** One column of the summary table. */
export interface JudgeGroupScore {
  /** Mean score the judge gave the GPT-4 reference (1..10). */
  gpt4Score: number;
  /** Mean score the judge gave the model (1..10). */
  predScore: number;
  /** mean over questions of s2/s1, × 100 (not mean(s2)/mean(s1)). */
  predRelativeScore: number;
  /** Questions in the group. */
  dataSize: number;
}

/** Column order of summarize_gpt_review.py's table. */
export const SUMMARY_ORDER = ['conversation', 'detailed_description', 'chest_xray', 'mri', 'histology', 'gross', 'ct_scan', 'overall'];

/**
 * summarize_gpt_review.py: mean scores per question type, `overall` and image domain (keys as in
 * {@link SUMMARY_ORDER}; a domain without questions is absent).
 * @throws LlavaMedError `ERR_JUDGE` (a review whose first line is not two numbers; a GPT-4 score of 0, which
 *   made the original divide by zero).
 */
export function summarizeReviews(rows: readonly Pick<ReviewLine, 'type' | 'domain' | 'gpt_eval'>[]): Record<string, JudgeGroupScore> {
  const groups = new Map<string, [number[], number[]]>();
  const add = (k: string, s1: number, s2: number) => {
    const g = groups.get(k) ?? [[], []];
    g[0].push(s1);
    g[1].push(s2);
    groups.set(k, g);
  };
  for (const r of rows) {
    const [s1, s2] = parseScores(r.gpt_eval);
    add(r.type, s1, s2);
    add('overall', s1, s2);
    const d = getDomain(r);
    // get_domain returns None when no flag is set; that group is dropped from the printed table.
    if (d !== undefined) add(d, s1, s2);
  }
  const out: Record<string, JudgeGroupScore> = {};
  for (const [k, [a, b]] of groups) {
    if (a.some((s) => s === 0)) throw llavaError('ERR_JUDGE', `A GPT-4 (Assistant 1) score of 0 in group ${k} makes the relative score divide by zero.`);
    out[k] = {
      gpt4Score: pySum(a) / a.length,
      predScore: pySum(b) / b.length,
      predRelativeScore: (pySum(a.map((s1, i) => b[i]! / s1)) / a.length) * 100,
      dataSize: a.length,
    };
  }
  return out;
}

/** Reads a jsonl file of objects (question file, answers or reviews); ERR_JUDGE naming a line that is not JSON. */
export async function readJsonl(path: string): Promise<unknown[]> {
  const text = await readTextFile(path, { what: 'JSONL file', maxBytes: MAX_DATA_FILE_BYTES });
  const out: unknown[] = [];
  text.split('\n').forEach((l, i) => {
    if (l.trim() === '') return;
    try {
      out.push(JSON.parse(l));
    } catch (e) {
      throw llavaError('ERR_JUDGE', `${path}:${i + 1} is not valid JSON.`, e);
    }
  });
  return out;
}

function validated<T>(rows: unknown[], schema: z.ZodType<T>, path: string, what: string): T[] {
  return rows.map((row, i) => {
    const r = schema.safeParse(row);
    if (!r.success) {
      const issues = r.error.issues.map((x) => `${x.path.length ? x.path.join('.') : '(root)'}: ${x.message}`).join('; ');
      throw llavaError('ERR_JUDGE', `${path}: object ${i + 1} is not ${what}: ${issues}`);
    }
    return r.data;
  });
}

/**
 * Reads the chat benchmark's questions (llava_med_eval_qa50_qa.jsonl), validated, defaults filled in.
 * @throws LlavaMedError `ERR_FILE_NOT_FOUND` (no such file), `ERR_JUDGE` (a line that is not JSON, or an object
 *   without `question_id`, `text`, `gpt4_answer` or `type`).
 */
export async function readChatQuestions(path: string): Promise<ChatQuestion[]> {
  return validated<ChatQuestion>(await readJsonl(path), ChatQuestionSchema, path, 'a chat question');
}

/**
 * Reads a reviews jsonl that {@link runJudge} wrote, validated, for {@link summarizeReviews}.
 * @throws LlavaMedError `ERR_FILE_NOT_FOUND` (no such file), `ERR_JUDGE` (a line that is not JSON or not a review).
 */
export async function readReviews(path: string): Promise<ReviewLine[]> {
  return validated<ReviewLine>(await readJsonl(path), ReviewLineSchema, path, 'a review line');
}
