import t from 'tap';
import { appendFile, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AnswersFile, mergeChunks, readAnswersFile, readCandidates } from '../../lib/eval/answers-file.js';
import { splitChunks } from '../../lib/eval/chunks.js';
import { answerPrompt, makeAnswerLine, parseTestFile, SHORTUUID_ALPHABET, shortUuid, type TestEntry } from '../../lib/eval/formats.js';

const entries: TestEntry[] = [1, 2, 3, 4, 5].map((id) => ({
  id,
  image: `i${id}.jpg`,
  answer_type: 'OPEN',
  question_type: 'X',
  conversations: [
    { from: 'human', value: `<image>\n What is ${id}? \n<image>` },
    { from: 'gpt', value: `a${id}` },
  ],
}));

t.test('answer line prompt and id', async (t) => {
  // model_vqa_med.py: qs.replace('<image>', '').strip(), then + '\n<image>' because the item has an image.
  t.equal(answerPrompt(entries[0]!), 'What is 1?\n<image>');
  const { image: _drop, ...noImage } = entries[0]!;
  t.equal(answerPrompt(noImage as TestEntry), 'What is 1?');
  const ids = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const u = shortUuid();
    t.equal(u.length, 22);
    t.ok([...u].every((c) => SHORTUUID_ALPHABET.includes(c)));
    ids.add(u);
  }
  t.equal(ids.size, 200);
  const line = makeAnswerLine(entries[2]!, 'out', 'model-x');
  t.same({ ...line, answer_id: '' }, { question_id: 3, prompt: 'What is 3?\n<image>', text: 'out', answer_id: '', model_id: 'model-x', metadata: {} });
});

t.test('test.json parsing names the bad entry', async (t) => {
  t.throws(() => parseTestFile([{ id: 7, answer_type: 'OPEN' }], 'x.json'), { code: 'ERR_EVAL', message: /x.json: entry 0 \(id 7\)/ });
  t.equal(parseTestFile([{ id: 1, answer_type: 'OPEN', conversatons: [{ from: 'human', value: 'q' }, { from: 'gpt', value: 'a' }] }]).length, 1);
});

