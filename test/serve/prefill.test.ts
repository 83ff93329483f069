/**
 * Interleaved prefill at the real geometry (256 image positions; a multi-turn prompt of over 512
 * cells whose text is split into batch-sized slices): while a newcomer's prompt loads, the running
 * stream keeps getting tokens — one prompt piece (an image, or a slice of at most batchSize text
 * tokens) between two of its steps, never the whole prompt at once — and both answers equal the
 * answers of a one-sequence instance asked alone.
 */
import t from 'tap';
import OpenAI from 'openai';
import { LlavaMed, engineOf } from '../../lib/llava-med.js';
import { createServer } from '../../lib/serve/index.js';
import { makeTinyLlamaGguf, makeTinyMmproj } from '../helpers/tiny-gguf.js';
import { BIG_LLM, BIG_MMPROJ } from '../engine/util.js';
import { noisePng } from '../llava-med/util.js';

const llm = await makeTinyLlamaGguf(undefined, BIG_LLM);
const mm = await makeTinyMmproj(undefined, { ...BIG_MMPROJ, imageSize: 224 });
const BATCH = 128;
const PER_SEQ = 1024;
const opts = { model: llm.path, mmproj: mm.path, threads: 1, batchSize: BATCH };
const alone = await LlavaMed.load({ ...opts, contextSize: PER_SEQ });
const med = await LlavaMed.load({ ...opts, contextSize: 2 * PER_SEQ, sequences: 2 });
const server = createServer(med);
const url = await server.listen({ port: 0 });
t.teardown(async () => {
  await server.close({ timeoutMs: 0 });
  await Promise.all([alone.dispose(), med.dispose()]);
});

const [pa, pb] = [await noisePng(48, 40, 401), await noisePng(40, 48, 402)];
const img = (p: Buffer) => ({ type: 'image_url' as const, image_url: { url: `data:image/png;base64,${p.toString('base64')}` } });
const QA = 'What is shown in this image?';
// An earlier answer long enough that the text after the image spans several batch slices.
const EARLIER = Array.from({ length: 40 }, (_, i) => `finding ${i} is a small opacity near the left lung base`).join('; ');
const turnsB = [{ question: 'Describe the image.', answer: EARLIER }, { question: 'Is it normal?' }];
const MAX_A = 40;
const MAX_B = 8;

t.test('a newcomer loads one piece per step of the running stream; answers equal the lone ones', async (t) => {
  t.equal(med.imageTokens, 256, 'the real image geometry (CLIP 224 px / 14)');
  const refA = await alone.ask(pa, QA, { temperature: 0, maxTokens: MAX_A });
  const refB = await alone.runTurn(pb, turnsB, { temperature: 0, maxTokens: MAX_B });

  // What the engine did, in order: steps (the sequences they fed) and prompt pieces (sequence, positions).
  const ctx = engineOf(med).context;
  const events: ({ step: number[] } | { piece: number; n: number })[] = [];
  const step = ctx.step;
  ctx.step = function (this: typeof ctx, entries, o) {
    events.push({ step: entries.map((e) => e.seq) });
    return step.call(this, entries, o);
  };
  for (let i = 0; i < 2; i++) {
    const s = ctx.sequence(i);
    const [decode, decodeImage] = [s.decode, s.decodeImage];
    s.decode = function (this: typeof s, ...a: Parameters<typeof decode>) {
      events.push({ piece: i, n: a[0].length });
      return decode.apply(this, a);
    };
    s.decodeImage = function (this: typeof s, ...a: Parameters<typeof decodeImage>) {
      events.push({ piece: i, n: a[0].nTokens });
      return decodeImage.apply(this, a);
    };
  }
  t.teardown(() => {
    ctx.step = step;
    for (let i = 0; i < 2; i++) {
      const s = ctx.sequence(i);
      delete (s as Partial<typeof s>).decode;
      delete (s as Partial<typeof s>).decodeImage;
    }
  });

  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 });
  const a = await client.chat.completions.create({ model: 'llava-med', messages: [{ role: 'user', content: [img(pa), { type: 'text', text: QA }] }], temperature: 0, max_tokens: MAX_A, stream: true });
  let textA = '';
  let b: Promise<OpenAI.Chat.Completions.ChatCompletion> | undefined;
  for await (const chunk of a) {
    textA += chunk.choices[0]?.delta.content ?? '';
    // B arrives once A is generating.
    b ??= client.chat.completions.create({
      model: 'llava-med',
      temperature: 0,
      max_tokens: MAX_B,
      messages: [
        { role: 'user', content: [img(pb), { type: 'text', text: turnsB[0]!.question }] },
        { role: 'assistant', content: EARLIER },
        { role: 'user', content: turnsB[1]!.question },
      ],
    });
  }
  const rb = await b!;
  t.equal(textA, refA.text, 'the running stream: the lone answer');
  t.equal(rb.choices[0]!.message.content, refB.text, 'the newcomer: the lone answer');
  t.ok(rb.usage!.prompt_tokens > 512, `the newcomer's prompt holds over 512 cells (${rb.usage!.prompt_tokens})`);

  // Which sequence each ran on: A's is the one its steps fed before B's first piece.
  const firstStep = events.find((e): e is { step: number[] } => 'step' in e)!;
  const seqA = firstStep.step[0]!;
  const bPieces = events.flatMap((e, i) => ('piece' in e && e.piece !== seqA ? [i] : []));
  const piecesB = bPieces.map((i) => (events[i] as { n: number }).n);
  t.ok(piecesB.includes(256), `the image is one piece (${piecesB.join(', ')})`);
  t.ok(piecesB.filter((n) => n === BATCH).length >= 2, 'the text after the image is split into batch-sized slices');
  t.ok(piecesB.every((n) => n <= BATCH || n === 256), 'no piece is larger than a batch (or the image)');
  // While A runs (up to its last step), a step of A separates any two of B's pieces.
  const lastA = events.findLastIndex((e) => 'step' in e && e.step.includes(seqA));
  const during = bPieces.filter((i) => i < lastA);
  t.ok(during.length >= 4, `most of the newcomer's pieces loaded while the stream ran (${during.length} of ${bPieces.length})`);
  for (let k = 1; k < during.length; k++) {
    const between = events.slice(during[k - 1]! + 1, during[k]!).filter((e) => 'step' in e && e.step.includes(seqA)).length;
    t.equal(between, 1, `one token of the stream between the newcomer's pieces ${k} and ${k + 1}`);
  }
});
