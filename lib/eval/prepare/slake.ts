/**
 * SLAKE 1.0: train.json / validate.json / test.json (English and Chinese mixed) + imgs/.
 * LLaVA-Med used the English records only (q_lang "en"): 4919 / 1053 / 1061.
 * question_type comes from content_type (Organ, Abnormality, …).
 */
import { join } from 'node:path';
import { z } from 'zod';
import { llavaError } from '../../errors.js';
import { describeRecord, readJson, type RawQuestion } from './common.js';
import type { LoadedDataset } from './vqa-rad.js';

const SlakeRecord = z.looseObject({
  qid: z.union([z.number(), z.string()]),
  img_name: z.string().min(1),
  question: z.string().min(1),
  answer: z.union([z.string(), z.number()]),
  q_lang: z.string(),
  answer_type: z.string(),
  content_type: z.string().optional(),
});

const FILES: [string, string][] = [
  ['train', 'train.json'],
  ['val', 'validate.json'],
  ['test', 'test.json'],
];

export async function loadSlake(src: string): Promise<LoadedDataset> {
  const splits: Record<string, RawQuestion[]> = {};
  for (const [split, name] of FILES) {
    const file = join(src, name);
    const data = await readJson(file, 'SLAKE');
    if (!Array.isArray(data)) throw llavaError('ERR_DATASET', `SLAKE: ${file} must be a JSON list of records.`);
    const out: RawQuestion[] = [];
    data.forEach((rec, i) => {
      const r = SlakeRecord.safeParse(rec);
      const where = describeRecord(file, i, rec);
      if (!r.success) throw llavaError('ERR_DATASET', `SLAKE: malformed ${where}: ${r.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
      const d = r.data;
      if (d.q_lang !== 'en') return;
      const answerType = d.answer_type.trim().toUpperCase();
      if (answerType !== 'OPEN' && answerType !== 'CLOSED') {
        throw llavaError('ERR_DATASET', `SLAKE: ${where} has answer_type ${JSON.stringify(d.answer_type)}, expected OPEN or CLOSED.`);
      }
      out.push({
        sourceId: d.qid,
        image: d.img_name,
        question: d.question,
        answer: String(d.answer),
        answerType,
        questionType: d.content_type ?? '',
      });
    });
    splits[split] = out;
  }
  return { splits, imagesDir: join(src, 'imgs') };
}
