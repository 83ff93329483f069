/**
 * split_list / get_chunk of llava/eval/model_vqa_med.py, for running the answer generation in
 * several processes: chunk_size = ceil(len / n), chunks = lst[i:i+chunk_size] for i in range(0, len, chunk_size).
 * Note this can yield FEWER than n chunks (9 items, n=4 → sizes 3,3,3): asking for chunk 3 then
 * fails in the original with IndexError, and here with ERR_INVALID_ARGUMENT.
 */
import { llavaError } from '../errors.js';

/**
 * Chunk `chunkIdx` (0-based) of `entries` split as the original's split_list / get_chunk.
 * @throws LlavaMedError `ERR_INVALID_ARGUMENT` when numChunks is not a positive integer or chunkIdx names no chunk.
 */
export function splitChunks<T>(entries: readonly T[], numChunks: number, chunkIdx: number): T[] {
  if (!Number.isInteger(numChunks) || numChunks < 1) {
    throw llavaError('ERR_INVALID_ARGUMENT', `numChunks must be a positive integer, got ${numChunks}.`);
  }
  if (!Number.isInteger(chunkIdx) || chunkIdx < 0) {
    throw llavaError('ERR_INVALID_ARGUMENT', `chunkIdx must be a non-negative integer, got ${chunkIdx}.`);
  }
  const size = Math.ceil(entries.length / numChunks);
  if (size === 0) {
    // range(0, 0, 0) raises "range() arg 3 must not be zero" in the original.
    throw llavaError('ERR_INVALID_ARGUMENT', 'Cannot split an empty question list into chunks.');
  }
  const count = Math.ceil(entries.length / size);
  if (chunkIdx >= count) {
    throw llavaError(
      'ERR_INVALID_ARGUMENT',
      `chunkIdx ${chunkIdx} does not exist: ${entries.length} questions split with chunk size ceil(${entries.length}/${numChunks}) = ${size} give only ${count} chunk(s).`,
    );
  }
  return entries.slice(chunkIdx * size, chunkIdx * size + size);
}

/** Where {@link selectChunk} took the chunk from. */
export type ChunkSource = 'flags' | 'default' | 'SLURM_ARRAY_TASK_ID' | 'JOB_COMPLETION_INDEX' | 'LLAVA_MED_CHUNK_IDX';

/** What {@link selectChunk} is given: the explicit settings (the CLI's flags) and the environment. */
export interface ChunkRequest {
  /** Chunks in all, given explicitly (`--num-chunks`); absent when not given. */
  numChunks?: number | undefined;
  /** The chunk, 0-based, given explicitly (`--chunk-idx`); absent when not given. */
  chunkIdx?: number | undefined;
  /** The environment to read the array variables from (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
}

/** The chunk a run answers, and why (see {@link selectChunk}). */
export interface ChunkSelection {
  /** Chunks in all (≥ 1). */
  numChunks: number;
  /** This run's chunk, 0-based, < `numChunks`. */
  chunkIdx: number;
  /** Which setting decided the chunk. */
  source: ChunkSource;
  /** One line for a person: the chunk and the settings it came from (the CLI prints it on stderr). */
  description: string;
}

/** The index variables, in the order they are reported. */
const INDEX_VARS = ['SLURM_ARRAY_TASK_ID', 'JOB_COMPLETION_INDEX', 'LLAVA_MED_CHUNK_IDX'] as const;

/** The chunk-index variables set (non-empty) in `env`, as `NAME=value`, in the order {@link selectChunk} reads them. */
export function chunkVariablesSet(env: ChunkRequest['env'] = process.env): string[] {
  return INDEX_VARS.filter((v) => (env?.[v] ?? '').trim() !== '').map((v) => `${v}=${env![v]}`);
}

function envInt(env: ChunkRequest['env'] & object, name: string, min: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^\s*\d+\s*$/.test(raw) || Number(raw) < min || !Number.isSafeInteger(Number(raw))) {
    throw llavaError('ERR_INVALID_ARGUMENT', `${name}=${JSON.stringify(raw)} is not an integer >= ${min}.`);
  }
  return Number(raw);
}

/**
 * Decides which chunk an `eval answer` run takes, from explicit settings or a cluster's array variables:
 *
 * - `chunkIdx` given: it is used (with `numChunks`, default 1); array variables are ignored, and the
 *   description says so.
 * - otherwise at most one index variable may be set:
 *   - `SLURM_ARRAY_TASK_ID` (a Slurm job array): chunk = the task id − `SLURM_ARRAY_TASK_MIN` (0 when unset),
 *     chunks = `SLURM_ARRAY_TASK_COUNT`. The array must be a plain range (`--array=0-3` or `1-4`, a `%` limit
 *     is fine): a step or a list of ids is refused, as the ids then do not number the chunks.
 *   - `JOB_COMPLETION_INDEX` (a Kubernetes Indexed Job): chunk = the index; chunks = `numChunks` or
 *     `LLAVA_MED_NUM_CHUNKS` (the Job's `completions`), which must be given.
 *   - `LLAVA_MED_CHUNK_IDX` (anything else): chunk = its value; chunks = `numChunks` or `LLAVA_MED_NUM_CHUNKS`,
 *     which must be given.
 * - none set: chunk 0 of `numChunks` (default 1), as before.
 *
 * Every count that is set (`numChunks`, `SLURM_ARRAY_TASK_COUNT`, `LLAVA_MED_NUM_CHUNKS`) must agree.
 * Whether an explicit `chunkIdx` exists for a given question list is checked when the list is split
 * ({@link answerQuestions}).
 * @throws LlavaMedError `ERR_INVALID_ARGUMENT` — ambiguous settings (two index variables, counts that
 *   disagree), a variable that is not a non-negative integer, an index variable without a count, a Slurm
 *   array with a step or a list, a chunk index from the environment ≥ the count.
 */
