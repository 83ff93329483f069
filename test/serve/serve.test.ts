/**
 * The OpenAI-compatible server on a tiny v0 model, talked to with the official `openai` client
 * (and raw fetch for what the client would refuse to send). References are the library's own
 * ask()/chat() on the same instance, which never go through HTTP or the message mapping.
 */
import t from 'tap';
import OpenAI from 'openai';
import { engineOf } from '../../lib/llava-med.js';
import { createServer, type AccessLogEntry } from '../../lib/serve/index.js';
import { loadTiny, noisePng } from '../llava-med/util.js';
import { pyStrip } from '../../lib/prompt/index.js';
import { stopCaseFor } from './stop-after-space.js';

const KEY = 'test-key-0123';
const { med } = await loadTiny('v0');
const png = await noisePng(40, 32, 7);
const dataUrl = `data:image/png;base64,${png.toString('base64')}`;
const Q = 'What is shown in this image?';
const MAX = 24;

const log: AccessLogEntry[] = [];
const logWaiters: (() => void)[] = [];
const server = createServer(med, {
  modelName: 'tiny',
  apiKey: KEY,
  queue: 0,
  bodyLimit: 512 * 1024,
  maxImageBytes: 100 * 1024,
  accessLog: (e) => {
    log.push(e);
    for (const w of logWaiters.splice(0)) w();
  },
});
// Resolves when the server closes the response of the next request (see the abort test).
let responseClosed: Promise<void> = new Promise(() => {});
let onResponseClosed = () => {};
server.app.addHook('onRequest', async (_req, reply) => {
  reply.raw.once('close', () => onResponseClosed());
});
const url = await server.listen({ port: 0 });
const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 });
t.teardown(async () => {
  await server.close();
  await med.dispose();
});

const userMsg = (text: string, img = dataUrl) => ({ role: 'user' as const, content: [{ type: 'text' as const, text }, { type: 'image_url' as const, image_url: { url: img } }] });
const untilLogged = (n: number) => new Promise<void>((r) => (log.length >= n ? r() : logWaiters.push(() => log.length >= n && r())));

async function post(path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<{ status: number; json: { error?: { message: string; type: string; code: string | null } } & Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body), signal });
  return { status: res.status, json: (await res.json()) as never, headers: res.headers };
}

const ref = await med.ask(png, Q, { temperature: 0, maxTokens: MAX });
t.ok(ref.text.length > 0, 'the reference answer is not empty');

t.test('non-streaming answer equals LlavaMed.ask at temperature 0, with usage', async (t) => {
  const r = await client.chat.completions.create({ model: 'tiny', messages: [userMsg(Q)], temperature: 0, max_tokens: MAX });
  t.equal(r.choices[0]!.message.content, ref.text);
  t.equal(r.choices[0]!.finish_reason, ref.stopReason === 'length' ? 'length' : 'stop');
  t.equal(r.usage?.completion_tokens, ref.tokens.length);
  t.ok((r.usage?.prompt_tokens ?? 0) > med.imageTokens, 'prompt tokens include the image and the template');
  t.equal(r.object, 'chat.completion');
});

