// PathVQA's question files are Python pickles: this reads genuine CPython pickles (protocols 4
// and 2, made by scripts/fixtures/make-pathvqa-fixture.py) through the restricted unpickler.
import t from 'tap';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareDataset } from '../../lib/eval/index.js';

const FIXTURE = new URL('../fixtures/eval/pathvqa/', import.meta.url).pathname;

t.test('PathVQA pickles convert to LLaVA test.json with answer and question types', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pvqa-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const r = await prepareDataset({ dataset: 'pathvqa', src: FIXTURE, out: join(dir, 'out') });
  t.same(r.splits.test, { total: 4, open: 2, closed: 2, images: 2 });
  t.same(r.splits.train, { total: 3, open: 2, closed: 1, images: 2 });
  t.equal(r.splits.val.total, 2, 'the protocol-2 pickle reads too');
  const test = JSON.parse(await readFile(join(dir, 'out', 'test.json'), 'utf8'));
  t.same(test[0].conversations, [
    { from: 'human', value: 'Where is this?\n<image>' },
    { from: 'gpt', value: 'urinary' },
  ]);
  t.equal(test[0].image, 'test/test_0648.jpg');
  t.equal(test[0].question_type, 'where');
  t.equal(test[0].answer_type, 'OPEN');
  t.equal(test[1].answer_type, 'CLOSED');
  await readFile(join(dir, 'out', 'images', 'test', 'test_0648.jpg')); // copied with the split folder
});

t.test('a pickle that would execute code is refused, and nothing is written', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pvqa-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  await cp(FIXTURE, src, { recursive: true });
  // protocol 2: GLOBAL 'os system', the classic pickle exploit
  const evil = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from('cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.', 'latin1')]);
  await writeFile(join(src, 'qas', 'test', 'test_qa.pkl'), evil);
  await t.rejects(prepareDataset({ dataset: 'pathvqa', src, out: join(dir, 'out') }), { code: 'ERR_UNSAFE_PICKLE' });
  await t.rejects(readFile(join(dir, 'out', 'test.json')), { code: 'ENOENT' });
});
