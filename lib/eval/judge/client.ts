/**
 * A minimal OpenAI-compatible chat-completions client on global fetch: POST {baseUrl}/chat/completions
 * with temperature 0 (the original used 0.0), retrying network errors, 408/429 and 5xx with
 * exponential backoff. Anything else, or running out of retries, is ERR_JUDGE.
 */
import { llavaError } from '../../errors.js';
import type { ChatMessage } from './prompt.js';

/**
 * Where and how the judge is asked: any OpenAI-compatible chat-completions endpoint, at temperature 0.
 * Network errors, HTTP 408, 429 and 5xx are retried with exponential backoff; other HTTP errors are not.
 */
export interface ChatClientOptions {
  /** The API base URL, without `/chat/completions`: e.g. `"https://api.openai.com/v1"` or `"http://127.0.0.1:8080/v1"`. */
  baseUrl: string;
  /** Model id sent in the request (e.g. "gpt-4"). */
  model: string;
  /** Sent as `Authorization: Bearer <apiKey>`; omitted when not given. */
  apiKey?: string;
  /** Retries after the first attempt (default 5; 0 tries once). */
  maxRetries?: number;
  /** First backoff delay in milliseconds; doubles each retry (default 1000). */
  retryDelayMs?: number;
  /** Per-request timeout in milliseconds (default 120000); a timed-out request is retried. */
  timeoutMs?: number;
  /** Aborts the request (and any backoff wait) with `ERR_ABORTED`. */
  signal?: AbortSignal;
  /** Called before each retry (for progress display): the retry's number (1-based), the wait before it in milliseconds, and why. */
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((res, rej) => {
    const t = setTimeout(res, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      rej(llavaError('ERR_ABORTED', 'The judge request was aborted.', signal.reason));
    }, { once: true });
  });

/**
 * One chat completion at temperature 0; resolves with the first choice's content.
 * @throws LlavaMedError `ERR_JUDGE` (a non-retryable HTTP error, a malformed response, or retries exhausted), `ERR_ABORTED`.
 */
export async function chatComplete(messages: readonly ChatMessage[], o: ChatClientOptions): Promise<string> {
  const url = o.baseUrl.replace(/\/+$/, '') + '/chat/completions';
  const maxRetries = o.maxRetries ?? 5;
  const baseDelay = o.retryDelayMs ?? 1000;
  let lastReason = '';
  for (let attempt = 0; attempt <= maxRetries; attempt++) {
    if (attempt > 0) {
      const delayMs = baseDelay * 2 ** (attempt - 1);
      o.onRetry?.({ attempt, delayMs, reason: lastReason });
      await sleep(delayMs, o.signal);
    }
    if (o.signal?.aborted) throw llavaError('ERR_ABORTED', 'The judge request was aborted.', o.signal.reason);
    let res: Response;
    try {
      const signals = [AbortSignal.timeout(o.timeoutMs ?? 120_000), ...(o.signal ? [o.signal] : [])];
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}) },
        body: JSON.stringify({ model: o.model, messages, temperature: 0 }),
        signal: AbortSignal.any(signals),
      });
    } catch (e) {
      if (o.signal?.aborted) throw llavaError('ERR_ABORTED', 'The judge request was aborted.', o.signal.reason);
      lastReason = `network error: ${(e as Error).cause ? String((e as Error & { cause: unknown }).cause) : (e as Error).message}`;
      continue;
    }
    const body = await res.text();
    if (res.status === 408 || res.status === 429 || res.status >= 500) {
      lastReason = `HTTP ${res.status}`;
      continue;
    }
    if (!res.ok) throw llavaError('ERR_JUDGE', `The judge at ${url} answered HTTP ${res.status}: ${body.slice(0, 300)}`);
    let content: unknown;
    try {
      content = (JSON.parse(body) as { choices?: { message?: { content?: unknown } }[] }).choices?.[0]?.message?.content;
    } catch (e) {
      throw llavaError('ERR_JUDGE', `The judge at ${url} returned a body that is not JSON: ${body.slice(0, 200)}`, e);
    }
    if (typeof content !== 'string') throw llavaError('ERR_JUDGE', `The judge at ${url} returned no choices[0].message.content.`);
    return content;
  }
  throw llavaError('ERR_JUDGE', `The judge at ${url} could not be reached after ${maxRetries + 1} attempts (last: ${lastReason}).`);
}
