/**
 * What every engine wrapper shares: a FIFO queue (one native operation at a time per
 * object, in call order), abort flags wired to AbortSignals, dispose bookkeeping, and the
 * mapping of native errors (plain Errors with a `code`) to LlavaMedError.
 */
import { ErrorCodes, LlavaMedError, llavaError, type ErrorCode } from '../errors.js';

/** Turns an error thrown by the addon into a LlavaMedError, keeping its code. */
export function fromNative(e: unknown): LlavaMedError {
  if (e instanceof LlavaMedError) return e;
  const err = e as { code?: string; message?: string };
  const code = (ErrorCodes as readonly string[]).includes(err?.code ?? '') ? (err.code as ErrorCode) : 'ERR_NATIVE';
  return llavaError(code, err?.message ?? String(e), e);
}

/** An Int32Array(1) the native worker polls; set to 1 when `signal` aborts. */
export class AbortLink {
  readonly flag = new Int32Array(1);
  private readonly onAbort = () => Atomics.store(this.flag, 0, 1);
  constructor(private readonly signal?: AbortSignal) {
    if (signal?.aborted) this.flag[0] = 1;
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }
  get aborted(): boolean {
    return this.flag[0] !== 0;
  }
  [Symbol.dispose](): void {
    this.signal?.removeEventListener('abort', this.onAbort);
  }
}

export function abortedError(what: string, signal?: AbortSignal): LlavaMedError {
  return llavaError('ERR_ABORTED', `The ${what} was aborted.`, signal?.reason);
}

/**
 * Serializes async operations on one native object: each runs after the previous one settled,
 * in call order. After close(), new calls fail with ERR_DISPOSED and calls still waiting are
 * rejected; the running one finishes first (dispose waits for it).
 */
export class OperationQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  private pending = 0;

  constructor(private readonly what: string) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** Number of operations waiting or running. */
  get size(): number {
    return this.pending;
  }

  run<T>(op: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.closed) return Promise.reject(this.disposedError());
    this.pending++;
    const result = this.tail.then(async () => {
      if (this.closed) throw this.disposedError();
      if (signal?.aborted) throw abortedError(this.what, signal);
      try {
        return await op();
      } catch (e) {
        throw fromNative(e);
      }
    });
    const settled = result.then(
      () => undefined,
      () => undefined,
    ).finally(() => this.pending--);
    this.tail = settled;
    return result;
  }

  /** Stops accepting work and resolves when the running operation (if any) has settled. */
  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
  }

  disposedError(): LlavaMedError {
    return llavaError('ERR_DISPOSED', `The ${this.what} has been disposed; create a new one.`);
  }

  assertOpen(): void {
    if (this.closed) throw this.disposedError();
  }
}
