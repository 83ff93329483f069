/**
 * `eval answer`: answers a LLaVA-format test.json with a loaded LlavaMed, writing the
 * original's answers jsonl in test.json order. Resumable (answered ids are skipped; lines are
 * appended whole and fsynced), chunkable like the original (--num-chunks/--chunk-idx), each
 * image encoded once however many questions share it, and optionally several questions
 * decoded in parallel sequences of one context.
 */
import path from 'node:path';
import { llavaError, throwIfAborted } from '../errors.js';
import type { GenerationOptions, ImageHandle, LlavaMed } from '../llava-med.js';
import { AnswersFile, readTestFile } from './answers-file.js';
import { splitChunks } from './chunks.js';
import { makeAnswerLine, testEntryQuestion, type AnswerLine, type TestEntry } from './formats.js';
import { recordedModel, recordedModelOf, type ModelIdentity, type RecordedModel } from './model-identity.js';

/** Progress of {@link answerQuestions}. */
export interface AnswerProgress {
  /** Questions answered in this run. */
  done: number;
  /** Questions this run answers (those not already in the answers file). */
  total: number;
  /** Questions skipped because the answers file already had them (resume). */
  skipped: number;
  /** Tokens generated in this run. */
  generatedTokens: number;
  /** Time since the run started (ms). */
  elapsedMs: number;
}

/** Options of {@link answerQuestions}. */
export interface AnswerRunOptions {
  /** The loaded model that answers. */
  med: LlavaMed;
  /** The LLaVA-format test.json. */
  questionFile: string;
  /** Folder the entries' `image` paths are relative to. */
  imageFolder: string;
  /** The answers jsonl to append to (created if missing; ids already in it are skipped). */
  answersFile: string;
  /** Recorded in each line's model_id (the original wrote the model path). */
  modelId: string;
  /**
   * The model's identity ({@link modelIdentity} of the files `med` was loaded from), recorded in each line's
   * `metadata.model` ({@link RecordedModel}) so that `eval merge` can check every part was answered by one model,
   * and checked against the lines already in the answers file: resuming a file with another model is refused.
   * The CLI always passes it. Default: nothing recorded (`metadata: {}`, as the original wrote) or checked.
   */
  identity?: ModelIdentity | undefined;
  /** Split the questions into this many chunks, as the original's --num-chunks. Default 1. */
  numChunks?: number;
  /** Which chunk to answer, 0-based, < numChunks. Default 0. */
  chunkIdx?: number;
  /** Questions decoded at once (≤ the sequences the instance was loaded with). Default 1. */
  parallel?: number;
  /** Generation options for every answer. Default: the variant's original settings. */
  generation?: Omit<GenerationOptions, 'signal'>;
  /** Called after each answer. */
  onProgress?: (p: AnswerProgress) => void;
  /** Aborts: rejects with `ERR_ABORTED`; the lines already written stay, so a rerun resumes. */
  signal?: AbortSignal;
}

/** What {@link answerQuestions} did. */
export interface AnswerRunResult extends AnswerProgress {
  /** The answers file written. */
  answersFile: string;
  /** Distinct images encoded (each once, however many questions share it). */
  imagesEncoded: number;
}

/**
 * Answers a LLaVA-format test.json with a loaded model, appending the original's answers jsonl in test.json
 * order. Resumable: ids already in the answers file are skipped.
 *
 * @throws LlavaMedError `ERR_INVALID_ARGUMENT` (`parallel` < 1 or above the instance's sequences), `ERR_EVAL`
 *   (a malformed test.json or answers file, an entry without an image, an answers file whose lines record
 *   another model than `identity`), the image and generation
 *   errors of {@link LlavaMed.ask}, `ERR_ABORTED`.
 */
