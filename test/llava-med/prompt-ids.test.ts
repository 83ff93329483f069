/**
 * The exact ids LlavaMed feeds the engine, rebuilt here independently from the reference's rules
 * (docs/llava-med-reference.md §1 "Tokenization of the v0 prompt", §5 "Prompt"):
 *   v0   = [</s>] + sp("A chat … ###Human: {q}") + [<im_start>] + image + [<im_end>] + sp("###")
 *   v1.5 = [<s>] + sp("[INST] ") + image + sp("\n{q} [/INST]")
 * where sp() is a plain SentencePiece encoding of the segment on its own (no BOS, no special parsing).
 * Checked twice: by recording what LlavaMed passes to Context.decode/decodeImage, and by running the
 * rebuilt ids through a separate engine context and comparing the next-token logits bit for bit.
 */
import t from 'tap';
import { Context } from '../../lib/engine/index.js';
import type { LlavaMed, ImageHandle } from '../../lib/llava-med.js';
import { flatten, loadTiny, noisePng, spyEngine } from './util.js';
import { engineOf } from '../../lib/llava-med.js';

// Written out here, not imported from lib/prompt, so a drift in the library's constant shows up.
const V0_SYSTEM_AND_FEW_SHOT =
  "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions." +
  '###Human: Hi!###Assistant: Hi there!  How can I help you today?\n###Human: ';

const sp = async (med: LlavaMed, text: string): Promise<number[]> => Array.from(await engineOf(med).model.tokenize(text, { addSpecial: false, parseSpecial: false }));

