/**
 * Tokenization with the real LLaMA SentencePiece vocabulary: llama.cpp's own expected ids
 * (deps/llama.cpp/models/ggml-vocab-llama-spm.gguf.inp/.out, as tests/test-tokenizer-0 uses
 * them), round trips, LLaVA-Med's added tokens, BOS, and argument checks.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { Model } from '../../lib/engine/index.js';
import { IM_END_ID, IM_PATCH_ID, IM_START_ID, PAD_ID, SPM_VOCAB_PATH, makeTinyLlamaGguf } from '../helpers/tiny-gguf.js';
import { failsWith, rejectsWith } from './util.js';

const llm = await makeTinyLlamaGguf(undefined, {});
const plain = await makeTinyLlamaGguf(undefined, { addedTokens: false });
const model = await Model.load(llm.path);
t.teardown(() => model.dispose());

/** test-tokenizer-0's cases: inputs separated by "\n__ggml_vocab_test__\n", one output line each. */
function vocabCases(): [string, number[]][] {
  const raw = readFileSync(`${SPM_VOCAB_PATH}.inp`, 'utf8');
  const outs = readFileSync(`${SPM_VOCAB_PATH}.out`, 'utf8').split('\n');
  const sep = '\n__ggml_vocab_test__\n';
  const ins: string[] = [];
  let pos = 0;
  while (pos < raw.length) {
    const next = raw.indexOf(sep, pos);
    if (next < 0) {
      ins.push(raw.slice(pos));
      break;
    }
    ins.push(raw.slice(pos, next));
    pos = next + sep.length;
  }
  return ins.map((s, i) => [s, outs[i]!.trim() === '' ? [] : outs[i]!.trim().split(' ').map(Number)]);
}

t.test("llama.cpp's tokenizer test vectors for the SPM vocabulary", async (t) => {
  const cases = vocabCases();
  t.ok(cases.length >= 40, `${cases.length} cases`);
  for (const [text, want] of cases) {
    const got = Array.from(await model.tokenize(text));
    t.same(got, want, `tokenize(${JSON.stringify(text).slice(0, 40)})`);
  }
});

t.test('round trip: detokenize(tokenize(s)) === s for ordinary text', async (t) => {
  const texts = [
    'Hello world',
    'What is shown in this chest X-ray?',
    'The lesion is located in the left upper lobe, measuring 2.3 cm.',
    'Äpfel und Birnen — 123 456',
    'нещо на Български',
    'this is 🦙.cpp',
    'line one\nline two\ttabbed',
  ];
  for (const s of texts) {
    const ids = await model.tokenize(s);
    t.ok(ids.length > 0, `${JSON.stringify(s)} → ${ids.length} tokens`);
    t.equal(await model.detokenize(ids), s, `round trip ${JSON.stringify(s)}`);
    const pieces = await model.tokenPieces(ids);
    t.equal(pieces.length, ids.length, 'one piece per token');
    // pieces are raw SentencePiece bytes: their concatenation is the text with the prefix space
    t.equal(Buffer.concat(pieces).toString('utf8'), ` ${s}`, 'pieces concatenate to " " + text');
  }
});

t.test('known ids: BOS with addSpecial, "Hello world" → ▁Hello ▁world', async (t) => {
  t.same(Array.from(await model.tokenize('Hello world')), [15043, 3186]);
  t.same(Array.from(await model.tokenize('Hello world', { addSpecial: true })), [1, 15043, 3186], 'BOS prepended (add_bos_token)');
  // llama_detokenize strips SentencePiece's prefix space only from the FIRST token; a (hidden)
  // BOS in front keeps it. Callers detokenize generated tokens, which never start with BOS.
  t.equal(await model.detokenize([1, 15043, 3186]), ' Hello world', 'BOS hidden without special; its follower keeps the prefix space');
  t.equal(await model.detokenize([15043, 3186]), 'Hello world', 'prefix space stripped from the first token');
  t.equal(await model.detokenize([1, 15043, 3186, 2], { special: true }), '<s> Hello world</s>', 'specials rendered with special');
});

