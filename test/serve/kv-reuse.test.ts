/**
 * KV reuse across requests: the next turn of a conversation (the earlier messages sent again, as an
 * OpenAI client does) reuses the KV cells of the earlier request's prompt — image included — instead
 * of evaluating them again. Counted in tokens (usage.prompt_tokens_details.cached_tokens and encoder
 * calls), at the real image geometry (576 image positions; v0's template, so without recognising
 * the image only the system prompt before it is reusable).
 */
import t from 'tap';
import OpenAI from 'openai';
import { LlavaMed, engineOf } from '../../lib/llava-med.js';
import { createServer } from '../../lib/serve/index.js';
import { makeTinyLlamaGguf, makeTinyMmproj } from '../helpers/tiny-gguf.js';
import { BIG_LLM, BIG_MMPROJ } from '../engine/util.js';
import { noisePng } from '../llava-med/util.js';

const llm = await makeTinyLlamaGguf(undefined, BIG_LLM);
const mm = await makeTinyMmproj(undefined, BIG_MMPROJ);
const png = await noisePng(48, 40, 301);
const other = await noisePng(48, 40, 302);
const img = (p: Buffer) => ({ type: 'image_url' as const, image_url: { url: `data:image/png;base64,${p.toString('base64')}` } });
const GEN = { model: 'llava-med', temperature: 0, max_tokens: 6 };

async function serve(imageCache: number) {
  const med = await LlavaMed.load({ model: llm.path, mmproj: mm.path, threads: 1, contextSize: 2 * 1024, sequences: 2, imageCache });
  const server = createServer(med);
  const url = await server.listen({ port: 0 });
  let encodes = 0;
  const proj = engineOf(med).projector;
  const encode = proj.encode;
  proj.encode = function (this: typeof proj, ...a: Parameters<typeof encode>) {
    encodes++;
    return encode.apply(this, a);
  };
  return {
    med,
    client: new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 }),
    encodes: () => encodes,
    close: async () => {
      await server.close();
      await med.dispose();
    },
  };
}

/**
 * A turn about `first`, a turn about `second` (another conversation, in between), then the second
 * turn about `first` (resending the first turn, as OpenAI clients do).
 */
async function conversation(s: Awaited<ReturnType<typeof serve>>, first: Buffer, second: Buffer) {
  const q1 = { role: 'user' as const, content: [img(first), { type: 'text' as const, text: 'What is shown in this image?' }] };
  const r1 = await s.client.chat.completions.create({ ...GEN, messages: [q1] });
  const r3 = await s.client.chat.completions.create({ ...GEN, messages: [{ role: 'user', content: [img(second), { type: 'text', text: 'What is shown in this image?' }] }] });
  const r2 = await s.client.chat.completions.create({
    ...GEN,
    messages: [q1, { role: 'assistant', content: r1.choices[0]!.message.content }, { role: 'user', content: 'Is it normal?' }],
  });
  return [r1, r2, r3];
}

t.test('the next turn reuses the earlier prompt, image included; answers as without reuse', async (t) => {
  const cached = await serve(8);
  const cold = await serve(0);
  t.teardown(async () => {
    await cached.close();
    await cold.close();
  });
  const [c1, c2, c3] = await conversation(cached, png, other);
  const [n1, n2, n3] = await conversation(cold, png, other);
  const imageTokens = cached.med.imageTokens;
  t.equal(imageTokens, 576, 'the real image geometry');

  const p1 = c1.usage!.prompt_tokens;
  t.ok(p1 > imageTokens, `the first prompt holds the image (${p1} positions)`);
  const reused = c2.usage!.prompt_tokens_details!.cached_tokens!;
  t.ok(reused >= p1, `turn 2 reuses the whole first prompt: ${reused} of ${c2.usage!.prompt_tokens} positions (first prompt ${p1})`);
  t.equal(cached.encodes(), 2, 'the encoder ran for the two distinct images only (turn 2 skipped it)');
  // The other conversation went to the empty sequence, not over the first one's cells.
  const c3Reused = c3.usage!.prompt_tokens_details!.cached_tokens!;
  t.ok(c3Reused < p1 - imageTokens, `another image: only the text before it is reused (${c3Reused})`);

  // Control: without the image cache nothing from the image on is recognised, and the image is encoded again.
  t.ok(n2.usage!.prompt_tokens_details!.cached_tokens! < p1 - imageTokens, `without the cache turn 2 reuses ${n2.usage!.prompt_tokens_details!.cached_tokens} positions`);
  t.equal(cold.encodes(), 3, 'and encodes the image again');

  // Reuse changes nothing in the answers.
  for (const [a, b, what] of [[c1, n1, 'turn 1'], [c2, n2, 'turn 2'], [c3, n3, 'other image']] as const) {
    t.equal(a.choices[0]!.message.content, b.choices[0]!.message.content, `${what}: the same answer with and without reuse`);
    t.equal(a.usage!.prompt_tokens, b.usage!.prompt_tokens, `${what}: the same prompt length`);
  }
});
