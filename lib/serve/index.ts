/**
 * `llava-med/serve`: an OpenAI-compatible HTTP server over one LlavaMed instance.
 *
 *   POST /v1/chat/completions  text + one image_url (data: URL) → LLaVA-Med's own prompt template;
 *                              stream: true as server-sent events ending with `data: [DONE]`
 *   POST /v1/score             candidate log-likelihoods (closed-set VQA), an extension
 *   GET  /v1/models, /health
 *
 * Framework: fastify. Both fastify and hono are well kept; fastify runs on Node's own http server
 * (no adapter layer between us and the socket, which we need for SSE, client-disconnect detection
 * and closing connections on shutdown) and has the body-size limit (413), content-type parsing and
 * graceful close built in; hono's strengths (edge runtimes, Web-standard Request) buy nothing for a
 * server that owns a native model in one Node process.
 *
 * Concurrency: continuous batching over the instance's parallel sequences (LlavaMed's `sequences`,
 * `--parallel`; lib/answer/scheduler.ts): a request starts between two tokens of the running ones as
 * soon as a sequence is free, and all running answers advance in one batched step per token; at most
 * `queue` more wait, in arrival order (429 with Retry-After beyond that). A client that disconnects
 * leaves the batch at the next token and its sequence goes to the next request. With the instance's
 * image cache (`imageCache`, on in `llava-med serve`) a request about an image sent before — the next
 * turn of a conversation — skips the encoder and reuses the KV cells of the longest matching prefix.
 *
 * Safety: binds 127.0.0.1 unless told otherwise; no CORS headers; optional API key compared in
 * constant time and never logged; body, image and max_tokens limits; a per-request time limit; a
 * client that disconnects aborts its generation between tokens. The access log (opt-in) carries
 * method, path, status, timings and token counts — never prompt or answer text.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { z } from 'zod';
import { isLlavaMedError, llavaError, type ErrorCode } from '../errors.js';
import { LlavaMed, type Answer, type GenerationOptions, type LlavaMedOptions } from '../llava-med.js';
import { GENERATION_DEFAULTS, pyLstrip, pyRstrip, type ChatTurn } from '../prompt/index.js';
import type { StopReason } from '../answer/generate.js';
import { registerOllama } from './ollama.js';
import { ApiError, ChatRequestSchema, ScoreRequestSchema, decodeDataUrl, parseBody, toConversation, type ChatRequest } from './messages.js';

/** One line of the access log: no prompt, image or answer content. */
export interface AccessLogEntry {
  /** When the request finished (ISO 8601). */
  time: string;
  /** Request id (a random UUID). */
  id: string;
  /** HTTP method. */
  method: string;
  /** Request path, without the query. */
  path: string;
  /** HTTP status sent. */
  status: number;
  /** Duration of the request in ms. */
  ms: number;
  /** The client went away before the response was complete. */
  clientClosed: boolean;
  /** Prompt tokens of a completion (as `usage` reports them). */
  promptTokens?: number;
  /** Generated tokens of a completion. */
  completionTokens?: number;
  /** How the generation ended (eos, stop, length, context, aborted). */
  stopReason?: StopReason;
  /** The error code of an error response. */
  error?: string;
}

/** Options of {@link createServer}. Unknown keys and out-of-range values are `ERR_INVALID_ARGUMENT`. */
export interface ServeOptions {
  /** The id /v1/models reports and requests must name (or omit). Default 'llava-med'. */
  modelName?: string;
  /** Require `Authorization: Bearer <apiKey>` on every route but /health. Default: no key. */
  apiKey?: string;
  /** Largest request body in bytes (413 beyond). Default 20 MiB. */
  bodyLimit?: number;
  /** Largest decoded image in bytes (413 beyond). Default 10 MiB. Pixels are limited by the instance's maxImagePixels. */
  maxImageBytes?: number;
  /** Highest max_tokens a request may ask for, and the default. Default 1024 (the original's). */
  maxTokens?: number;
  /** Time limit of one request, in ms (504, or an error event in a stream). Default 300 000. */
  requestTimeoutMs?: number;
  /** Requests that may wait when all of the instance's parallel sequences are busy; more get 429. Default 8. */
  queue?: number;
  /** Called once per finished request. Default: no log. */
  accessLog?: (entry: AccessLogEntry) => void;
}

