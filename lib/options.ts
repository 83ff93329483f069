/**
 * One schema per public options object (LlavaMed.load, generation, score). Every public entry point
 * parses its options here, so a misspelt key (`temprature`) or an out-of-range value (`topP: 2`) is
 * ERR_INVALID_ARGUMENT naming the key — with the nearest valid name for an unknown one — instead of
 * being ignored. `undefined` and `null` mean "the default" for every optional key. Deeper layers
 * (the engine, native code) still re-check what they receive.
 */
import { z } from 'zod';
import { llavaError } from './errors.js';
import type { Logger } from './engine/logger.js';
import type { LoadProgress } from './llava-med.js';

const fn = <T extends (...args: never[]) => unknown>(what: string) => z.custom<T>((v) => typeof v === 'function', { message: `must be a function (${what})` });
const opt = <T extends z.ZodType>(s: T) => s.nullish().transform((v) => v ?? undefined);
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);
const signal = opt(z.instanceof(AbortSignal, { message: 'must be an AbortSignal' }));
const mode = opt(z.enum(['auto', 'on', 'off']));

export const GenerationOptionsSchema = z.strictObject({
  temperature: opt(z.number().min(0)),
  topK: opt(int(0)),
  topP: opt(z.number().gt(0).max(1)),
  minP: opt(z.number().min(0).max(1)),
  repeatPenalty: opt(z.number().gt(0)),
  seed: opt(int(0, 0xffffffff)),
  maxTokens: opt(int(1)),
  stop: opt(z.array(z.string())),
  onTextChunk: opt(fn<(text: string) => void>('text => void')),
  stopOnAbortSignal: opt(z.boolean()),
  signal,
});

export const ScoreOptionsSchema = z.strictObject({ signal });
export const EmbedImageOptionsSchema = z.strictObject({ signal });

export const LoadOptionsSchema = z.strictObject({
  model: z.string({ message: 'must be a path to a GGUF file or a registered model name' }).min(1),
  mmproj: opt(z.string().min(1)),
  threads: opt(int(1, 1024)),
  contextSize: opt(int(1)),
  sequences: opt(int(1, 256)),
  imageCache: opt(int(0, 4096)),
  batchSize: opt(int(1)),
  gpuLayers: opt(z.union([z.literal('auto'), z.literal('max'), int(0)])),
  variant: opt(z.enum(['v0', 'v1.5'])),
  loadMode: opt(z.enum(['none', 'mmap', 'auto'])),
  kvCacheType: opt(z.enum(['f16', 'f32', 'bf16', 'q8_0', 'q4_0'])),
  flashAttn: mode,
  projectorFlashAttn: mode,
  maxImagePixels: opt(int(1)),
  logger: opt(fn<Logger>('(level, message) => void')),
  logLevel: opt(z.enum(['debug', 'info', 'warn', 'error'])),
  onProgress: opt(fn<(p: LoadProgress) => void>('progress => void')),
  signal,
});

/** Levenshtein distance, for "did you mean" (zod reports unknown keys but suggests nothing). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The valid key closest to `key`, when it is close enough to be a likely typo. */
export function nearestKey(key: string, valid: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const v of valid) {
    const d = distance(key, v);
    if (d < bestD) [best, bestD] = [v, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

/**
 * Parses `value` (already a plain copy, see lib/input.ts) with `schema`; the first problem becomes
 * ERR_INVALID_ARGUMENT: "<what>: unknown option 'temprature' (did you mean 'temperature'?)" or
 * "<what>: topP must be <= 1, got 2".
 */
export function parseOptions<S extends z.ZodObject>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const valid = Object.keys(schema.shape);
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const near = nearestKey(key, valid);
    throw llavaError('ERR_INVALID_ARGUMENT', `${what}: unknown option '${key}'${near ? ` (did you mean '${near}'?)` : ''}. Valid options: ${valid.join(', ')}.`);
  }
  const key = issue.path.map(String).join('.') || 'options';
  const got = issue.path.reduce<unknown>((o, k) => (o as Record<PropertyKey, unknown> | undefined)?.[k as PropertyKey], value);
  const shown = typeof got === 'function' ? 'a function' : typeof got === 'string' ? JSON.stringify(got) : typeof got === 'object' && got !== null ? 'an object' : String(got);
  throw llavaError('ERR_INVALID_ARGUMENT', `${what}: ${key} ${describeIssue(issue)}, got ${shown}.`);
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'too_small':
      return `must be ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}`;
    case 'too_big':
      return `must be ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_type':
      if (issue.message.startsWith('must')) return issue.message;
      return issue.expected === 'int' ? 'must be an integer' : `must be a ${issue.expected}`;
    default:
      return issue.message.startsWith('must') ? issue.message : `is invalid (${issue.message})`;
  }
}
