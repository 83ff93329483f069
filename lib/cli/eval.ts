/** `llava-med eval ...`: prepare → answer → merge → score → report, and the GPT chat judge. */
import { Command, Option } from 'commander';
import path from 'node:path';
import { interruptSignal, note, progressBar } from './output.js';
import { answerWithQueue, checkQueueFlags, queueFlags, registerWorkerCommand } from './queue.js';
import type { LlavaMed } from '../llava-med.js';

interface Helpers {
  loadFromFlags: (f: never, signal?: AbortSignal) => Promise<LlavaMed>;
  modelOptions: (c: Command) => Command;
  num: (name: string, int?: boolean, min?: number) => (v: string) => number;
}

export function registerEvalCommands(program: Command, h: Helpers): void {
  const ev = program.command('eval').description("reproduce the paper's VQA protocol (VQA-RAD, SLAKE, PathVQA) and GPT-assisted chat scoring");

  ev.command('prepare')
    .description('convert a public dataset release into LLaVA test.json/train.json + images/')
    .addOption(new Option('--dataset <name>', 'dataset').choices(['vqa-rad', 'slake', 'pathvqa']).makeOptionMandatory())
    .requiredOption('--src <dir>', 'the dataset as released')
    .requiredOption('--out <dir>', 'output folder (must be empty or absent)')
    .action(async (o: { dataset: 'vqa-rad' | 'slake' | 'pathvqa'; src: string; out: string }) => {
      const { prepareDataset } = await import('../eval/index.js');
      const r = await prepareDataset({ dataset: o.dataset, src: o.src, out: o.out });
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    });

  queueFlags(h.modelOptions(ev.command('answer')), h)
    .description('answer every question of a test.json (resumable, chunkable, parallel)')
    .requiredOption('--question-file <file>', 'test.json')
    .requiredOption('--image-folder <dir>', 'folder the image paths are relative to')
    .requiredOption('--answers-file <file>', 'answers .jsonl (appended; rerun to resume)')
    .option('--num-chunks <n>', 'split the questions into n chunks (default: SLURM_ARRAY_TASK_COUNT, LLAVA_MED_NUM_CHUNKS, or 1)', h.num('num-chunks', true, 1))
    .option('--chunk-idx <k>', 'which chunk this run answers, 0-based (default: from SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or LLAVA_MED_CHUNK_IDX, else 0; see docs/cluster.md)', h.num('chunk-idx', true, 0))
    .option('--parallel <p>', 'questions decoded in parallel (with --queue: a setting of each eval worker)', h.num('parallel', true, 1), 1)
    .option('--temperature <t>', "sampling temperature (default: the original's 0.7 for v0)", h.num('temperature', false, 0))
    .option('--seed <n>', 'sampling seed', h.num('seed', true))
    .option('--max-tokens <n>', 'maximum new tokens', h.num('max-tokens', true, 1))
    .option('--model-id <id>', 'model_id written to each line (default: the model path)')
    .action(async (o: Record<string, unknown> & { model: string; questionFile: string; imageFolder: string; answersFile: string; numChunks?: number; chunkIdx?: number; parallel: number }, cmd: Command) => {
      checkQueueFlags(cmd);
      if (typeof o.queue === 'string') return answerWithQueue(o as never);
      const { answerQuestions, selectChunk, modelIdentity } = await import('../eval/index.js');
      const chunk = selectChunk({ numChunks: o.numChunks, chunkIdx: o.chunkIdx, env: process.env });
      note(`answering ${chunk.description}`);
      const signal = interruptSignal();
      // Recorded in every line (metadata.model), so eval merge can check that all parts used one model.
      const identity = await modelIdentity({ model: o.model, mmproj: o.mmproj as string | undefined });
      const med = await h.loadFromFlags({ ...o, model: identity.modelPath, mmproj: identity.mmprojPath, sequences: o.parallel } as never, signal);
      const bar = progressBar('answering', ' questions');
      try {
        const r = await answerQuestions({
          med,
          questionFile: o.questionFile,
          imageFolder: o.imageFolder,
          answersFile: o.answersFile,
          modelId: (o.modelId as string | undefined) ?? o.model,
          numChunks: chunk.numChunks,
          chunkIdx: chunk.chunkIdx,
          identity,
          parallel: o.parallel,
          generation: { temperature: o.temperature as number | undefined, seed: o.seed as number | undefined, maxTokens: o.maxTokens as number | undefined },
          signal,
          onProgress: (p) => bar.update(p.done, p.total, `${((p.generatedTokens * 1000) / Math.max(1, p.elapsedMs)).toFixed(1)} tok/s`),
        });
        bar.stop();
        process.stderr.write(`answered ${r.done} (skipped ${r.skipped} already answered) in ${(r.elapsedMs / 1000).toFixed(1)} s, ${r.imagesEncoded} images encoded\n`);
      } finally {
        bar.stop();
        await med.dispose();
      }
    });

  registerWorkerCommand(ev, h);

  ev.command('merge')
    .description('join chunk answer files back in test.json order')
    .requiredOption('--question-file <file>', 'test.json')
    .requiredOption('--out <file>', 'merged answers .jsonl')
    .argument('<chunks...>', 'chunk answer files')
    .action(async (chunks: string[], o: { questionFile: string; out: string }) => {
      const { mergeChunks } = await import('../eval/index.js');
      const r = await mergeChunks(o.questionFile, chunks, o.out);
      process.stdout.write(`${o.out}: ${r.lines} lines\n`);
    });

  ev.command('score')
    .description("metrics exactly as the original code computes them; Markdown table in the paper's layout")
    .requiredOption('--gt <file>', 'test.json')
    .requiredOption('--pred <file>', 'answers .jsonl')
    .option('--candidate <file>', 'candidate answers JSON (key "0"), for run_eval.py open accuracy')
    .addOption(new Option('--dataset <name>', 'dataset label for the table').choices(['vqa-rad', 'slake', 'pathvqa']).default('vqa-rad'))
    .option('--paper', "add the paper's rows for comparison")
    .option('--json', 'print JSON instead of Markdown')
    .action(async (o: { gt: string; pred: string; candidate?: string; dataset: 'vqa-rad' | 'slake' | 'pathvqa'; paper?: boolean; json?: boolean }) => {
      const ev = await import('../eval/index.js');
      const gt = await ev.readTestFile(o.gt);
      const pred = await ev.readAnswersFile(o.pred);
      const candidates = o.candidate ? await ev.readCandidates(o.candidate) : undefined;
      const results = ev.evaluate(gt, pred, { candidates });
      const run = { model: path.basename(o.pred), results: { [o.dataset]: results } };
      if (o.json) process.stdout.write(`${JSON.stringify(ev.scoreJson(run), null, 2)}\n`);
      else process.stdout.write(`${ev.formatScoreTable(run, { includePaper: o.paper })}\n`);
    });

  ev.command('report')
    .description('one self-contained HTML page: scores, chart per question type, wrong answers with images')
    .requiredOption('--gt <file>', 'test.json')
    .requiredOption('--pred <file>', 'answers .jsonl')
    .requiredOption('--images <dir>', 'image folder')
    .requiredOption('--out <file>', 'report .html')
    .action(async (o: { gt: string; pred: string; images: string; out: string }) => {
      const ev = await import('../eval/index.js');
      const r = await ev.writeReport({ gt: await ev.readTestFile(o.gt), pred: await ev.readAnswersFile(o.pred), imagesDir: o.images, out: o.out });
      process.stdout.write(`${JSON.stringify(r)}\n`);
    });

  ev.command('chat-judge')
    .description('GPT-assisted chat evaluation with the original judge prompt (any OpenAI-compatible endpoint)')
    .requiredOption('--questions <file>', 'llava_med_eval_qa50_qa.jsonl')
    .requiredOption('--answers <file>', 'model answers .jsonl')
    .requiredOption('--out <file>', 'reviews .jsonl (resumable)')
    .option('--base-url <url>', 'endpoint base URL (env OPENAI_BASE_URL)', process.env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1')
    .option('--judge-model <name>', 'judge model (env LLAVA_MED_JUDGE_MODEL)', process.env.LLAVA_MED_JUDGE_MODEL ?? 'gpt-4-0314')
    // The key is read from the environment in the action, never given to commander as a default:
    // commander prints defaults in --help and after every usage error.
    .option('--api-key <key>', `API key (env OPENAI_API_KEY${process.env.OPENAI_API_KEY ? ': (set)' : ''})`)
    .addOption(new Option('--question-mode <m>', 'v0 drops "\\n<image>" from the question as v1.0.0 did').choices(['v0', 'v1.5']).default('v0'))
    .action(async (o: { questions: string; answers: string; out: string; baseUrl: string; judgeModel: string; apiKey?: string; questionMode: 'v0' | 'v1.5' }) => {
      const ev = await import('../eval/index.js');
      const questions = await ev.readChatQuestions(o.questions);
      const answers = await ev.readAnswersFile(o.answers);
      const bar = progressBar('judging', ' questions');
      try {
        await ev.runJudge({ questions, answers, out: o.out, baseUrl: o.baseUrl, model: o.judgeModel, apiKey: o.apiKey ?? process.env.OPENAI_API_KEY, questionMode: o.questionMode, signal: interruptSignal(), onProgress: (p) => bar.update(p.done, p.total) });
      } finally {
        bar.stop();
      }
      process.stdout.write(`${JSON.stringify(ev.summarizeReviews(await ev.readReviews(o.out)), null, 2)}\n`);
    });
}
