/**
 * HTTP for the Hub on Node's built-in fetch: manual redirects (so a loop is one clear error, the
 * Hub's own headers are read on its 302 before the CDN answers, and the token never leaves the
 * Hub's origin), and retries with exponential backoff on 429 / 5xx / dropped connections that
 * honour Retry-After.
 */
import { llavaError, throwIfAborted } from '../errors.js';

/** When and how long failed Hub requests are retried. */
export interface RetryPolicy {
  /** Retries after the first try (default 5). */
  retries: number;
  /** First backoff delay in ms; doubled each retry, with ±25 % jitter (default 1000). */
  baseDelayMs: number;
  /** Largest backoff delay (default 30 s). */
  maxDelayMs: number;
  /** A Retry-After longer than this is not waited for: the request fails at once (default 5 min). */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 5, baseDelayMs: 1000, maxDelayMs: 30_000, maxRetryAfterMs: 300_000 };

/** A retry about to happen (see {@link HubOptions.onRetry}). */
export interface RetryEvent {
  /** The request's URL. */
  url: string;
  /** Which retry this is (1 = the first). */
  attempt: number;
  /** Wait before it, in ms. */
  delayMs: number;
  /** What failed (status code or error). */
  reason: string;
}

export interface HttpContext {
  fetch: typeof fetch;
  /** Origin of the Hub endpoint: the only origin that receives the token. */
  origin: string;
  token?: string;
  retry: RetryPolicy;
  signal?: AbortSignal;
  onRetry?: (e: RetryEvent) => void;
  userAgent: string;
}

/** A failure worth another try (after `delayMs`), as opposed to a final answer. */
export class Retryable extends Error {
  constructor(
    message: string,
    readonly delayMs?: number,
  ) {
    super(message);
  }
}

const MAX_REDIRECTS = 10;

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(llavaError('ERR_ABORTED', 'The download was aborted.', signal.reason));
    const onAbort = () => {
      clearTimeout(t);
      reject(llavaError('ERR_ABORTED', 'The download was aborted.', signal?.reason));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Retry-After as seconds or an HTTP date → ms (undefined when absent or unreadable). */
export function retryAfterMs(h: string | null, now = Date.now()): number | undefined {
  if (h === null || h.trim() === '') return undefined;
  const s = Number(h);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const d = Date.parse(h);
  return Number.isNaN(d) ? undefined : Math.max(0, d - now);
}

export function backoffMs(policy: RetryPolicy, attempt: number): number {
  const d = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(d * (0.75 + Math.random() * 0.5));
}

/** Runs `fn` until it returns, or throws something that is not Retryable, or the retries run out. */
export async function withRetries<T>(ctx: HttpContext, what: string, fn: (attempt: number) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    throwIfAborted(ctx.signal, 'download');
    try {
      return await fn(attempt);
    } catch (e) {
      if (!(e instanceof Retryable)) throw e;
      if (attempt >= ctx.retry.retries) {
        throw llavaError('ERR_HUB_NETWORK', `${what}: ${e.message} (gave up after ${attempt + 1} tries; run the same command again to resume).`, e);
      }
      if (e.delayMs !== undefined && e.delayMs > ctx.retry.maxRetryAfterMs) {
        throw llavaError('ERR_HUB_NETWORK', `${what}: ${e.message}; the Hub asks to wait ${Math.ceil(e.delayMs / 1000)} s: try again later.`, e);
      }
      const delayMs = e.delayMs ?? backoffMs(ctx.retry, attempt + 1);
      ctx.onRetry?.({ url: what, attempt: attempt + 1, delayMs, reason: e.message });
      await sleep(delayMs, ctx.signal);
    }
  }
}

export interface HubResponse {
  /** The last response (after redirects). */
  res: Response;
  /** Headers of the first response (the Hub's own, e.g. on its 302 to a CDN). */
  first: Headers;
  url: string;
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/**
 * One request with manual redirects. Network failures and 429 / 5xx become Retryable (the caller's
 * withRetries waits and tries again); other statuses are returned for the caller to judge.
 */
export async function hubFetch(ctx: HttpContext, url: string, init: { method?: string; headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<HubResponse> {
  let current = url;
  let first: Headers | undefined;
  const seen = new Set<string>();
  for (let hop = 0; ; hop++) {
    if (seen.has(current) || hop > MAX_REDIRECTS) {
      throw llavaError('ERR_HUB_NETWORK', `${url}: redirect loop (${hop} redirects, back at ${current}); the Hub or a proxy in between is misconfigured.`);
    }
    seen.add(current);
    const headers: Record<string, string> = { 'user-agent': ctx.userAgent, ...init.headers };
    // The token goes to the Hub only; a CDN URL it redirects to is pre-signed.
    if (ctx.token && new URL(current).origin === ctx.origin) headers.authorization = `Bearer ${ctx.token}`;
    let res: Response;
    try {
      res = await ctx.fetch(current, { method: init.method ?? 'GET', headers, redirect: 'manual', signal: init.signal ?? ctx.signal });
    } catch (e) {
      throwIfAborted(ctx.signal, 'download');
      if (init.signal?.aborted) throw init.signal.reason instanceof Error ? init.signal.reason : new Retryable('request aborted');
      throw new Retryable(`connection failed (${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message})`);
    }
    first ??= res.headers;
    if (isRedirect(res.status)) {
      const loc = res.headers.get('location');
      await res.body?.cancel().catch(() => undefined);
      if (!loc) throw llavaError('ERR_HUB_NETWORK', `${current}: HTTP ${res.status} without a Location header.`);
      current = new URL(loc, current).toString();
      continue;
    }
    if (res.status === 429 || res.status >= 500) {
      await res.body?.cancel().catch(() => undefined);
      throw new Retryable(`HTTP ${res.status}${res.status === 429 ? ' (rate limited)' : ''}`, retryAfterMs(res.headers.get('retry-after')));
    }
    return { res, first, url: current };
  }
}