export function selectChunk(req: ChunkRequest = {}): ChunkSelection {
  const env = req.env ?? process.env;
  if (req.numChunks !== undefined && (!Number.isInteger(req.numChunks) || req.numChunks < 1)) {
    throw llavaError('ERR_INVALID_ARGUMENT', `numChunks must be a positive integer, got ${req.numChunks}.`);
  }
  if (req.chunkIdx !== undefined && (!Number.isInteger(req.chunkIdx) || req.chunkIdx < 0)) {
    throw llavaError('ERR_INVALID_ARGUMENT', `chunkIdx must be a non-negative integer, got ${req.chunkIdx}.`);
  }
  const setVars = INDEX_VARS.filter((v) => (env[v] ?? '').trim() !== '');
  const done = (numChunks: number, chunkIdx: number, source: ChunkSource, from: string): ChunkSelection => {
    // Explicit flags are checked by splitChunks, as before (its message also covers a list too short for them).
    if (source !== 'flags' && chunkIdx >= numChunks) {
      throw llavaError('ERR_INVALID_ARGUMENT', `Chunk index ${chunkIdx} (from ${from}) is not below the number of chunks, ${numChunks}.`);
    }
    return { numChunks, chunkIdx, source, description: `chunk ${chunkIdx} of ${numChunks} (0-based), from ${from}` };
  };

  if (req.chunkIdx !== undefined) {
    const ignored = setVars.length ? `; ${setVars.map((v) => `${v}=${env[v]}`).join(', ')} ignored` : '';
    const n = req.numChunks ?? 1;
    return done(n, req.chunkIdx, 'flags', `--chunk-idx ${req.chunkIdx} --num-chunks ${n}${ignored}`);
  }
  if (setVars.length > 1) {
    throw llavaError(
      'ERR_INVALID_ARGUMENT',
      `Ambiguous chunk: ${setVars.map((v) => `${v}=${env[v]}`).join(' and ')} are all set. Unset all but one, or pass --chunk-idx (and --num-chunks).`,
    );
  }

  // The counts that are set must agree.
  const counts: [string, number][] = [];
  if (req.numChunks !== undefined) counts.push(['--num-chunks', req.numChunks]);
  const envCount = envInt(env, 'LLAVA_MED_NUM_CHUNKS', 1);
  if (envCount !== undefined) counts.push(['LLAVA_MED_NUM_CHUNKS', envCount]);
  const var_ = setVars[0];
  if (var_ === 'SLURM_ARRAY_TASK_ID') {
    const slurmCount = envInt(env, 'SLURM_ARRAY_TASK_COUNT', 1);
    if (slurmCount !== undefined) counts.push(['SLURM_ARRAY_TASK_COUNT', slurmCount]);
  }
  if (new Set(counts.map(([, n]) => n)).size > 1) {
    throw llavaError('ERR_INVALID_ARGUMENT', `Ambiguous number of chunks: ${counts.map(([k, n]) => `${k} ${n}`).join(', ')}. Give one count, or equal ones.`);
  }
  const count = counts[0];

  if (var_ === undefined) {
    const n = count?.[1] ?? 1;
    return done(n, 0, 'default', count ? `${count[0]} ${n}, no chunk index set: the first chunk` : 'the default (one chunk: every question)');
  }
  if (var_ === 'SLURM_ARRAY_TASK_ID') {
    const id = envInt(env, 'SLURM_ARRAY_TASK_ID', 0)!;
    const min = envInt(env, 'SLURM_ARRAY_TASK_MIN', 0) ?? 0;
    const max = envInt(env, 'SLURM_ARRAY_TASK_MAX', 0);
    const slurmCount = envInt(env, 'SLURM_ARRAY_TASK_COUNT', 1);
    const step = envInt(env, 'SLURM_ARRAY_TASK_STEP', 1);
    if (!count) throw llavaError('ERR_INVALID_ARGUMENT', 'SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_COUNT: pass --num-chunks (the array size).');
    if ((step !== undefined && step !== 1) || (max !== undefined && slurmCount !== undefined && max - min + 1 !== slurmCount)) {
      throw llavaError(
        'ERR_INVALID_ARGUMENT',
        `The Slurm array (ids ${min}..${max ?? '?'}, ${slurmCount ?? '?'} tasks${step !== undefined ? `, step ${step}` : ''}) is not a plain range, so its ids do not number the chunks: submit it as --array=0-${count[1] - 1}, or pass --chunk-idx.`,
      );
    }
    if (id < min) throw llavaError('ERR_INVALID_ARGUMENT', `SLURM_ARRAY_TASK_ID=${id} is below SLURM_ARRAY_TASK_MIN=${min}.`);
    const from = `SLURM_ARRAY_TASK_ID=${id}${min ? ` - SLURM_ARRAY_TASK_MIN=${min}` : ''}, ${count[0]}=${count[1]}`;
    return done(count[1], id - min, 'SLURM_ARRAY_TASK_ID', from);
  }
  const idx = envInt(env, var_, 0)!;
  if (!count) {
    const what = var_ === 'JOB_COMPLETION_INDEX' ? "the Indexed Job's completions" : 'the number of chunks';
    throw llavaError('ERR_INVALID_ARGUMENT', `${var_} is set but no count: pass --num-chunks (${what}) or set LLAVA_MED_NUM_CHUNKS.`);
  }
  return done(count[1], idx, var_, `${var_}=${idx}, ${count[0]}=${count[1]}`);
}
