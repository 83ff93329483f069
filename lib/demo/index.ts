/**
 * `llava-med demo`: the embedded default. A toy LLaVA-Med v0 trained here on synthetic images
 * (scripts/demo-model: radiograph-, CT-, histology- and microscopy-like pictures with VQA-RAD/SLAKE-style
 * questions) ships in assets/demo/model as the original was released: a LLaMA-layout base, a delta and a
 * CLIP vision folder. Each run converts it once (cached) with the same delta fold and GGUF writers a user
 * runs on the real release, then asks it the bundled questions and shows the expected answers. It is not
 * a medical model: it only knows its synthetic task.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertV0 } from '../convert/index.js';
import { LlavaMed } from '../llava-med.js';
import { RESEARCH_USE_NOTICE } from '../notice.js';

const ASSETS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'assets');
/** The bundled synthetic chest radiograph (assets/sample-xray.png), for examples. */
export const DEMO_IMAGE = path.join(ASSETS, 'sample-xray.png');
/** A question for {@link DEMO_IMAGE} (the examples ask it; the demo model was not trained on that picture). */
export const DEMO_QUESTION = 'Is there evidence of a pneumothorax in this chest X-ray?';
/** Where the demo model and its synthetic task live (assets/demo). */
export const DEMO_ASSETS = path.join(ASSETS, 'demo');
/** The released checkpoint folders: base (LLaMA layout), delta (LLaVA-Med v0 layout), vision (CLIP). */
export const DEMO_CHECKPOINT = {
  /** The LM before training, original-LLaMA HF layout. */
  base: path.join(DEMO_ASSETS, 'model', 'base'),
  /** The LLaVA-Med v0 delta: two torch .bin shards, config, tokenizer files. */
  delta: path.join(DEMO_ASSETS, 'model', 'delta'),
  /** The CLIP vision tower folder. */
  vision: path.join(DEMO_ASSETS, 'model', 'vision'),
} as const;
/** The synthetic task's test split (LLaVA-Med eval format) and the folder its image paths are relative to. */
export const DEMO_TEST = {
  /** test.json (80 questions on 40 images). */
  questionFile: path.join(DEMO_ASSETS, 'task', 'test.json'),
  /** The folder of its images. */
  imageFolder: path.join(DEMO_ASSETS, 'task', 'images'),
} as const;
/** The PyTorch model's greedy answers on the test split, in the original's answers-file format (recorded at training). */
export const DEMO_REFERENCE_ANSWERS = path.join(DEMO_ASSETS, 'reference', 'answers-pytorch.jsonl');
/** Generation settings of the demo and its accuracy gate: greedy, short answers. */
export const DEMO_GENERATION = {
  /** Greedy. */
  temperature: 0,
  /** As many new tokens as the PyTorch reference generated at most. */
  maxTokens: 12,
} as const;
/**
 * Test-split images the demo asks about: the first of each kind (radiograph, CT, histology, microscopy).
 * Its accuracy over the whole split is what `demo --eval` prints.
 */
const DEMO_IMAGES = ['test-0000.png', 'test-0001.png', 'test-0002.png', 'test-0003.png'];
const DEMO_VERSION = 'demo-v3';

/** Where the demo model is cached: `$XDG_CACHE_HOME/llava-med/<version>`, else `~/.cache/llava-med/<version>`. */
export function defaultDemoCache(): string {
  const base = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  return path.join(base, 'llava-med', DEMO_VERSION);
}

/** The demo model's files, as {@link ensureDemoModel} returns them (pass them to `LlavaMed.load`). */
export interface DemoModel {
  /** Language-model GGUF path. */
  model: string;
  /** Projector GGUF path. */
  mmproj: string;
  /** True when this call built the model, false when it was already cached. */
  built: boolean;
}

/** SHA-256 over the released checkpoint files (names and bytes): the cache is rebuilt when they change. */
async function checkpointDigest(): Promise<string> {
  const h = createHash('sha256');
  for (const dir of Object.values(DEMO_CHECKPOINT)) {
    for (const f of (await fs.readdir(dir)).sort()) {
      h.update(`${path.basename(dir)}/${f}\0`);
      h.update(await fs.readFile(path.join(dir, f)));
    }
  }
  return h.digest('hex');
}

