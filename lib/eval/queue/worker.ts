/**
 * A worker of a queued run (`eval worker --queue`): joins the run when its model is the run's model,
 * takes one image's questions at a time, encodes the image once, and records each answer once.
 */
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { WaitingError, Worker, type Job } from 'bullmq';
import { llavaError, isLlavaMedError } from '../../errors.js';
import { readRegularFile } from '../../formats/file-read.js';
import type { LlavaMed, Variant } from '../../llava-med.js';
import { idKey } from '../answers-file.js';
import { makeAnswerLine, testEntryQuestion } from '../formats.js';
import { ggufVariant, identityDifferences, modelIdentity, recordedModel } from '../model-identity.js';
import { parseQueueUrl } from './connection.js';
import { JobDataSchema, readMeta, RECORD_SCRIPT, runKeys, type RunMeta } from './protocol.js';
import { bullConnection, commandTimeoutFor, RunClient, sleep, unlessAborted, within } from './redis.js';

/** Something a worker reports as it happens (messages never hold credentials). */
export interface QueueWorkerEvent {
  /** `waiting`: no running run of that name yet; `joined`: the model matches, loading it; `job`: a job done; `job-failed`: an attempt failed (it is retried unless it was the last); `stalled`: this worker found a job whose worker went silent (dead) and queued it again; `redis-down` / `redis-up`: connection lost / back; `finished`: the run is complete. */
  kind: 'waiting' | 'joined' | 'job' | 'job-failed' | 'stalled' | 'redis-down' | 'redis-up' | 'finished';
  /** One line for a person. */
  message: string;
}

/** Options of {@link runQueueWorker}. */
export interface QueueWorkerOptions {
  /** The run's queue URL, as the producer was given it. */
  queue: string;
  /** This worker's language model (path or registered name); it must be the run's model. */
  model: string;
  /** This worker's projector (default: the registered name's). */
  mmproj?: string | undefined;
  /**
   * Loads the model once the run accepted it (the caller's engine options: threads, GPU layers, …), with the
   * run's prompt `variant` when the run fixes one (pass it to `LlavaMed.load`).
   */
  load: (files: { model: string; mmproj: string; sequences: number; variant: Variant | undefined }) => Promise<LlavaMed>;
  /** This worker's --variant, if given: it must be the run's (the run's variant is used either way). */
  variant?: Variant | undefined;
  /** Folder the image paths are relative to. Default: the producer's (a shared file system). */
  imageFolder?: string | undefined;
  /** Questions about one image decoded at once (parallel sequences). Default 1. */
  parallel?: number | undefined;
  /** How long to wait for Redis at start (ms). Default 10000. */
  connectTimeoutMs?: number | undefined;
  /** How long Redis may stay unreachable once joined before the worker gives up (ms). Default 600000, as the producer's. */
  redisTimeoutMs?: number | undefined;
  /** Called as things happen. */
  onEvent?: ((e: QueueWorkerEvent) => void) | undefined;
  /** Stops the worker: the job in hand goes back to the queue unfinished (answers already recorded stay); resolves. */
  signal?: AbortSignal | undefined;
}

/** What {@link runQueueWorker} did. */
export interface QueueWorkerResult {
  /** Questions this worker answered and recorded first. */
  answered: number;
  /** Jobs (images) this worker completed. */
  jobs: number;
  /** Why it stopped: the run finished, or the signal fired. */
  reason: 'finished' | 'aborted';
}

const HEARTBEAT_MS = 2000;

/**
 * Joins a queued run and answers its jobs until the producer marks the run finished (or `signal` fires).
 * The model's identity ({@link modelIdentity}: provenance keys and fingerprint of both GGUFs) is compared
 * with the run's before anything is loaded. Answers are recorded once per question id: a job retried after
 * its worker died skips the questions already answered.
 *
 * @throws LlavaMedError `ERR_EVAL` (the model differs from the run's — each difference listed —, Redis
 *   unreachable at start, or for `redisTimeoutMs` later), `ERR_INVALID_ARGUMENT`, the errors of {@link modelIdentity} and of `load`.
 */
