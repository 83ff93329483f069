/**
 * Question text that looks like a special token (lib/prompt/markers.ts): refused with
 * ERR_INVALID_ARGUMENT whichever converter wrote the file — our layout (added tokens CONTROL,
 * llava_med.* keys) and llama.cpp's legacy LLaVA layout (added tokens USER_DEFINED, no llava_med.*
 * keys), where llama.cpp's tokenizer would otherwise read the same text differently. "<image>" is
 * removed from questions as the original did, identically in both layouts.
 */
import t from 'tap';
import { join } from 'node:path';
import { LlavaMed, engineOf } from '../../lib/llava-med.js';
import { buildV0Chat, buildV15Chat, markerTexts } from '../../lib/prompt/index.js';
import { isLlavaMedError } from '../../lib/errors.js';
import { writeLegacyLayout } from '../helpers/legacy-gguf.js';
import { noisePng, rejectsCode, tinyV0, tinyV15 } from './util.js';

const tok = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
const v0Ids = { bos: 2, imStart: 1002, imEnd: 1003 };
const v15Ids = { bos: 1, eos: 2 };

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

t.test('which texts each variant refuses, in questions and chat answers', async (t) => {
  t.same(markerTexts('v0'), ['<s>', '</s>', '<unk>', '[PAD]', '<im_patch>', '<im_start>', '<im_end>']);
  t.same(markerTexts('v1.5'), ['<s>', '</s>', '<unk>']);
  for (const m of markerTexts('v0')) {
    const e = thrown(() => buildV0Chat(tok, v0Ids, [{ question: `Is there ${m} a lesion?` }]));
    t.ok(isLlavaMedError(e, 'ERR_INVALID_ARGUMENT'), `v0 question with ${m}: ERR_INVALID_ARGUMENT`);
    t.match((e as Error).message, JSON.stringify(m), 'the message names the text');
    const a = thrown(() => buildV0Chat(tok, v0Ids, [{ question: 'Hi', answer: `yes ${m}` }, { question: 'And?' }]));
    t.ok(isLlavaMedError(a, 'ERR_INVALID_ARGUMENT'), `v0 chat answer with ${m}: refused`);
  }
  for (const m of ['<s>', '</s>', '<unk>']) {
    t.ok(isLlavaMedError(thrown(() => buildV15Chat(tok, v15Ids, [{ question: `What ${m}?` }])), 'ERR_INVALID_ARGUMENT'), `v1.5 question with ${m}: refused`);
    t.ok(isLlavaMedError(thrown(() => buildV15Chat(tok, v15Ids, [{ question: 'Hi', answer: `yes ${m}` }, { question: 'And?' }])), 'ERR_INVALID_ARGUMENT'), `v1.5 chat answer with ${m}: refused`);
  }
  // v1.5's vocabulary has no image markers: the original tokenized them as text, and so do we
  for (const m of ['[PAD]', '<im_patch>', '<im_start>', '<im_end>']) {
    t.doesNotThrow(() => buildV15Chat(tok, v15Ids, [{ question: `What ${m}?` }]), `v1.5 question with ${m}: text, as the original`);
  }
  // "<image>" is removed, as model_vqa(_med).py did
  t.same(buildV0Chat(tok, v0Ids, [{ question: 'Is <image>this normal?' }]), buildV0Chat(tok, v0Ids, [{ question: 'Is this normal?' }]), 'v0: <image> removed');
  t.same(buildV15Chat(tok, v15Ids, [{ question: '<image>\nIs this normal?' }]), buildV15Chat(tok, v15Ids, [{ question: 'Is this normal?' }]), 'v1.5: <image> removed (then stripped)');
  // near misses stay text
  t.doesNotThrow(() => buildV0Chat(tok, v0Ids, [{ question: 'is < s > or <S> or <im_start or [pad] here?' }]), 'near misses are text');
});

for (const variant of ['v0', 'v1.5'] as const) {
  t.test(`${variant}: both file layouts refuse marker text and treat <image> the same`, async (t) => {
    const tiny = variant === 'v0' ? await tinyV0() : await tinyV15();
    const dir = t.testdir({});
    const legacy = { model: join(dir, 'legacy.gguf'), mmproj: join(dir, 'mmproj-legacy.gguf') };
    const lm = await writeLegacyLayout(tiny.model, legacy.model);
    await writeLegacyLayout(tiny.mmproj, legacy.mmproj);
    t.equal(lm.userDefined, variant === 'v0' ? 4 : 0, 'the legacy layout types the added tokens USER_DEFINED');
    t.ok(lm.droppedKeys.length > 0 && lm.droppedKeys.every((k) => k.startsWith('llava_med.')), `no llava_med.* keys (${lm.droppedKeys.length} dropped)`);

    const image = await noisePng(40, 32, 9);
    const results: { tokens: number[][]; plain: number[] }[] = [];
    // without llava_med.variant the engine tells the releases apart by the CLIP input size, which the
    // tiny models do not have (28 px): the legacy files are loaded naming the variant
    for (const files of [{ model: tiny.model, mmproj: tiny.mmproj }, { ...legacy, variant }]) {
      const med = await LlavaMed.load({ ...files, threads: 1, contextSize: 512 });
      t.teardown(() => med.dispose());
      t.equal(med.variant, variant, 'variant detected');
      // what llama.cpp's tokenizer alone would do with the text (parse_special=false)
      const plain = Array.from(await engineOf(med).model.tokenize('a <im_start> b', { addSpecial: false, parseSpecial: false }));
      for (const m of markerTexts(variant)) {
        await rejectsCode(t, med.ask(image, `What is ${m} shown?`, { maxTokens: 2 }), 'ERR_INVALID_ARGUMENT', `ask with ${m}`);
      }
      await rejectsCode(t, med.score(image, 'Is it normal?', ['yes', `no</s>`]), 'ERR_INVALID_ARGUMENT', 'score candidate with </s>');
      const chat = med.chat(image);
      await rejectsCode(t, chat.ask('What </s> now?', { maxTokens: 2 }), 'ERR_INVALID_ARGUMENT', 'chat question with </s>');
      await chat.dispose();
      // <image> is removed: the same answer as without it
      const a = await med.ask(image, 'What is <image> shown?', { temperature: 0, maxTokens: 6 });
      const b = await med.ask(image, 'What is shown?', { temperature: 0, maxTokens: 6 });
      t.same(a.tokens, b.tokens, '<image> removed from the question');
      results.push({ tokens: [a.tokens, b.tokens], plain });
    }
    t.same(results[1]!.tokens, results[0]!.tokens, 'both layouts give the same answers');
    if (variant === 'v0') {
      // why the refusal is needed: the two layouts tokenize the same text differently
      t.notSame(results[1]!.plain, results[0]!.plain, `llama.cpp reads "<im_start>" as text in our layout (${results[0]!.plain.length} ids) and as the token in the legacy one (${results[1]!.plain.length})`);
    }
  });
}
