#!/usr/bin/env node
/**
 * `eval answer` throughput with and without --parallel, on the demo model (random weights, built
 * once by ensureDemoModel with our converter) over VQA-RAD questions from the test fixture.
 *
 *   npm run build && node scripts/eval-throughput.mjs [--parallel 1,4] [--questions 40] [--images 10]
 *       [--max-tokens 32] [--threads N] [--cache DIR] [--no-cli] [--flash-attn on|off|auto]
 *
 * For each --parallel value it runs answerQuestions in-process (LlavaMed loaded with
 * sequences = parallel, as the CLI does) at temperature 0 and a fixed max-tokens, and reports
 * questions/minute and generated tokens/s (runner time, model load excluded). Unless --no-cli,
 * it also runs `llava-med eval answer` itself and reports its wall time (load included). Finally
 * it says whether every run gave the same answers as the first. Numbers depend on the machine
 * and its load: treat them as indicative.
 *
 * --flash-attn is a diagnostic: LlavaMed.load has no such option, so the script wraps the engine's
 * Context.create for its in-process runs (the CLI runs are skipped then, as the CLI cannot set it).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIST = path.join(ROOT, 'dist');
const exec = promisify(execFile);

const { values: args } = parseArgs({
  options: {
    parallel: { type: 'string', default: '1,4' },
    questions: { type: 'string', default: '40' },
    images: { type: 'string', default: '10' },
    'max-tokens': { type: 'string', default: '32' },
    threads: { type: 'string' },
    cache: { type: 'string' },
    'no-cli': { type: 'boolean', default: false },
    'flash-attn': { type: 'string' },
  },
});
const parallels = args.parallel.split(',').map(Number);
const nQuestions = Number(args.questions);
const nImages = Number(args.images);
const maxTokens = Number(args['max-tokens']);
const threads = args.threads ? Number(args.threads) : os.availableParallelism();
for (const [k, v] of [['parallel', Math.min(...parallels)], ['questions', nQuestions], ['images', nImages], ['max-tokens', maxTokens], ['threads', threads]]) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer`);
}

const imp = (p) => import(path.join(DIST, p)).catch((e) => {
  throw new Error(`cannot load dist/${p} (run \`npm run build\` first): ${e.message}`);
});
const { ensureDemoModel, defaultDemoCache } = await imp('demo/index.js');
const { LlavaMed } = await imp('llava-med.js');
const { answerQuestions, prepareDataset, readAnswersFile } = await imp('eval/index.js');
if (args['flash-attn'] !== undefined) {
  if (!['on', 'off', 'auto'].includes(args['flash-attn'])) throw new Error('--flash-attn must be on, off or auto');
  const { Context } = await imp('engine/index.js');
  const create = Context.create.bind(Context);
  Context.create = (model, o) => create(model, { ...o, flashAttn: args['flash-attn'] });
  args['no-cli'] = true;
}

const work = await mkdtemp(path.join(os.tmpdir(), 'llava-med-throughput-'));
try {
  const demo = await ensureDemoModel(args.cache ?? defaultDemoCache(), (m) => process.stderr.write(`demo: ${m}\n`));
  const data = path.join(work, 'rad');
  await prepareDataset({ dataset: 'vqa-rad', src: path.join(ROOT, 'test/fixtures/eval/vqa-rad/data_RAD'), out: data });
  const all = JSON.parse(await readFile(path.join(data, 'test.json'), 'utf8'));
  // The images with the most questions (so images are shared, as in the real sets), their questions in test.json order.
  const count = new Map();
  for (const e of all) count.set(e.image, (count.get(e.image) ?? 0) + 1);
  const chosen = new Set([...count.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, nImages).map(([img]) => img));
  const cap = Math.ceil(nQuestions / nImages);
  const taken = new Map();
  const entries = [];
  for (const e of all) {
    if (entries.length === nQuestions || !chosen.has(e.image) || (taken.get(e.image) ?? 0) >= cap) continue;
    taken.set(e.image, (taken.get(e.image) ?? 0) + 1);
    entries.push(e);
  }
  const questionFile = path.join(work, 'questions.json');
  await writeFile(questionFile, JSON.stringify(entries));
  const images = path.join(data, 'images');
  const distinct = new Set(entries.map((e) => e.image)).size;

  console.log(`demo model: ${demo.model}`);
  console.log(`${entries.length} VQA-RAD questions on ${distinct} images; temperature 0, max-tokens ${maxTokens}, threads ${threads}${args['flash-attn'] ? `, flash attention ${args['flash-attn']}` : ''}; ${os.cpus()[0]?.model ?? 'cpu'} × ${os.availableParallelism()}`);
  console.log('(shared machine: numbers are indicative)\n');

  const results = [];
  for (const parallel of parallels) {
    const answersFile = path.join(work, `answers-p${parallel}.jsonl`);
    const tLoad = performance.now();
    const med = await LlavaMed.load({ model: demo.model, mmproj: demo.mmproj, threads, sequences: parallel });
    const loadMs = performance.now() - tLoad;
    let r;
    try {
      r = await answerQuestions({ med, questionFile, imageFolder: images, answersFile, modelId: 'demo', parallel, generation: { temperature: 0, maxTokens } });
    } finally {
      await med.dispose();
    }
    const texts = (await readAnswersFile(answersFile)).map((l) => l.text);
    let cliMs = null;
    let cliTexts = null;
    if (!args['no-cli']) {
      const cliFile = path.join(work, `cli-p${parallel}.jsonl`);
      const t0 = performance.now();
      await exec(process.execPath, [path.join(DIST, 'cli/main.js'), 'eval', 'answer', '-m', demo.model, '-p', demo.mmproj, '-t', String(threads),
        '--question-file', questionFile, '--image-folder', images, '--answers-file', cliFile, '--parallel', String(parallel),
        '--temperature', '0', '--max-tokens', String(maxTokens)], { maxBuffer: 16 << 20 });
      cliMs = performance.now() - t0;
      cliTexts = (await readAnswersFile(cliFile)).map((l) => l.text);
    }
    results.push({ parallel, loadMs, r, texts, cliMs, cliTexts });
  }

  const base = results[0].texts;
  const diffCount = (texts) => texts.filter((x, i) => x !== base[i]).length;
  const rows = [['--parallel', 'questions/min', 'gen tokens/s', 'gen tokens', 'runner s', 'load s', 'CLI wall s', 'CLI q/min', 'images encoded', `answers ≠ --parallel ${results[0].parallel}`]];
  for (const x of results) {
    const s = x.r.elapsedMs / 1000;
    rows.push([
      String(x.parallel),
      ((x.r.done * 60) / s).toFixed(1),
      (x.r.generatedTokens / s).toFixed(1),
      String(x.r.generatedTokens),
      s.toFixed(2),
      (x.loadMs / 1000).toFixed(2),
      x.cliMs === null ? '–' : (x.cliMs / 1000).toFixed(2),
      x.cliMs === null ? '–' : ((x.r.done * 60000) / x.cliMs).toFixed(1),
      String(x.r.imagesEncoded),
      `${diffCount(x.texts)}${x.cliTexts ? ` (CLI ${diffCount(x.cliTexts)})` : ''} of ${x.texts.length}`,
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const [i, r] of rows.entries()) {
    console.log(`| ${r.map((v, c) => v.padStart(widths[c])).join(' | ')} |`);
    if (i === 0) console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  }
  const identical = results.every((x) => diffCount(x.texts) === 0 && (!x.cliTexts || diffCount(x.cliTexts) === 0));
  console.log(`\nanswers identical across all runs: ${identical ? 'yes' : 'NO'}`);
  if (!identical) {
    for (const x of results.slice(1)) {
      const i = x.texts.findIndex((t, k) => t !== base[k]);
      if (i >= 0) console.log(`  first difference (--parallel ${x.parallel}) at question ${entries[i].id}: ${JSON.stringify(base[i].slice(0, 80))} vs ${JSON.stringify(x.texts[i].slice(0, 80))}`);
    }
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
