/**
 * PathVQA: qas/{train,val,test}/{split}_qa.pkl (Python pickles: a list of dicts
 * {image, question, answer}) + images/{train,val,test}/. The pickles are read with the project's
 * restricted unpickler (lib/formats/unpickle.ts), never by executing pickle code.
 * answer_type is CLOSED for yes/no answers (PathVQA's closed questions are exactly the yes/no ones).
 * question_type is the question's first word, lowercased ("Where is this?" → "where"), which is
 * what the one PathVQA test.json entry shown in LLaVA-Med's notebook carries; the rest of their
 * (unreleased) conversion is not known. Ids are assigned 0..n-1 per split (no source ids).
 */
import { join } from 'node:path';
import { z } from 'zod';
import { llavaError } from '../../errors.js';
import { pickleToPlain, unpickle } from '../../formats/unpickle.js';
import { isFile, type RawQuestion } from './common.js';
import type { LoadedDataset } from './vqa-rad.js';
import { MAX_DATA_FILE_BYTES, readRegularFile } from '../../formats/file-read.js';

type Unpickle = (buffer: Uint8Array) => unknown;

// Dicts come out of the unpickler as Maps (pickle keys need not be strings); the records are
// plain string-keyed dicts, so turn them into objects before validating.
const defaultUnpickle: Unpickle = (buffer) => pickleToPlain(unpickle(buffer));

const PklRecord = z.looseObject({
  image: z.string().min(1),
  question: z.string().min(1),
  answer: z.union([z.string(), z.number()]),
});

const SPLITS = ['train', 'val', 'test'] as const;

export function pathVqaQuestionType(question: string): string {
  const first = question.trim().split(/\s+/)[0] ?? '';
  return first.toLowerCase().replace(/[^a-z0-9]+/g, '');
}

export async function loadPathVqa(src: string, unpickleImpl?: Unpickle): Promise<LoadedDataset> {
  const read = unpickleImpl ?? defaultUnpickle;
  const splits: Record<string, RawQuestion[]> = {};
  for (const split of SPLITS) {
    const file = join(src, 'qas', split, `${split}_qa.pkl`);
    if (!(await isFile(file))) throw llavaError('ERR_FILE_NOT_FOUND', `PathVQA: expected file not found: ${file}`);
    const data = read(await readRegularFile(file, { what: 'PathVQA question file', maxBytes: MAX_DATA_FILE_BYTES, tooLargeCode: 'ERR_DATASET' }));
    if (!Array.isArray(data)) throw llavaError('ERR_DATASET', `PathVQA: ${file} does not hold a list of question records.`);
    splits[split] = data.map((rec, i) => {
      const r = PklRecord.safeParse(rec);
      if (!r.success) {
        throw llavaError('ERR_DATASET', `PathVQA: malformed ${file} record ${i}: ${r.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
      }
      const answer = String(r.data.answer);
      const img = r.data.image.includes('.') ? r.data.image : `${r.data.image}.jpg`;
      return {
        image: `${split}/${img}`,
        question: r.data.question,
        answer,
        answerType: ['yes', 'no'].includes(answer.trim().toLowerCase()) ? 'CLOSED' : 'OPEN',
        questionType: pathVqaQuestionType(r.data.question),
      } satisfies RawQuestion;
    });
  }
  return { splits, imagesDir: join(src, 'images') };
}
