/**
 * OpenAI Chat Completions requests → LLaVA-Med's own conversation: request schemas (zod), the
 * mapping of `messages` onto ChatTurns with exactly one image, and data-URL decoding.
 *
 * LLaVA-Med's templates are fixed (v0: its own system prompt and few-shot exchange; v1.5: no system
 * prompt at all), so what they cannot express is refused with a 400 instead of being silently
 * dropped: system/developer messages, images outside the first user message, a second image, tool
 * calls, turns that do not alternate user/assistant.
 */
import { z } from 'zod';
import type { ChatTurn } from '../prompt/index.js';

/** An error the server answers in OpenAI's shape: `{ error: { message, type, code } }`. */
export class ApiError extends Error {
  /**
   * @param status - HTTP status of the error response.
   * @param message - The OpenAI-style error message sent to the client.
   * @param type - OpenAI error type; default from the status (authentication_error, rate_limit_error, server_error, invalid_request_error).
   * @param code - OpenAI error code (e.g. a LlavaMedError code), or null.
   * @param headers - Extra response headers (e.g. Retry-After).
   */
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = status === 401 ? 'authentication_error' : status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const imagePart = z.object({
  type: z.literal('image_url'),
  image_url: z.object({ url: z.string(), detail: z.enum(['auto', 'low', 'high']).nullish() }),
});
const content = z.union([z.string(), z.array(z.union([textPart, imagePart]))]);

export const MessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: content.nullish(),
  name: z.string().nullish(),
});

const stop = z.union([z.string(), z.array(z.string()).max(4)]).nullish();

export const ChatRequestSchema = z.object({
  model: z.string().nullish(),
  messages: z.array(MessageSchema).min(1),
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z.number().int().min(0).max(0xffffffff).nullish(),
  stop,
  n: z.literal(1).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  logprobs: z.literal(false).nullish(),
  tools: z.array(z.unknown()).max(0).nullish(),
  user: z.string().nullish(),
});
export type ChatRequest = z.infer<typeof ChatRequestSchema>;

export const ScoreRequestSchema = z.object({
  model: z.string().nullish(),
  messages: z.array(MessageSchema).min(1).nullish(),
  image: z.string().nullish(),
  question: z.string().nullish(),
  candidates: z.array(z.string().min(1)).min(1).max(64),
});
export type ScoreRequest = z.infer<typeof ScoreRequestSchema>;

/** zod issues → one 400 naming the field (`messages.0.content`) and what was wrong. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, 'The request body must be a JSON object.', undefined, 'invalid_request_body');
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const where = issue.path.join('.') || 'body';
  const hint = where === 'n' ? ' (only n = 1 is supported)' : where === 'logprobs' ? ' (logprobs are not supported yet)' : where === 'tools' ? ' (tool calls are not supported)' : '';
  throw new ApiError(400, `Invalid '${where}': ${issue.message}${hint}.`, undefined, 'invalid_value');
}

/** Decodes a `data:image/...;base64,` URL; anything else is a 400, more than maxBytes a 413. */
export function decodeDataUrl(url: string, maxBytes: number): Buffer {
  if (!url.startsWith('data:')) {
    throw new ApiError(400, 'image_url must be a data: URL (data:image/png;base64,...); http(s) and file URLs are not fetched by this server.', undefined, 'invalid_image_url');
  }
  const comma = url.indexOf(',');
  const header = comma < 0 ? '' : url.slice(5, comma);
  const m = /^(image\/[a-z0-9.+-]+)((?:;[^;,]*)*);base64$/i.exec(header);
  if (!m) throw new ApiError(400, `image_url must be a base64 data URL of an image (data:image/<type>;base64,...), got "data:${header.slice(0, 60)}".`, undefined, 'invalid_image_url');
  return decodeBase64Image(url.slice(comma + 1), maxBytes, 'image_url: the data after "base64,"');
}

/** Decodes base64 image bytes (size checked before decoding); bad base64 is a 400, more than maxBytes a 413. */
export function decodeBase64Image(b64: string, maxBytes: number, what: string): Buffer {
  // base64 length → byte count, before decoding anything
  if (Math.floor((b64.length * 3) / 4) - 2 > maxBytes) throw new ApiError(413, `The image is larger than the server's limit of ${maxBytes} bytes.`, undefined, 'image_too_large');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new ApiError(400, `${what} is not valid base64.`, undefined, 'invalid_image_url');
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length === 0) throw new ApiError(400, `${what} holds no image data.`, undefined, 'invalid_image_url');
  if (bytes.length > maxBytes) throw new ApiError(413, `The image is larger than the server's limit of ${maxBytes} bytes.`, undefined, 'image_too_large');
  return bytes;
}

type Message = z.infer<typeof MessageSchema>;

function partsOf(m: Message): { texts: string[]; images: string[] } {
  if (typeof m.content === 'string') return { texts: [m.content], images: [] };
  const texts: string[] = [];
  const images: string[] = [];
  for (const p of m.content ?? []) {
    if (p.type === 'text') texts.push(p.text);
    else images.push(p.image_url.url);
  }
  return { texts, images };
}

/**
 * messages → [{question, answer}, ..., {question}] plus the one image. Roles must alternate
 * user/assistant starting and ending with user; the image comes in the first user message.
 */
export function toConversation(messages: readonly Message[], maxImageBytes: number): {
  /** The decoded image bytes. */
  image: Buffer;
  /** The conversation, the last turn without an answer. */
  turns: ChatTurn[];
} {
  const turns: ChatTurn[] = [];
  let image: Buffer | undefined;
  messages.forEach((m, i) => {
    if (m.role === 'system' || m.role === 'developer') {
      throw new ApiError(400, `messages[${i}]: ${m.role} messages are not supported; LLaVA-Med answers with its own fixed prompt template (v0: its original system prompt, v1.5: none).`, undefined, 'unsupported_role');
    }
    if (m.role === 'tool' || m.role === 'function') throw new ApiError(400, `messages[${i}]: ${m.role} messages are not supported (no tool calls).`, undefined, 'unsupported_role');
    const expected = turns.length > 0 && turns[turns.length - 1]!.answer === undefined ? 'assistant' : 'user';
    if (m.role !== expected) throw new ApiError(400, `messages[${i}]: expected a ${expected} message; user and assistant messages must alternate, starting with user.`, undefined, 'invalid_value');
    const { texts, images } = partsOf(m);
    if (images.length > 0) {
      if (m.role !== 'user' || i !== 0 || images.length > 1 || image) {
        throw new ApiError(400, `messages[${i}]: LLaVA-Med takes exactly one image per conversation, in the first user message.`, undefined, 'invalid_image_count');
      }
      image = decodeDataUrl(images[0]!, maxImageBytes);
    }
    const text = texts.join('\n');
    if (m.role === 'user') turns.push({ question: text });
    else turns[turns.length - 1]!.answer = text;
  });
  if (!image) throw new ApiError(400, 'The first user message must contain one image_url part (a data:image/...;base64 URL).', undefined, 'invalid_image_count');
  if (turns[turns.length - 1]!.answer !== undefined) throw new ApiError(400, 'The last message must be a user message (the question to answer).', undefined, 'invalid_value');
  return { image, turns };
}
