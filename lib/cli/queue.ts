/** `eval answer --queue` (the producer) and `eval worker` (a worker): thin over llava-med/eval's queue. */
import type { Command } from 'commander';
import { interruptSignal, note, progressBar } from './output.js';
import type { LlavaMed } from '../llava-med.js';
import type { QueueProgress } from '../eval/queue/producer.js';

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
    .option('--lock-timeout <s>', '--queue: seconds after which the job of a silent (dead) worker goes to another', h.num('lock-timeout', false, 0.001), 30);
}

function line(p: QueueProgress): string {
  return `${p.done}/${p.total} done · ${p.running} running · ${p.waiting} waiting · ${p.failed} failed · ${p.workersAlive} worker${p.workersAlive === 1 ? '' : 's'} alive${p.connected ? '' : ' · Redis unreachable'}`;
}

/** `eval answer --queue`: the producer. */
export async function answerWithQueue(o: Record<string, unknown> & { queue: string; model: string; mmproj?: string; questionFile: string; imageFolder: string; answersFile: string; numChunks?: number; chunkIdx?: number; attempts: number; lockTimeout: number }): Promise<void> {
  const { runQueue } = await import('../eval/queue/producer.js');
  const { llavaError } = await import('../errors.js');
  if ((o.numChunks ?? 1) !== 1 || (o.chunkIdx ?? 0) !== 0) throw llavaError('ERR_INVALID_ARGUMENT', '--queue shares the whole question file among the workers: drop --num-chunks/--chunk-idx.');
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
      attempts: o.attempts,
      lockMs,
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
    .action(async (o: Record<string, unknown> & { queue: string; model: string; mmproj?: string; imageFolder?: string; parallel: number; connectTimeout: number }) => {
      const { runQueueWorker } = await import('../eval/queue/worker.js');
      const signal = interruptSignal();
      const r = await runQueueWorker({
        queue: o.queue,
        model: o.model,
        mmproj: o.mmproj,
        imageFolder: o.imageFolder,
        parallel: o.parallel,
        connectTimeoutMs: Math.max(1, Math.round(o.connectTimeout * 1000)),
        signal,
        load: (files) => h.loadFromFlags({ ...o, ...files } as never, signal),
        onEvent: (e) => note(`worker: ${e.message}`),
      });
      process.stderr.write(`worker: ${r.reason === 'finished' ? 'done' : 'stopped'}: ${r.answered} answered, ${r.jobs} jobs\n`);
      if (r.reason === 'aborted') process.exitCode = 130;
    });
}
