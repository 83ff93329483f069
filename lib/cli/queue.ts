/** `eval answer --queue` (the producer) and `eval worker` (a worker): thin over llava-med/eval's queue. */
import type { Command } from 'commander';
import { interruptSignal, note, progressBar, UsageError } from './output.js';
import type { LlavaMed } from '../llava-med.js';
import type { QueueProgress } from '../eval/queue/producer.js';
import { chunkVariablesSet } from '../eval/chunks.js';

interface Helpers {
  loadFromFlags: (f: never, signal?: AbortSignal) => Promise<LlavaMed>;
  modelOptions: (c: Command) => Command;
  num: (name: string, int?: boolean, min?: number) => (v: string) => number;
}

/** The queue flags of `eval answer`. */
export function queueFlags(cmd: Command, h: Pick<Helpers, 'num'>): Command {
  return cmd
    .option('--queue <url>', 'put the questions on a Redis queue for `eval worker` processes: redis://[user[:password]@]host[:port][/db]/<run-name> (password also from LLAVA_MED_REDIS_PASSWORD)')
    .option('--attempts <n>', '--queue: attempts per image before its questions are reported as failed', h.num('attempts', true, 1), 3)
    .option('--lock-timeout <s>', '--queue: seconds after which the job of a silent (dead) worker goes to another', h.num('lock-timeout', false, 0.001), 30)
    .option('--redis-timeout <s>', '--queue: seconds Redis may stay unreachable before the run gives up (rerun the same command to resume)', h.num('redis-timeout', false, 0.001), 600);
}

/**
 * `eval answer` flags that only a process that loads the model uses: with --queue they belong to each worker.
 * (--variant is not one: it changes the prompt, so the producer fixes it for the whole run.)
 */
const WORKER_FLAGS = ['threads', 'ctx', 'gpuLayers', 'loadMode', 'flashAttn', 'projectorFlashAttn', 'verbose', 'parallel'];
/** `eval answer` flags that only the producer of a queued run uses. */
const QUEUE_ONLY_FLAGS = ['attempts', 'lockTimeout', 'redisTimeout'];

/**
 * Refuses `eval answer` flags that the chosen mode would silently ignore: with --queue the producer loads no
 * model, so the engine flags and --parallel are each worker's, and the whole question file is shared (no
 * chunk); without --queue, the queue's own flags mean nothing.
 * @throws UsageError naming the flags and what to do instead.
 */
export function checkQueueFlags(cmd: Command): void {
  const given = (key: string) => cmd.getOptionValueSource(key) === 'cli';
  const names = (keys: string[]) => keys.map((k) => cmd.options.find((o) => o.attributeName() === k)?.long ?? k).join(', ');
  if (typeof cmd.opts().queue === 'string') {
    const chunks = ['numChunks', 'chunkIdx'].filter(given);
    if (chunks.length) throw new UsageError(`${names(chunks)}: --queue shares the whole question file among the workers, so there are no chunks: drop ${chunks.length === 1 ? 'it' : 'them'}.`);
    // Run inside an array task, each task would start its own producer of the same run.
    const vars = chunkVariablesSet(process.env);
    if (vars.length) {
      throw new UsageError(
        `${vars.join(', ')}: this process is one task of an array job, but --queue shares the whole question file among the workers: start the producer (eval answer --queue) once, outside the array (the array's tasks can be \`llava-med eval worker\`s), or unset ${vars.length === 1 ? 'it' : 'them'}.`,
      );
    }
    const bad = WORKER_FLAGS.filter(given);
    if (bad.length) {
      throw new UsageError(
        `${names(bad)}: with --queue this process loads no model and answers nothing; the workers do: pass ${bad.length === 1 ? 'it' : 'them'} to each \`llava-med eval worker\` (e.g. eval worker --queue <url> -m ... -p ... --parallel 4) and drop ${bad.length === 1 ? 'it' : 'them'} here.`,
      );
    }
  } else {
    const bad = QUEUE_ONLY_FLAGS.filter(given);
    if (bad.length) throw new UsageError(`${names(bad)} only ${bad.length === 1 ? 'applies' : 'apply'} to a queued run: add --queue redis://host:port/<run-name>, or drop ${bad.length === 1 ? 'it' : 'them'}.`);
  }
}

function line(p: QueueProgress): string {
  return `${p.done}/${p.total} done · ${p.running} running · ${p.waiting} waiting · ${p.failed} failed · ${p.workersAlive} worker${p.workersAlive === 1 ? '' : 's'} alive${p.connected ? '' : ' · Redis unreachable'}`;
}

