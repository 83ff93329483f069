/**
 * KV prefix reuse when the whole prompt is already cached: the same question about the same image
 * handle, twice. Everything but the prompt's last token is reused; that token is decoded again,
 * because its logits are what the first answer token is sampled from. The answer equals the one a
 * fresh instance gives.
 */
import t from 'tap';
import { engineOf } from '../../lib/llava-med.js';
import { loadTiny, noisePng } from './util.js';

const GEN = { temperature: 0, maxTokens: 10, stop: [] as string[] };

for (const variant of ['v0', 'v1.5'] as const) {
  t.test(`${variant}: the same handle and question twice`, async (t) => {
    const { med } = await loadTiny(variant);
    t.teardown(() => med.dispose());
    const img = await med.embedImage(await noisePng(30, 30, 71));
    const q = 'What is shown in this image?';
    const a = await med.ask(img, q, GEN);
    t.equal(a.timings.reusedTokens, 0, 'the first answer reuses nothing');
    const positions = a.timings.promptTokens + a.timings.imageTokens;
    const b = await med.ask(img, q, GEN);
    t.equal(b.timings.reusedTokens, positions - 1, 'the second reuses every prompt position but the last');
    t.equal(b.timings.promptTokens, 1, 'and decodes only the last prompt token again');
    t.equal(b.timings.imageTokens, 0, 'the image is not decoded again');
    t.same(b.tokens, a.tokens, 'the same greedy answer');
    const c = await med.ask(img, q, GEN);
    t.same(c.tokens, a.tokens, 'a third time too (after reuse of a reused prompt)');
    const { med: fresh } = await loadTiny(variant);
    t.same((await fresh.ask(await noisePng(30, 30, 71), q, GEN)).tokens, a.tokens, 'as a fresh instance answers');
    await fresh.dispose();
  });
}

t.test('clearCache: the next answer starts from an empty cache, as on a fresh instance', async (t) => {
  const q = 'Is there a fracture?';
  const { med: fresh } = await loadTiny('v0', { sequences: 2 });
  const ref = await fresh.ask(await noisePng(30, 30, 72), q, GEN);
  await fresh.dispose();

  const { med } = await loadTiny('v0', { sequences: 2 });
  t.teardown(() => med.dispose());
  const { context } = engineOf(med);
  const img = await med.embedImage(await noisePng(30, 30, 72));
  await med.askBatch([{ image: img, question: q }, { image: img, question: 'What is shown?' }], GEN);
  t.ok((await context.nativeLength(0)) > 0 && (await context.nativeLength(1)) > 0, 'both sequences hold cells');
  await med.clearCache();
  t.same([await context.nativeLength(0), await context.nativeLength(1)], [0, 0], 'llama.cpp holds no cell of either sequence');
  t.same([context.length(0), context.length(1)], [0, 0], 'and the sequences know it');
  const b = await med.ask(img, q, GEN);
  t.equal(b.timings.reusedTokens, 0, 'nothing is reported reused');
  t.equal(b.timings.imageTokens, ref.timings.imageTokens, 'the image is decoded again');
  t.equal(b.timings.promptTokens, ref.timings.promptTokens, 'the whole prompt is decoded again');
  t.same(b.tokens, ref.tokens, "the fresh instance's answer");
  await med.dispose();
  await t.rejects(med.clearCache(), { code: 'ERR_DISPOSED' }, 'clearCache after dispose is a typed error');
});