export async function answerQuestions(o: AnswerRunOptions): Promise<AnswerRunResult> {
  const parallel = o.parallel ?? 1;
  if (!Number.isInteger(parallel) || parallel < 1) throw llavaError('ERR_INVALID_ARGUMENT', '--parallel must be an integer >= 1.');
  if (parallel > o.med.sequences) {
    throw llavaError('ERR_INVALID_ARGUMENT', `--parallel ${parallel} needs an instance loaded with sequences >= ${parallel} (it has ${o.med.sequences}).`);
  }
  const all = await readTestFile(o.questionFile);
  const entries = splitChunks(all, o.numChunks ?? 1, o.chunkIdx ?? 0);
  for (const e of entries) {
    if (typeof e.image !== 'string') throw llavaError('ERR_EVAL', `question ${String(e.id)} in ${o.questionFile} has no image.`);
  }
  const t0 = performance.now();
  await using file = await AnswersFile.open(o.answersFile);
  const record = o.identity ? recordedModel(o.identity, o.med.variant) : undefined;
  checkResumedModel(file, record);
  const metadata = record ? { model: record } : {};
  const todo = entries.filter((e) => !file.has(e.id));
  const progress: AnswerProgress = { done: 0, total: todo.length, skipped: entries.length - todo.length, generatedTokens: 0, elapsedMs: 0 };
  o.onProgress?.({ ...progress });

  // Each image is encoded once and freed after its last question.
  const remaining = new Map<string, number>();
  for (const e of todo) remaining.set(e.image!, (remaining.get(e.image!) ?? 0) + 1);
  const handles = new Map<string, ImageHandle>();
  let imagesEncoded = 0;
  const imageFor = async (e: TestEntry): Promise<ImageHandle> => {
    let h = handles.get(e.image!);
    if (!h) {
      h = await o.med.embedImage(path.join(o.imageFolder, e.image!), { signal: o.signal });
      handles.set(e.image!, h);
      imagesEncoded++;
    }
    return h;
  };
  const release = async (e: TestEntry): Promise<void> => {
    const left = remaining.get(e.image!)! - 1;
    remaining.set(e.image!, left);
    if (left === 0) {
      await handles.get(e.image!)?.dispose();
      handles.delete(e.image!);
    }
  };

  try {
    for (let i = 0; i < todo.length; i += parallel) {
      throwIfAborted(o.signal, 'evaluation');
      const group = todo.slice(i, i + parallel);
      const requests = [];
      for (const e of group) requests.push({ image: await imageFor(e), question: testEntryQuestion(e) });
      const answers = await o.med.askBatch(requests, { ...o.generation, signal: o.signal });
      for (let k = 0; k < group.length; k++) {
        await file.append(makeAnswerLine(group[k], answers[k].text, o.modelId, metadata));
        progress.generatedTokens += answers[k].tokens.length;
        await release(group[k]);
      }
      progress.done += group.length;
      progress.elapsedMs = performance.now() - t0;
      o.onProgress?.({ ...progress });
    }
  } finally {
    for (const h of handles.values()) await h.dispose();
  }
  progress.elapsedMs = performance.now() - t0;
  return { ...progress, answersFile: o.answersFile, imagesEncoded };
}

/**
 * Refuses to add answers of `record`'s model to a file whose lines record another model, or none: one answers
 * file, one model (nothing is checked when `record` is undefined). Used by {@link answerQuestions} and the queue's producer.
 * @throws LlavaMedError `ERR_EVAL`, naming the file, how many lines differ, the first one, and both models.
 */
export function checkResumedModel(file: { path: string; lines: readonly AnswerLine[] }, record: RecordedModel | undefined): void {
  if (!record) return; // nothing to compare with
  const want = recordedModelOf({ model: record });
  const other = file.lines.map((l) => ({ id: l.question_id, rec: recordedModelOf(l.metadata) })).filter((x) => x.rec.key !== want.key);
  if (!other.length) return;
  const first = other[0]!;
  throw llavaError(
    'ERR_EVAL',
    `${file.path} already holds ${other.length} answer(s) from another model (first, question_id ${JSON.stringify(first.id)}: ${first.rec.description}; this run: ${want.description}). ` +
      'One answers file holds one model\'s answers: finish it with that model, or give this run another --answers-file.',
  );
}
