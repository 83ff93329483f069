/**
 * Shared pieces of dataset preparation: the test.json entry shape, id policy, counting, and
 * putting the image tree under <out>/images (hard links where possible, copies otherwise).
 */
import { copyFile, link, mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { llavaError } from '../../errors.js';
import type { TestEntry } from '../formats.js';
import { MAX_DATA_FILE_BYTES, readTextFile } from '../../formats/file-read.js';

/** One source question, already checked, before ids are settled. */
export interface RawQuestion {
  /** The source's own id, if it has one. */
  sourceId?: number | string;
  image: string;
  question: string;
  answer: string;
  answerType: 'OPEN' | 'CLOSED';
  questionType: string;
}

/** Counts of one split. */
export interface SplitCounts {
  /** Questions. */
  total: number;
  /** OPEN questions. */
  open: number;
  /** CLOSED questions. */
  closed: number;
  /** Distinct images. */
  images: number;
}

/** The LLaVA-Med test.json entry: question + "\n<image>", then the answer. */
export function toEntry(id: number | string, q: RawQuestion): TestEntry {
  return {
    id,
    image: q.image,
    answer_type: q.answerType,
    question_type: q.questionType,
    conversations: [
      { from: 'human', value: `${q.question}\n<image>` },
      { from: 'gpt', value: q.answer },
    ],
  };
}

/**
 * Keeps the source ids when every one is a number and they are unique within the split (so
 * answers can be traced back to the source), otherwise numbers the questions 0..n-1 in order.
 */
export function assignIds(qs: readonly RawQuestion[]): TestEntry[] {
  const ids = qs.map((q) => q.sourceId);
  const keep = ids.every((i) => typeof i === 'number' && Number.isSafeInteger(i)) && new Set(ids).size === ids.length;
  return qs.map((q, i) => toEntry(keep ? (q.sourceId as number) : i, q));
}

export function countSplit(entries: readonly TestEntry[]): SplitCounts {
  let open = 0;
  let closed = 0;
  for (const e of entries) {
    if (e.answer_type === 'OPEN') open++;
    else if (e.answer_type === 'CLOSED') closed++;
  }
  return { total: entries.length, open, closed, images: new Set(entries.map((e) => e.image)).size };
}

export async function readJson(path: string, dataset: string): Promise<unknown> {
  const text = await readTextFile(path, { what: `${dataset}: file`, maxBytes: MAX_DATA_FILE_BYTES, tooLargeCode: 'ERR_DATASET' });
  try {
    return JSON.parse(text);
  } catch (e) {
    throw llavaError('ERR_DATASET', `${dataset}: ${path} is not valid JSON.`, e);
  }
}

export async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

export async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Mirrors a directory tree: hard link each file (no extra disk), or copy where linking fails (other device, no permission). */
export async function linkOrCopyTree(src: string, dst: string, onFile?: () => void): Promise<number> {
  await mkdir(dst, { recursive: true });
  let n = 0;
  for (const ent of await readdir(src, { withFileTypes: true })) {
    const s = join(src, ent.name);
    const d = join(dst, ent.name);
    if (ent.isDirectory()) n += await linkOrCopyTree(s, d, onFile);
    else if (ent.isFile()) {
      try {
        await link(s, d);
      } catch {
        await copyFile(s, d);
      }
      n++;
      onFile?.();
    }
  }
  return n;
}

/** ERR_DATASET listing referenced images that are not in the image folder. */
export async function checkImages(imagesDir: string, entries: readonly TestEntry[], dataset: string, file: string): Promise<void> {
  const missing: string[] = [];
  for (const img of new Set(entries.map((e) => e.image!))) {
    if (!(await isFile(join(imagesDir, img)))) missing.push(img);
  }
  if (missing.length) {
    const shown = missing.slice(0, 5).join(', ');
    throw llavaError('ERR_DATASET', `${dataset}: ${missing.length} image(s) referenced by ${file} are missing from ${imagesDir}: ${shown}${missing.length > 5 ? ', …' : ''}`);
  }
}

export function describeRecord(file: string, index: number, rec: unknown): string {
  const qid = rec && typeof rec === 'object' && 'qid' in rec ? `qid ${JSON.stringify((rec as { qid: unknown }).qid)}, ` : '';
  return `${file} record ${index} (${qid}index ${index})`;
}
