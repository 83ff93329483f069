/**
 * Ollama's API on the same server, so ollama clients work unchanged: POST /api/chat and
 * /api/generate (base64 `images`, NDJSON streaming — on by default, as in Ollama — `options` such as
 * temperature / num_predict / stop), GET /api/tags, /api/version. The conversation maps onto
 * LLaVA-Med's template with the same rules as /v1/chat/completions (one image, in the first user
 * message; no system prompt). Errors are Ollama's `{ "error": "..." }` (see index.ts's error handler).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { Answer, GenerationOptions } from '../llava-med.js';
import type { ChatTurn } from '../prompt/index.js';
import { ApiError, parseBody, toConversation, type ChatRequest } from './messages.js';

const OptionsSchema = z.object({
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().min(0).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  seed: z.number().int().min(0).max(0xffffffff).nullish(),
  num_predict: z.number().int().min(-2).nullish(),
  stop: z.array(z.string()).max(16).nullish(),
  repeat_penalty: z.number().gt(0).nullish(),
});

const image = z.string();
const common = {
  model: z.string().min(1),
  stream: z.boolean().nullish(),
  options: OptionsSchema.nullish(),
  format: z.undefined({ message: 'structured output (format) is not supported' }).nullish(),
  keep_alive: z.union([z.string(), z.number()]).nullish(),
};

const OllamaChatSchema = z.object({
  ...common,
  messages: z.array(z.object({ role: z.string(), content: z.string(), images: z.array(image).nullish() })).min(1),
  tools: z.array(z.unknown()).max(0, { message: 'tool calls are not supported' }).nullish(),
});

const OllamaGenerateSchema = z.object({
  ...common,
  prompt: z.string(),
  images: z.array(image).nullish(),
  system: z.undefined({ message: "system prompts are not supported (LLaVA-Med's template is fixed)" }).nullish(),
  template: z.undefined({ message: "templates are not supported (LLaVA-Med's own is used)" }).nullish(),
  raw: z.literal(false).nullish(),
  context: z.array(z.number()).max(0, { message: 'context is not supported; send the conversation to /api/chat' }).nullish(),
  suffix: z.undefined({ message: 'suffix is not supported' }).nullish(),
});

/** What the Ollama routes use of the server (index.ts). */
export interface OllamaHost {
  modelName: string;
  maxImageBytes: number;
  variant: () => string;
  admit: () => () => void;
  requestSignal: (reply: FastifyReply) => { signal: AbortSignal; done: () => void };
  /** Marks the request's model work for the access log; returns its end and the log entry. */
  begin: (raw: object) => { end: () => void; log: (a: Answer) => void };
  generationOptions: (body: ChatRequest) => GenerationOptions;
  answer: (image: Buffer, turns: ChatTurn[], gen: GenerationOptions, signal: AbortSignal, onText?: (t: string) => void) => Promise<Answer>;
  toApiError: (e: unknown, signal?: AbortSignal) => ApiError;
  /** A streamed-text filter that yields the final (stripped) answer's text. */
  stripper: () => { push(t: string): string };
}

/** Ollama's model names carry a tag; `name` and `name:latest` are the same model. */
function checkModel(host: OllamaHost, model: string): void {
  if (model !== host.modelName && model !== `${host.modelName}:latest`) {
    throw new ApiError(404, `model '${model}' not found; this server serves '${host.modelName}' (GET /api/tags)`, undefined, 'model_not_found');
  }
}

function generation(host: OllamaHost, o: z.infer<typeof OptionsSchema> | null | undefined): GenerationOptions {
  const maxTokens = o?.num_predict != null && o.num_predict > 0 ? o.num_predict : undefined;
  const gen = host.generationOptions({ messages: [], max_tokens: maxTokens, temperature: o?.temperature, top_p: o?.top_p, seed: o?.seed, stop: o?.stop ?? undefined } as ChatRequest);
  return { ...gen, topK: o?.top_k ?? undefined, minP: o?.min_p ?? undefined, repeatPenalty: o?.repeat_penalty ?? undefined };
}

const ns = (ms: number) => Math.round(ms * 1e6);

