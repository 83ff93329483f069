// prepareDataset on real records copied from the published datasets into test/fixtures/eval
// (VQA-RAD MEVF testset.json in full + a trainset subset with its quirks, images downscaled to
// 48 px; SLAKE test.json in full + small train/validate subsets, no images).
import t from 'tap';
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { prepareDataset } from '../../lib/eval/prepare/index.js';
import { parseTestFile } from '../../lib/eval/formats.js';

const FIX = fileURLToPath(new URL('../fixtures/eval/', import.meta.url));

async function readEntries(p: string) {
  return parseTestFile(JSON.parse(await readFile(p, 'utf8')), p);
}

t.test('VQA-RAD (MEVF data_RAD): full test split counts and quirks', async (t) => {
  const out = join(t.testdir(), 'rad');
  const progress: string[] = [];
  const r = await prepareDataset({ dataset: 'vqa-rad', src: join(FIX, 'vqa-rad/data_RAD'), out, onProgress: (p) => progress.push(p.phase) });
  // The published MEVF test split: 451 = 179 OPEN + 272 CLOSED on 203 images (LLaVA-Med notebook cell 0).
  t.same(r.splits.test, { total: 451, open: 179, closed: 272, images: 203 });
  t.equal(r.splits.train!.total, 36);
  t.same(progress.at(0), 'read');
  t.same(progress.at(-1), 'done');
  const test = await readEntries(join(out, 'test.json'));
  // First record of testset.json: qid 11, kept as id (numeric and unique).
  t.same(test[0], {
    id: 11,
    image: 'synpic42202.jpg',
    answer_type: 'CLOSED',
    question_type: 'PRES',
    conversations: [
      { from: 'human', value: 'Is there evidence of an aortic aneurysm?\n<image>' },
      { from: 'gpt', value: 'yes' },
    ],
  });
  const train = await readEntries(join(out, 'train.json'));
  // trainset has answer_type "CLOSED " (trailing space) and integer answers: trimmed / stringified.
  t.ok(train.every((e) => e.answer_type === 'OPEN' || e.answer_type === 'CLOSED'));
  const gallstones = train.find((e) => e.id === 2392)!;
  t.equal(gallstones.conversations![1]!.value, '4');
  // Images: the whole folder is mirrored.
  t.equal((await readdir(join(out, 'images'))).length, 207);
  t.equal(r.imagesCopied, 207);
  // The output folder is not overwritten.
  await t.rejects(prepareDataset({ dataset: 'vqa-rad', src: join(FIX, 'vqa-rad/data_RAD'), out }), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('VQA-RAD: malformed record and missing image are refused, nothing written', async (t) => {
  const dir = t.testdir();
  const src = join(dir, 'src');
  await cp(join(FIX, 'vqa-rad/data_RAD'), src, { recursive: true });
  const test = JSON.parse(await readFile(join(src, 'testset.json'), 'utf8'));
  const bad = structuredClone(test);
  bad[5].answer_type = 'MAYBE';
  await writeFile(join(src, 'testset.json'), JSON.stringify(bad));
  const out = join(dir, 'out');
  await t.rejects(prepareDataset({ dataset: 'vqa-rad', src, out }), { code: 'ERR_DATASET', message: new RegExp(`qid ${test[5].qid}.*"MAYBE"`) });
  delete bad[5].answer_type;
  bad[5].answer_type = 'OPEN';
  bad[7].image_name = 'nope.jpg';
  await writeFile(join(src, 'testset.json'), JSON.stringify(bad));
  await t.rejects(prepareDataset({ dataset: 'vqa-rad', src, out }), { code: 'ERR_DATASET', message: /missing.*nope\.jpg/ });
  delete bad[7].question;
  await writeFile(join(src, 'testset.json'), JSON.stringify(bad));
  await t.rejects(prepareDataset({ dataset: 'vqa-rad', src, out }), { code: 'ERR_DATASET', message: /record 7 .*question/ });
  t.same((await readdir(dir)).sort(), ['src'], 'no output or temp folder left');
});

t.test('VQA-RAD OSF layout: test = phrase_type contains "test"; duplicate qids get assigned ids', async (t) => {
  const dir = t.testdir();
  const src = join(dir, 'osf');
  await mkdir(join(src, 'VQA_RAD Image Folder'), { recursive: true });
  await cp(join(FIX, 'vqa-rad/data_RAD/images/synpic42202.jpg'), join(src, 'VQA_RAD Image Folder/synpic42202.jpg'));
  const rec = (qid: number, phrase: string, answer: string | number, at: string) => ({
    qid, phrase_type: phrase, qid_linked_id: `x${qid}`, image_case_url: 'u', image_name: 'synpic42202.jpg', image_organ: 'CHEST',
    evaluation: 'given', question: `Q${qid}?`, question_rephrase: 'NULL', question_relation: 'NULL', question_frame: 'NULL',
    question_type: 'PRES', answer, answer_type: at,
  });
  await writeFile(join(src, 'VQA_RAD Dataset Public.json'), JSON.stringify([
    rec(1, 'freeform', 'yes', 'CLOSED'), rec(2, 'test_freeform', 'no', 'CLOSED'), rec(3, 'para', 3, 'OPEN'),
    rec(4, 'test_para', 'left', 'OPEN '), rec(4, 'test_para', 'right', 'OPEN'),
  ]));
  const r = await prepareDataset({ dataset: 'vqa-rad', src, out: join(dir, 'out') });
  t.same(r.splits.test, { total: 3, open: 2, closed: 1, images: 1 });
  t.same(r.splits.train, { total: 2, open: 1, closed: 1, images: 1 });
  const test = await readEntries(join(dir, 'out/test.json'));
  t.same(test.map((e) => e.id), [0, 1, 2], 'qid 4 appears twice in test → ids assigned');
  const train = await readEntries(join(dir, 'out/train.json'));
  t.same(train.map((e) => e.id), [1, 3], 'train qids unique → kept');
  t.equal(train[1]!.conversations![1]!.value, '3');
});

t.test('SLAKE: English test split counts (1061 = 645 OPEN + 416 CLOSED)', async (t) => {
  const out = join(t.testdir(), 'slake');
  const r = await prepareDataset({ dataset: 'slake', src: join(FIX, 'slake/Slake1.0'), out, images: false });
  t.same(r.splits.test, { total: 1061, open: 645, closed: 416, images: 96 });
  t.same(Object.keys(r.splits).sort(), ['test', 'train', 'val']);
  t.equal(r.splits.train!.total, 20, 'only the 20 English records of the 30 in the subset');
  const test = await readEntries(join(out, 'test.json'));
  t.same(test[0], {
    id: 11934,
    image: 'xmlab102/source.jpg',
    answer_type: 'OPEN',
    question_type: 'Modality',
    conversations: [
      { from: 'human', value: 'What modality is used to take this image?\n<image>' },
      { from: 'gpt', value: 'CT' },
    ],
  });
});

t.test('SLAKE with (stand-in) images: folder mirrored, missing images refused', async (t) => {
  const dir = t.testdir();
  const src = join(dir, 'Slake1.0');
  await cp(join(FIX, 'slake/Slake1.0'), src, { recursive: true });
  // Keep a small test file so only a few stand-in images are needed.
  const all = JSON.parse(await readFile(join(src, 'test.json'), 'utf8')) as { img_name: string }[];
  await writeFile(join(src, 'test.json'), JSON.stringify(all.slice(0, 30)));
  const names = new Set<string>();
  for (const f of ['train.json', 'validate.json', 'test.json']) {
    for (const rec of JSON.parse(await readFile(join(src, f), 'utf8')) as { img_name: string }[]) names.add(rec.img_name);
  }
  const missingOne = [...names][0]!;
  for (const n of names) {
    if (n === missingOne) continue;
    await mkdir(join(src, 'imgs', n, '..'), { recursive: true });
    await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 10, g: 20, b: 30 } } }).jpeg().toFile(join(src, 'imgs', n));
  }
  await t.rejects(prepareDataset({ dataset: 'slake', src, out: join(dir, 'o1') }), { code: 'ERR_DATASET', message: new RegExp(missingOne.replace('.', '\\.')) });
  await mkdir(join(src, 'imgs', missingOne, '..'), { recursive: true });
  await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 1, g: 2, b: 3 } } }).jpeg().toFile(join(src, 'imgs', missingOne));
  const r = await prepareDataset({ dataset: 'slake', src, out: join(dir, 'o2') });
  t.equal(r.imagesCopied, names.size);
  t.equal(r.splits.test!.total, 30 - all.slice(0, 30).filter((x) => (x as unknown as { q_lang: string }).q_lang !== 'en').length);
});