const ServeOptionsSchema = z.strictObject({
  modelName: z.string().min(1).nullish(),
  apiKey: z.string().min(1).nullish(),
  bodyLimit: z.number().int().min(1024).nullish(),
  maxImageBytes: z.number().int().min(1).nullish(),
  maxTokens: z.number().int().min(1).nullish(),
  requestTimeoutMs: z.number().int().min(1).nullish(),
  queue: z.number().int().min(0).nullish(),
  accessLog: z.custom<(e: AccessLogEntry) => void>((v) => typeof v === 'function', { message: 'must be a function' }).nullish(),
});

/**
 * Options of {@link createServer} when the server loads its own model: the {@link ServeOptions} plus
 * `load`, the options of `LlavaMed.load`. The model is loaded by listen() and freed by close().
 */
export interface ServeLoadOptions extends ServeOptions {
  /** Options of `LlavaMed.load` (model, mmproj, sequences = requests answered at once, ...). `imageCache` defaults to 16 here. */
  load: LlavaMedOptions;
}

/** The server {@link createServer} returns. */
export interface LlavaMedServer {
  /** The fastify instance (routes can be added before listen()). */
  readonly app: FastifyInstance;
  /** The instance answering the requests (undefined until listen() when the server loads its own model). */
  readonly med: LlavaMed | undefined;
  /**
   * Loads the model first when the server was created from load options, then starts listening;
   * resolves with the base URL (http://host:port). Default 127.0.0.1:8080.
   */
  listen(opts?: { host?: string; port?: number }): Promise<string>;
  /**
   * Graceful shutdown: stops accepting (new connections are refused, requests on open connections get
   * 503), lets the running and queued requests finish for up to `timeoutMs` (default 10 000), then
   * aborts those left (503, or an error event in a stream) and resolves when every response has ended.
   * A model the server loaded itself is then freed; an instance passed to createServer is not disposed.
   * Calling it again while it runs with a smaller timeout cuts the wait short.
   */
  close(opts?: { timeoutMs?: number }): Promise<void>;
  /** Requests running or queued now. */
  readonly active: number;
}

const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  ERR_INVALID_ARGUMENT: 400,
  ERR_IMAGE_EMPTY: 400,
  ERR_IMAGE_DECODE: 400,
  ERR_IMAGE_FORMAT: 400,
  ERR_DICOM_UNSUPPORTED: 400,
  ERR_TOKENIZE: 400,
  ERR_CONTEXT_FULL: 400,
  ERR_IMAGE_TOO_LARGE: 413,
  ERR_BUSY: 429,
  ERR_DISPOSED: 503,
};

function finishReason(r: StopReason): 'stop' | 'length' {
  return r === 'length' || r === 'context' ? 'length' : 'stop';
}

function usage(a: Answer) {
  const prompt = a.timings.reusedTokens + a.timings.imageTokens + a.timings.promptTokens;
  return { prompt_tokens: prompt, completion_tokens: a.tokens.length, total_tokens: prompt + a.tokens.length, prompt_tokens_details: { cached_tokens: a.timings.reusedTokens } };
}

/**
 * Streams text stripped as the final answer is (Python strip()): leading whitespace is dropped,
 * trailing whitespace held back until more text follows it.
 * @internal
 */