/** Runs before + image + after on a fresh context shaped like LlavaMed's; returns the last position's logits. */
async function manualLogits(med: LlavaMed, image: ImageHandle, before: number[], after: number[]): Promise<Float32Array> {
  const ctx = await Context.create(engineOf(med).model, { contextSize: engineOf(med).context.contextSize, batchSize: engineOf(med).context.batchSize, threads: 1, flashAttn: 'off' /* as LlavaMed on CPU */ });
  try {
    await ctx.decode(before, { logits: 'none' });
    await ctx.decodeImage(image.embedding);
    await ctx.decode(after, { logits: 'last' });
    return await ctx.logits(-1);
  } finally {
    await ctx.dispose();
  }
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

t.test('v0: special ids come from the GGUF and are single tokens', async (t) => {
  const { med, tiny } = await loadTiny('v0');
  t.teardown(() => med.dispose());
  t.equal(med.variant, 'v0', 'variant detected from the GGUF');
  t.equal(tiny.ids.promptBos, 2, 'the converter recorded </s> (id 2) as the prompt BOS, per special_tokens_map.json');
  const piece = await engineOf(med).model.detokenize([tiny.ids.promptBos], { special: true });
  t.equal(piece, '</s>', 'id 2 is </s>');
  for (const [name, id] of [['<im_start>', tiny.ids.imStart], ['<im_end>', tiny.ids.imEnd]] as const) {
    const ids = Array.from(await engineOf(med).model.tokenize(name, { addSpecial: false, parseSpecial: true }));
    t.same(ids, [id], `${name} is the single token ${id}`);
    t.not(id, undefined);
  }
});

t.test('v0: LlavaMed feeds exactly [</s>] + sp(preamble + q) + [<im_start>] + image + [<im_end>] + sp("###")', async (t) => {
  const { med, tiny } = await loadTiny('v0');
  t.teardown(() => med.dispose());
  const image = await med.embedImage(await noisePng(36, 28, 3));
  const q = '  What is shown in <image> this chest x-ray?  ';
  const cleaned = 'What is shown in  this chest x-ray?'; // "<image>" removed, then strip()
  const before = [2, ...(await sp(med, V0_SYSTEM_AND_FEW_SHOT + cleaned)), tiny.ids.imStart!];
  const after = [tiny.ids.imEnd!, ...(await sp(med, '###'))];
  t.equal(before[0], 2, 'BOS is 2 (</s>)');

  const spy = spyEngine(med);
  const a = await med.ask(image, q, { temperature: 0, maxTokens: 1 });
  const medLogits = await engineOf(med).context.logits(-1); // maxTokens 1: no step ran, these are the prompt's logits
  spy.stop();
  t.same(flatten(spy.fed), [...before, 'IMG', ...after], 'the engine received the reference id sequence');
  t.equal(spy.fed.find((f) => f.image)?.image, image.embedding, 'the image slot holds the embedImage embedding');
  t.equal(a.timings.promptTokens + a.timings.imageTokens, before.length + tiny.imageTokens + after.length, 'timings count the same positions');

  const manual = await manualLogits(med, image, before, after);
  t.ok(sameBits(manual, medLogits), 'manual engine run gives bit-identical next-token logits');
  t.equal(a.tokens[0], argmax(manual), 'the first greedy token is the argmax of the manual logits');

  // Negative controls: the comparison can tell the layouts apart.
  const withBos1 = await manualLogits(med, image, [1, ...before.slice(1)], after);
  t.notOk(sameBits(withBos1, medLogits), 'a <s> (id 1) BOS would give different logits');
  const keepNewline = [2, ...(await sp(med, V0_SYSTEM_AND_FEW_SHOT + cleaned + '\n')), tiny.ids.imStart!];
  t.not(keepNewline.length, before.length, 'keeping the "\\n" before <im_start> changes the ids');
  const nl = await manualLogits(med, image, keepNewline, after);
  t.notOk(sameBits(nl, medLogits), '... and the logits');
});

t.test('v0: a different question changes only the question segment', async (t) => {
  const { med, tiny } = await loadTiny('v0');
  t.teardown(() => med.dispose());
  const image = await med.embedImage(await noisePng(28, 28, 4));
  const spy = spyEngine(med);
  await med.ask(image, 'Is there a fracture?', { temperature: 0, maxTokens: 1 });
  spy.stop();
  const expected = [2, ...(await sp(med, `${V0_SYSTEM_AND_FEW_SHOT}Is there a fracture?`)), tiny.ids.imStart!, 'IMG', tiny.ids.imEnd!, ...(await sp(med, '###'))];
  // Only the part after the cached prefix is decoded on a fresh instance: everything.
  t.same(flatten(spy.fed), expected);
});

t.test('v1.5: LlavaMed feeds exactly [<s>] + sp("[INST] ") + image + sp("\\n{q} [/INST]")', async (t) => {
  const { med, tiny } = await loadTiny('v1.5');
  t.teardown(() => med.dispose());
  t.equal(med.variant, 'v1.5');
  t.equal(tiny.ids.bos, 1, 'Mistral <s> = 1');
  t.equal(tiny.ids.imStart, undefined, 'v1.5 has no <im_start>');
  const image = await med.embedImage(await noisePng(40, 24, 5)); // not square: exercises the pad path
  const q = ' <image>Is the heart normal? ';
  const before = [tiny.ids.bos, ...(await sp(med, '[INST] '))];
  const after = await sp(med, '\nIs the heart normal? [/INST]');
  const spy = spyEngine(med);
  const a = await med.ask(image, q, { temperature: 0, maxTokens: 1 });
  const medLogits = await engineOf(med).context.logits(-1);
  spy.stop();
  t.same(flatten(spy.fed), [...before, 'IMG', ...after], 'the engine received the reference id sequence');
  const manual = await manualLogits(med, image, before, after);
  t.ok(sameBits(manual, medLogits), 'manual engine run gives bit-identical next-token logits');
  t.equal(a.tokens[0], argmax(manual), 'first greedy token matches');
  // Negative control: the whole text tokenized by llama.cpp with its own BOS is a different sequence.
  const whole = Array.from(await engineOf(med).model.tokenize('[INST] \nIs the heart normal? [/INST]', { addSpecial: true, parseSpecial: false }));
  t.notSame(whole.slice(before.length), after, 'tokenizing the chunks separately is not the same as one string');
});
