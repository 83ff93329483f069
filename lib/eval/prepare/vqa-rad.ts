/**
 * VQA-RAD in either published layout:
 *  - MEVF "data_RAD": testset.json / trainset.json + images/ (the split behind the paper's VQA-RAD numbers);
 *  - OSF: "VQA_RAD Dataset Public.json" + "VQA_RAD Image Folder/"; test = records whose phrase_type
 *    contains "test", train = the rest.
 * Source quirks handled: answer_type "CLOSED " (trailing space) is trimmed; integer answers are
 * stringified (json.dump of the original would have kept ints, but evaluate() lower()s the answer,
 * which needs a string).
 */
import { join } from 'node:path';
import { z } from 'zod';
import { llavaError } from '../../errors.js';
import { describeRecord, isFile, readJson, type RawQuestion } from './common.js';

const RadRecord = z.looseObject({
  qid: z.union([z.number(), z.string()]),
  image_name: z.string().min(1),
  question: z.string().min(1),
  answer: z.union([z.string(), z.number()]),
  answer_type: z.string(),
  question_type: z.union([z.string(), z.number()]).optional(),
  phrase_type: z.string().optional(),
});
type VqaRadRecord = z.infer<typeof RadRecord>;

export const OSF_JSON = 'VQA_RAD Dataset Public.json';
export const OSF_IMAGES = 'VQA_RAD Image Folder';

function toRaw(rec: unknown, file: string, index: number): RawQuestion {
  const r = RadRecord.safeParse(rec);
  const where = describeRecord(file, index, rec);
  if (!r.success) {
    throw llavaError('ERR_DATASET', `VQA-RAD: malformed ${where}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const d: VqaRadRecord = r.data;
  const answerType = d.answer_type.trim().toUpperCase();
  if (answerType !== 'OPEN' && answerType !== 'CLOSED') {
    throw llavaError('ERR_DATASET', `VQA-RAD: ${where} has answer_type ${JSON.stringify(d.answer_type)}, expected OPEN or CLOSED.`);
  }
  return {
    sourceId: d.qid,
    image: d.image_name,
    question: d.question,
    answer: String(d.answer),
    answerType,
    questionType: String(d.question_type ?? ''),
  };
}

function toRawList(data: unknown, file: string): RawQuestion[] {
  if (!Array.isArray(data)) throw llavaError('ERR_DATASET', `VQA-RAD: ${file} must be a JSON list of records.`);
  return data.map((rec, i) => toRaw(rec, file, i));
}

export interface LoadedDataset {
  splits: Record<string, RawQuestion[]>;
  imagesDir: string;
}

export async function loadVqaRad(src: string): Promise<LoadedDataset> {
  const mevfTest = join(src, 'testset.json');
  if (await isFile(mevfTest)) {
    const trainFile = join(src, 'trainset.json');
    return {
      splits: {
        test: toRawList(await readJson(mevfTest, 'VQA-RAD'), mevfTest),
        train: toRawList(await readJson(trainFile, 'VQA-RAD'), trainFile),
      },
      imagesDir: join(src, 'images'),
    };
  }
  const osf = join(src, OSF_JSON);
  if (await isFile(osf)) {
    const data = await readJson(osf, 'VQA-RAD');
    if (!Array.isArray(data)) throw llavaError('ERR_DATASET', `VQA-RAD: ${osf} must be a JSON list of records.`);
    const test: RawQuestion[] = [];
    const train: RawQuestion[] = [];
    data.forEach((rec, i) => {
      const raw = toRaw(rec, osf, i);
      const phrase = (rec as VqaRadRecord).phrase_type;
      if (typeof phrase !== 'string') throw llavaError('ERR_DATASET', `VQA-RAD: ${describeRecord(osf, i, rec)} has no phrase_type, needed to tell test from train.`);
      (phrase.includes('test') ? test : train).push(raw);
    });
    return { splits: { test, train }, imagesDir: join(src, OSF_IMAGES) };
  }
  throw llavaError(
    'ERR_DATASET',
    `VQA-RAD: ${src} holds neither the MEVF layout (testset.json, trainset.json, images/) nor the OSF layout ("${OSF_JSON}", "${OSF_IMAGES}/").`,
  );
}
