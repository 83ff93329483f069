/**
 * The producer of a queued run (`eval answer --queue`): puts the questions on a BullMQ queue, one job per
 * image, collects the answers the workers record (once per question id), and writes the answers file in
 * test.json order when every question is answered or has failed its last attempt.
 */
import { createHash, randomBytes } from 'node:crypto';
import { isAbsolute, join, resolve } from 'node:path';
import { Queue } from 'bullmq';
import { llavaError, throwIfAborted } from '../../errors.js';
import { readRegularFile } from '../../formats/file-read.js';
import { AnswersFile, idKey, readTestFile } from '../answers-file.js';
import { writeFileAtomic } from '../atomic.js';
import { AnswerLineSchema, type AnswerLine, type TestEntry } from '../formats.js';
import { checkResumedModel } from '../answer.js';
import type { Variant } from '../../llava-med.js';
import { ggufVariant, identityDifferences, modelIdentity, recordedModel } from '../model-identity.js';
import { parseQueueUrl } from './connection.js';
import { readMeta, runKeys, RunGenerationSchema, type JobData, type RunGeneration, type RunMeta } from './protocol.js';
import { bullConnection, commandTimeoutFor, isConnectionError, RunClient, sleep, within } from './redis.js';

/** Progress of a queued run (see {@link runQueue}). */
export interface QueueProgress {
  /** Questions answered (this run's, not those already in the answers file). */
  done: number;
  /** Questions this run answers. */
  total: number;
  /** Questions skipped because the answers file already had them. */
  skipped: number;
  /** Jobs (images) being answered by a worker now. */
  running: number;
  /** Jobs waiting for a worker. */
  waiting: number;
  /** Questions whose job failed its last attempt. */
  failed: number;
  /** Workers whose heartbeat is fresh. */
  workersAlive: number;
  /** Whether Redis is reachable now. */
  connected: boolean;
  /** Time since the run started (ms). */
  elapsedMs: number;
}

/** Something a person should know about, reported as it happens (messages never hold credentials). */
export interface QueueNotice {
  /** `redis-down`: the connection is lost (reconnecting); `redis-up`: back; `redis-reset`: Redis lost the run's state (restarted without persistence, flushed) and the unanswered questions were queued again; `resumed`: a run of this name was already in Redis and is picked up; `requeued`: questions without an answer or a job were queued again. */
  kind: 'redis-down' | 'redis-up' | 'redis-reset' | 'resumed' | 'requeued';
  /** One line for a person. */
  message: string;
}

/** A question that failed its last attempt. */
export interface QueueFailure {
  /** The question's id. */
  questionId: number | string;
  /** Its image. */
  image: string;
  /** The last error (with its code), as the worker reported it. */
  error: string;
  /** Attempts made. */
  attempts: number;
}

/** Options of {@link runQueue}. */
export interface QueueRunOptions {
  /** `redis://[user[:password]@]host[:port][/db]/<run-name>` (see {@link parseQueueUrl}). */
  queue: string;
  /** The LLaVA-format test.json. */
  questionFile: string;
  /** Folder the entries' `image` paths are relative to (workers use it unless given their own). */
  imageFolder: string;
  /** The answers jsonl; ids already in it are skipped, and it is rewritten whole, in test.json order, at the end. */
  answersFile: string;
  /** The run's language model (path or registered name): workers with another model are refused. */
  model: string;
  /** The run's projector (default: the registered name's). */
  mmproj?: string | undefined;
  /** Recorded in each line's model_id. Default: `model`. */
  modelId?: string | undefined;
  /** Generation options every worker uses. Default: the variant's original settings. */
  generation?: RunGeneration | undefined;
  /** The prompt variant every worker asks with, overriding the GGUF's (as `LlavaMed.load`'s `variant`). Default: the GGUF's. */
  variant?: Variant | undefined;
  /** Attempts per job before its questions are reported as failed. Default 3. */
  attempts?: number | undefined;
  /** A job whose worker stops renewing its lock for this long is retried by another worker (ms). Default 30000. */
  lockMs?: number | undefined;
  /** How often workers look for such jobs (ms). Default: `lockMs`. */
  stalledMs?: number | undefined;
  /** How long Redis may stay unreachable before the run gives up (ms). Default 600000. */
  redisTimeoutMs?: number | undefined;
  /** How often the producer polls Redis (ms). Default 500. */
  pollMs?: number | undefined;
  /** Called after each poll. */
  onProgress?: ((p: QueueProgress) => void) | undefined;
  /** Called for connection losses, resets and resumes. */
  onNotice?: ((n: QueueNotice) => void) | undefined;
  /** Aborts the wait: rejects with `ERR_ABORTED`. The queue stays in Redis; running the producer again resumes it. */
  signal?: AbortSignal | undefined;
}

