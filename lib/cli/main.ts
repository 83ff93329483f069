#!/usr/bin/env node
/** The `llava-med` command. Commands only parse flags, call the library and print. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { LlavaMed, type GenerationOptions } from '../llava-med.js';
import { RESEARCH_USE_NOTICE } from '../notice.js';
import { describeGguf } from '../formats/gguf-describe.js';
import { interruptSignal, progressBar, reportError, setQuiet, UsageError } from './output.js';
import { registerEvalCommands } from './eval.js';
import { dicomFlags, describeDicomFile, imageArg, isDicomFile, registerImageCommand, type DicomFlags } from './image.js';
import { registerPullCommands } from './pull.js';
import { registerServeCommand } from './serve.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/**
 * A numeric flag parser. Bad values are commander usage errors (one line quoting the user's value,
 * then a hint), never stack traces.
 */
function num(name: string, int = false, min?: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (int && !Number.isInteger(n))) throw new InvalidArgumentError(`--${name} must be ${int ? 'an integer' : 'a number'}, got "${v}".`);
    if (min !== undefined && n < min) throw new InvalidArgumentError(`--${name} must be at least ${min}, got "${v}".`);
    return n;
  };
}

interface ModelFlags {
  model: string;
  mmproj?: string;
  threads?: number;
  ctx?: number;
  gpuLayers?: number | 'auto' | 'max';
  variant?: 'v0' | 'v1.5';
  verbose?: boolean;
  loadMode?: 'none' | 'mmap' | 'auto';
  flashAttn?: 'auto' | 'on' | 'off';
  projectorFlashAttn?: 'auto' | 'on' | 'off';
  /** Parallel sequences (eval answer --parallel, serve --parallel). */
  sequences?: number;
  /** Encoded images kept by content (serve --image-cache). */
  imageCache?: number;
}

function modelOptions(cmd: Command): Command {
  return cmd
    .requiredOption('-m, --model <file|name>', 'language model GGUF, or a registered name (llava-med list)')
    .option('-p, --mmproj <file>', 'projector (mmproj) GGUF (default: the registered one)')
    .option('-t, --threads <n>', 'CPU threads', num('threads', true, 1))
    .option('-c, --ctx <n>', 'context size in tokens', num('ctx', true, 1))
    .option('--gpu-layers <n|auto|max>', 'layers to offload to the GPU (auto: what fits)', (v: string) => (v === 'auto' || v === 'max' ? v : num('gpu-layers', true, 0)(v)))
    .addOption(new Option('--variant <v>', 'LLaVA-Med variant (default: from the GGUF)').choices(['v0', 'v1.5']))
    .addOption(new Option('--load-mode <mode>', 'how weights are read').choices(['none', 'mmap', 'auto']))
    .addOption(new Option('--flash-attn <mode>', 'flash attention (default: off on CPU, for reproducible answers)').choices(['auto', 'on', 'off']))
    .addOption(new Option('--projector-flash-attn <mode>', "the vision encoder's flash attention (default: off: F32 attention, closest to the reference; on: faster encode, F16 K/V)").choices(['auto', 'on', 'off']))
    .option('-v, --verbose', 'print llama.cpp logs to stderr');
}

export async function loadFromFlags(f: ModelFlags, signal?: AbortSignal): Promise<LlavaMed> {
  const bar = progressBar('loading model');
  try {
    return await LlavaMed.load({
      model: f.model,
      mmproj: f.mmproj,
      threads: f.threads,
      contextSize: f.ctx,
      gpuLayers: f.gpuLayers,
      variant: f.variant,
      loadMode: f.loadMode,
      sequences: f.sequences,
      imageCache: f.imageCache,
      flashAttn: f.flashAttn,
      projectorFlashAttn: f.projectorFlashAttn,
      logger: f.verbose ? (level, msg) => process.stderr.write(`[${level}] ${msg}\n`) : undefined,
      onProgress: (p) => p.phase === 'model' && bar.update(Math.round(p.fraction * 100), 100),
      signal,
    });
  } finally {
    bar.stop();
  }
}

function generationFlags(cmd: Command): Command {
  return cmd
    .option('--temperature <t>', 'sampling temperature (0 = greedy; default: the original\'s)', num('temperature', false, 0))
    .option('--top-k <k>', 'top-k', num('top-k', true, 0))
    .option('--top-p <p>', 'top-p', num('top-p'))
    .option('--seed <n>', 'sampling seed', num('seed', true))
    .option('--max-tokens <n>', 'maximum new tokens', num('max-tokens', true, 1));
}

function genOpts(o: Record<string, unknown>, signal: AbortSignal): GenerationOptions {
  return {
    temperature: o.temperature as number | undefined,
    topK: o.topK as number | undefined,
    topP: o.topP as number | undefined,
    seed: o.seed as number | undefined,
    maxTokens: o.maxTokens as number | undefined,
    signal,
  };
}