t.test('streaming concatenation equals LlavaMed.ask, ends with a finish reason and usage', async (t) => {
  const stream = await client.chat.completions.create({ model: 'tiny', messages: [userMsg(Q)], temperature: 0, max_completion_tokens: MAX, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish: string | null = null;
  let completion: number | undefined;
  let chunks = 0;
  for await (const c of stream) {
    chunks++;
    text += c.choices[0]?.delta.content ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
    completion = c.usage?.completion_tokens ?? completion;
  }
  t.equal(text, ref.text);
  t.ok(chunks > 3, `several chunks (${chunks})`);
  t.equal(finish, ref.stopReason === 'length' ? 'length' : 'stop');
  t.equal(completion, ref.tokens.length);
});

t.test('streamed text is stripped as the final answer (the original strip()s it): a stop after a space', async (t) => {
  const { stop, cut } = await stopCaseFor(t, med, png, Q, MAX);
  const whole = await client.chat.completions.create({ model: 'tiny', messages: [userMsg(Q)], temperature: 0, max_tokens: MAX, stop });
  t.equal(whole.choices[0]!.message.content, pyStrip(cut), 'the answer is the stripped text before the stop');
  let text = '';
  for await (const c of await client.chat.completions.create({ model: 'tiny', messages: [userMsg(Q)], temperature: 0, max_tokens: MAX, stop, stream: true })) text += c.choices[0]?.delta.content ?? '';
  t.equal(text, whole.choices[0]!.message.content, 'the streamed chunks concatenate to it');
});

t.test('multi-turn messages equal a ChatSession', async (t) => {
  const q2 = 'And what else?';
  const session = med.chat(png);
  const a1 = await session.ask(Q, { temperature: 0, maxTokens: MAX });
  const a2 = await session.ask(q2, { temperature: 0, maxTokens: MAX });
  await session.dispose();
  const r = await client.chat.completions.create({
    model: 'tiny',
    messages: [userMsg(Q), { role: 'assistant', content: a1.text }, { role: 'user', content: q2 }],
    temperature: 0,
    max_tokens: MAX,
  });
  t.equal(r.choices[0]!.message.content, a2.text);
});

t.test('aborting a stream stops its generation and frees the server', async (t) => {
  const ctx = engineOf(med).context;
  const step = ctx.step;
  let clientGotText = false;
  responseClosed = new Promise<void>((r) => (onResponseClosed = r));
  // Once the client has text, the next token waits until the server has seen the disconnect.
  ctx.step = async function (this: typeof ctx, ...args: Parameters<typeof step>) {
    if (clientGotText) await responseClosed;
    return step.apply(this, args);
  };
  t.teardown(() => {
    ctx.step = step;
    onResponseClosed = () => {};
  });
  const before = log.length;
  const ac = new AbortController();
  const stream = await client.chat.completions.create({ model: 'tiny', messages: [userMsg(Q)], temperature: 0, max_tokens: 600, stream: true }, { signal: ac.signal });
  // The client's iterator ends (or throws) once its AbortController fires.
  await (async () => {
    for await (const c of stream) {
      if (c.choices[0]?.delta.content) {
        clientGotText = true;
        ac.abort();
      }
    }
  })().catch(() => {});
  t.ok(clientGotText, 'the client got text before aborting');
  await untilLogged(before + 1);
  const e = log[log.length - 1]!;
  t.equal(e.stopReason, 'aborted', 'the generation ended as aborted');
  t.ok(e.clientClosed, 'logged as closed by the client');
  t.ok((e.completionTokens ?? 600) < 600, `stopped early (${e.completionTokens} tokens)`);
  ctx.step = step;
  const r = await client.chat.completions.create({ model: 'tiny', messages: [userMsg(Q)], temperature: 0, max_tokens: MAX });
  t.equal(r.choices[0]!.message.content, ref.text, 'the next request is answered (queue 0: no 429)');
});

t.test('429 with Retry-After when the queue is full', async (t) => {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  // Hold the instance's own queue so the first request waits in it.
  const held = (med as unknown as { queue: { run: (op: () => Promise<void>) => Promise<void> } }).queue.run(() => gate);
  const first = post('/v1/chat/completions', { model: 'tiny', messages: [userMsg(Q)], temperature: 0, max_tokens: MAX });
  while (server.active < 1) await new Promise((r) => setTimeout(r, 5));
  // A server that queued it instead would never answer while the gate is shut: fail, don't hang.
  const second = await post('/v1/chat/completions', { messages: [userMsg(Q)], max_tokens: 4 }, {}, AbortSignal.timeout(20_000)).catch((e: unknown) => ({ status: 0, json: { error: { message: String(e), type: '', code: null } }, headers: new Headers() }));
  t.equal(second.status, 429);
  t.equal(second.json.error?.type, 'rate_limit_error');
  t.match(second.headers.get('retry-after'), /^\d+$/);
  open();
  await held;
  const r = await first;
  t.equal(r.status, 200);
  t.equal((r.json as { choices: { message: { content: string } }[] }).choices[0]!.message.content, ref.text);
});

t.test('401 without or with a wrong key; /health needs none', async (t) => {
  const bad = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'wrong', maxRetries: 0 });
  const e = await bad.chat.completions.create({ model: 'tiny', messages: [userMsg(Q)] }).catch((x: unknown) => x);
  t.ok(e instanceof OpenAI.AuthenticationError, 'AuthenticationError');
  t.equal((e as { status?: number }).status, 401);
  const none = await fetch(`${url}/v1/models`);
  t.equal(none.status, 401);
  t.equal(((await none.json()) as { error: { code: string } }).error.code, 'invalid_api_key');
  t.equal((await fetch(`${url}/health`)).status, 200);
  const models = await client.models.list();
  t.same(models.data.map((m) => m.id), ['tiny']);
});

