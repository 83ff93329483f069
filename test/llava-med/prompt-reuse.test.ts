/**
 * KV prefix reuse when the whole prompt is already cached: the same question about the same image
 * handle, twice. Everything but the prompt's last token is reused; that token is decoded again,
 * because its logits are what the first answer token is sampled from. The answer equals the one a
 * fresh instance gives.
 */
import t from 'tap';
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