/** What {@link runQueue} did. */
export interface QueueRunResult {
  /** The answers file written. */
  answersFile: string;
  /** Questions answered by the workers in this run. */
  done: number;
  /** Questions this run answered (those not already in the answers file). */
  total: number;
  /** Questions skipped because the answers file already had them. */
  skipped: number;
  /** Jobs queued (one per image). */
  jobs: number;
  /** Distinct workers seen alive during the run. */
  workersSeen: number;
  /** Time the run took (ms). */
  elapsedMs: number;
}

const DEFAULTS = { attempts: 3, lockMs: 30_000, redisTimeoutMs: 600_000, pollMs: 500 };

function jobIdFor(image: string, round: number): string {
  const h = createHash('sha256').update(image).digest('hex').slice(0, 24);
  return round === 0 ? `img-${h}` : `img-${h}-r${round}`;
}

function sameRun(a: RunMeta, b: Pick<RunMeta, 'identity' | 'generation' | 'modelId' | 'variant'>): string[] {
  const out = identityDifferences(b.identity, a.identity, { mine: 'now', theirs: 'in the queued run' });
  if (a.variant !== b.variant) out.push(`variant: ${b.variant ?? "the GGUF's own"} now, ${a.variant ?? "the GGUF's own"} in the queued run`);
  if (JSON.stringify(a.generation) !== JSON.stringify(b.generation)) out.push(`generation options: ${JSON.stringify(b.generation)} now, ${JSON.stringify(a.generation)} in the queued run`);
  if (a.modelId !== b.modelId) out.push(`model_id: ${JSON.stringify(b.modelId)} now, ${JSON.stringify(a.modelId)} in the queued run`);
  return out;
}

/**
 * Runs a queued evaluation: every question of `questionFile` not yet in `answersFile` is put on the queue,
 * one job per image; workers ({@link runQueueWorker}) on any machine answer them; this call waits until
 * each question is answered or its job has failed `attempts` times, then writes the answers file in
 * test.json order (through a temporary file: never a partial file). A run interrupted here resumes when
 * called again with the same queue URL; a Redis that loses its state meanwhile (restarted without
 * persistence) gets the unanswered questions again.
 *
 * @throws LlavaMedError `ERR_INVALID_ARGUMENT` (bad URL or options), `ERR_EVAL` (Redis unreachable, a run of
 *   that name with another model or other options, questions that failed their last attempt — listed
 *   with their errors after the answered ones are written), the errors of {@link modelIdentity} and of
 *   reading the test and answers files, `ERR_ABORTED`.
 */
