/**
 * Ollama's API on the server, talked to with the official `ollama` client on the tiny v0 model.
 * References are the library's own ask()/chat() on the same instance (no HTTP, no message mapping).
 */
import t from 'tap';
import { Ollama } from 'ollama';
import { createServer } from '../../lib/serve/index.js';
import { loadTiny, noisePng } from '../llava-med/util.js';
import { pyStrip } from '../../lib/prompt/index.js';
import { stopCaseFor } from './stop-after-space.js';

const KEY = 'ollama-key-1';
const { med } = await loadTiny('v0', { contextSize: 2048, sequences: 2 });
const png = await noisePng(36, 30, 501);
const Q = 'What is shown in this image?';
const MAX = 20;
const server = createServer(med, { modelName: 'tiny', apiKey: KEY });
const url = await server.listen({ port: 0 });
const ollama = new Ollama({ host: url, headers: { authorization: `Bearer ${KEY}` } });
t.teardown(async () => {
  await server.close({ timeoutMs: 0 });
  await med.dispose();
});
const ref = await med.ask(png, Q, { temperature: 0, maxTokens: MAX });
const options = { temperature: 0, num_predict: MAX };

t.test('/api/chat: one answer and a stream, both equal LlavaMed.ask', async (t) => {
  const r = await ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: Q, images: [png] }], options, stream: false });
  t.equal(r.message.content, ref.text);
  t.equal(r.message.role, 'assistant');
  t.equal(r.done, true);
  t.equal(r.eval_count, ref.tokens.length, 'eval_count = generated tokens');
  t.ok(r.prompt_eval_count > med.imageTokens, 'prompt_eval_count includes the image');
  let text = '';
  let last: Awaited<ReturnType<typeof ollama.chat>> | undefined;
  let parts = 0;
  for await (const c of await ollama.chat({ model: 'tiny:latest', messages: [{ role: 'user', content: Q, images: [png.toString('base64')] }], options, stream: true })) {
    text += c.message.content;
    parts++;
    last = c;
  }
  t.equal(text, ref.text, 'the NDJSON stream concatenates to the answer');
  t.ok(parts > 3, `several lines (${parts})`);
  t.equal(last?.done, true, 'the last line is done');
  t.equal(last?.done_reason, ref.stopReason === 'length' ? 'length' : 'stop');
});

t.test('/api/chat multi-turn equals a ChatSession; /api/generate equals ask', async (t) => {
  const session = med.chat(png);
  const a1 = await session.ask(Q, { temperature: 0, maxTokens: MAX });
  const a2 = await session.ask('Is it normal?', { temperature: 0, maxTokens: MAX });
  await session.dispose();
  const r = await ollama.chat({
    model: 'tiny',
    messages: [{ role: 'user', content: Q, images: [png] }, { role: 'assistant', content: a1.text }, { role: 'user', content: 'Is it normal?' }],
    options,
  });
  t.equal(r.message.content, a2.text);
  const g = await ollama.generate({ model: 'tiny', prompt: Q, images: [png], options });
  t.equal(g.response, ref.text);
  let text = '';
  for await (const c of await ollama.generate({ model: 'tiny', prompt: Q, images: [png], options, stream: true })) text += c.response;
  t.equal(text, ref.text, 'streamed generate');
});

t.test('streamed lines are stripped as the final answer (the original strip()s it): a stop after a space', async (t) => {
  const { stop, cut } = await stopCaseFor(t, med, png, Q, MAX);
  const opts = { ...options, stop: [stop] };
  const whole = await ollama.generate({ model: 'tiny', prompt: Q, images: [png], options: opts });
  t.equal(whole.response, pyStrip(cut), 'the answer is the stripped text before the stop');
  let text = '';
  for await (const c of await ollama.generate({ model: 'tiny', prompt: Q, images: [png], options: opts, stream: true })) text += c.response;
  t.equal(text, whole.response, 'the streamed lines concatenate to it (generate)');
  text = '';
  for await (const c of await ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: Q, images: [png] }], options: opts, stream: true })) text += c.message.content;
  t.equal(text, whole.response, 'the streamed lines concatenate to it (chat)');
});

t.test('/api/tags lists the model; errors in Ollama shape, the server stays up', async (t) => {
  const list = await ollama.list();
  t.same(list.models.map((m) => m.name), ['tiny:latest']);
  const fail = async (p: Promise<unknown>) => p.then(() => undefined, (e: { status_code?: number; error?: string }) => e);
  const cases: [string, () => Promise<unknown>, number, RegExp][] = [
    ['unknown model', () => ollama.chat({ model: 'llama3', messages: [{ role: 'user', content: Q, images: [png] }] }), 404, /llama3.*not found/],
    ['system message', () => ollama.chat({ model: 'tiny', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: Q, images: [png] }], stream: false }), 400, /system/],
    ['no image', () => ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: Q }], stream: false }), 400, /image/],
    ['generate without image', () => ollama.generate({ model: 'tiny', prompt: Q }), 400, /exactly one image/],
    ['structured output', () => ollama.generate({ model: 'tiny', prompt: Q, images: [png], format: 'json' }), 400, /format/],
    ['not an image', () => ollama.generate({ model: 'tiny', prompt: Q, images: [Buffer.from('hello, not a png')] }), 400, /./],
    ['wrong key', () => new Ollama({ host: url }).list(), 401, /API key/],
  ];
  for (const [what, p, status, msg] of cases) {
    const e = await fail(p());
    t.equal(e?.status_code, status, `${what}: ${status}`);
    t.match(e?.error, msg, `${what}: message`);
  }
  const again = await ollama.generate({ model: 'tiny', prompt: Q, images: [png], options });
  t.equal(again.response, ref.text, 'still answers');
});
