/**
 * What the producer and the workers of a queued run share in Redis, besides BullMQ's own keys
 * (`bull:<run>:*`):
 *
 *   llava-med:<run>:meta         JSON {@link RunMeta}: the model identity, generation options, timings
 *   llava-med:<run>:results      hash: question key (idKey) → the answer line's JSON, written once (HSETNX)
 *   llava-med:<run>:done         list: question keys in the order their first answer landed
 *   llava-med:<run>:worker:<id>  one key per live worker (expires unless renewed): its heartbeat
 *
 * A job is one image and its questions (`JobData`), so a worker encodes the image once.
 */
import { z } from 'zod';
import type { Redis } from 'ioredis';
import { llavaError } from '../../errors.js';
import { TestEntrySchema } from '../formats.js';
import type { GenerationOptions } from '../../llava-med.js';

/** Redis keys of one run. */
export function runKeys(run: string) {
  const base = `llava-med:${run}`;
  return {
    meta: `${base}:meta`,
    results: `${base}:results`,
    done: `${base}:done`,
    workerPrefix: `${base}:worker:`,
  };
}

const GgufIdentitySchema = z.object({ provenance: z.record(z.string(), z.string()), fingerprint: z.string() });

/** Generation options a run fixes for all its workers (JSON-safe subset of GenerationOptions). */
export const RunGenerationSchema = z.strictObject({
  temperature: z.number().optional(),
  topK: z.number().optional(),
  topP: z.number().optional(),
  minP: z.number().optional(),
  repeatPenalty: z.number().optional(),
  seed: z.number().optional(),
  maxTokens: z.number().optional(),
  stop: z.array(z.string()).optional(),
});

/** The generation options a queued run fixes for every worker (the JSON-safe ones of {@link GenerationOptions}). */
export type RunGeneration = Pick<GenerationOptions, 'temperature' | 'topK' | 'topP' | 'minP' | 'repeatPenalty' | 'seed' | 'maxTokens' | 'stop'>;

export const RunMetaSchema = z.object({
  version: z.literal(1),
  /** Changes each time a producer (re)creates the run's state. */
  epoch: z.string(),
  state: z.enum(['running', 'done']),
  modelId: z.string(),
  identity: z.object({ model: GgufIdentitySchema, mmproj: GgufIdentitySchema }),
  generation: RunGenerationSchema,
  /** The prompt variant every worker asks with (the producer's --variant); absent: the GGUF's own. */
  variant: z.enum(['v0', 'v1.5']).optional(),
  /** The producer's image folder (absolute); workers may be given another. */
  imageFolder: z.string(),
  attempts: z.number().int().min(1),
  lockMs: z.number().int().min(1),
  stalledMs: z.number().int().min(1),
});
export type RunMeta = z.infer<typeof RunMetaSchema>;

export const JobDataSchema = z.object({
  /** The image path, relative to the image folder. */
  image: z.string(),
  /** SHA-256 of the image file as the producer read it: a worker with another file refuses the job. */
  sha256: z.string(),
  /** The questions about this image, in test.json order. */
  entries: z.array(TestEntrySchema).min(1),
});
export type JobData = z.infer<typeof JobDataSchema>;

/** Reads and validates the run's meta; undefined when absent. */
export async function readMeta(redis: Redis, run: string): Promise<RunMeta | undefined> {
  const raw = await redis.get(runKeys(run).meta);
  if (raw === null) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch (e) {
    throw llavaError('ERR_EVAL', `The run ${run}'s state in Redis is not JSON (key ${runKeys(run).meta}): written by something else? Use another run name.`, e);
  }
  const r = RunMetaSchema.safeParse(data);
  if (!r.success) {
    throw llavaError('ERR_EVAL', `The run ${run}'s state in Redis (key ${runKeys(run).meta}) is not a llava-med run of this version: ${r.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}. Use another run name.`);
  }
  return r.data;
}

/** Records one answer if the question has none yet; returns 1 when this call recorded it. */
export const RECORD_SCRIPT = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0`;