/** `eval answer --queue`: the producer (its flags checked by {@link checkQueueFlags}). */
export async function answerWithQueue(o: Record<string, unknown> & { queue: string; model: string; mmproj?: string; questionFile: string; imageFolder: string; answersFile: string; numChunks?: number; chunkIdx?: number; attempts: number; lockTimeout: number; redisTimeout: number }): Promise<void> {
  const { runQueue } = await import('../eval/queue/producer.js');
  const signal = interruptSignal();
  const tty = process.stderr.isTTY;
  const bar = tty ? progressBar('answering (queue)', ' questions') : undefined;
  let lastText = '';
  let lastAt = 0;
  const lockMs = Math.max(1, Math.round(o.lockTimeout * 1000));
  try {
    const r = await runQueue({
      queue: o.queue,
      questionFile: o.questionFile,
      imageFolder: o.imageFolder,
      answersFile: o.answersFile,
      model: o.model,
      mmproj: o.mmproj,
      modelId: (o.modelId as string | undefined) ?? o.model,
      generation: { temperature: o.temperature as number | undefined, seed: o.seed as number | undefined, maxTokens: o.maxTokens as number | undefined },
      variant: o.variant as 'v0' | 'v1.5' | undefined,
      attempts: o.attempts,
      lockMs,
      redisTimeoutMs: Math.max(1, Math.round(o.redisTimeout * 1000)),
      signal,
      onNotice: (n) => note(`queue: ${n.message}`),
      onProgress: (p) => {
        const text = line(p);
        if (bar) return bar.update(p.done + p.failed, p.total, text.slice(text.indexOf('·') + 2));
        // Without a terminal: a line when something changed, at most every 2 s.
        const now = performance.now();
        if (text !== lastText && now - lastAt >= 2000) {
          note(`queue: ${text}`);
          lastText = text;
          lastAt = now;
        }
      },
    });
    bar?.stop();
    process.stderr.write(`answered ${r.done} (skipped ${r.skipped} already answered) in ${(r.elapsedMs / 1000).toFixed(1)} s: ${r.jobs} images queued, ${r.workersSeen} worker(s) took part\n`);
  } finally {
    bar?.stop();
  }
}

/** `eval worker`. */
export function registerWorkerCommand(ev: Command, h: Helpers): void {
  h.modelOptions(ev.command('worker'))
    .description('answer the questions of a queued run (eval answer --queue) until it is complete; start as many as you like, on any machines')
    .requiredOption('--queue <url>', 'the run\'s queue: redis://[user[:password]@]host[:port][/db]/<run-name> (password also from LLAVA_MED_REDIS_PASSWORD)')
    .option('--image-folder <dir>', "folder the image paths are relative to (default: the producer's, for a shared file system)")
    .option('--parallel <p>', 'questions about one image decoded in parallel', h.num('parallel', true, 1), 1)
    .option('--connect-timeout <s>', 'seconds to wait for Redis at start', h.num('connect-timeout', false, 0.001), 10)
    .option('--redis-timeout <s>', 'seconds Redis may stay unreachable, once joined, before the worker gives up', h.num('redis-timeout', false, 0.001), 600)
    .action(async (o: Record<string, unknown> & { queue: string; model: string; mmproj?: string; imageFolder?: string; parallel: number; connectTimeout: number; redisTimeout: number }) => {
      const { runQueueWorker } = await import('../eval/queue/worker.js');
      const signal = interruptSignal();
      const r = await runQueueWorker({
        queue: o.queue,
        model: o.model,
        mmproj: o.mmproj,
        imageFolder: o.imageFolder,
        parallel: o.parallel,
        variant: o.variant as 'v0' | 'v1.5' | undefined,
        connectTimeoutMs: Math.max(1, Math.round(o.connectTimeout * 1000)),
        redisTimeoutMs: Math.max(1, Math.round(o.redisTimeout * 1000)),
        signal,
        load: (files) => h.loadFromFlags({ ...o, ...files } as never, signal),
        onEvent: (e) => note(`worker: ${e.message}`),
      });
      process.stderr.write(`worker: ${r.reason === 'finished' ? 'done' : 'stopped'}: ${r.answered} answered, ${r.jobs} jobs\n`);
      if (r.reason === 'aborted') process.exitCode = 130;
    });
}
