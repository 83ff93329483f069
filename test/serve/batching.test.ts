/**
 * Continuous batching across requests, through the server and the official `openai` client, on the
 * tiny v0 model with 4 parallel sequences of 640 positions each. References are sequential
 * LlavaMed.ask answers from a separate one-sequence instance (never the batched path agreeing with itself).
 */
import t from 'tap';
import OpenAI from 'openai';
import { LlavaMed, engineOf, type Answer } from '../../lib/llava-med.js';
import { createServer } from '../../lib/serve/index.js';
import { noisePng, tinyV0 } from '../llava-med/util.js';

const tiny = await tinyV0();
const PER_SEQ = 640; // over 512 cells per sequence
const seqMed = await LlavaMed.load({ model: tiny.model, mmproj: tiny.mmproj, threads: 1, contextSize: PER_SEQ });
const med = await LlavaMed.load({ model: tiny.model, mmproj: tiny.mmproj, threads: 1, contextSize: 4 * PER_SEQ, sequences: 4 });
t.teardown(async () => {
  await seqMed.dispose();
  await med.dispose();
});
const ctx = engineOf(med).context;

const QUESTIONS = ['What is shown in this image?', 'Is there a fracture?', 'Which organ is this?', 'Describe the lesion.'];
const dataUrl = (png: Buffer) => `data:image/png;base64,${png.toString('base64')}`;
const userMsg = (text: string, png: Buffer) => ({ role: 'user' as const, content: [{ type: 'image_url' as const, image_url: { url: dataUrl(png) } }, { type: 'text' as const, text }] });

t.test('16 concurrent clients get exactly the sequential answers; newcomers join a running batch', async (t) => {
  const reqs = await Promise.all(
    Array.from({ length: 16 }, async (_, i) => ({ png: await noisePng(28 + (i % 5) * 6, 30 + (i % 3) * 4, 100 + i), question: QUESTIONS[i % 4]!, max: 6 + ((i * 7) % 13) })),
  );
  const refs: Answer[] = [];
  for (const r of reqs) refs.push(await seqMed.ask(r.png, r.question, { temperature: 0, maxTokens: r.max }));
  t.ok(refs.some((a) => a.tokens.length !== refs[0]!.tokens.length), 'the answers differ in length (requests end at different tokens)');

  const server = createServer(med, { queue: 16 });
  const url = await server.listen({ port: 0 });
  t.teardown(() => server.close());
  // What the engine did, in order: steps (the sequences they advanced) and prompt loads.
  const events: { step?: number[]; load?: number }[] = [];
  const step = ctx.step;
  ctx.step = function (this: typeof ctx, entries, opts) {
    events.push({ step: entries.map((e) => e.seq) });
    return step.call(this, entries, opts);
  };
  // A load is recorded when its last piece is done (the job's first step follows).
  const loads = Array.from({ length: 4 }, (_, i) => {
    const s = ctx.sequence(i);
    const loadPieces = s.loadPieces;
    s.loadPieces = async function* (this: typeof s, ...a: Parameters<typeof loadPieces>) {
      const stats = yield* loadPieces.apply(this, a);
      events.push({ load: i });
      return stats;
    };
    return () => void (s.loadPieces = loadPieces);
  });
  t.teardown(() => {
    ctx.step = step;
    loads.forEach((restore) => restore());
  });

  const answers = await Promise.all(
    reqs.map(async (r) => {
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 });
      const c = await client.chat.completions.create({ model: 'llava-med', messages: [userMsg(r.question, r.png)], temperature: 0, max_tokens: r.max });
      return c;
    }),
  );
  answers.forEach((a, i) => {
    t.equal(a.choices[0]!.message.content, refs[i]!.text, `client ${i}: the sequential answer`);
    t.equal(a.usage?.completion_tokens, refs[i]!.tokens.length, `client ${i}: the same number of tokens`);
  });
  const steps = events.flatMap((e) => (e.step ? [e.step] : []));
  t.equal(Math.max(...steps.map((s) => s.length)), 4, 'up to 4 requests advanced together in one step');
  // llama.cpp puts only consecutive sequence ids of separate KV buffers into one micro-batch (each reads all the weights).
  t.ok(steps.every((s) => s.every((q, i) => i === 0 || s[i - 1]! < q)), 'every step feeds its sequences in id order');
  // A newcomer joined while others kept generating: a prompt loaded into sequence s between two
  // steps that both advanced another sequence q.
  let joins = 0;
  let prev: number[] | undefined;
  let loaded: number[] = [];
  for (const e of events) {
    if (e.load !== undefined) loaded.push(e.load);
    else {
      if (prev && loaded.some((s) => e.step!.includes(s) && e.step!.some((q) => q !== s && prev!.includes(q) && !loaded.includes(q)))) joins++;
      prev = e.step;
      loaded = [];
    }
  }
  t.ok(joins >= 4, `requests joined a running batch between tokens (${joins} times)`);
});

