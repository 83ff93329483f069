// End-to-end `llava-med eval` through the CLI (dist/cli/main.js), on a VQA-RAD subset built from
// the real records in test/fixtures/eval and a tiny random-weight LLaVA-Med v0 model built with our
// converter: prepare → answer in 2 chunks (one killed with SIGKILL, one interrupted with SIGINT,
// both resumed) → merge → score (Markdown + --json) → report (rendered by headless Chromium).
// The model's answers are noise; what is checked is the pipeline: file formats, order, resume,
// determinism at temperature 0, and that the CLI's numbers are the library's.
import t, { type Test } from 'tap';
import { execFile, spawn } from 'node:child_process';
import { chmod, cp, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { writeSyntheticV0 } from '../../lib/demo/synthetic-v0.js';
import { convertV0 } from '../../lib/convert/index.js';
import { evaluate, scoreItems } from '../../lib/eval/metrics/evaluate.js';
import { answerPrompt, parseTestFile, SHORTUUID_ALPHABET, testEntryAnswer, testEntryQuestion, type AnswerLine, type TestEntry } from '../../lib/eval/formats.js';
import { formatScoreTable, scoreJson } from '../../lib/eval/score-table.js';
import { pyFixed } from '../../lib/eval/metrics/pystr.js';
import { splitChunks } from '../../lib/eval/chunks.js';
import { modelIdentity, recordedModel, type RecordedModel } from '../../lib/eval/model-identity.js';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/cli/main.js');
const FIX = fileURLToPath(new URL('../fixtures/eval/', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const MAX_TOKENS = '64';

interface RawQ { qid: number; image_name: string; answer_type: string; question: string; answer: string | number }

/** Newest mtime of the .ts files under a folder. */
async function newestTs(dir: string): Promise<number> {
  let newest = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, await newestTs(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, (await stat(p)).mtimeMs);
  }
  return newest;
}

/** Compiles lib/ to dist/ when dist/cli/main.js is missing or older than a source file. */
async function ensureDist(): Promise<void> {
  const built = await stat(CLI).then((s) => s.mtimeMs, () => 0);
  if (built >= (await newestTs(join(ROOT, 'lib')))) return;
  await exec(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json')], { cwd: ROOT, timeout: 300_000 });
}

async function cli(args: string[], env?: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  return exec(process.execPath, [CLI, ...args], { maxBuffer: 64 * 1024 * 1024, timeout: 300_000, env: env && { ...process.env, ...env } });
}

/** Runs the CLI expecting it to fail; returns its exit code and stderr. */
async function cliFails(args: string[], env?: Record<string, string>): Promise<{ code: number; stderr: string }> {
  try {
    await cli(args, env);
  } catch (e) {
    const err = e as { code?: number; stderr?: string };
    return { code: err.code ?? -1, stderr: err.stderr ?? '' };
  }
  throw new Error(`llava-med ${args.slice(0, 2).join(' ')} succeeded but should have failed`);
}

/** Starts the CLI; when the answers file first holds a whole line, sends `sig`. Resolves when it exits. */
function interruptAfterFirstLine(args: string[], answers: string, sig: NodeJS.Signals) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  let sent = false;
  const poll = setInterval(() => {
    readFile(answers, 'utf8').then(
      (s) => {
        if (!sent && s.includes('\n')) {
          sent = true;
          child.kill(sig);
        }
      },
      () => undefined,
    );
  }, 3);
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; sent: boolean }>((resolve) => {
    child.on('exit', (code, signal) => {
      clearInterval(poll);
      resolve({ code, signal, stderr, sent });
    });
  });
}

const ANSWER_KEYS = ['question_id', 'prompt', 'text', 'answer_id', 'model_id', 'metadata'];
const SHORTUUID_RE = new RegExp(`^[${SHORTUUID_ALPHABET}]{22}$`);

/** Parses an answers jsonl strictly: every line whole, keys and format exactly as model_vqa_med.py writes them. */
function checkAnswersFile(t: Test, text: string, byId: Map<number | string, TestEntry>, modelId: string, recorded: RecordedModel = recordedA): AnswerLine[] {
  t.ok(text === '' || text.endsWith('\n'), 'the file ends with a whole line');
  const rows = text.split('\n').slice(0, -1);
  return rows.map((row) => {
    const obj = JSON.parse(row) as AnswerLine;
    t.same(Object.keys(obj), ANSWER_KEYS, 'keys in the original order');
    const e = byId.get(obj.question_id)!;
    t.ok(e, `question_id ${obj.question_id} is a test id`);
    t.equal(typeof obj.question_id, 'number', 'VQA-RAD ids stay numbers');
    const q = testEntryQuestion(e);
    t.equal(obj.prompt, q.split('<image>').join('').trim() + '\n<image>');
    t.equal(obj.prompt, answerPrompt(e));
    t.type(obj.text, 'string');
    t.match(obj.answer_id, SHORTUUID_RE, 'answer_id is a 22-char shortuuid');
    t.equal(obj.model_id, modelId);
    t.same(obj.metadata, { model: recorded }, 'metadata.model: the fingerprints of the model files that answered');
    t.equal(JSON.stringify(obj), row, 'the line is compact JSON');
    return obj;
  });
}

const dir = t.testdir();
const paths = {
  src: join(dir, 'src/data_RAD'),
  data: join(dir, 'rad'),
  model: join(dir, 'model/tiny.gguf'),
  mmproj: join(dir, 'model/mmproj-tiny.gguf'),
};
let selected: RawQ[] = [];
/** A second tiny model: the same keys and shapes, other weights (seed). */
const other = { model: join(dir, 'model-b/tiny.gguf'), mmproj: join(dir, 'model-b/mmproj-tiny.gguf') };
let recordedA: RecordedModel;
let recordedB: RecordedModel;

t.before(async () => {
  await ensureDist();
  // Tiny v0 model from random weights, through our converter. CLIP at 28 px (4 image tokens).
  const dims = {
    hidden: 64, layers: 2, heads: 4, intermediate: 128, vocab: 512,
    clipHidden: 32, clipLayers: 2, clipHeads: 4, clipIntermediate: 64, imageSize: 28, patchSize: 14,
  };
  const hf = await writeSyntheticV0(join(dir, 'hf'), dims);
  const conv = await convertV0({ ...hf, out: dirname(paths.model), name: 'tiny', outtype: 'f16' });
  t.equal(conv.model, paths.model);
  t.equal(conv.mmproj, paths.mmproj);
  const hfB = await writeSyntheticV0(join(dir, 'hf-b'), dims, { seed: 4321 });
  await convertV0({ ...hfB, out: dirname(other.model), name: 'tiny', outtype: 'f16' });
  recordedA = recordedModel(await modelIdentity(paths));
  recordedB = recordedModel(await modelIdentity(other));

  // A VQA-RAD (MEVF layout) subset: the first 5 images with both OPEN and CLOSED questions, at most
  // 3 questions each, 12 questions in testset.json order (so images interleave).
  const all = JSON.parse(await readFile(join(FIX, 'vqa-rad/data_RAD/testset.json'), 'utf8')) as RawQ[];
  const byImage = new Map<string, RawQ[]>();
  for (const q of all) byImage.set(q.image_name, [...(byImage.get(q.image_name) ?? []), q]);
  const images = [...byImage.entries()]
    .filter(([, qs]) => qs.length >= 2 && qs.some((q) => q.answer_type === 'OPEN') && qs.some((q) => q.answer_type === 'CLOSED'))
    .slice(0, 5)
    .map(([name]) => name);
  const perImage = new Map<string, number>();
  for (const q of all) {
    if (selected.length === 12) break;
    if (!images.includes(q.image_name) || (perImage.get(q.image_name) ?? 0) >= 3) continue;
    perImage.set(q.image_name, (perImage.get(q.image_name) ?? 0) + 1);
    selected.push(q);
  }
  await mkdir(join(paths.src, 'images'), { recursive: true });
  await writeFile(join(paths.src, 'testset.json'), JSON.stringify(selected));
  await writeFile(join(paths.src, 'trainset.json'), '[]');
  for (const img of images) await cp(join(FIX, 'vqa-rad/data_RAD/images', img), join(paths.src, 'images', img));
});

let gt: TestEntry[] = [];
let byId = new Map<number | string, TestEntry>();
const chunkFiles = [join(dir, 'answers-0.jsonl'), join(dir, 'answers-1.jsonl')];
const merged = join(dir, 'merged.jsonl');
let reference: AnswerLine[] = [];

const answerArgs = (file: string, extra: string[] = []) => [
  'eval', 'answer', '-m', paths.model, '-p', paths.mmproj, '-t', '1',
  '--question-file', join(paths.data, 'test.json'), '--image-folder', join(paths.data, 'images'), '--answers-file', file,
  '--temperature', '0', '--max-tokens', MAX_TOKENS, ...extra,
];

t.test('prepare: 12 VQA-RAD questions on 5 images', async (t) => {
  t.equal(selected.length, 12);
  t.equal(new Set(selected.map((q) => q.image_name)).size, 5);
  const { stdout } = await cli(['eval', 'prepare', '--dataset', 'vqa-rad', '--src', paths.src, '--out', paths.data]);
  const r = JSON.parse(stdout) as { splits: { test: { total: number; open: number; closed: number; images: number } } };
  const open = selected.filter((q) => q.answer_type === 'OPEN').length;
  t.same(r.splits.test, { total: 12, open, closed: 12 - open, images: 5 });
  gt = parseTestFile(JSON.parse(await readFile(join(paths.data, 'test.json'), 'utf8')));
  t.same(gt.map((e) => e.id), selected.map((q) => q.qid), 'test.json keeps testset.json order');
  t.same(gt.map((e) => e.image), selected.map((q) => q.image_name));
  t.same(gt.map(testEntryAnswer), selected.map((q) => String(q.answer)));
  byId = new Map(gt.map((e) => [e.id, e]));
  t.same((await readdir(join(paths.data, 'images'))).sort(), [...new Set(selected.map((q) => q.image_name))].sort());
});

t.test('answer: one uninterrupted reference run', async (t) => {
  const file = join(dir, 'reference.jsonl');
  const { stderr } = await cli(answerArgs(file));
  t.match(stderr, /answered 12 \(skipped 0 already answered\).*, 5 images encoded/);
  reference = checkAnswersFile(t, await readFile(file, 'utf8'), byId, paths.model);
  t.same(reference.map((l) => l.question_id), gt.map((e) => e.id), 'lines in test.json order');
  t.equal(new Set(reference.map((l) => l.answer_id)).size, 12, 'answer ids are unique');
  t.ok(reference.every((l) => l.text.length > 0), 'the random model says something for each question');
});

t.test('answer chunk 0: killed (SIGKILL) after its first line, then resumed', async (t) => {
  const file = chunkFiles[0]!;
  const chunk = splitChunks(gt, 2, 0);
  t.equal(chunk.length, 6);
  const args = answerArgs(file, ['--num-chunks', '2', '--chunk-idx', '0']);
  const r = await interruptAfterFirstLine(args, file, 'SIGKILL');
  t.ok(r.sent, 'a line appeared and the process was killed');
  t.equal(r.signal, 'SIGKILL');
  const before = await readFile(file, 'utf8');
  // A kill can land mid-write: only the whole lines count (resume cuts a torn tail).
  const whole = before.slice(0, before.lastIndexOf('\n') + 1);
  const done = checkAnswersFile(t, whole, byId, paths.model);
  t.ok(done.length >= 1 && done.length < chunk.length, `killed part-way (${done.length} of ${chunk.length} lines written)`);
  t.same(done.map((l) => l.question_id), chunk.slice(0, done.length).map((e) => e.id), 'the lines written are the first of the chunk');

  const { stderr } = await cli(args);
  t.match(stderr, new RegExp(`answered ${chunk.length - done.length} \\(skipped ${done.length} already answered\\)`));
  const after = await readFile(file, 'utf8');
  t.ok(after.startsWith(whole), 'the lines written before the kill are kept byte for byte');
  const lines = checkAnswersFile(t, after, byId, paths.model);
  t.same(lines.map((l) => l.question_id), chunk.map((e) => e.id), "exactly the chunk's ids, in order, once each");
  t.same(lines.map((l) => l.text), reference.slice(0, 6).map((l) => l.text), 'greedy answers equal the uninterrupted run');

  // A third run has nothing left to do and leaves the file alone.
  const again = await cli(args);
  t.match(again.stderr, /answered 0 \(skipped 6 already answered\)/);
  t.equal(await readFile(file, 'utf8'), after);
});

t.test('answer chunk 1: interrupted (SIGINT → abort) after its first line, then resumed', async (t) => {
  const file = chunkFiles[1]!;
  const chunk = splitChunks(gt, 2, 1);
  const args = answerArgs(file, ['--num-chunks', '2', '--chunk-idx', '1']);
  const r = await interruptAfterFirstLine(args, file, 'SIGINT');
  t.ok(r.sent);
  t.equal(r.code, 130, 'an interrupted run exits with 130');
  t.match(r.stderr, /ERR_ABORTED/);
  const before = await readFile(file, 'utf8');
  const done = checkAnswersFile(t, before, byId, paths.model); // an abort leaves only whole lines
  t.ok(done.length >= 1 && done.length < chunk.length, `interrupted part-way (${done.length} of ${chunk.length})`);

  const { stderr } = await cli(args);
  t.match(stderr, new RegExp(`answered ${chunk.length - done.length} \\(skipped ${done.length} already answered\\)`));
  const after = await readFile(file, 'utf8');
  t.ok(after.startsWith(before));
  const lines = checkAnswersFile(t, after, byId, paths.model);
  t.same(lines.map((l) => l.question_id), chunk.map((e) => e.id));
  t.same(lines.map((l) => l.text), reference.slice(6).map((l) => l.text));
});

t.test('answer: a Slurm array task (--array=1-2) answers the chunk --chunk-idx names, and says so', async (t) => {
  const file = join(dir, 'slurm-task-2.jsonl');
  const slurm = { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '2', SLURM_ARRAY_TASK_COUNT: '2', SLURM_ARRAY_TASK_STEP: '1' };
  const { stderr } = await cli(answerArgs(file), slurm);
  t.match(stderr, /answering chunk 1 of 2 \(0-based\), from SLURM_ARRAY_TASK_ID=2 - SLURM_ARRAY_TASK_MIN=1, SLURM_ARRAY_TASK_COUNT=2\n/);
  const lines = checkAnswersFile(t, await readFile(file, 'utf8'), byId, paths.model);
  t.same(lines.map((l) => l.question_id), splitChunks(gt, 2, 1).map((e) => e.id), 'the ids of --num-chunks 2 --chunk-idx 1');
  t.same(lines.map((l) => l.text), reference.slice(6).map((l) => l.text));
  // Two index variables at once: refused before the model is loaded, nothing written.
  const r = await cliFails(answerArgs(join(dir, 'ambiguous.jsonl')), { ...slurm, LLAVA_MED_CHUNK_IDX: '0' });
  t.equal(r.code, 1);
  t.match(r.stderr, /ERR_INVALID_ARGUMENT: Ambiguous chunk: SLURM_ARRAY_TASK_ID=2 and LLAVA_MED_CHUNK_IDX=0 are all set/);
  await t.rejects(stat(join(dir, 'ambiguous.jsonl')), { code: 'ENOENT' });
});

t.test('answer: a chunk index that does not exist is refused', async (t) => {
  const r = await cliFails(answerArgs(join(dir, 'nope.jsonl'), ['--num-chunks', '2', '--chunk-idx', '2']));
  t.equal(r.code, 1);
  t.match(r.stderr, /ERR_INVALID_ARGUMENT: chunkIdx 2 does not exist/);
});

t.test('merge: chunk files joined in test.json order', async (t) => {
  // Given in reverse order on purpose: the output order comes from test.json.
  const { stdout } = await cli(['eval', 'merge', '--question-file', join(paths.data, 'test.json'), '--out', merged, chunkFiles[1]!, chunkFiles[0]!]);
  t.equal(stdout, `${merged}: 12 lines\n`);
  const text = await readFile(merged, 'utf8');
  const lines = checkAnswersFile(t, text, byId, paths.model);
  t.same(lines.map((l) => l.question_id), gt.map((e) => e.id));
  const chunks = (await Promise.all(chunkFiles.map((f) => readFile(f, 'utf8')))).join('');
  t.equal(text, chunks, 'each line is the chunk line, unchanged (chunks are consecutive slices)');
  // A missing chunk is refused and nothing is written.
  const out2 = join(dir, 'merged-missing.jsonl');
  t.match((await cliFails(['eval', 'merge', '--question-file', join(paths.data, 'test.json'), '--out', out2, chunkFiles[0]!])).stderr, /ERR_EVAL: .*lack answers for 6 test id/);
  await t.rejects(stat(out2), { code: 'ENOENT' });
});

t.test('merge: a part answered by another model (same keys and model_id, other weights) is refused, naming the parts', async (t) => {
  t.not(recordedA.fingerprint.model, recordedB.fingerprint.model, 'the two models have other fingerprints');
  t.not(recordedA.fingerprint.mmproj, recordedB.fingerprint.mmproj);
  // Chunk 1 again, by model B, under model A's model_id: only the recorded fingerprints tell them apart.
  const partB = join(dir, 'answers-1-b.jsonl');
  await cli(['eval', 'answer', '-m', other.model, '-p', other.mmproj, '-t', '1', '--model-id', paths.model,
    '--question-file', join(paths.data, 'test.json'), '--image-folder', join(paths.data, 'images'), '--answers-file', partB,
    '--temperature', '0', '--max-tokens', MAX_TOKENS, '--num-chunks', '2', '--chunk-idx', '1']);
  const linesB = checkAnswersFile(t, await readFile(partB, 'utf8'), byId, paths.model, recordedB);
  t.same(linesB.map((l) => l.question_id), splitChunks(gt, 2, 1).map((e) => e.id));
  const out = join(dir, 'merged-two-models.jsonl');
  const r = await cliFails(['eval', 'merge', '--question-file', join(paths.data, 'test.json'), '--out', out, chunkFiles[0]!, partB]);
  t.equal(r.code, 1);
  const fp = (m: RecordedModel) => `model fingerprint ${m.fingerprint.model.slice(0, 12)}…, mmproj fingerprint ${m.fingerprint.mmproj.slice(0, 12)}…`;
  t.match(r.stderr, 'ERR_EVAL: Cannot merge: the parts were answered by different models');
  t.match(r.stderr, `${fp(recordedA)} in ${chunkFiles[0]!} (6 lines); `, "model A's part, named");
  t.match(r.stderr, `${fp(recordedB)} in ${partB} (6 lines)`, "model B's part, named");
  await t.rejects(stat(out), { code: 'ENOENT' }, 'nothing written');
  // Resuming a file with another model is refused too, and leaves the file as it was.
  const before = await readFile(chunkFiles[0]!, 'utf8');
  const resumed = await cliFails(['eval', 'answer', '-m', other.model, '-p', other.mmproj, '-t', '1', '--model-id', paths.model,
    '--question-file', join(paths.data, 'test.json'), '--image-folder', join(paths.data, 'images'), '--answers-file', chunkFiles[0]!,
    '--temperature', '0', '--max-tokens', MAX_TOKENS]);
  t.match(resumed.stderr, /ERR_EVAL: .*answers-0\.jsonl already holds 6 answer\(s\) from another model/);
  t.equal(await readFile(chunkFiles[0]!, 'utf8'), before);
});

t.test('docs/cluster/eval-array.sbatch: both tasks of --array=1-2, run as Slurm would, then merged', async (t) => {
  // `llava-med` on PATH is this checkout's CLI; Slurm's part is the environment each task gets.
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, 'llava-med'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
  await chmod(join(bin, 'llava-med'), 0o755);
  const script = fileURLToPath(new URL('../../docs/cluster/eval-array.sbatch', import.meta.url));
  const out = join(dir, 'slurm-answers');
  const parts: string[] = [];
  for (const id of [1, 2]) {
    const env = {
      ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`,
      MODEL: paths.model, MMPROJ: paths.mmproj, DATA: paths.data, OUT: out, EXTRA_FLAGS: `--temperature 0 --max-tokens ${MAX_TOKENS}`,
      SLURM_ARRAY_JOB_ID: '77', SLURM_ARRAY_TASK_ID: String(id), SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '2', SLURM_ARRAY_TASK_COUNT: '2', SLURM_ARRAY_TASK_STEP: '1', SLURM_CPUS_PER_TASK: '1',
    };
    const { stderr } = await exec('bash', [script], { env, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });
    t.match(stderr, new RegExp(`answering chunk ${id - 1} of 2 \\(0-based\\), from SLURM_ARRAY_TASK_ID=${id} - SLURM_ARRAY_TASK_MIN=1, SLURM_ARRAY_TASK_COUNT=2`));
    parts.push(join(out, `chunk-${id}.jsonl`));
    t.same((await readPred(parts.at(-1)!)).map((l) => l.question_id), splitChunks(gt, 2, id - 1).map((e) => e.id), `task ${id}: chunk ${id - 1}`);
  }
  const mergedSlurm = join(dir, 'merged-slurm.jsonl');
  await cli(['eval', 'merge', '--question-file', join(paths.data, 'test.json'), '--out', mergedSlurm, ...parts]);
  const lines = await readPred(mergedSlurm);
  t.same(lines.map((l) => l.question_id), reference.map((l) => l.question_id));
  t.same(lines.map((l) => l.text), reference.map((l) => l.text), 'the same answers as one uninterrupted run');
  // A task submitted without --array is refused by the script itself.
  const noArray = await exec('bash', [script], { env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, MODEL: 'm', MMPROJ: 'p', DATA: 'd', SLURM_ARRAY_TASK_ID: '' } }).catch((e: { code: number; stderr: string }) => e);
  t.match(noArray, { code: 1, stderr: /submit this script with sbatch --array/ });
});

async function readPred(file: string): Promise<AnswerLine[]> {
  return (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnswerLine);
}

t.test('score: Markdown and --json equal the library evaluate() on the same files', async (t) => {
  // The model's answers, and a copy where every other answer is the reference (non-trivial numbers).
  const doctored = join(dir, 'doctored.jsonl');
  const pred = await readPred(merged);
  await writeFile(doctored, pred.map((l, i) => JSON.stringify(i % 2 ? l : { ...l, text: testEntryAnswer(gt[i]!) }) + '\n').join(''));
  for (const file of [merged, doctored]) {
    const p = await readPred(file);
    const result = evaluate(gt, p);
    const run = { model: basename(file), results: { 'vqa-rad': result } };
    const json = await cli(['eval', 'score', '--gt', join(paths.data, 'test.json'), '--pred', file, '--json']);
    t.same(JSON.parse(json.stdout), JSON.parse(JSON.stringify(scoreJson(run))), `${basename(file)}: --json`);
    const md = await cli(['eval', 'score', '--gt', join(paths.data, 'test.json'), '--pred', file]);
    t.equal(md.stdout, formatScoreTable(run) + '\n', `${basename(file)}: Markdown`);
    const row = md.stdout.split('\n').find((l) => l.startsWith(`| ${basename(file)} |`))!;
    const cells = row.split('|').map((c) => c.trim());
    t.equal(cells[2], pyFixed(result.overall.recall! * 100, 2), 'VQA-RAD open = recall × 100');
    t.equal(cells[3], pyFixed(result.overall.closedAccuracy * 100, 2), 'VQA-RAD closed = accuracy × 100');
    t.same(cells.slice(4, 8), ['–', '–', '–', '–'], 'no SLAKE / PathVQA');
    if (file === doctored) {
      // Half of each kind answered with the reference: both numbers are at least that share.
      const closed = gt.map((e, i) => ({ e, i })).filter(({ e }) => e.answer_type === 'CLOSED');
      const closedRight = closed.filter(({ i }) => i % 2 === 0).length;
      t.ok(result.overall.closedAccuracy >= closedRight / closed.length);
      t.ok(result.overall.closedAccuracy > 0 && result.overall.recall! > 0);
    }
  }
  // Answers out of test.json order are refused (the original asserts the ids match).
  const shuffled = join(dir, 'shuffled.jsonl');
  await writeFile(shuffled, [...pred.slice(1), pred[0]].map((l) => JSON.stringify(l) + '\n').join(''));
  t.match((await cliFails(['eval', 'score', '--gt', join(paths.data, 'test.json'), '--pred', shuffled])).stderr, /ERR_EVAL: .*test\.json order/);
});

t.test('report: HTML with the score table and one card per wrong answer, rendered by Chromium', async (t) => {
  const out = join(dir, 'report.html');
  const doctored = join(dir, 'doctored.jsonl');
  for (const file of [merged, doctored]) {
    const { stdout } = await cli(['eval', 'report', '--gt', join(paths.data, 'test.json'), '--pred', file, '--images', join(paths.data, 'images'), '--out', out]);
    const r = JSON.parse(stdout) as { wrong: number; shown: number; bytes: number; result: unknown };
    const pred = await readPred(file);
    const items = scoreItems(gt, pred);
    const wrongIds = gt.filter((_, i) => (items[i]!.closed && items[i]!.closed!.hit === 0) || (items[i]!.open && items[i]!.open!.recall < 1)).map((e) => e.id);
    t.equal(r.wrong, wrongIds.length);
    t.equal(r.shown, wrongIds.length);
    t.same(r.result, JSON.parse(JSON.stringify(evaluate(gt, pred))));
    const html = await readFile(out, 'utf8');
    t.equal(Buffer.byteLength(html), r.bytes);
    t.match(html, /<table id="scores">/);
    const cells = [...html.matchAll(/<td class="metric">([^<]*)<\/td>/g)].map((m) => m[1]);
    const o = evaluate(gt, pred).overall;
    t.equal(cells[0], pyFixed(o.recall! * 100, 2));
    t.equal(cells[1], pyFixed(o.closedAccuracy * 100, 2));
    t.same([...html.matchAll(/<article class="card" data-id="([^"]*)"/g)].map((m) => m[1]), wrongIds.map(String), 'one card per wrong answer, in order');
    if (file === doctored) t.ok(wrongIds.length < 12, 'the answers copied from the references have no card');
  }
  // The last report (doctored answers) rendered by headless Chromium: table and decoded thumbnails.
  const html = await readFile(out, 'utf8');
  const probe = join(dir, 'probe.html');
  await writeFile(probe, html.replace('</body>', `<script>addEventListener('load',()=>{document.body.dataset.decoded=[...document.images].filter(i=>i.complete&&i.naturalWidth>0).length})</script></body>`));
  const { stdout: dom } = await exec(
    CHROMIUM,
    ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', `--user-data-dir=${join(dir, 'profile')}`, '--virtual-time-budget=5000', '--dump-dom', `file://${probe}`],
    { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
  );
  const cards = (html.match(/<article class="card"/g) ?? []).length;
  t.equal((dom.match(/<article class="card"/g) ?? []).length, cards);
  t.match(dom, new RegExp(`data-decoded="${cards}"`), 'every wrong-answer thumbnail decodes');
  t.equal((dom.match(/<td class="metric">/g) ?? []).length, 13, 'the score table rendered');
});

t.test('answer --parallel 2 through the CLI gives the sequential answers', async (t) => {
  const file = join(dir, 'parallel.jsonl');
  const { stderr } = await cli(answerArgs(file, ['--parallel', '2']));
  t.match(stderr, /answered 12 \(skipped 0 already answered\).*, 5 images encoded/);
  const lines = checkAnswersFile(t, await readFile(file, 'utf8'), byId, paths.model);
  t.same(lines.map((l) => l.question_id), gt.map((e) => e.id));
  t.same(lines.map((l) => l.text), reference.map((l) => l.text));
});
