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

/** A call waiting in an OperationQueue. */
interface Waiter {
  start(done: () => void): Promise<void>;
  cancel(e: LlavaMedError): void;
}

/**
 * Serializes async operations on one native object: each runs after the previous one settled,
 * in call order. A waiting call whose signal aborts is rejected at once (ERR_ABORTED) and never
 * runs. Each operation gets a signal that fires when its caller's signal aborts or when the
 * queue is closed, for the native worker's abort flag. close() rejects the waiting calls
 * (ERR_DISPOSED), aborts the running one (which then rejects with ERR_DISPOSED, unless it
 * finished first) and resolves when it has settled.
 */
export class OperationQueue {
  private readonly waiting: Waiter[] = [];
  private running?: Promise<void>;
  private readonly closer = new AbortController();
  private closed = false;

  constructor(private readonly what: string) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** Number of operations waiting or running. */
  get size(): number {
    return this.waiting.length + (this.running ? 1 : 0);
  }

  run<T>(op: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.closed) return Promise.reject(this.disposedError());
    if (signal?.aborted) return Promise.reject(this.abortedWaiting(signal));
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiting.indexOf(waiter);
        if (i < 0) return; // already running: the operation's own signal handles it
        this.waiting.splice(i, 1);
        reject(this.abortedWaiting(signal));
      };
      const waiter: Waiter = {
        // `done` frees the queue before the caller hears of the result, so size is exact then
        start: async (done) => {
          signal?.removeEventListener('abort', onAbort);
          let settle: () => void;
          try {
            if (this.closed) throw this.disposedError();
            if (signal?.aborted) throw this.abortedWaiting(signal);
            const opSignal = signal ? AbortSignal.any([signal, this.closer.signal]) : this.closer.signal;
            const value = await op(opSignal);
            settle = () => resolve(value);
          } catch (e) {
            settle = () => reject(this.mapError(e, signal));
          }
          done();
          settle();
        },
        cancel: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
      this.pump();
    });
  }

  // Starts the next waiting call once none runs; operations start in a microtask, never
  // inside the caller's run().
  private pump(): void {
    if (this.running || this.waiting.length === 0) return;
    const next = this.waiting.shift()!;
    this.running = Promise.resolve().then(() =>
      next.start(() => {
        this.running = undefined;
        this.pump();
      }),
    );
  }

  // An operation stopped by close() reports the dispose, not an abort the caller never asked for.
  private mapError(e: unknown, signal?: AbortSignal): LlavaMedError {
    const err = fromNative(e);
    if (err.code === 'ERR_ABORTED' && this.closer.signal.aborted && !signal?.aborted) return this.disposedError(err);
    return err;
  }

  /**
   * Stops accepting work, rejects the waiting calls, aborts the running one, and resolves
   * when it has settled.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.cancel(this.disposedError());
    this.closer.abort();
    await this.running;
  }

  private abortedWaiting(signal?: AbortSignal): LlavaMedError {
    return llavaError('ERR_ABORTED', `The call on the ${this.what} was aborted before it started.`, signal?.reason);
  }

  disposedError(cause?: unknown): LlavaMedError {
    return llavaError('ERR_DISPOSED', `The ${this.what} has been disposed; create a new one.`, cause);
  }

  assertOpen(): void {
    if (this.closed) throw this.disposedError();
  }
}
