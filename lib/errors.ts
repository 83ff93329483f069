/**
 * Every error llava-med throws is a LlavaMedError with a stable `code`.
 * Codes are part of the public API: callers switch on them, so never rename one.
 * Messages say what went wrong and what to do about it.
 */
export const ErrorCodes = [
  'ERR_INVALID_ARGUMENT',
  'ERR_FILE_NOT_FOUND',
  'ERR_NOT_GGUF',
  'ERR_GGUF_CORRUPT',
  'ERR_MODEL_LOAD',
  'ERR_MMPROJ_LOAD',
  'ERR_MMPROJ_MISMATCH',
  'ERR_CONTEXT_CREATE',
  'ERR_CONTEXT_FULL',
  'ERR_DECODE',
  'ERR_ENCODE',
  'ERR_TOKENIZE',
  'ERR_ABORTED',
  'ERR_DISPOSED',
  'ERR_BUSY',
  'ERR_NATIVE_LOAD',
  'ERR_NATIVE',
  'ERR_IMAGE_EMPTY',
  'ERR_IMAGE_DECODE',
  'ERR_IMAGE_TOO_LARGE',
  'ERR_IMAGE_FORMAT',
  'ERR_DICOM_UNSUPPORTED',
  'ERR_QUANTIZE',
  'ERR_FORMAT',
  'ERR_UNSAFE_PICKLE',
  'ERR_CONVERT',
  'ERR_SHAPE_MISMATCH',
  'ERR_MISSING_SHARD',
  'ERR_WRONG_BASE',
  'ERR_DATASET',
  'ERR_EVAL',
  'ERR_JUDGE',
  // Downloads (llava-med pull) and registered model names
  'ERR_HUB_NETWORK',
  'ERR_HUB_AUTH',
  'ERR_HUB_NOT_FOUND',
  'ERR_HUB_INTEGRITY',
  'ERR_DISK_SPACE',
  'ERR_LICENSE',
  'ERR_MODEL_NOT_FOUND',
] as const;

/** One of {@link ErrorCodes}: the stable `code` of a {@link LlavaMedError}. */
export type ErrorCode = (typeof ErrorCodes)[number];

/**
 * The only error type llava-med throws or rejects with. Switch on `code` (stable); `message` is for people
 * and may change. `cause` holds the underlying error (fs, native, network) when there is one.
 */
export class LlavaMedError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LlavaMedError';
    this.code = code;
  }
}

/** The one error factory (as sharp does): every throw site goes through here. */
export function llavaError(code: ErrorCode, message: string, cause?: unknown): LlavaMedError {
  return new LlavaMedError(code, message, cause === undefined ? undefined : { cause });
}

/** Whether `e` is a LlavaMedError (with code `code`, when given). A type guard; never throws. */
export function isLlavaMedError(e: unknown, code?: ErrorCode): e is LlavaMedError {
  return e instanceof LlavaMedError && (code === undefined || e.code === code);
}

/** An AbortSignal that fired becomes ERR_ABORTED (keeping the signal's reason as cause). */
export function throwIfAborted(signal: AbortSignal | undefined, what = 'operation'): void {
  if (signal?.aborted) throw llavaError('ERR_ABORTED', `The ${what} was aborted.`, signal.reason);
}

/**
 * Awaits all, like Promise.all, but when some fail throws the error of the first in argument
 * order, not of the first to settle: an error message must not depend on timing.
 */
export async function allInOrder<T extends readonly unknown[]>(...ps: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(ps);
  for (const r of settled) if (r.status === 'rejected') throw r.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