export function buildProgram(): Command {
  const program = new Command('llava-med')
    .version(pkg.version)
    .description(`Run LLaVA-Med (biomedical vision-language assistant) locally on llama.cpp.\n\n${RESEARCH_USE_NOTICE}`)
    .addHelpText('after', `\n${RESEARCH_USE_NOTICE}\n`)
    .showHelpAfterError('(add --help for usage)');

  dicomFlags(generationFlags(modelOptions(program.command('ask'))))
    .description('answer a question about an image (streams the answer to stdout)')
    .requiredOption('-i, --image <file>', 'image file (JPEG, PNG, WebP, TIFF, GIF, DICOM)')
    .option('--json', 'print one JSON object with text, tokens, stopReason and timings')
    .argument('<question>', 'the question')
    .action(async (question: string, o: ModelFlags & DicomFlags & { image: string; json?: boolean } & Record<string, unknown>) => {
      const signal = interruptSignal();
      await using med = await loadFromFlags(o, signal);
      const image = imageArg(o.image, o);
      if (o.json) {
        const a = await med.ask(image, question, genOpts(o, signal));
        process.stdout.write(`${JSON.stringify({ text: a.text, tokens: a.tokens, stopReason: a.stopReason, timings: a.timings })}\n`);
        return;
      }
      for await (const chunk of med.stream(image, question, genOpts(o, signal))) process.stdout.write(chunk);
      process.stdout.write('\n');
    });

  dicomFlags(generationFlags(modelOptions(program.command('chat'))))
    .description('talk about an image, turn after turn (interactive; /help inside for commands)')
    .requiredOption('-i, --image <file>', 'the image to talk about (/image switches)')
    .action(async (o: ModelFlags & DicomFlags & { image: string } & Record<string, unknown>) => {
      const { runChat } = await import('./chat.js');
      const loading = interruptSignal();
      await using med = await loadFromFlags(o, loading);
      const { signal: _unused, ...gen } = genOpts(o, loading);
      await runChat(med, imageArg(o.image, o), gen, { input: process.stdin, output: process.stdout, err: process.stderr });
    });

  dicomFlags(modelOptions(program.command('score')))
    .description('log-likelihood of candidate answers (closed-set VQA)')
    .requiredOption('-i, --image <file>', 'image file')
    .requiredOption('--candidates <list>', 'comma-separated candidates, e.g. yes,no')
    .option('--json', 'print JSON')
    .argument('<question>', 'the question')
    .action(async (question: string, o: ModelFlags & DicomFlags & { image: string; candidates: string; json?: boolean }) => {
      const signal = interruptSignal();
      await using med = await loadFromFlags(o, signal);
      const cands = o.candidates.split(',').map((c) => c.trim()).filter(Boolean);
      const scores = await med.score(imageArg(o.image, o), question, cands, { signal });
      if (o.json) process.stdout.write(`${JSON.stringify(scores)}\n`);
      else for (const s of [...scores].sort((a, b) => b.logProb - a.logProb)) process.stdout.write(`${s.candidate}\t${s.logProb.toFixed(4)}\n`);
    });

  program
    .command('info')
    .description('describe a GGUF file (architecture, variant, sizes, quantization, projector) or a DICOM image (the tags that decide its rendering)')
    .argument('<file>', 'a .gguf or DICOM file')
    .option('--json', 'print JSON')
    .option('--implicit', 'the DICOM file is a bare Implicit VR Little Endian dataset without the meta header')
    .action(async (file: string, o: { json?: boolean; implicit?: boolean }) => {
      const info = (await isDicomFile(file, o.implicit)) ? await describeDicomFile(file, o.implicit) : await describeGguf(file);
      if (o.json) process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
      else for (const [k, v] of Object.entries(info)) if (v !== undefined) process.stdout.write(`${k.padEnd(16)} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}\n`);
    });

  program
    .command('convert')
    .description('convert Hugging Face checkpoints to GGUF (v0: --base --delta --vision; v1.5: --model --vision)')
    .option('--base <dir>', 'LLaMA-7B (original, HF format) folder, for v0')
    .option('--delta <dir>', 'LLaVA-Med v0 delta folder')
    .option('--model <dir>', 'LLaVA-Med v1.5 folder')
    .requiredOption('--vision <dir>', 'CLIP vision tower folder (openai/clip-vit-large-patch14[-336])')
    .requiredOption('-o, --out <dir>', 'output folder')
    .option('--name <name>', 'output file stem')
    .addOption(new Option('--outtype <t>', 'weight type').choices(['f32', 'f16', 'q8_0']).default('f16'))
    .addOption(new Option('--fold <arithmetic>', "v0: base + delta in fp16 as the original apply_delta.py (default), or the exact float32 sum").choices(['fp16', 'exact']))
    .option('--allow-non-finite', 'write NaN/Inf weights instead of refusing the checkpoint')
    .action(async (o: { base?: string; delta?: string; model?: string; vision: string; out: string; name?: string; outtype: 'f32' | 'f16' | 'q8_0'; fold?: 'fp16' | 'exact'; allowNonFinite?: boolean }) => {
      const { convertV0, convertV15 } = await import('../convert/index.js');
      const signal = interruptSignal();
      const bars = new Map<string, ReturnType<typeof progressBar>>();
      const onProgress = (p: { phase: string; tensorsDone: number; tensorsTotal: number; bytesDone: number; bytesTotal: number }) => {
        if (!['llm', 'mmproj', 'fold'].includes(p.phase) || p.tensorsTotal === 0) return;
        let bar = bars.get(p.phase);
        if (!bar) {
          for (const b of bars.values()) b.stop();
          bar = progressBar(p.phase === 'mmproj' ? 'projector' : 'language model', ' tensors');
          bars.set(p.phase, bar);
        }
        bar.update(p.tensorsDone, p.tensorsTotal, `${(p.bytesDone / 1e6).toFixed(0)}/${(p.bytesTotal / 1e6).toFixed(0)} MB`);
      };
      const onWarning = (m: string) => process.stderr.write(`warning: ${m}\n`);
      try {
        let r;
        if (o.model) {
          if (o.base || o.delta) throw new UsageError('use either --model (v1.5) or --base with --delta (v0), not both.');
          if (o.fold) throw new UsageError('--fold applies to v0 (--base + --delta); v1.5 has no delta to fold.');
          r = await convertV15({ model: o.model, vision: o.vision, out: o.out, name: o.name, outtype: o.outtype, allowNonFinite: o.allowNonFinite, onProgress, onWarning, signal });
        } else {
          if (!o.base || !o.delta) throw new UsageError('v0 needs --base (LLaMA-7B) and --delta (LLaVA-Med delta); v1.5 needs --model.');
          r = await convertV0({ base: o.base, delta: o.delta, vision: o.vision, out: o.out, name: o.name, outtype: o.outtype, foldArithmetic: o.fold, allowNonFinite: o.allowNonFinite, onProgress, onWarning, signal });
        }
        for (const b of bars.values()) b.stop();
        process.stdout.write(`${r.model}\n${r.mmproj}\n`);
      } finally {
        for (const b of bars.values()) b.stop();
      }
    });

  program
    .command('quantize')
    .description('quantize a GGUF (language model or mmproj; the mmproj projector stays F16)')
    .argument('<input>', 'input GGUF')
    .argument('<output>', 'output GGUF')
    .addOption(new Option('--type <t>', 'target type').choices(['Q4_K_M', 'Q5_K_M', 'Q8_0', 'F16', 'Q4_0', 'IQ4_NL']).makeOptionMandatory())
    .option('-t, --threads <n>', 'threads', num('threads', true, 1))
    .action(async (input: string, output: string, o: { type: 'Q4_K_M' | 'Q5_K_M' | 'Q8_0' | 'F16' | 'Q4_0' | 'IQ4_NL'; threads?: number }) => {
      const { quantize } = await import('../convert/quantize.js');
      const bar = progressBar('quantizing', ' tensors');
      try {
        const r = await quantize({ input, output, type: o.type, threads: o.threads, signal: interruptSignal(), onProgress: (p) => bar.update(p.done, p.total, p.tensor) });
        bar.stop();
        process.stdout.write(`${r.output} (${(r.bytes / 1e6).toFixed(1)} MB)\n`);
      } finally {
        bar.stop();
      }
    });

  program
    .command('demo')
    .description('convert (once, cached) the bundled toy model, trained on synthetic images, and ask it the bundled questions')
    .option('--cache <dir>', 'where the demo model is kept')
    .option('-t, --threads <n>', 'CPU threads', num('threads', true, 1))
    .option('--eval', 'score the whole synthetic test split (eval answer + eval score) next to the PyTorch reference')
    .option('--json', 'print JSON: [{ image, question, expected, answer }], or with --eval the metrics')
    .action(async (o: { cache?: string; threads?: number; eval?: boolean; json?: boolean }) => {
      const { runDemo } = await import('../demo/index.js');
      await runDemo({ cacheDir: o.cache, threads: o.threads, eval: o.eval, json: o.json, out: process.stdout, err: process.stderr, progress: progressBar });
    });

  registerImageCommand(program);
  registerEvalCommands(program, { loadFromFlags, modelOptions, num });
  registerPullCommands(program, { num, interruptSignal });
  registerServeCommand(program, { loadFromFlags, modelOptions, num });
  addQuietFlag(program);
  return program;
}

/**
 * On every command: `-q, --quiet` (no progress bars or progress lines on stderr; errors still print),
 * and "(required)" after each mandatory option in --help (commander lists them like the others).
 */
function addQuietFlag(cmd: Command): void {
  for (const c of cmd.commands) {
    if (c.commands.length) addQuietFlag(c);
    else c.option('-q, --quiet', 'no progress output on stderr').hook('preAction', (_, action) => setQuiet(action.opts().quiet === true));
    for (const o of c.options) if (o.mandatory && !o.description.endsWith('(required)')) o.description += ' (required)';
  }
}

async function main(): Promise<void> {
  // `llava-med info m.gguf | head -1`: the reader went away; that is not an error of ours.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (e) {
    reportError(e);
  }
}

void main();