t.test('bad requests: 400/404/413 in OpenAI error shape, and the server stays up', async (t) => {
  const cases: [string, unknown, number, RegExp][] = [
    ['malformed JSON', '{"messages": [', 400, /JSON/],
    ['wrong type', { messages: [userMsg(Q)], max_tokens: 'ten' }, 400, /max_tokens/],
    ['n > 1', { messages: [userMsg(Q)], n: 2 }, 400, /n = 1/],
    ['non-image data URL', { messages: [userMsg(Q, `data:text/plain;base64,${Buffer.from('hello').toString('base64')}`)] }, 400, /data:text\/plain/],
    ['http URL', { messages: [userMsg(Q, 'http://example.com/x.png')] }, 400, /data: URL/],
    ['undecodable image', { messages: [userMsg(Q, `data:image/png;base64,${Buffer.from('not a png at all').toString('base64')}`)], max_tokens: 4 }, 400, /./],
    ['image over the byte limit', { messages: [userMsg(Q, `data:image/png;base64,${Buffer.alloc(200 * 1024).toString('base64')}`)] }, 413, /image is larger/],
    ['two images', { messages: [{ role: 'user', content: [{ type: 'text', text: Q }, { type: 'image_url', image_url: { url: dataUrl } }, { type: 'image_url', image_url: { url: dataUrl } }] }] }, 400, /one image/],
    ['no image', { messages: [{ role: 'user', content: Q }] }, 400, /image_url/],
    ['system prompt', { messages: [{ role: 'system', content: 'Be brief.' }, userMsg(Q)] }, 400, /system/],
    ['max_tokens over the cap', { messages: [userMsg(Q)], max_tokens: 100000 }, 400, /limit/],
    ['unknown model', { model: 'gpt-4o', messages: [userMsg(Q)] }, 404, /gpt-4o/],
    ['oversized body', { messages: [userMsg('x'.repeat(600 * 1024))] }, 413, /request body is larger/],
  ];
  for (const [what, body, status, msg] of cases) {
    const r = await post('/v1/chat/completions', body);
    t.equal(r.status, status, `${what}: ${status}`);
    t.match(r.json.error?.message, msg, `${what}: message`);
    t.type(r.json.error?.type, 'string', `${what}: error.type`);
    t.ok('code' in (r.json.error ?? {}), `${what}: error.code`);
  }
  const notFound = await fetch(`${url}/v1/nothing`, { headers: { authorization: `Bearer ${KEY}` } });
  t.equal(notFound.status, 404);
  const health = await fetch(`${url}/health`);
  t.equal(health.status, 200, 'still up');
  const r = await client.chat.completions.create({ model: 'tiny', messages: [userMsg(Q)], temperature: 0, max_tokens: MAX });
  t.equal(r.choices[0]!.message.content, ref.text, 'and still answers');
});

t.test('/v1/score equals LlavaMed.score', async (t) => {
  const cands = ['yes', 'no', 'a lesion'];
  const want = await med.score(png, Q, cands);
  const r = await post('/v1/score', { image: dataUrl, question: Q, candidates: cands });
  t.equal(r.status, 200);
  const data = (r.json as { data: { candidate: string; logprob: number }[] }).data;
  t.same(data.map((d) => d.candidate), cands);
  data.forEach((d, i) => t.equal(d.logprob, want[i]!.logProb, `logprob of ${d.candidate}`));
  const viaMessages = await post('/v1/score', { messages: [userMsg(Q)], candidates: cands });
  t.same((viaMessages.json as { data: unknown }).data, data);
  const bad = await post('/v1/score', { question: Q, candidates: cands });
  t.equal(bad.status, 400);
});

t.test('access log carries no prompt text', async (t) => {
  const all = JSON.stringify(log);
  t.notOk(all.includes(Q), 'question not logged');
  t.notOk(all.includes(KEY), 'key not logged');
  t.notOk(all.includes(png.toString('base64').slice(0, 40)), 'image not logged');
});
