/**
 * Resumable answers jsonl (the file model_vqa_med.py writes), for the `eval answer` runner:
 * re-opening a file after a crash keeps every whole line, cuts away a torn last line, and
 * knows which question ids are done. Each append is one write of one whole line, then fsync,
 * so a crash loses at most the line being written.
 */
import { constants } from 'node:fs';
import { open, stat, truncate, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { llavaError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { recordedModelOf, type RecordedModel } from './model-identity.js';
import { AnswerLineSchema, parseAnswerLine, parseTestFile, type AnswerLine, type TestEntry } from './formats.js';
import { MAX_DATA_FILE_BYTES, MAX_TEXT_FILE_BYTES, readRegularFile, readTextFile } from '../formats/file-read.js';

/** Ids are compared as Python would: 5 and "5" are different ids. */
export function idKey(id: number | string): string {
  return typeof id === 'number' ? `n:${id}` : `s:${id}`;
}

export interface OpenAnswersResult {
  /** Bytes of a torn last line that were cut away (0 when the file ended cleanly). */
  truncatedBytes: number;
}

async function fileExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** An answers jsonl opened for resumable appends (see {@link AnswersFile.open}). */
export class AnswersFile {
  /** The file's path. */
  readonly path: string;
  /** The lines already in the file, in file order. */
  readonly lines: AnswerLine[];
  /** Bytes of a torn last line cut away at open (0 when the file ended cleanly). */
  readonly truncatedBytes: number;
  #ids: Set<string>;
  #fh: FileHandle | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(path: string, fh: FileHandle, lines: AnswerLine[], truncatedBytes: number) {
    this.path = path;
    this.#fh = fh;
    this.lines = lines;
    this.truncatedBytes = truncatedBytes;
    this.#ids = new Set(lines.map((l) => idKey(l.question_id)));
  }

  /**
   * Opens (creating if needed) an answers file for appending. A last line without its "\n" is a
   * write interrupted by a crash: it is truncated away. Any other unparsable line, or an id
   * that appears twice, is ERR_EVAL (the file was edited or written by something else).
   */
  static async open(path: string): Promise<AnswersFile> {
    const lines: AnswerLine[] = [];
    let truncatedBytes = 0;
    let created = false;
    if (await fileExists(path)) {
      const buf = await readRegularFile(path, { what: 'Answers file' });
      const lastNl = buf.lastIndexOf(0x0a);
      const keep = lastNl + 1;
      if (keep < buf.length) {
        truncatedBytes = buf.length - keep;
        await truncate(path, keep);
      }
      const text = buf.subarray(0, keep).toString('utf8');
      const seen = new Set<string>();
      const rows = text.split('\n');
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i]!;
        if (row.trim() === '') continue;
        const line = parseAnswerLine(row, path, i + 1);
        const k = idKey(line.question_id);
        if (seen.has(k)) throw llavaError('ERR_EVAL', `${path}:${i + 1} repeats question_id ${JSON.stringify(line.question_id)}.`);
        seen.add(k);
        lines.push(line);
      }
    } else {
      created = true;
    }
    const fh = await open(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o644);
    if (created) {
      // Make the new directory entry durable too, or a crash could lose the whole file.
      await fsyncDir(dirname(path));
    }
    return new AnswersFile(path, fh, lines, truncatedBytes);
  }

  /** Whether the file has an answer for this id (5 and "5" are different ids, as in Python). */
  has(questionId: number | string): boolean {
    return this.#ids.has(idKey(questionId));
  }

  /** Number of answered ids. */
  get size(): number {
    return this.#ids.size;
  }

  /** Appends one answer line (validated), then fsyncs. An id already in the file is ERR_EVAL. */
  append(line: AnswerLine): Promise<void> {
    const run = async () => {
      if (!this.#fh) throw llavaError('ERR_EVAL', `The answers file ${this.path} is closed.`);
      const r = AnswerLineSchema.safeParse(line);
      if (!r.success) throw llavaError('ERR_EVAL', `Not an answer line: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      const k = idKey(line.question_id);
      if (this.#ids.has(k)) {
        throw llavaError('ERR_EVAL', `question_id ${JSON.stringify(line.question_id)} is already answered in ${this.path}.`);
      }
      const data = Buffer.from(JSON.stringify(line) + '\n', 'utf8');
      // One write call with O_APPEND; loop only if the kernel wrote part of it.
      let off = 0;
      while (off < data.length) {
        const { bytesWritten } = await this.#fh.write(data, off, data.length - off);
        off += bytesWritten;
      }
      await this.#fh.sync();
      this.#ids.add(k);
      this.lines.push(line);
    };
    // Appends are serialized so concurrent callers cannot interleave or both pass the duplicate check.
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  /** Waits for pending appends, then closes the file. Idempotent. */
  async close(): Promise<void> {
    await this.#queue;
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close();
  }

  /** Same as close(), for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the file's own fsync still holds.
  } finally {
    await fh?.close();
  }
}

/**
 * Reads an answers jsonl in full, in file order (blank lines are skipped). Strict: a torn last line left by a
 * crash is an error here; rerunning {@link answerQuestions} on the file repairs it.
 * @throws LlavaMedError `ERR_FILE_NOT_FOUND` (no such file), `ERR_EVAL` (a line that is not JSON or not an
 *   answer line, naming file and line number).
 */
export async function readAnswersFile(path: string): Promise<AnswerLine[]> {
  const text = await readTextFile(path, { what: 'Answers file' });
  const out: AnswerLine[] = [];
  const rows = text.split('\n');
  for (let i = 0; i < rows.length; i++) {
    if (rows[i]!.trim() === '') continue;
    out.push(parseAnswerLine(rows[i]!, path, i + 1));
  }
  return out;
}

/**
 * Reads and validates a LLaVA-format test.json.
 * @throws LlavaMedError `ERR_FILE_NOT_FOUND` (no such file), `ERR_EVAL` (not JSON, not a list, or an entry without
 *   `id`, `answer_type` and a two-turn `conversations`, naming the entry).
 */
export async function readTestFile(path: string): Promise<TestEntry[]> {
  const text = await readTextFile(path, { what: 'Test file', maxBytes: MAX_DATA_FILE_BYTES });
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw llavaError('ERR_EVAL', `${path} is not valid JSON.`, e);
  }
  return parseTestFile(data, path);
}

function listIds(ids: readonly (number | string)[], max = 20): string {
  const shown = ids.slice(0, max).map((i) => JSON.stringify(i)).join(', ');
  return ids.length > max ? `${shown} … (${ids.length} in all)` : shown;
}

/** Runs of consecutive positions, "6–11, 14" (at most `max` runs shown). */
function positionRuns(positions: readonly number[], max = 10): string {
  const runs: string[] = [];
  for (let i = 0; i < positions.length; ) {
    let j = i;
    while (j + 1 < positions.length && positions[j + 1] === positions[j]! + 1) j++;
    runs.push(i === j ? `${positions[i]}` : `${positions[i]}–${positions[j]}`);
    i = j + 1;
  }
  return runs.length > max ? `${runs.slice(0, max).join(', ')} … (${runs.length} runs)` : runs.join(', ');
}

/** What {@link mergeChunks} wrote and checked. */
export interface MergeResult {
  /** Lines written to `out`: one per test entry. */
  lines: number;
  /** Lines each part contributed, in the order the parts were given. */
  parts: {
    /** The part's answers file. */
    file: string;
    /** Its answer lines. */
    lines: number;
  }[];
  /** The `model_id` every line records. */
  modelId: string;
  /** The model every line records in `metadata.model` (absent when the parts record none, as the original's). */
  model?: RecordedModel;
}

/**
 * Joins the answer files of a chunked run ({@link AnswerRunOptions.numChunks}, or an array job, see
 * {@link selectChunk}) into one file in test.json order, which {@link evaluate} requires; `out` is written
 * atomically. The parts must make up the test set exactly: every test id answered once, no id the test file
 * lacks, and one model — every line records the same `model_id` and the same model fingerprints in
 * `metadata.model` ({@link RecordedModel}, which `eval answer`, each chunk and a queued run write), or every line
 * records none (answer files of the original scripts). Lines are copied unchanged.
 * @param test The test.json path, or its entries already read.
 * @param chunkFiles The parts' answers jsonl files, in any order.
 * @param out The merged answers jsonl to write.
 * @throws LlavaMedError `ERR_EVAL` — every problem found, in one message: the missing ids (with their
 *   test.json positions, so the missing part shows), the duplicated ids with the files and lines holding them,
 *   the ids the test file lacks, the models recorded (model_id and fingerprints) and the parts holding each;
 *   nothing is written then. Also a malformed
 *   file (`ERR_EVAL`), `ERR_FILE_NOT_FOUND`, `ERR_INVALID_ARGUMENT` (no parts).
 */
export async function mergeChunks(test: string | readonly TestEntry[], chunkFiles: readonly string[], out: string): Promise<MergeResult> {
  if (chunkFiles.length === 0) throw llavaError('ERR_INVALID_ARGUMENT', 'mergeChunks needs at least one answers file.');
  const entries = typeof test === 'string' ? await readTestFile(test) : test;
  const testKeys = new Set(entries.map((e) => idKey(e.id)));
  const byId = new Map<string, { line: AnswerLine; where: string }>();
  const dups: string[] = [];
  const unknown: string[] = [];
  const models = new Map<string, { modelId: string; description: string; record?: RecordedModel; where: Map<string, number> }>();
  const parts: MergeResult['parts'] = [];
  for (const f of chunkFiles) {
    const lines = await readAnswersFile(f);
    parts.push({ file: f, lines: lines.length });
    lines.forEach((line, i) => {
      const where = `${f}:${i + 1}`;
      const k = idKey(line.question_id);
      const rec = recordedModelOf(line.metadata);
      const mk = JSON.stringify([line.model_id, rec.key]);
      const m = models.get(mk) ?? { modelId: line.model_id, description: rec.description, ...(rec.record ? { record: rec.record } : {}), where: new Map<string, number>() };
      m.where.set(f, (m.where.get(f) ?? 0) + 1);
      models.set(mk, m);
      if (!testKeys.has(k)) {
        unknown.push(`${JSON.stringify(line.question_id)} (${where})`);
        return;
      }
      const prev = byId.get(k);
      if (prev) dups.push(`${JSON.stringify(line.question_id)} (${prev.where} and ${where})`);
      else byId.set(k, { line, where });
    });
  }
  const problems: string[] = [];
  const missingPos = entries.map((e, i) => (byId.has(idKey(e.id)) ? -1 : i)).filter((i) => i >= 0);
  if (missingPos.length) {
    problems.push(
      `the chunk files lack answers for ${missingPos.length} test id(s) (test.json positions ${positionRuns(missingPos)}, 0-based): ${listIds(missingPos.map((i) => entries[i]!.id))}`,
    );
  }
  if (dups.length) problems.push(`Duplicate question ids in the chunk files: ${dups.slice(0, 20).join(', ')}${dups.length > 20 ? ` … (${dups.length} in all)` : ''}`);
  if (unknown.length) problems.push(`${unknown.length} answer(s) for ids not in the test file: ${unknown.slice(0, 20).join(', ')}${unknown.length > 20 ? ` … (${unknown.length} in all)` : ''}`);
  if (models.size > 1) {
    const recKeys = new Set([...models.keys()].map((k) => (JSON.parse(k) as [string, string])[1]));
    const only = [...recKeys][0]!;
    // The recorded models are named when they differ (the model_ids always are).
    const desc = [...models.values()].map(
      (m) => `model_id ${JSON.stringify(m.modelId)}${recKeys.size > 1 ? ` with ${m.description}` : ''} in ${[...m.where].map(([f, n]) => `${f} (${n} line${n === 1 ? '' : 's'})`).join(', ')}`,
    );
    const hint = recKeys.size === 1 && only.startsWith('fp:') ? ' (the same model files, by their fingerprints, but other model_ids: answer every part with the same --model-id)' : '';
    problems.push(`the parts were answered by different models${hint}: ${desc.join('; ')}`);
  }
  if (problems.length) throw llavaError('ERR_EVAL', `Cannot merge: ${problems.join('; ')}. Nothing was written.`);
  const text = entries.map((e) => JSON.stringify(byId.get(idKey(e.id))!.line) + '\n').join('');
  await writeFileAtomic(out, text);
  const one = [...models.values()][0];
  return { lines: entries.length, parts, modelId: one?.modelId ?? '', ...(one?.record ? { model: one.record } : {}) };
}

const CandidatesSchema = z.object({ '0': z.array(z.union([z.string(), z.number()])) });

/**
 * Reads the candidate answers of run_eval.py's open accuracy: a JSON object whose key `"0"` lists the
 * train-set answers (train_open_answers.json), for {@link EvaluateOptions.candidates}.
 * @throws LlavaMedError `ERR_FILE_NOT_FOUND` (no such file), `ERR_EVAL` (not JSON, or no list under `"0"`).
 */
export async function readCandidates(path: string): Promise<(string | number)[]> {
  const text = await readTextFile(path, { what: 'Candidate file', maxBytes: MAX_TEXT_FILE_BYTES });
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw llavaError('ERR_EVAL', `${path} is not valid JSON.`, e);
  }
  const r = CandidatesSchema.safeParse(data);
  if (!r.success) throw llavaError('ERR_EVAL', `${path} must be a JSON object with a list of answers under key "0" (train_open_answers.json).`);
  return r.data['0'];
}