t.test('<im_start> is ONE token (32002) with parseSpecial on the 32004 vocabulary', async (t) => {
  const ids = Array.from(await model.tokenize('<im_start>', { parseSpecial: true }));
  t.same(ids, [IM_START_ID]);
  const prompt = Array.from(await model.tokenize('Describe <im_start><im_patch><im_end> please', { parseSpecial: true }));
  t.same(prompt.filter((x) => x >= 32000), [IM_START_ID, IM_PATCH_ID, IM_END_ID], 'the three image tokens, in order, once each');
  t.same(prompt.slice(0, 1), [20355], 'starts with ▁Describe');
  t.same(Array.from(await model.tokenize('[PAD]', { parseSpecial: true })), [PAD_ID], '[PAD] (CONTROL) with parseSpecial');
  t.equal(await model.detokenize([IM_START_ID, IM_END_ID]), '<im_start><im_end>', 'USER_DEFINED tokens print without special');
  t.equal(await model.detokenize([PAD_ID]), '', 'CONTROL [PAD] is hidden without special');
  t.equal(await model.detokenize([PAD_ID], { special: true }), '[PAD]', 'and shown with special');
});

t.test('without parseSpecial: CONTROL [PAD] is plain text; USER_DEFINED tokens are still matched (llama.cpp rule)', async (t) => {
  const pad = Array.from(await model.tokenize('[PAD]'));
  t.notOk(pad.includes(PAD_ID), `[PAD] is spelled out: ${pad.join(' ')}`);
  t.ok(pad.length > 1);
  t.same(Array.from(await model.tokenize('<im_start>')), [IM_START_ID], 'USER_DEFINED matched even without parseSpecial (llama-vocab.cpp tokenizer_st_partition)');
});

t.test('the 32000-token vocabulary (no added tokens) splits <im_start> into pieces', async (t) => {
  const m = await Model.load(plain.path, { vocabOnly: true });
  t.equal(m.info.nVocab, 32000);
  const ids = Array.from(await m.tokenize('<im_start>', { parseSpecial: true }));
  t.ok(ids.length > 1 && ids.every((x) => x < 32000), `several ordinary tokens: ${ids.join(' ')}`);
  await failsWith(t, () => m.detokenize([IM_START_ID]), 'ERR_INVALID_ARGUMENT', 'id 32002 is outside a 32000 vocabulary');
  await m.dispose();
});

t.test('vocabOnly model tokenizes exactly like the full model', async (t) => {
  const m = await Model.load(llm.path, { vocabOnly: true });
  const s = 'Is there <im_start> evidence of pneumothorax?';
  t.same(Array.from(await m.tokenize(s, { parseSpecial: true })), Array.from(await model.tokenize(s, { parseSpecial: true })));
  await m.dispose();
});

t.test('wrong argument types are ERR_INVALID_ARGUMENT, and the model keeps working', async (t) => {
  await rejectsWith(t, () => model.tokenize(5 as never), 'ERR_INVALID_ARGUMENT', 'tokenize(5)');
  await rejectsWith(t, () => model.tokenize(undefined as never), 'ERR_INVALID_ARGUMENT', 'tokenize(undefined)');
  await rejectsWith(t, () => model.detokenize('abc' as never), 'ERR_INVALID_ARGUMENT', "detokenize('abc')");
  await rejectsWith(t, () => model.detokenize([1.5]), 'ERR_INVALID_ARGUMENT', 'detokenize([1.5])');
  await rejectsWith(t, () => model.detokenize([-1]), 'ERR_INVALID_ARGUMENT', 'detokenize([-1])');
  await rejectsWith(t, () => model.detokenize([32004]), 'ERR_INVALID_ARGUMENT', 'detokenize([32004])');
  await rejectsWith(t, () => model.detokenize(null as never), 'ERR_INVALID_ARGUMENT', 'detokenize(null)');
  await failsWith(t, () => model.tokenPieces([99999]), 'ERR_INVALID_ARGUMENT', 'tokenPieces([99999])');
  await failsWith(t, () => model.tokenPieces(7 as never), 'ERR_INVALID_ARGUMENT', 'tokenPieces(7)');
  t.same(Array.from(await model.tokenize('Hello world')), [15043, 3186], 'still works');
});

t.test('empty input', async (t) => {
  t.same(Array.from(await model.tokenize('')), []);
  t.same(Array.from(await model.tokenize('', { addSpecial: true })), [1]);
  t.equal(await model.detokenize([]), '');
});