t.test('an aborted stream frees its sequence for the next request within one token; 429 beyond the queue', async (t) => {
  // Two sequences: two long requests fill them.
  const med2 = await LlavaMed.load({ model: tiny.model, mmproj: tiny.mmproj, threads: 1, contextSize: 2 * PER_SEQ, sequences: 2 });
  t.teardown(() => med2.dispose());
  const server2 = createServer(med2, { queue: 1 });

  const [pa, pb, pc] = [await noisePng(30, 30, 201), await noisePng(34, 30, 202), await noisePng(30, 36, 203)];
  const refB = await seqMed.ask(pb, QUESTIONS[1]!, { temperature: 0, maxTokens: 300 });
  const refC = await seqMed.ask(pc, QUESTIONS[2]!, { temperature: 0, maxTokens: 8 });

  const ctx2 = engineOf(med2).context;
  const events: string[] = [];
  let gate = false;
  let onClosed!: () => void;
  const closed = new Promise<void>((r) => (onClosed = r));
  // A is the only streaming request.
  server2.app.addHook('preHandler', async (req, reply) => {
    if ((req.body as { stream?: boolean } | undefined)?.stream) reply.raw.once('close', () => {
      if (gate) {
        events.push('close');
        onClosed();
      }
    });
  });
  const url2 = await server2.listen({ port: 0 });
  t.teardown(() => server2.close());
  const client2 = new OpenAI({ baseURL: `${url2}/v1`, apiKey: 'none', maxRetries: 0 });
  const step = ctx2.step;
  // Once A has streamed text, steps wait until the server has seen A's client go away: nothing can
  // finish in between, so what follows the close is counted exactly.
  ctx2.step = async function (this: typeof ctx2, entries, opts) {
    if (gate) await closed;
    events.push('step');
    return step.call(this, entries, opts);
  };
  for (let i = 0; i < 2; i++) {
    const s = ctx2.sequence(i);
    const [decode, decodeImage] = [s.decode, s.decodeImage];
    s.decode = function (this: typeof s, ...a: Parameters<typeof decode>) {
      events.push('prefill');
      return decode.apply(this, a);
    };
    s.decodeImage = function (this: typeof s, ...a: Parameters<typeof decodeImage>) {
      events.push('prefill');
      return decodeImage.apply(this, a);
    };
  }
  // A request's prompt stage (its image encode) is where it starts; its prompt loads over the next turns.
  const proj2 = engineOf(med2).projector;
  const encode = proj2.encode;
  proj2.encode = function (this: typeof proj2, ...a: Parameters<typeof encode>) {
    events.push('start');
    return encode.apply(this, a);
  };
  const scheduler = (med2 as unknown as { queue: { waiting: number; activeJobs: number } }).queue;

  const b = client2.chat.completions.create({ model: 'llava-med', messages: [userMsg(QUESTIONS[1]!, pb)], temperature: 0, max_tokens: 300 });
  const ac = new AbortController();
  const a = await client2.chat.completions.create({ model: 'llava-med', messages: [userMsg(QUESTIONS[0]!, pa)], temperature: 0, max_tokens: 300, stream: true }, { signal: ac.signal });
  let c: Promise<OpenAI.Chat.Completions.ChatCompletion> | undefined;
  let refused: { status: number; retryAfter: string | null } | undefined;
  await (async () => {
    for await (const chunk of a) {
      if (!chunk.choices[0]?.delta.content) continue;
      gate = true;
      while (scheduler.activeJobs < 2) await new Promise((r) => setTimeout(r, 2));
      c = client2.chat.completions.create({ model: 'llava-med', messages: [userMsg(QUESTIONS[2]!, pc)], temperature: 0, max_tokens: 8 });
      while (scheduler.waiting < 1) await new Promise((r) => setTimeout(r, 2));
      // 2 running + 1 waiting = parallel + queue: the next one is refused.
      const res = await fetch(`${url2}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [userMsg('Another?', pc)], max_tokens: 2 }) });
      refused = { status: res.status, retryAfter: res.headers.get('retry-after') };
      await res.text();
      events.push('abort');
      ac.abort();
      break;
    }
  })().catch(() => {});
  t.equal(refused?.status, 429, 'a request beyond parallel + queue gets 429');
  t.match(refused?.retryAfter, /^\d+$/, 'with Retry-After');
  const rc = await c!;
  const rb = await b;
  const afterClose = events.slice(events.indexOf('close'));
  const started = afterClose.indexOf('start');
  t.ok(started > 0 && afterClose.indexOf('prefill') > started, 'the waiting request started and loaded after the close');
  const stepsBefore = afterClose.slice(0, started).filter((e) => e === 'step').length;
  t.ok(stepsBefore <= 1, `the waiting request started within one token of the disconnect (${stepsBefore} step(s) in between)`);
  t.equal(rc.choices[0]!.message.content, refC.text, 'the request that took the freed sequence gets its sequential answer');
  t.equal(rb.choices[0]!.message.content, refB.text, 'the request running beside the aborted one is unaffected');
  ctx2.step = step;
});