function stats(a: Answer, t0: number) {
  return {
    done_reason: a.stopReason === 'length' || a.stopReason === 'context' ? 'length' : 'stop',
    total_duration: ns(performance.now() - t0),
    load_duration: 0,
    prompt_eval_count: a.timings.imageTokens + a.timings.promptTokens,
    prompt_eval_duration: ns(a.timings.imageEncodeMs + a.timings.imageDecodeMs + a.timings.promptMs),
    eval_count: a.tokens.length,
    eval_duration: ns(a.timings.generateMs),
  };
}

export function registerOllama(app: FastifyInstance, host: OllamaHost): void {
  const run = async (
    reply: FastifyReply,
    raw: object,
    model: string,
    image: Buffer,
    turns: ChatTurn[],
    gen: GenerationOptions,
    stream: boolean,
    shape: (text: string) => object,
    final: (a: Answer, t0: number) => object,
  ) => {
    const t0 = performance.now();
    const release = host.admit();
    const { end, log } = host.begin(raw);
    const { signal, done } = host.requestSignal(reply);
    const head = () => ({ model, created_at: new Date().toISOString() });
    try {
      if (!stream) {
        const a = await host.answer(image, turns, gen, signal);
        log(a);
        if (signal.aborted) throw host.toApiError(undefined, signal);
        return { ...head(), ...shape(a.text), done: true, ...final(a, t0) };
      }
      reply.hijack();
      const res = reply.raw;
      let started = false;
      const start = () => {
        if (started) return;
        started = true;
        res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-cache' });
      };
      const strip = host.stripper();
      try {
        const a = await host.answer(image, turns, gen, signal, (t) => {
          const out = strip.push(t);
          if (!out || res.destroyed) return;
          start();
          res.write(`${JSON.stringify({ ...head(), ...shape(out), done: false })}\n`);
        });
        log(a);
        if (signal.aborted) throw host.toApiError(undefined, signal);
        start();
        res.end(`${JSON.stringify({ ...head(), ...shape(''), done: true, ...final(a, t0) })}\n`);
      } catch (err) {
        const e = host.toApiError(err, signal);
        if (res.destroyed) return reply;
        if (!started) res.writeHead(e.status, { 'content-type': 'application/json; charset=utf-8', ...e.headers });
        res.end(`${JSON.stringify({ error: e.message })}\n`);
      }
      return reply;
    } catch (e) {
      throw host.toApiError(e, signal);
    } finally {
      done();
      release();
      end();
    }
  };

  app.post('/api/chat', async (req, reply) => {
    const body = parseBody(OllamaChatSchema, req.body);
    checkModel(host, body.model);
    // Ollama messages → the OpenAI form toConversation maps (same rules, same errors).
    const messages = body.messages.map((m) => ({
      role: m.role as 'user',
      content: m.images?.length
        ? [{ type: 'text' as const, text: m.content }, ...m.images.map((b64) => ({ type: 'image_url' as const, image_url: { url: `data:image/png;base64,${b64}` } }))]
        : m.content,
    }));
    const { image, turns } = toConversation(messages, host.maxImageBytes);
    return run(reply, req.raw, body.model, image, turns, generation(host, body.options), body.stream !== false, (text) => ({ message: { role: 'assistant', content: text } }), stats);
  });

  app.post('/api/generate', async (req, reply) => {
    const body = parseBody(OllamaGenerateSchema, req.body);
    checkModel(host, body.model);
    const images = body.images ?? [];
    if (images.length !== 1) throw new ApiError(400, `LLaVA-Med answers about exactly one image: send it in 'images' (got ${images.length}).`, undefined, 'invalid_image_count');
    const { image, turns } = toConversation([{ role: 'user', content: [{ type: 'text', text: body.prompt }, { type: 'image_url', image_url: { url: `data:image/png;base64,${images[0]}` } }] }], host.maxImageBytes);
    return run(reply, req.raw, body.model, image, turns, generation(host, body.options), body.stream !== false, (text) => ({ response: text }), (a, t0) => ({ context: [], ...stats(a, t0) }));
  });

  app.get('/api/tags', async () => ({
    models: [
      {
        name: `${host.modelName}:latest`,
        model: `${host.modelName}:latest`,
        modified_at: new Date(0).toISOString(),
        size: 0,
        digest: '',
        details: { format: 'gguf', family: 'llama', families: ['llama', 'clip'], parameter_size: '', quantization_level: '', parent_model: '', llava_med_variant: host.variant() },
      },
    ],
  }));
  app.get('/api/version', async () => ({ version: '0.0.0-llava-med' }));
}