export async function runQueue(o: QueueRunOptions): Promise<QueueRunResult> {
  const addr = parseQueueUrl(o.queue);
  const attempts = o.attempts ?? DEFAULTS.attempts;
  const lockMs = o.lockMs ?? DEFAULTS.lockMs;
  const stalledMs = o.stalledMs ?? lockMs;
  const pollMs = o.pollMs ?? DEFAULTS.pollMs;
  const redisTimeoutMs = o.redisTimeoutMs ?? DEFAULTS.redisTimeoutMs;
  for (const [k, v] of Object.entries({ attempts, lockMs, stalledMs, pollMs, redisTimeoutMs })) {
    if (!Number.isInteger(v) || v < 1) throw llavaError('ERR_INVALID_ARGUMENT', `${k} must be a positive integer, got ${v}.`);
  }
  const gen = RunGenerationSchema.safeParse(o.generation ?? {});
  if (!gen.success) throw llavaError('ERR_INVALID_ARGUMENT', `generation: ${gen.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const generation = Object.fromEntries(Object.entries(gen.data).filter(([, v]) => v !== undefined)) as RunGeneration;
  const t0 = performance.now();

  const entries = await readTestFile(o.questionFile);
  for (const e of entries) {
    if (typeof e.image !== 'string') throw llavaError('ERR_EVAL', `question ${String(e.id)} in ${o.questionFile} has no image.`);
  }
  let existing: AnswerLine[];
  {
    await using file = await AnswersFile.open(o.answersFile);
    existing = [...file.lines];
  }
  const testKeys = new Set(entries.map((e) => idKey(e.id)));
  const foreign = existing.filter((l) => !testKeys.has(idKey(l.question_id)));
  if (foreign.length) throw llavaError('ERR_EVAL', `${o.answersFile} answers ${foreign.length} id(s) that are not in ${o.questionFile} (first: ${JSON.stringify(foreign[0]!.question_id)}): use another answers file.`);
  const have = new Map(existing.map((l) => [idKey(l.question_id), l]));
  const todo = entries.filter((e) => !have.has(idKey(e.id)));

  const identity = await modelIdentity({ model: o.model, mmproj: o.mmproj });
  if (o.variant !== undefined && o.variant !== 'v0' && o.variant !== 'v1.5') throw llavaError('ERR_INVALID_ARGUMENT', `variant must be 'v0' or 'v1.5', not ${JSON.stringify(o.variant)}.`);
  if (o.variant === undefined && ggufVariant(identity) === undefined) {
    // Each worker would detect it from its own files; the run must fix it for all of them.
    throw llavaError('ERR_INVALID_ARGUMENT', `${o.model} records no LLaVA-Med variant (llava_med.variant; it was not converted by llava-med): pass --variant v0 or --variant v1.5 so that every worker asks with the same prompt.`);
  }
  checkResumedModel({ path: o.answersFile, lines: existing }, recordedModel(identity, o.variant ?? ggufVariant(identity)));
  const imageFolder = resolve(o.imageFolder);
  // One job per image, in the order of each image's first question.
  const groups = new Map<string, TestEntry[]>();
  for (const e of todo) groups.set(e.image!, [...(groups.get(e.image!) ?? []), e]);
  const jobData: JobData[] = [];
  for (const [image, es] of groups) {
    const abs = isAbsolute(image) ? image : join(imageFolder, image);
    const sha256 = createHash('sha256').update(await readRegularFile(abs, { what: 'Image' })).digest('hex');
    jobData.push({ image, sha256, entries: es });
  }

  const keys = runKeys(addr.run);
  const notice = (kind: QueueNotice['kind'], message: string) => o.onNotice?.({ kind, message });
  // Every command is bounded: one sent as the connection drops fails after commandMs instead of waiting for
  // Redis forever, and the loop below then gives up once Redis has been away for redisTimeoutMs.
  const commandMs = commandTimeoutFor(redisTimeoutMs);
  const client = new RunClient(addr, commandMs);
  await client.connect(Math.min(redisTimeoutMs, 10_000), o.signal);
  const redis = client.redis;
  const queue = new Queue<JobData>(addr.run, { connection: bullConnection(addr, commandMs) });
  queue.on('error', () => undefined); // the run client reports the connection state
  const results = new Map<string, AnswerLine>();
  const failures = new Map<string, QueueFailure>();
  const workersSeen = new Set<string>();
  try {
    const meta: RunMeta = {
      version: 1, epoch: randomBytes(8).toString('hex'), state: 'running', modelId: o.modelId ?? o.model,
      identity: { model: identity.model, mmproj: identity.mmproj }, generation, imageFolder, attempts, lockMs, stalledMs,
      ...(o.variant !== undefined ? { variant: o.variant } : {}),
    };
    const old = await readMeta(redis, addr.run);
    if (old && old.state === 'running') {
      const diffs = sameRun(old, meta);
      if (diffs.length) {
        throw llavaError('ERR_EVAL', `The queue ${addr.display} already holds a run of that name with another model or options:\n  - ${diffs.join('\n  - ')}\nFinish that run (run its producer again) or choose another run name.`);
      }
      notice('resumed', `resuming the run ${addr.run} found in Redis (answers recorded there are kept)`);
    } else {
      // A finished run of the same name, or none: start clean.
      await redis.del(keys.results, keys.done);
      await queue.obliterate({ force: true });
    }
    await redis.set(keys.meta, JSON.stringify(meta));
    // Failed jobs of an earlier attempt at this run are queued again.
    await queue.clean(0, 0, 'failed');
    const todoKeys = new Set(todo.map((e) => idKey(e.id)));
    const add = async (data: JobData[], round: number) => {
      if (!data.length) return;
      await queue.addBulk(data.map((d) => ({
        name: 'image', data: d,
        opts: { jobId: jobIdFor(d.image, round), attempts, removeOnComplete: true, removeOnFail: false },
      })));
    };
    await add(jobData, 0);

    let doneIdx = 0;
    let round = 0;
    let wasDown = false;
    let lastFailedCount = -1;
    const outstanding = () => jobData
      .map((d) => ({ ...d, entries: d.entries.filter((e) => !results.has(idKey(e.id)) && !failures.has(idKey(e.id))) }))
      .filter((d) => d.entries.length > 0);
    const progress = (counts: { active: number; waiting: number }, workersAlive: number): QueueProgress => ({
      done: results.size, total: todo.length, skipped: entries.length - todo.length, running: counts.active, waiting: counts.waiting,
      failed: failures.size, workersAlive, connected: client.downSince === undefined, elapsedMs: performance.now() - t0,
    });
    let last = { active: 0, waiting: jobData.length };
    /** The answers file: the lines it had and those collected, in test.json order (atomically: never a partial file). */
    const writeAnswers = async () => {
      const text = entries
        .map((e) => have.get(idKey(e.id)) ?? results.get(idKey(e.id)))
        .filter((l): l is AnswerLine => l !== undefined)
        .map((l) => JSON.stringify(l) + '\n')
        .join('');
      await writeFileAtomic(o.answersFile, text);
    };
    let alive = 0;

    while (results.size + failures.size < todo.length) {
      throwIfAborted(o.signal, 'queued run');
      if (client.downSince !== undefined) {
        if (!wasDown) notice('redis-down', `lost the connection to Redis at ${addr.display}${client.lastError ? ` (${client.lastError})` : ''}; reconnecting (giving up after ${Math.round(redisTimeoutMs / 1000)} s)`);
        wasDown = true;
        if (client.downForMs() > redisTimeoutMs) {
          // Keep what was collected (Redis may come back without it): a rerun queues only the rest.
          await writeAnswers();
          throw llavaError(
            'ERR_EVAL',
            `Redis at ${addr.display} has been unreachable for ${+(redisTimeoutMs / 1000).toFixed(3)} s${client.lastError ? ` (${client.lastError})` : ''}. ${results.size} of ${todo.length} answers were collected and are in ${o.answersFile} with the ${existing.length} it had; run the same command again once Redis is back to resume.`,
          );
        }
        o.onProgress?.(progress(last, alive));
        await sleep(pollMs, o.signal);
        continue;
      }
      try {
        if (wasDown) notice('redis-up', `Redis at ${addr.display} is back`);
        wasDown = false;
        const cur = await readMeta(redis, addr.run);
        if (!cur || cur.epoch !== meta.epoch) {
          // Redis lost the run (restarted without persistence, flushed, or rolled back): recreate it.
          await redis.set(keys.meta, JSON.stringify(meta));
          doneIdx = 0;
          const left = outstanding();
          round++;
          await add(left, round);
          notice('redis-reset', `Redis at ${addr.display} lost the run's state (restarted without persistence?); ${results.size} answers were already collected here, ${left.reduce((n, d) => n + d.entries.length, 0)} unanswered questions queued again`);
        }
        // Counts first, answers second: a job that is no longer active has its answers recorded already.
        const counts = await queue.getJobCounts('active', 'waiting', 'delayed', 'prioritized', 'failed');
        const len = await redis.llen(keys.done);
        if (len < doneIdx) doneIdx = 0; // rolled back: read again (answers dedupe by id)
        if (len > doneIdx) {
          const ks = await redis.lrange(keys.done, doneIdx, len - 1);
          const lines = ks.length ? await redis.hmget(keys.results, ...ks) : [];
          ks.forEach((k, i) => {
            const raw = lines[i];
            if (raw == null || results.has(k) || !todoKeys.has(k)) return;
            const parsed = AnswerLineSchema.safeParse(JSON.parse(raw));
            if (parsed.success) results.set(k, parsed.data);
          });
          doneIdx = len;
        }
        if ((counts.failed ?? 0) !== lastFailedCount) {
          lastFailedCount = counts.failed ?? 0;
          for (const job of await queue.getFailed()) {
            if (!job) continue;
            for (const e of job.data.entries) {
              const k = idKey(e.id);
              if (!todoKeys.has(k) || results.has(k)) continue;
              failures.set(k, { questionId: e.id, image: job.data.image, error: addr.mask(job.failedReason ?? 'unknown error'), attempts: job.attemptsMade });
            }
          }
        }
        const workerKeys = await scanAll(redis, `${keys.workerPrefix}*`);
        for (const k of workerKeys) workersSeen.add(k);
        alive = workerKeys.length;
        last = { active: counts.active ?? 0, waiting: (counts.waiting ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0) };
        // Questions with neither an answer, a failure nor a job (their job was lost): queue them again.
        if (last.active === 0 && last.waiting === 0) {
          const left = outstanding();
          if (left.length) {
            round++;
            await add(left, round);
            notice('requeued', `${left.reduce((n, d) => n + d.entries.length, 0)} unanswered question(s) had no job; queued again`);
          }
        }
        o.onProgress?.(progress(last, alive));
      } catch (e) {
        // A command that fails because the connection just dropped is retried at the next poll.
        if (client.downSince === undefined && !isConnectionError(e)) throw e;
      }
      if (results.size + failures.size < todo.length) await sleep(pollMs, o.signal);
    }
    throwIfAborted(o.signal, 'queued run');

    // Every question settled: the answers file, whole, in test.json order.
    await writeAnswers();
    // Mark the run done (the workers stop when they see it) and clear it.
    try {
      await redis.set(keys.meta, JSON.stringify({ ...meta, state: 'done' }), 'PX', 3_600_000);
      await redis.del(keys.results, keys.done);
      await within(queue.obliterate({ force: true }), commandMs, 'clearing the queue');
    } catch (e) {
      if (!isConnectionError(e)) throw e;
      throw llavaError(
        'ERR_EVAL',
        `The answers file ${o.answersFile} is written (${results.size + existing.length} answers), but Redis at ${addr.display} did not answer while the run was being closed (${addr.mask((e as Error).message)}), so the workers do not know it is complete: run the same command again once Redis is back (nothing is left to answer; it closes the run).`,
        e,
      );
    }
    if (failures.size) {
      const list = [...failures.values()];
      throw llavaError(
        'ERR_EVAL',
        `${list.length} question(s) failed after ${attempts} attempt(s) each; the ${results.size + existing.length} answered are in ${o.answersFile}, and running the same command again retries the rest:\n` +
          list.slice(0, 20).map((f) => `  - ${JSON.stringify(f.questionId)} (${f.image}): ${f.error}`).join('\n') +
          (list.length > 20 ? `\n  … (${list.length} in all)` : ''),
      );
    }
    return { answersFile: o.answersFile, done: results.size, total: todo.length, skipped: entries.length - todo.length, jobs: jobData.length, workersSeen: workersSeen.size, elapsedMs: performance.now() - t0 };
  } catch (e) {
    if (e instanceof Error) e.message = addr.mask(e.message);
    throw e;
  } finally {
    // Never wait on a Redis that is away: a close that does not finish in time is cut.
    await within(queue.close(), commandMs, 'closing the queue').catch(() => void queue.disconnect().catch(() => undefined));
    await client.close();
  }
}

async function scanAll(redis: import('ioredis').Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out;
}