export async function runQueueWorker(o: QueueWorkerOptions): Promise<QueueWorkerResult> {
  const addr = parseQueueUrl(o.queue);
  const parallel = o.parallel ?? 1;
  if (!Number.isInteger(parallel) || parallel < 1) throw llavaError('ERR_INVALID_ARGUMENT', '--parallel must be an integer >= 1.');
  const redisTimeoutMs = o.redisTimeoutMs ?? 600_000;
  if (!Number.isInteger(redisTimeoutMs) || redisTimeoutMs < 1) throw llavaError('ERR_INVALID_ARGUMENT', `redisTimeoutMs must be a positive integer, got ${redisTimeoutMs}.`);
  const keys = runKeys(addr.run);
  const emit = (kind: QueueWorkerEvent['kind'], message: string) => o.onEvent?.({ kind, message: addr.mask(message) });
  const identity = await modelIdentity({ model: o.model, mmproj: o.mmproj });
  // Every command of the worker's own client is bounded; BullMQ's Worker waits for Redis on its own.
  const commandMs = commandTimeoutFor(redisTimeoutMs);
  const client = new RunClient(addr, commandMs, (m) => emit('redis-down', `Redis at ${addr.display}: ${m}; reconnecting`));
  const gone = () => llavaError(
    'ERR_EVAL',
    `Redis at ${addr.display} has been unreachable for ${+(redisTimeoutMs / 1000).toFixed(3)} s${client.lastError ? ` (${client.lastError})` : ''}: this worker stops. A job it held goes to another worker once Redis is back; start workers again then.`,
  );
  let reconnected = false;
  client.redis.on('ready', () => reconnected && emit('redis-up', `Redis at ${addr.display} is back`));
  try {
    await client.connect(o.connectTimeoutMs ?? 10_000, o.signal);
    reconnected = true;
    const redis = client.redis;
    let meta: RunMeta | undefined;
    let said = false;
    // A run already done at the first look is an earlier one of that name: wait for a producer to start it
    // again. One done under another epoch was started and completed between two looks (a short run, or
    // Redis away meanwhile): there is nothing left to join.
    let firstLook: { epoch?: string } | undefined;
    for (;;) {
      if (o.signal?.aborted) return { answered: 0, jobs: 0, reason: 'aborted' };
      let readable = true;
      meta = await readMeta(redis, addr.run).catch((e: unknown) => {
        if (isLlavaMedError(e)) throw e;
        readable = false;
        return undefined; // connection trouble: try again
      });
      if (meta?.state === 'running') break;
      if (readable) firstLook ??= { epoch: meta?.epoch };
      if (meta?.state === 'done' && firstLook !== undefined && meta.epoch !== firstLook.epoch) {
        emit('finished', `the run ${addr.run} started and completed before this worker joined (0 answered here)`);
        return { answered: 0, jobs: 0, reason: 'finished' };
      }
      if (client.downForMs() > redisTimeoutMs) throw gone();
      if (!said) emit('waiting', `waiting for a run named ${addr.run} at ${addr.display} to start`);
      said = true;
      await sleep(1000, o.signal);
    }
    const diffs = identityDifferences(identity, meta.identity, { mine: 'in this worker', theirs: 'in the run' });
    const runVariant = meta.variant ?? ggufVariant(identity);
    if (o.variant !== undefined && o.variant !== runVariant) {
      diffs.push(`variant: ${o.variant} in this worker (--variant), ${runVariant ?? 'none recorded'} in the run${meta.variant === undefined ? " (the GGUF's own: the producer gave no --variant)" : ''}`);
    }
    if (diffs.length) {
      throw llavaError('ERR_EVAL', `Refusing to join the run ${addr.run} at ${addr.display}: this worker's model (or prompt variant) is not the run's.\n  - ${diffs.join('\n  - ')}\nStart the worker with the run's model files (-m/-p)${o.variant !== undefined ? ', without --variant (the run fixes it)' : ''}.`);
    }
    emit('joined', `joined the run ${addr.run} (model_id ${meta.modelId}); loading the model`);
    const run = meta;
    const med = await o.load({ model: identity.modelPath, mmproj: identity.mmprojPath, sequences: parallel, variant: meta.variant });
    if (runVariant !== undefined && med.variant !== runVariant) {
      await med.dispose();
      throw llavaError('ERR_EVAL', `The model was loaded with the ${med.variant} prompt, but the run ${addr.run} asks with ${runVariant}: load it with the variant the worker's load callback is given.`);
    }
    const id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    let answered = 0;
    let jobs = 0;
    let current: string | undefined;
    const imageFolder = o.imageFolder ?? run.imageFolder;
    // As a single-process eval answer records it (the identity is the run's: checked above).
    const metadata = { model: recordedModel(identity, med.variant) };

    /** The processor call in progress (settled when none): waited for, bounded, before the worker is closed. */
    let inHand: Promise<unknown> = Promise.resolve();
    const processor = (job: Job, token?: string): Promise<{ answered: number }> => {
      const p = take(job, token);
      inHand = p.catch(() => undefined);
      return p;
    };
    const take = async (job: Job, token?: string): Promise<{ answered: number }> => {
      current = job.id;
      void heartbeat();
      try {
        return await answerJob(job);
      } catch (e) {
        // Stopped mid-job: hand the job back at once (no attempt counted) instead of failing it.
        if (stop.signal.aborted) {
          await job.moveToWait(token);
          throw new WaitingError();
        }
        // BullMQ keeps only the message as the job's failure reason: put the code in it.
        throw isLlavaMedError(e) ? new Error(`${e.code}: ${e.message}`, { cause: e }) : e;
      } finally {
        current = undefined;
      }
    };
    const answerJob = async (job: Job): Promise<{ answered: number }> => {
      const data = JobDataSchema.parse(job.data);
      const file = isAbsolute(data.image) ? data.image : join(imageFolder, data.image);
      const sha = createHash('sha256').update(await readRegularFile(file, { what: 'Image' })).digest('hex');
      if (sha !== data.sha256) throw llavaError('ERR_EVAL', `The image ${file} on ${hostname()} is not the producer's (SHA-256 differs): give the worker the run's image folder.`);
      const flags = await Promise.all(data.entries.map((e) => redis.hexists(keys.results, idKey(e.id))));
      const todo = data.entries.filter((_, i) => flags[i] === 0);
      let mine = 0;
      if (todo.length) {
        const handle = await med.embedImage(file, { signal: stop.signal });
        try {
          for (let i = 0; i < todo.length; i += parallel) {
            const group = todo.slice(i, i + parallel);
            const answers = await med.askBatch(group.map((e) => ({ image: handle, question: testEntryQuestion(e) })), { ...run.generation, signal: stop.signal });
            for (let k = 0; k < group.length; k++) {
              const line = makeAnswerLine(group[k]!, answers[k]!.text, run.modelId, metadata);
              const recorded = (await redis.eval(RECORD_SCRIPT, 2, keys.results, keys.done, idKey(group[k]!.id), JSON.stringify(line))) as number;
              mine += recorded;
            }
          }
        } finally {
          await handle.dispose();
        }
      }
      answered += mine;
      jobs++;
      return { answered: mine };
    };

    const worker = new Worker(addr.run, processor, {
      connection: bullConnection(addr),
      concurrency: 1,
      lockDuration: run.lockMs,
      stalledInterval: run.stalledMs,
      maxStalledCount: run.attempts,
      autorun: false,
    });
    worker.on('error', () => undefined); // the run client reports the connection state
    worker.on('completed', (job: Job) => emit('job', `${(job.data as { image: string }).image}: ${(job.returnvalue as { answered: number } | undefined)?.answered ?? 0} answered`));
    worker.on('stalled', (jobId: string) => emit('stalled', `job ${jobId} stalled (its worker stopped renewing its lock): queued again`));
    worker.on('failed', (job: Job | undefined, err: Error) => {
      if (job) emit('job-failed', `${(job.data as { image: string }).image}: attempt ${job.attemptsMade} of ${run.attempts} failed: ${err.message}`);
    });
    const heartbeat = async () => {
      await redis.set(`${keys.workerPrefix}${id}`, JSON.stringify({ host: hostname(), pid: process.pid, answered, jobs, job: current ?? null }), 'PX', 3 * HEARTBEAT_MS).catch(() => undefined);
    };
    await heartbeat();
    const beat = setInterval(() => void heartbeat(), HEARTBEAT_MS);
    const running = worker.run().catch(() => undefined);
    let reason: QueueWorkerResult['reason'] = 'aborted';
    let failure: Error | undefined;
    try {
      while (!stop.signal.aborted) {
        await sleep(1000, stop.signal);
        if (client.downForMs() > redisTimeoutMs) {
          failure = gone();
          break;
        }
        // Nothing to ask while Redis is away; and a stop does not wait for an answer.
        if (client.downSince !== undefined) continue;
        const cur = await unlessAborted(readMeta(redis, addr.run).catch(() => undefined), stop.signal);
        if (cur?.state === 'done') {
          reason = 'finished';
          emit('finished', `the run ${addr.run} is complete (${answered} answered here, ${jobs} jobs)`);
          break;
        }
      }
    } finally {
      clearInterval(beat);
      o.signal?.removeEventListener('abort', onAbort);
      // Finished: nothing is in hand. Aborted or Redis gone: stop generating at once; the job in hand goes back to
      // the queue (or, Redis gone, to another worker when its lock expires).
      if (reason === 'aborted') stop.abort();
      // Redis up: BullMQ's own close, which also hands back a job it fetched but had not started. Redis away: its
      // normal close would wait for Redis forever (and its timers keep the process alive), so the job in hand is
      // given a bounded moment to settle and BullMQ is closed by force (the job's lock then expires: retried).
      const force = failure !== undefined || client.downSince !== undefined;
      const brief = Math.min(commandMs, 2000);
      if (force) await within(inHand, brief, 'handing back the job in hand').catch(() => undefined);
      await within(worker.close(force), force ? brief : commandMs + run.lockMs, 'closing the worker').catch(() => undefined);
      await within(running, brief, 'stopping the worker').catch(() => undefined);
      // The heartbeat key expires by itself; with Redis away, deleting it would only wait.
      if (!force) await redis.del(`${keys.workerPrefix}${id}`).catch(() => undefined);
      await med.dispose();
    }
    if (failure) throw failure;
    return { answered, jobs, reason };
  } catch (e) {
    if (e instanceof Error) e.message = addr.mask(e.message);
    throw e;
  } finally {
    await client.close();
  }
}