t.test('PathVQA via an injected unpickler: answer types, question types, image paths', async (t) => {
  const dir = t.testdir();
  const src = join(dir, 'pvqa');
  const recs: Record<string, unknown[]> = {
    train: [{ image: 'train_0001', question: 'Is this benign?', answer: 'yes' }],
    val: [{ image: 'val_0001', question: 'What is present?', answer: 'fibrosis' }],
    test: [
      { image: 'test_0648', question: 'Where is this?', answer: 'urinary' },
      { image: 'test_0648', question: 'Does this show necrosis?', answer: 'No' },
    ],
  };
  for (const s of ['train', 'val', 'test']) {
    await mkdir(join(src, 'qas', s), { recursive: true });
    await writeFile(join(src, 'qas', s, `${s}_qa.pkl`), s); // content is handed to the fake unpickler
    await mkdir(join(src, 'images', s), { recursive: true });
  }
  for (const n of ['train/train_0001.jpg', 'val/val_0001.jpg', 'test/test_0648.jpg']) await writeFile(join(src, 'images', n), 'x');
  const unpickle = (b: Uint8Array) => recs[Buffer.from(b).toString()];
  const r = await prepareDataset({ dataset: 'pathvqa', src, out: join(dir, 'out'), unpickle });
  t.same(r.splits.test, { total: 2, open: 1, closed: 1, images: 1 });
  const test = await readEntries(join(dir, 'out/test.json'));
  t.same(test.map((e) => [e.id, e.image, e.answer_type, e.question_type]), [
    [0, 'test/test_0648.jpg', 'OPEN', 'where'],
    [1, 'test/test_0648.jpg', 'CLOSED', 'does'],
  ]);
  recs.test = [{ image: 'test_0648', answer: 'x' }];
  await t.rejects(prepareDataset({ dataset: 'pathvqa', src, out: join(dir, 'out2'), unpickle }), { code: 'ERR_DATASET', message: /test_qa\.pkl record 0.*question/ });
});