t.test('AnswersFile: append, resume, torn line, duplicates', async (t) => {
  const dir = t.testdir();
  const p = join(dir, 'answers.jsonl');
  const f = await AnswersFile.open(p);
  t.equal(f.size, 0);
  await f.append(makeAnswerLine(entries[0]!, 'one', 'm'));
  await f.append(makeAnswerLine(entries[1]!, 'two', 'm'));
  await t.rejects(f.append(makeAnswerLine(entries[1]!, 'again', 'm')), { code: 'ERR_EVAL', message: /already answered/ });
  await f.close();
  // Simulate a crash in the middle of writing the third line.
  await appendFile(p, '{"question_id": 3, "prompt": "What');
  const g = await AnswersFile.open(p);
  t.equal(g.truncatedBytes, '{"question_id": 3, "prompt": "What'.length);
  t.equal(g.size, 2);
  t.ok(g.has(1) && g.has(2) && !g.has(3));
  t.notOk(g.has('1'), 'string "1" is a different id from 1');
  await g.append(makeAnswerLine(entries[2]!, 'three', 'm'));
  await g.close();
  const lines = await readAnswersFile(p);
  t.same(lines.map((l) => [l.question_id, l.text]), [[1, 'one'], [2, 'two'], [3, 'three']]);
  // A corrupt line in the middle is not a crash artefact: refuse.
  await writeFile(p, (await readFile(p, 'utf8')).replace('"text": "two"', '"text": two').replace('"text":"two"', '"text":two'));
  await t.rejects(AnswersFile.open(p), { code: 'ERR_EVAL', message: /answers.jsonl:2/ });
  // Concurrent appends of the same id: exactly one wins.
  const q = join(dir, 'b.jsonl');
  const h = await AnswersFile.open(q);
  const results = await Promise.allSettled([h.append(makeAnswerLine(entries[0]!, 'a', 'm')), h.append(makeAnswerLine(entries[0]!, 'b', 'm'))]);
  t.same(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  await h.close();
  t.equal((await readAnswersFile(q)).length, 1);
});

t.test('splitChunks matches split_list/get_chunk', async (t) => {
  const xs = [...Array(10).keys()];
  // ceil(10/4) = 3 → [0,1,2] [3,4,5] [6,7,8] [9]
  t.same(splitChunks(xs, 4, 0), [0, 1, 2]);
  t.same(splitChunks(xs, 4, 3), [9]);
  // ceil(9/4) = 3 → only 3 chunks; index 3 is IndexError in Python.
  t.throws(() => splitChunks(xs.slice(0, 9), 4, 3), { code: 'ERR_INVALID_ARGUMENT', message: /only 3 chunk/ });
  t.same(splitChunks(xs, 1, 0), xs);
  t.throws(() => splitChunks([], 2, 0), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('mergeChunks restores test order and names problems', async (t) => {
  const dir = t.testdir();
  // Answer files as eval answer writes them (AnswersFile + makeAnswerLine).
  const write = async (name: string, ids: number[], model = 'm', metadata?: Record<string, unknown>) => {
    const p = join(dir, name);
    const f = await AnswersFile.open(p);
    for (const id of ids) await f.append(makeAnswerLine(entries[id - 1]!, `t${id}`, model, metadata));
    await f.close();
    return p;
  };
  const a = await write('c0.jsonl', [4, 5]);
  const b = await write('c1.jsonl', [2, 1, 3]);
  const out = join(dir, 'merged.jsonl');
  t.same(await mergeChunks(entries, [a, b], out), { lines: 5, parts: [{ file: a, lines: 2 }, { file: b, lines: 3 }], modelId: 'm' });
  t.same((await readAnswersFile(out)).map((l) => l.question_id), [1, 2, 3, 4, 5]);
  const c = await write('c2.jsonl', [1]);
  const out2 = join(dir, 'bad.jsonl');
  await t.rejects(mergeChunks(entries, [a, b, c], out2), { code: 'ERR_EVAL', message: /Duplicate question ids in the chunk files: 1 \(.*c1\.jsonl:2 and .*c2\.jsonl:1\)/ });
  await t.rejects(mergeChunks(entries, [a], out2), { code: 'ERR_EVAL', message: /lack answers for 3 test id\(s\) \(test.json positions 0–2, 0-based\): 1, 2, 3\b/ });
  await t.rejects(mergeChunks(entries.slice(0, 4), [a, b], out2), { code: 'ERR_EVAL', message: /1 answer\(s\) for ids not in the test file: 5 \(.*c0\.jsonl:2\)/ });
  // Every problem at once, none dropped: a missing part, a duplicate, a foreign id.
  const foreign = join(dir, 'foreign.jsonl');
  await writeFile(foreign, JSON.stringify({ ...makeAnswerLine(entries[1]!, 'x', 'm'), question_id: 99 }) + '\n');
  const e = (await mergeChunks(entries, [b, c, foreign], out2).catch((x: Error) => x)) as Error;
  t.match(e, { code: 'ERR_EVAL' });
  t.match(e.message, /lack answers for 2 test id\(s\) \(test.json positions 3–4, 0-based\): 4, 5;/);
  t.match(e.message, /Duplicate question ids in the chunk files: 1 \(/);
  t.match(e.message, /ids not in the test file: 99 \(.*foreign\.jsonl:1\)/);
  t.match(e.message, /Nothing was written\.$/);
  // Long lists say how many there are in all.
  const many = Array.from({ length: 30 }, (_, i): TestEntry => ({ id: i, image: 'x.png', answer_type: 'OPEN', conversations: [{ from: 'human', value: 'q' }, { from: 'gpt', value: 'a' }] }));
  const one = join(dir, 'one.jsonl');
  await writeFile(one, JSON.stringify(makeAnswerLine(many[7]!, 'x', 'm')) + '\n');
  await t.rejects(mergeChunks(many, [one], out2), { message: /lack answers for 29 test id\(s\) \(test.json positions 0–6, 8–29, 0-based\): 0, 1, .* 20 … \(29 in all\)/ });
  // Parts answered by another model (model_id, or the identity in metadata.model) are refused.
  const other = await write('c1-other.jsonl', [2, 1, 3], 'other-model');
  await t.rejects(mergeChunks(entries, [a, other], out2), {
    code: 'ERR_EVAL',
    message: /different models: model_id "m" in .*c0\.jsonl \(2 lines\); model_id "other-model" in .*c1-other\.jsonl \(3 lines\)/,
  });
  // The fingerprints in metadata.model decide (real answer files from two models: test/eval/e2e.test.ts).
  const rec = (m: string, p: string) => ({ model: { name: 'tiny', fingerprint: { model: m.repeat(64), mmproj: p.repeat(64) } } });
  const x1 = await write('x1.jsonl', [4, 5], 'm', rec('a', 'c'));
  const x2 = await write('x2.jsonl', [1, 2, 3], 'm', rec('a', 'd'));
  await t.rejects(mergeChunks(entries, [x1, x2], out2), {
    code: 'ERR_EVAL',
    message: /different models: model_id "m" with "tiny", model fingerprint a{12}…, mmproj fingerprint c{12}… in .*x1\.jsonl \(2 lines\); model_id "m" with "tiny", model fingerprint a{12}…, mmproj fingerprint d{12}… in .*x2\.jsonl \(3 lines\)/,
  });
  const x3 = await write('x3.jsonl', [1, 2, 3], 'm', rec('a', 'c'));
  t.same(await mergeChunks(entries, [x1, x3], join(dir, 'ok.jsonl')), { lines: 5, parts: [{ file: x1, lines: 2 }, { file: x3, lines: 3 }], modelId: 'm', model: rec('a', 'c').model }, 'same fingerprints merge');
  // A part without a record (the original's metadata {}) cannot be checked against one with a record.
  await t.rejects(mergeChunks(entries, [x1, b], out2), { message: /model_id "m" with no model fingerprint recorded \(written by the original scripts or an older llava-med: it cannot be checked\) in .*c1\.jsonl \(3 lines\)/ });
  // Same fingerprints, other model_ids: refused, with what to do.
  await t.rejects(mergeChunks(entries, [x1, await write('x4.jsonl', [1, 2, 3], 'm-elsewhere', rec('a', 'c'))], out2), { message: /the same model files, by their fingerprints, but other model_ids: answer every part with the same --model-id/ });
  // Nothing partial left behind (no output, no temp files).
  t.notOk((await readdir(dir)).some((n) => n === 'bad.jsonl' || n.endsWith('.tmp')));
  await t.rejects(mergeChunks(entries, [], out2), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('readCandidates: the list under key "0", typed errors otherwise', async (t) => {
  const dir = t.testdir();
  const f = join(dir, 'train_open_answers.json');
  await writeFile(f, JSON.stringify({ 0: ['left lung', 'x ray', 3] }));
  t.same(await readCandidates(f), ['left lung', 'x ray', 3]);
  await writeFile(f, '{"0": ["a",');
  await t.rejects(readCandidates(f), { code: 'ERR_EVAL', message: /is not valid JSON/ });
  await writeFile(f, JSON.stringify({ 1: ['a'] }));
  await t.rejects(readCandidates(f), { code: 'ERR_EVAL', message: /list of answers under key "0"/ });
  await t.rejects(readCandidates(join(dir, 'none.json')), { code: 'ERR_FILE_NOT_FOUND' });
});