export class StripStream {
  private begun = false;
  private pending = '';
  push(t: string): string {
    if (!this.begun) {
      t = pyLstrip(t);
      if (!t) return '';
      this.begun = true;
    }
    const s = this.pending + t;
    const body = pyRstrip(s);
    this.pending = s.slice(body.length);
    return body;
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

const SERVE_IMAGE_CACHE = 16;

/**
 * An OpenAI-compatible server (not started: call listen()), over a loaded instance — which stays the
 * caller's — or over a model it loads itself from `{ load: LlavaMedOptions, ...serveOptions }` at
 * listen() and frees at close().
 * @throws LlavaMedError `ERR_INVALID_ARGUMENT` for an unknown or out-of-range option.
 */
export function createServer(med: LlavaMed, options?: ServeOptions): LlavaMedServer;
export function createServer(options: ServeLoadOptions): LlavaMedServer;
export function createServer(medOrOptions: LlavaMed | ServeLoadOptions, options: ServeOptions = {}): LlavaMedServer {
  let med: LlavaMed | undefined;
  let loadOptions: LlavaMedOptions | undefined;
  if (medOrOptions instanceof LlavaMed) med = medOrOptions;
  else if (medOrOptions !== null && typeof medOrOptions === 'object' && !Array.isArray(medOrOptions) && 'load' in medOrOptions) {
    const { load, ...rest } = medOrOptions;
    if (load === null || typeof load !== 'object') throw llavaError('ERR_INVALID_ARGUMENT', 'createServer option \'load\' must be the options of LlavaMed.load ({ model, mmproj, ... }).');
    loadOptions = { imageCache: SERVE_IMAGE_CACHE, ...load };
    options = rest;
  } else {
    throw llavaError('ERR_INVALID_ARGUMENT', 'createServer expects a LlavaMed instance (LlavaMed.load(...)) or { load: { model, mmproj, ... }, ...serve options }.');
  }
  const parsed = ServeOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw llavaError('ERR_INVALID_ARGUMENT', `createServer option '${i.path.join('.') || i.message}': ${i.message}.`);
  }
  const o = parsed.data;
  const modelName = o.modelName ?? 'llava-med';
  const bodyLimit = o.bodyLimit ?? 20 * 1024 * 1024;
  const maxImageBytes = o.maxImageBytes ?? 10 * 1024 * 1024;
  // Known once the model is (set when it is loaded)
  let maxTokensCap = 0;
  let parallel = 1;
  let limit = 1;
  const attach = (m: LlavaMed) => {
    med = m;
    maxTokensCap = o.maxTokens ?? GENERATION_DEFAULTS[m.variant].maxTokens;
    parallel = m.sequences;
    limit = parallel + (o.queue ?? 8);
  };
  if (med) attach(med);
  const model = (): LlavaMed => {
    if (!med) throw new ApiError(503, 'The model is not loaded yet.', 'server_error', 'not_ready');
    return med;
  };
  const timeoutMs = o.requestTimeoutMs ?? 300_000;
  const keyHash = o.apiKey ? sha256(o.apiKey) : undefined;
  const created = Math.floor(Date.now() / 1000);
  // `stopping`: no new requests; `shutdown`: abort the ones still running (close()'s deadline).
  let stopping = false;
  const shutdown = new AbortController();
  let active = 0;
  let avgMs = 0;

  // forceCloseConnections 'idle': close() ends idle keep-alive connections at once and lets the ones
  // carrying a request finish (the deadline aborts the requests themselves).
  const app = Fastify({ bodyLimit, logger: false, return503OnClosing: true, forceCloseConnections: 'idle', requestTimeout: 60_000 });
  const info = new WeakMap<object, Partial<AccessLogEntry>>();
  const work_ = new WeakMap<object, Promise<void>>();
  /** Marks the request's model work as running; the returned function ends it. */
  const working = (entry: Partial<AccessLogEntry>): (() => void) => {
    let end!: () => void;
    work_.set(entry, new Promise<void>((r) => (end = r)));
    return end;
  };

  // Requests in progress per connection, so close() can end the connections that carry none.
  const sockets = new Set<Socket>();
  const inFlight = new WeakMap<Socket, number>();
  app.server.on('connection', (c: Socket) => {
    sockets.add(c);
    c.once('close', () => sockets.delete(c));
  });
  app.addHook('onRequest', async (req, reply) => {
    const sock = req.raw.socket;
    inFlight.set(sock, (inFlight.get(sock) ?? 0) + 1);
    reply.raw.once('close', () => inFlight.set(sock, (inFlight.get(sock) ?? 1) - 1));
    const t0 = performance.now();
    const entry: Partial<AccessLogEntry> = { id: randomUUID() };
    info.set(req.raw, entry);
    reply.raw.setHeader('x-request-id', entry.id!);
    if (o.accessLog) {
      const log = o.accessLog;
      // Logged once the response is closed and the request's model work (if any) has ended, so an
      // aborted stream's line carries its real token count and stop reason.
      reply.raw.once('close', () => {
        const work = work_.get(entry) ?? Promise.resolve();
        void work.then(() => log({
          time: new Date().toISOString(),
          id: entry.id!,
          method: req.method,
          path: req.url.split('?')[0]!,
          status: reply.raw.statusCode,
          ms: Math.round(performance.now() - t0),
          clientClosed: !reply.raw.writableFinished,
          ...entry,
        }));
      });
    }
    if (keyHash && req.url !== '/health') {
      const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
      // Compare digests: constant time, whatever the lengths.
      if (!m || !timingSafeEqual(sha256(m[1]!.trim()), keyHash)) {
        throw new ApiError(401, 'Missing or wrong API key: send "Authorization: Bearer <key>".', 'authentication_error', 'invalid_api_key', { 'www-authenticate': 'Bearer' });
      }
    }
  });

  function toApiError(e: unknown, signal?: AbortSignal): ApiError {
    if (e instanceof ApiError) return e;
    if (signal?.aborted && signal.reason instanceof ApiError) return signal.reason;
    if (isLlavaMedError(e)) {
      if (e.code === 'ERR_CONTEXT_FULL') return new ApiError(400, e.message, 'invalid_request_error', 'context_length_exceeded');
      const status = STATUS_OF[e.code] ?? 500;
      return new ApiError(status, e.message, undefined, e.code, status === 429 ? { 'retry-after': retryAfter() } : {});
    }
    const fe = e as { statusCode?: number; code?: string; message?: string };
    if (fe?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError(413, `The request body is larger than this server's limit of ${bodyLimit} bytes.`, undefined, 'request_too_large');
    if (typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      const json = fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e instanceof SyntaxError;
      return new ApiError(fe.statusCode, json ? `The request body is not valid JSON: ${fe.message}` : (fe.message ?? 'Bad request.'), undefined, json ? 'invalid_json' : (fe.code ?? null));
    }
    return new ApiError(500, 'Internal server error.', 'server_error', 'internal_error');
  }

  function errorBody(e: ApiError) {
    return { error: { message: e.message, type: e.type, param: null, code: e.code } };
  }

  // Ollama's routes answer errors in Ollama's shape: { "error": "message" }.
  const isOllama = (url: string) => url.startsWith('/api/');
  app.setErrorHandler((err, req, reply) => {
    const e = toApiError(err);
    const entry = info.get(req.raw);
    if (entry) entry.error = e.code ?? String(e.status);
    void reply.code(e.status).headers(e.headers).send(isOllama(req.url) ? { error: e.message } : errorBody(e));
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new ApiError(404, `No route ${req.method} ${req.url.split('?')[0]}; this server has POST /v1/chat/completions, POST /v1/score, GET /v1/models, GET /health, and Ollama's POST /api/chat, POST /api/generate, GET /api/tags.`, undefined, 'not_found');
    void reply.code(404).send(isOllama(req.url) ? { error: e.message } : errorBody(e));
  });

  function retryAfter(): string {
    // About when a sequence frees up: the mean request time per round of `parallel` requests ahead.
    return String(Math.max(1, Math.ceil(((avgMs || 1000) * Math.max(1, Math.ceil(active / parallel))) / 1000)));
  }

  /** Takes a slot (running or queued) or answers 429. Returns its release. */
  function admit(): () => void {
    if (stopping) throw new ApiError(503, 'The server is shutting down.', 'server_error', 'shutting_down');
    if (active >= limit) {
      throw new ApiError(429, `The server is busy: ${active} request(s) running or queued, the limit is ${limit}. Retry later.`, 'rate_limit_error', 'rate_limit_exceeded', { 'retry-after': retryAfter() });
    }
    active++;
    const t0 = performance.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      active--;
      const ms = performance.now() - t0;
      avgMs = avgMs ? 0.8 * avgMs + 0.2 * ms : ms;
    };
  }

  /**
   * One admitted request: a queue slot, the in-flight count and a signal that aborts when the client
   * goes, all released on every path; any error leaves as OpenAI's error shape.
   */
  async function admitted<T>(req: FastifyRequest, reply: FastifyReply, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const release = admit();
    const end = working(info.get(req.raw)!);
    const { signal, done } = requestSignal(reply);
    try {
      return await run(signal);
    } catch (e) {
      throw toApiError(e, signal);
    } finally {
      done();
      release();
      end();
    }
  }

  /** Aborts on client disconnect (499), the time limit (504) or shutdown (503); the reason is the ApiError to answer. */
  function requestSignal(reply: FastifyReply): { signal: AbortSignal; done: () => void } {
    const ctl = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableEnded) ctl.abort(new ApiError(499, 'The client closed the connection.', undefined, 'client_closed'));
    };
    const onShutdown = () => ctl.abort(new ApiError(503, 'The server is shutting down.', 'server_error', 'shutting_down'));
    reply.raw.on('close', onClose);
    shutdown.signal.addEventListener('abort', onShutdown, { once: true });
    const timer = setTimeout(() => ctl.abort(new ApiError(504, `The request took longer than this server's limit of ${timeoutMs} ms.`, 'timeout_error', 'timeout')), timeoutMs);
    timer.unref();
    return {
      signal: ctl.signal,
      done: () => {
        clearTimeout(timer);
        reply.raw.off('close', onClose);
        shutdown.signal.removeEventListener('abort', onShutdown);
      },
    };
  }

  function checkModel(model: string | null | undefined): void {
    if (model != null && model !== modelName) throw new ApiError(404, `The model '${model}' does not exist here; this server serves '${modelName}' (GET /v1/models).`, 'invalid_request_error', 'model_not_found');
  }

  function generationOptions(body: ChatRequest): GenerationOptions {
    const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? maxTokensCap;
    if (maxTokens > maxTokensCap) throw new ApiError(400, `Invalid 'max_tokens': ${maxTokens} is over this server's limit of ${maxTokensCap}.`, undefined, 'invalid_value');
    const userStop = typeof body.stop === 'string' ? [body.stop] : (body.stop ?? []);
    return {
      temperature: body.temperature ?? undefined,
      topP: body.top_p ?? undefined,
      seed: body.seed ?? undefined,
      maxTokens,
      // The variant's own stop strings (v0: '###') stay: without them v0 runs on into a new turn.
      stop: [...GENERATION_DEFAULTS[model().variant].stop, ...userStop.filter((s) => s.length > 0)],
      stopOnAbortSignal: true,
    };
  }

  app.get('/health', async (_req, reply) => {
    if (stopping || !med || med.disposed) return reply.code(503).send({ status: 'shutting_down' });
    return { status: 'ok', model: modelName, variant: med.variant, parallel, active, limit };
  });

  const modelEntry = () => ({ id: modelName, object: 'model', created, owned_by: 'llava-med' });
  app.get('/v1/models', async () => ({ object: 'list', data: [modelEntry()] }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    checkModel(req.params.id);
    return modelEntry();
  });

  app.post('/v1/chat/completions', async (req: FastifyRequest, reply: FastifyReply) => {
    const body = parseBody(ChatRequestSchema, req.body);
    checkModel(body.model);
    const { image, turns } = toConversation(body.messages, maxImageBytes);
    const gen = generationOptions(body);
    const entry = info.get(req.raw)!;
    return admitted(req, reply, async (signal) => {
      if (body.stream) {
        await streamCompletion(reply, entry, image, turns, gen, signal, body.stream_options?.include_usage === true);
        return reply;
      }
      const a = await model().runTurn(image, turns, { ...gen, signal }, undefined, () => signal.aborted);
      entry.stopReason = a.stopReason;
      entry.promptTokens = usage(a).prompt_tokens;
      entry.completionTokens = a.tokens.length;
      if (signal.aborted) throw toApiError(undefined, signal);
      return {
        id: `chatcmpl-${entry.id}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: modelName,
        choices: [{ index: 0, message: { role: 'assistant', content: a.text, refusal: null }, logprobs: null, finish_reason: finishReason(a.stopReason) }],
        usage: usage(a),
      };
    });
  });

  async function streamCompletion(reply: FastifyReply, entry: Partial<AccessLogEntry>, image: Buffer, turns: ChatTurn[], gen: GenerationOptions, signal: AbortSignal, includeUsage: boolean): Promise<void> {
    reply.hijack();
    const res = reply.raw;
    const id = `chatcmpl-${entry.id}`;
    const createdAt = Math.floor(Date.now() / 1000);
    const chunk = (delta: object, finish: string | null) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: createdAt, model: modelName, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
    let started = false;
    // Headers go out with the first text, so an error before it (a bad image) is a plain JSON error.
    const start = () => {
      if (started) return;
      started = true;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
      res.write(chunk({ role: 'assistant', content: '' }, null));
    };
    const strip = new StripStream();
    const onText = (t: string) => {
      const out = strip.push(t);
      if (!out || res.destroyed) return;
      start();
      res.write(chunk({ content: out }, null));
    };
    try {
      const a = await model().runTurn(image, turns, { ...gen, signal }, onText, () => signal.aborted);
      entry.stopReason = a.stopReason;
      entry.promptTokens = usage(a).prompt_tokens;
      entry.completionTokens = a.tokens.length;
      if (signal.aborted) throw toApiError(undefined, signal);
      start();
      res.write(chunk({}, finishReason(a.stopReason)));
      if (includeUsage) res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: createdAt, model: modelName, choices: [], usage: usage(a) })}\n\n`);
      res.end('data: [DONE]\n\n');
    } catch (err) {
      const e = toApiError(err, signal);
      entry.error = e.code ?? String(e.status);
      if (res.destroyed) return;
      if (!started) {
        res.writeHead(e.status, { 'content-type': 'application/json; charset=utf-8', ...e.headers });
        res.end(JSON.stringify(errorBody(e)));
      } else {
        res.write(`data: ${JSON.stringify(errorBody(e))}\n\n`);
        res.end('data: [DONE]\n\n');
      }
    }
  }

  app.post('/v1/score', async (req, reply) => {
    const body = parseBody(ScoreRequestSchema, req.body);
    checkModel(body.model);
    let image: Buffer;
    let question: string;
    if (body.messages) {
      const c = toConversation(body.messages, maxImageBytes);
      if (c.turns.length !== 1) throw new ApiError(400, 'Scoring takes one user message (image + question); earlier turns are not supported.', undefined, 'invalid_value');
      image = c.image;
      question = c.turns[0]!.question;
    } else if (typeof body.image === 'string' && typeof body.question === 'string') {
      image = decodeDataUrl(body.image, maxImageBytes);
      question = body.question;
    } else {
      throw new ApiError(400, "Send either 'messages' (one user message with an image_url and text) or 'image' (a data URL) and 'question'.", undefined, 'invalid_value');
    }
    return admitted(req, reply, async (signal) => {
      const scores = await model().score(image, question, body.candidates, { signal });
      return { object: 'list', model: modelName, data: scores.map((s) => ({ object: 'score', candidate: s.candidate, logprob: s.logProb, tokens: s.tokens.length })) };
    });
  });

  registerOllama(app, {
    modelName,
    maxImageBytes,
    variant: () => model().variant,
    admit,
    requestSignal,
    begin: (raw) => {
      const entry = info.get(raw)!;
      return {
        end: working(entry),
        log: (a) => {
          entry.stopReason = a.stopReason;
          entry.promptTokens = usage(a).prompt_tokens;
          entry.completionTokens = a.tokens.length;
        },
      };
    },
    generationOptions,
    answer: (image, turns, gen, signal, onText) => model().runTurn(image, turns, { ...gen, signal }, onText, () => signal.aborted),
    toApiError,
    stripper: () => new StripStream(),
  });

  let closing: Promise<void> | undefined;
  let deadline: NodeJS.Timeout | undefined;
  let deadlineAt = Infinity;
  let loading: Promise<LlavaMed> | undefined;
  return {
    app,
    get med() {
      return med;
    },
    get active() {
      return active;
    },
    async listen(opts = {}) {
      if (!med && loadOptions) {
        loading ??= LlavaMed.load(loadOptions);
        const m = await loading;
        if (stopping) {
          await m.dispose();
          throw llavaError('ERR_DISPOSED', 'The server was closed while its model was loading.');
        }
        attach(m);
      }
      await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 8080 });
      const a = app.server.address() as AddressInfo;
      const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      return `http://${host}:${a.port}`;
    },
    close(opts = {}) {
      const timeoutMs = opts.timeoutMs ?? 10_000;
      if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) throw llavaError('ERR_INVALID_ARGUMENT', `close's timeoutMs must be a number >= 0, got ${String(timeoutMs)}.`);
      stopping = true;
      // The running and queued requests get until the deadline (an earlier one from a later call wins).
      if (performance.now() + timeoutMs < deadlineAt) {
        deadlineAt = performance.now() + timeoutMs;
        clearTimeout(deadline);
        deadline = setTimeout(() => shutdown.abort(), timeoutMs);
        if (timeoutMs === 0) shutdown.abort();
      }
      closing ??= (async () => {
        // Connections without a request in progress (kept alive, or opened by a client's pool and never
        // used) are closed as they become so: app.close() would otherwise wait for their timeouts.
        const sweep = setInterval(() => {
          for (const c of sockets) if (!inFlight.get(c)) c.destroy();
        }, 50);
        try {
          await app.close();
        } finally {
          clearInterval(sweep);
          clearTimeout(deadline);
          shutdown.abort();
          const loaded = loadOptions ? (med ?? (await loading?.catch(() => undefined))) : undefined;
          await loaded?.dispose();
        }
      })();
      return closing;
    },
  };
}
