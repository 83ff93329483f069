/**
 * The two file formats of the original VQA evaluation: test.json entries (what prepare writes and
 * evaluate reads) and answer jsonl lines (what model_vqa_med.py writes). Validation is zod; the
 * helpers here keep the original's field quirks in one place.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { llavaError } from '../errors.js';
import { pyStrip } from './metrics/pystr.js';

/** One turn of a test.json conversation (other keys of the file are kept as they are). */
export interface ConversationTurn {
  /** Who speaks: `"human"` (the question) or `"gpt"` (the reference answer). */
  from: string;
  /** The text; the question's ends with `"\n<image>"` when the entry has an image. */
  value: string;
  /** Any other key the file has. */
  [key: string]: unknown;
}

/**
 * One entry of a LLaVA-format test.json (what {@link prepareDataset} writes and {@link evaluate} reads).
 * The original reads `conversations`, falling back to the misspelled `conversatons` (some of its json
 * files had it), so either key is accepted; at least one is present, with two turns or more.
 */
export interface TestEntry {
  /** The question id; `5` and `"5"` are different ids, as in Python. */
  id: number | string;
  /** Image path relative to the image folder; absent for a text-only entry. */
  image?: string;
  /** `"OPEN"` or `"CLOSED"` (other values are counted as ignored by {@link evaluate}). */
  answer_type: string;
  /** The dataset's own question category (e.g. VQA-RAD's `"PRES"`); used for the per-type breakdown. */
  question_type?: string | number;
  /** The question (turn 0) and the reference answer (turn 1). */
  conversations?: ConversationTurn[];
  /** The misspelled key some of the original files use; read when `conversations` is absent. */
  conversatons?: ConversationTurn[];
  /** Any other key the file has. */
  [key: string]: unknown;
}

const Turn = z.looseObject({ from: z.string(), value: z.string() });

/** The zod schema of a {@link TestEntry}. */
export const TestEntrySchema: z.ZodType<TestEntry> = z
  .looseObject({
    id: z.union([z.number().int(), z.string()]),
    image: z.string().optional(),
    answer_type: z.string(),
    question_type: z.union([z.string(), z.number()]).optional(),
    conversations: z.array(Turn).min(2).optional(),
    conversatons: z.array(Turn).min(2).optional(),
  })
  .refine((e) => e.conversations !== undefined || e.conversatons !== undefined, {
    message: 'needs a "conversations" (or "conversatons") list with the human question and the gpt answer',
  });

/** The zod schema of a whole test.json. */
export const TestFileSchema = z.array(TestEntrySchema);

/** One line of an answers jsonl file, as model_vqa_med.py writes it (and {@link answerQuestions} does). */
export interface AnswerLine {
  /** The test.json entry's `id`. */
  question_id: number | string;
  /** The question as given to the model: without `"<image>"`, then `"\n<image>"` appended when it has an image. */
  prompt: string;
  /** The model's answer. */
  text: string;
  /** A random 22-character shortuuid-style id of this answer. */
  answer_id: string;
  /** Which model answered (the original wrote the model path). */
  model_id: string;
  /** Free-form metadata (the original wrote `{}`). */
  metadata: Record<string, unknown>;
  /** Any other key the file has. */
  [key: string]: unknown;
}

/** The zod schema of an {@link AnswerLine}. */
export const AnswerLineSchema: z.ZodType<AnswerLine> = z.looseObject({
  question_id: z.union([z.number().int(), z.string()]),
  prompt: z.string(),
  text: z.string(),
  answer_id: z.string(),
  model_id: z.string(),
  metadata: z.record(z.string(), z.unknown()),
});

function turns(e: TestEntry): ConversationTurn[] {
  // `try: conversations except: conversatons` — the correct key wins when both exist.
  return (e.conversations ?? e.conversatons)!;
}

/** conversations[0].value: the question, with its "\n<image>" suffix. */
export function testEntryQuestion(e: TestEntry): string {
  return turns(e)[0]!.value;
}

/** conversations[1].value: the reference answer. */
export function testEntryAnswer(e: TestEntry): string {
  return turns(e)[1]!.value;
}

/**
 * cur_prompt of model_vqa_med.py: the question with "<image>" removed (and stripped, as `qs` is),
 * then "\n<image>" appended when the item has an image.
 */
export function answerPrompt(e: TestEntry): string {
  const qs = pyStrip(testEntryQuestion(e).split('<image>').join(''));
  return e.image !== undefined ? qs + '\n<image>' : qs;
}

/** shortuuid's default alphabet: no 0, 1, I, O, l. */
export const SHORTUUID_ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/**
 * A shortuuid-style id: 22 characters from shortuuid's alphabet. shortuuid encodes a random
 * uuid4 in base 57 (22 digits); we draw the digits from crypto randomness directly, with
 * rejection sampling so each character is uniform.
 */
export function shortUuid(): string {
  const n = SHORTUUID_ALPHABET.length; // 57
  const limit = 256 - (256 % n); // bytes >= limit would bias the modulo
  let out = '';
  while (out.length < 22) {
    for (const b of randomBytes(32)) {
      if (b < limit && out.length < 22) out += SHORTUUID_ALPHABET[b % n];
    }
  }
  return out;
}

/** Builds an answers line for one test entry and one model output. */
export function makeAnswerLine(e: TestEntry, text: string, modelId: string, metadata: Record<string, unknown> = {}): AnswerLine {
  return { question_id: e.id, prompt: answerPrompt(e), text, answer_id: shortUuid(), model_id: modelId, metadata };
}

function describeIssues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

/** Parses a test.json document (already JSON.parse'd); ERR_EVAL naming the bad entry. */
export function parseTestFile(data: unknown, source = 'test.json'): TestEntry[] {
  if (!Array.isArray(data)) throw llavaError('ERR_EVAL', `${source} must be a JSON list of entries.`);
  return data.map((d, i) => {
    const r = TestEntrySchema.safeParse(d);
    if (!r.success) {
      const id = d && typeof d === 'object' && 'id' in d ? ` (id ${JSON.stringify((d as { id: unknown }).id)})` : '';
      throw llavaError('ERR_EVAL', `${source}: entry ${i}${id} is malformed: ${describeIssues(r.error)}`);
    }
    return r.data;
  });
}

/** Parses one answers jsonl line; ERR_EVAL naming file and line number. */
export function parseAnswerLine(line: string, source: string, lineNo: number): AnswerLine {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch (e) {
    throw llavaError('ERR_EVAL', `${source}:${lineNo} is not valid JSON.`, e);
  }
  const r = AnswerLineSchema.safeParse(obj);
  if (!r.success) throw llavaError('ERR_EVAL', `${source}:${lineNo} is not an answer line: ${describeIssues(r.error)}`);
  return r.data;
}

/** Parses a whole answers jsonl text (blank lines ignored, like json.loads per line would not: see AnswersFile for torn lines). */
export function parseAnswersJsonl(text: string, source = 'answers.jsonl'): AnswerLine[] {
  const out: AnswerLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.trim() === '') continue;
    out.push(parseAnswerLine(l, source, i + 1));
  }
  return out;
}
