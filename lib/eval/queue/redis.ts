/** One ioredis client per producer or worker, with the outage bookkeeping both need. */
import { Redis } from 'ioredis';
import { llavaError } from '../../errors.js';
import type { QueueAddress } from './connection.js';

/**
 * Connection options for BullMQ's own clients: reconnect forever, commands wait for the connection — for at most
 * `commandTimeoutMs` when given (then they reject with "Command timed out"; never for a Worker, whose blocking
 * commands wait on purpose).
 */
export function bullConnection(addr: QueueAddress, commandTimeoutMs?: number) {
  return {
    ...addr.connection, maxRetriesPerRequest: null, retryStrategy: (n: number) => Math.min(100 * n, 2000),
    ...(commandTimeoutMs !== undefined ? { commandTimeout: commandTimeoutMs } : {}),
  };
}

/** How long one command of the run's own client may wait for an answer, queued while Redis is away included. */
export function commandTimeoutFor(redisTimeoutMs: number): number {
  return Math.min(10_000, redisTimeoutMs);
}

/** Whether an error is a lost, refused or timed-out connection (retried at the next poll), not a real failure. */
export function isConnectionError(e: unknown): boolean {
  const msg = e instanceof Error ? e.message : String(e);
  return /Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|Stream isn't writeable|LOADING|READONLY|MaxRetriesPerRequest|Command timed out/i.test(msg);
}

/** `p`, or a "Command timed out" rejection (a connection error) once `ms` have passed without it settling. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Command timed out: ${what} did not finish within ${+(ms / 1000).toFixed(3)} s`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const AUTH_ERROR = /WRONGPASS|NOAUTH|invalid password|invalid username|AUTH failed|NOPERM/i;

/** A client that remembers since when it is down and why (masked). */
export class RunClient {
  readonly redis: Redis;
  /** Time the connection was lost (performance.now()), or undefined while connected. */
  downSince: number | undefined;
  /** The last connection error, masked. */
  lastError = '';

  /** `commandTimeoutMs`: see {@link bullConnection}; every command of this client is bounded by it. */
  constructor(readonly addr: QueueAddress, commandTimeoutMs: number, onError?: (message: string) => void) {
    this.redis = new Redis({ ...bullConnection(addr, commandTimeoutMs), lazyConnect: true });
    this.downSince = performance.now();
    this.redis.on('error', (e: Error) => {
      const msg = addr.mask(e.message);
      const changed = msg !== this.lastError;
      this.lastError = msg;
      if (changed) onError?.(msg);
    });
    this.redis.on('close', () => (this.downSince ??= performance.now()));
    this.redis.on('ready', () => {
      this.downSince = undefined;
      this.lastError = '';
    });
  }

  /**
   * Connects, failing with ERR_EVAL (address masked) when Redis does not answer within `timeoutMs`.
   */
  async connect(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let onError: ((e: Error) => void) | undefined;
    let onAbort: (() => void) | undefined;
    try {
      await Promise.race([
        // lazyConnect rejects only the first attempt; the retries go on until 'ready' or the timeout.
        new Promise<void>((resolve) => {
          this.redis.once('ready', () => resolve());
          this.redis.connect().catch(() => undefined);
        }),
        new Promise<never>((_, reject) => {
          onError = (e: Error) => {
            const msg = this.addr.mask(e.message);
            if (AUTH_ERROR.test(msg)) {
              reject(llavaError('ERR_EVAL', `Redis at ${this.addr.display} refused the credentials (${msg}): check the user and password in the URL or in LLAVA_MED_REDIS_USERNAME / LLAVA_MED_REDIS_PASSWORD.`));
            }
          };
          this.redis.on('error', onError);
          timer = setTimeout(() => reject(llavaError('ERR_EVAL', `Cannot reach Redis at ${this.addr.display} within ${+(timeoutMs / 1000).toFixed(3)} s${this.lastError ? ` (${this.lastError})` : ''}. Is redis-server running there, and are the host, port and credentials right?`)), timeoutMs);
          onAbort = () => reject(llavaError('ERR_ABORTED', 'Connecting to Redis was aborted.'));
          if (signal?.aborted) onAbort();
          signal?.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
      await this.redis.ping();
    } catch (e) {
      this.redis.disconnect();
      throw e;
    } finally {
      clearTimeout(timer);
      if (onError) this.redis.off('error', onError);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Since when (ms) Redis has been unreachable, 0 while connected. */
  downForMs(): number {
    return this.downSince === undefined ? 0 : performance.now() - this.downSince;
  }

  /** Closes the connection (never throws, never waits for a Redis that is away: then it just disconnects). */
  async close(): Promise<void> {
    if (this.downSince === undefined) {
      try {
        await this.redis.quit();
      } catch {
        // fall through
      }
    }
    this.redis.disconnect();
  }
}

/** `p`'s value, or undefined at once when `signal` aborts first (the listener is removed when `p` settles). */
export function unlessAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([p, aborted]).finally(() => signal.removeEventListener('abort', onAbort!));
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