/**
 * Returns the cached demo model, converting the bundled checkpoint first if needed (`convertV0` with base,
 * delta and vision, F16): when the cache is missing or was built from other checkpoint bytes. Atomic: a
 * half-built cache is never used.
 */
export async function ensureDemoModel(cacheDir = defaultDemoCache(), onStep?: (msg: string) => void): Promise<DemoModel> {
  const model = path.join(cacheDir, 'llava-med-demo.gguf');
  const mmproj = path.join(cacheDir, 'mmproj-llava-med-demo.gguf');
  const stamp = path.join(cacheDir, 'checkpoint.sha256');
  const digest = await checkpointDigest();
  const cached = await Promise.all([fs.stat(model), fs.stat(mmproj), fs.readFile(stamp, 'utf8')]).then(([, , s]) => s.trim() === digest, () => false);
  if (cached) return { model, mmproj, built: false };
  await fs.mkdir(path.dirname(cacheDir), { recursive: true });
  const work = await fs.mkdtemp(`${cacheDir}.build-`);
  try {
    onStep?.('folding the delta into the base and converting to GGUF (convert --base --delta --vision)');
    const out = path.join(work, 'gguf');
    await convertV0({ ...DEMO_CHECKPOINT, out, name: 'llava-med-demo', outtype: 'f16' });
    await fs.writeFile(path.join(out, 'checkpoint.sha256'), `${digest}\n`);
    await fs.rm(cacheDir, { recursive: true, force: true });
    await fs.rename(out, cacheDir);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  return { model, mmproj, built: true };
}

/** One bundled demo question. */
export interface DemoQuestion {
  /** Absolute image path. */
  image: string;
  /** The question. */
  question: string;
  /** The answer the task's generator recorded. */
  expected: string;
}

/** The bundled questions: every test-split question about four of its images (one per image kind). */
export async function demoQuestions(): Promise<DemoQuestion[]> {
  const { readTestFile } = await import('../eval/answers-file.js');
  const { testEntryAnswer, testEntryQuestion } = await import('../eval/formats.js');
  const entries = await readTestFile(DEMO_TEST.questionFile);
  return entries
    .filter((e) => DEMO_IMAGES.includes(e.image!))
    .map((e) => ({ image: path.join(DEMO_TEST.imageFolder, e.image!), question: testEntryQuestion(e).replace('<image>', '').trim(), expected: testEntryAnswer(e) }));
}

/** v0 answers keep the "Assistant:" label the original's simple prompt makes the model write; drop it to compare. */
export function demoAnswerMatches(answer: string, expected: string): boolean {
  return answer.replace(/^Assistant:\s*/, '').trim().toLowerCase() === expected.trim().toLowerCase();
}

/** Where {@link runDemo} writes: anything with a `write(string)` method, such as `process.stdout`. */
export interface Writable {
  /** Writes one piece of text. */
  write(s: string): unknown;
}

/** Options of {@link runDemo}. */
export interface RunDemoOptions {
  /** Model cache folder (default {@link defaultDemoCache}). */
  cacheDir?: string;
  /** CPU threads (default: available cores). */
  threads?: number;
  /** Answers and tables. */
  out: Writable;
  /** Notice and progress. */
  err: Writable;
  /** Print JSON: the answers (`[{ image, question, expected, answer }]`), or with `eval` the metrics. */
  json?: boolean;
  /** Run the whole test split through `eval answer` + `eval score` instead of the bundled questions. */
  eval?: boolean;
  /** Accepted for the CLI; unused. */
  progress?: unknown;
}

function pct(v: number | null | undefined): string {
  return typeof v === 'number' ? (100 * v).toFixed(2) : 'n/a';
}

/**
 * What `llava-med demo` does: ensures the demo model (see {@link ensureDemoModel}), then either asks the
 * bundled questions greedily and writes each answer next to the expected one, or (`eval`) answers the whole
 * test split with `answerQuestions` and scores it with `evaluate`, next to the PyTorch model's recorded
 * score. The research-use notice and progress go to `o.err`. Rejects with the errors of
 * {@link ensureDemoModel} and `LlavaMed.load` (e.g. `ERR_NATIVE_LOAD` when the addon is missing).
 */
export async function runDemo(o: RunDemoOptions): Promise<void> {
  o.err.write(`${RESEARCH_USE_NOTICE}\n\n`);
  const t0 = performance.now();
  const demo = await ensureDemoModel(o.cacheDir ?? defaultDemoCache(), (m) => o.err.write(`demo: ${m}\n`));
  o.err.write(`demo: model ${demo.built ? 'built' : 'cached'} at ${path.dirname(demo.model)} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  await using med = await LlavaMed.load({ model: demo.model, mmproj: demo.mmproj, threads: o.threads });
  if (o.eval) {
    await runDemoEval(med, o);
    return;
  }
  const questions = await demoQuestions();
  const results: (DemoQuestion & { answer: string })[] = [];
  if (!o.json) {
    o.out.write('The demo model is a TOY: a tiny LLaVA-Med v0 trained on synthetic radiograph-, CT-, histology- and\n' +
      'microscopy-like images (scripts/demo-model). It answers questions about that synthetic task, nothing else;\n' +
      'it is not a medical model.\n\n');
  }
  const sum = { encode: 0, prefill: 0, tokens: 0, generate: 0 };
  for (const q of questions) {
    const a = await med.ask(q.image, q.question, DEMO_GENERATION);
    results.push({ ...q, answer: a.text });
    sum.encode += a.timings.imageEncodeMs;
    sum.prefill += a.timings.imageDecodeMs + a.timings.promptMs;
    sum.tokens += a.timings.generatedTokens;
    sum.generate += a.timings.generateMs;
    if (!o.json) {
      const ok = demoAnswerMatches(a.text, q.expected);
      o.out.write(`Image:    ${path.relative(process.cwd(), q.image) || q.image}\nQuestion: ${q.question}\nAnswer:   ${a.text}\nExpected: ${q.expected} ${ok ? '(correct)' : '(WRONG)'}\n\n`);
    }
  }
  if (o.json) {
    o.out.write(`${JSON.stringify(results, null, 2)}\n`);
    return;
  }
  const right = results.filter((r) => demoAnswerMatches(r.answer, r.expected)).length;
  o.out.write(`${right}/${results.length} answers as expected. \`llava-med demo --eval\` scores the whole test split.\n`);
  o.out.write(`Timings (${results.length} questions): image encode ${sum.encode.toFixed(0)} ms, prefill ${sum.prefill.toFixed(0)} ms, ` +
    `generated ${sum.tokens} tokens in ${sum.generate.toFixed(0)} ms\n`);
}

async function runDemoEval(med: LlavaMed, o: RunDemoOptions): Promise<void> {
  const ev = await import('../eval/index.js');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'llava-med-demo-eval-'));
  try {
    const answersFile = path.join(dir, 'answers.jsonl');
    await ev.answerQuestions({ med, ...DEMO_TEST, answersFile, modelId: 'llava-med-demo', generation: DEMO_GENERATION });
    const gt = await ev.readTestFile(DEMO_TEST.questionFile);
    const ours = ev.evaluate(gt, await ev.readAnswersFile(answersFile));
    const torch = ev.evaluate(gt, await ev.readAnswersFile(DEMO_REFERENCE_ANSWERS));
    if (o.json) {
      o.out.write(`${JSON.stringify({ llavaMed: ours, pytorch: torch }, null, 2)}\n`);
      return;
    }
    const row = (name: string, r: typeof ours) =>
      `| ${name} | ${r.overall.numClosed} | ${pct(r.overall.closedAccuracy)} | ${r.overall.numOpen} | ${pct(r.overall.recall)} |\n`;
    o.out.write('Synthetic demo task, test split (greedy). Closed = yes/no accuracy, Open = token recall (the paper\'s metrics).\n\n');
    o.out.write('| model | closed n | closed % | open n | open recall % |\n|---|---|---|---|---|\n');
    o.out.write(row('llava-med (this run, F16 GGUF)', ours) + row('PyTorch reference (recorded at training)', torch));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Random-weight LLaVA-Med v0 checkpoints in the real Hugging Face layouts (base, delta, CLIP), to try conversion on. */
export { writeSyntheticV0, DEMO_DIMS, type SyntheticV0Dims, type SyntheticV0Paths } from './synthetic-v0.js';
