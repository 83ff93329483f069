/**
 * prepareDataset: turns a published medical VQA dataset into LLaVA-Med's layout
 * (<out>/test.json, train.json, val.json where the dataset has one, images/).
 * Everything is built in a temporary sibling folder and renamed into place at the end, so a
 * failure never leaves a half-written <out>.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { llavaError } from '../../errors.js';
import type { TestEntry } from '../formats.js';
import { assignIds, checkImages, countSplit, isDir, linkOrCopyTree, type SplitCounts } from './common.js';
import { loadPathVqa } from './pathvqa.js';
import { loadSlake } from './slake.js';
import { loadVqaRad, type LoadedDataset } from './vqa-rad.js';

/** The datasets {@link prepareDataset} knows: VQA-RAD, SLAKE, PathVQA. */
export type DatasetName = 'vqa-rad' | 'slake' | 'pathvqa';

/** Progress of {@link prepareDataset}. */
export interface PrepareProgress {
  /** Reading the source, writing the split files, linking/copying images, done. */
  phase: 'read' | 'write' | 'images' | 'done';
  /** The split being written (phase 'write'). */
  split?: string;
  /** Image files linked/copied so far (phase 'images'). */
  files?: number;
}

/** Options of {@link prepareDataset}. */
export interface PrepareOptions {
  /** Which dataset `src` holds. */
  dataset: DatasetName;
  /** The dataset folder as published (downloaded by the user). */
  src: string;
  /** Output folder; must not exist or be empty. */
  out: string;
  /** Link/copy the image folder to <out>/images (default true). */
  images?: boolean;
  /** Called as the steps proceed. */
  onProgress?: (p: PrepareProgress) => void;
  /** Test seam / alternative pickle reader for PathVQA. @internal */
  unpickle?: (buffer: Uint8Array, options?: { globals?: unknown }) => unknown;
}

/** What {@link prepareDataset} wrote. */
export interface PrepareResult {
  /** The dataset prepared. */
  dataset: DatasetName;
  /** The output folder. */
  out: string;
  /** Question counts per split (test, train, val). */
  splits: Record<string, SplitCounts>;
  /** Image files linked or copied. */
  imagesCopied: number;
}

async function load(o: PrepareOptions): Promise<LoadedDataset> {
  switch (o.dataset) {
    case 'vqa-rad':
      return loadVqaRad(o.src);
    case 'slake':
      return loadSlake(o.src);
    case 'pathvqa':
      return loadPathVqa(o.src, o.unpickle);
    default:
      throw llavaError('ERR_INVALID_ARGUMENT', `Unknown dataset ${JSON.stringify(o.dataset)}; expected vqa-rad, slake or pathvqa.`);
  }
}

async function outMustBeFree(out: string): Promise<void> {
  if (!(await isDir(out))) return;
  if ((await readdir(out)).length > 0) {
    throw llavaError('ERR_INVALID_ARGUMENT', `Output folder ${out} already exists and is not empty; choose another or remove it.`);
  }
}

/**
 * Turns a published VQA dataset into LLaVA-Med's layout (`<out>/test.json`, train.json, val.json, images/),
 * built in a temporary sibling folder and renamed into place, so a failure leaves no partial `out`.
 * @throws LlavaMedError `ERR_FILE_NOT_FOUND` (no `src` folder), `ERR_INVALID_ARGUMENT` (unknown dataset, `out`
 *   not empty), `ERR_DATASET` (the files are not the dataset as published), `ERR_UNSAFE_PICKLE` (PathVQA pickle).
 */
export async function prepareDataset(o: PrepareOptions): Promise<PrepareResult> {
  if (!(await isDir(o.src))) throw llavaError('ERR_FILE_NOT_FOUND', `Dataset folder not found: ${o.src}`);
  await outMustBeFree(o.out);
  o.onProgress?.({ phase: 'read' });
  const loaded = await load(o);
  const splits: Record<string, TestEntry[]> = {};
  for (const [name, qs] of Object.entries(loaded.splits)) splits[name] = assignIds(qs);

  const copyImages = o.images !== false;
  if (copyImages) {
    if (!(await isDir(loaded.imagesDir))) throw llavaError('ERR_DATASET', `${o.dataset}: image folder not found: ${loaded.imagesDir}`);
    for (const [name, entries] of Object.entries(splits)) await checkImages(loaded.imagesDir, entries, o.dataset, `the ${name} split`);
  }

  await mkdir(dirname(o.out), { recursive: true });
  const tmp = join(dirname(o.out), `.${basename(o.out)}.partial-${randomBytes(4).toString('hex')}`);
  let imagesCopied = 0;
  try {
    await mkdir(tmp);
    for (const [name, entries] of Object.entries(splits)) {
      o.onProgress?.({ phase: 'write', split: name });
      await writeFile(join(tmp, `${name}.json`), JSON.stringify(entries, null, 2) + '\n');
    }
    if (copyImages) {
      let files = 0;
      imagesCopied = await linkOrCopyTree(loaded.imagesDir, join(tmp, 'images'), () => {
        files++;
        if (files % 100 === 0) o.onProgress?.({ phase: 'images', files });
      });
    }
    if (await isDir(o.out)) await rmdir(o.out); // empty (checked above)
    await rename(tmp, o.out);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  const counts: Record<string, SplitCounts> = {};
  for (const [name, entries] of Object.entries(splits)) counts[name] = countSplit(entries);
  o.onProgress?.({ phase: 'done' });
  return { dataset: o.dataset, out: o.out, splits: counts, imagesCopied };
}
