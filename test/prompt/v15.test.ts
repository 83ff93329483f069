// v1.5 (conv_mistral_instruct + tokenizer_image_token): text and id layout against typed literals.
import t from 'tap';
import { v15PromptText, v15ChatText, buildV15Prompt, buildV15Chat, v15ChatTurn, V15_IMAGE_TOKENS } from '../../lib/prompt/index.js';

const DUMMY = -1;
const sp = (text: string): number[] => [DUMMY, ...Array.from(text, (c) => c.codePointAt(0)!)];
const calls: string[] = [];
const tokenize = (text: string): number[] => {
  calls.push(text);
  return sp(text);
};
const ids = { bos: 1, eos: 2 };

t.test('prompt text', async (t) => {
  t.equal(V15_IMAGE_TOKENS, 576);
  t.equal(v15PromptText(' What is this? <image>'), '[INST] <image>\nWhat is this? [/INST]');
  t.equal(
    v15ChatText([{ question: 'Q1', answer: 'A1' }, { question: 'Q2' }]),
    '[INST] <image>\nQ1 [/INST] A1 </s>[INST] Q2 [/INST]',
    'assistant turns render as " {answer} </s>", no separator before the next [INST]',
  );
});

t.test('ids: <s> + sp("[INST] ") | image | sp("\\n{q} [/INST]") with its dummy prefix kept', async (t) => {
  calls.length = 0;
  const p = buildV15Prompt(tokenize, ids, 'What is this?');
  t.same(p.before, [1, DUMMY, ...Array.from('[INST] ', (c) => c.charCodeAt(0))]);
  t.same(p.after, [DUMMY, 10, ...Array.from('What is this? [/INST]', (c) => c.charCodeAt(0))], '"▁" then "\\n": the 28705, 13 pair');
  t.equal(p.imagePosition, 1 + 1 + 7);
  t.same(calls, ['[INST] ', '\nWhat is this? [/INST]']);
});

t.test('multi-turn: </s> is the EOS id and splits the SentencePiece segments', async (t) => {
  const turns = v15ChatTurn([{ question: 'Q1' }], '  A1\n', 'Q2 <image>');
  t.same(turns, [{ question: 'Q1', answer: 'A1' }, { question: 'Q2 <image>' }], 'answer stripped as model_vqa.py strips it');
  calls.length = 0;
  const p = buildV15Chat(tokenize, ids, turns);
  t.same(p.after, [...sp('\nQ1 [/INST] A1 '), 2, ...sp('[INST] Q2 [/INST]')]);
  t.same(calls, ['[INST] ', '\nQ1 [/INST] A1 ', '[INST] Q2 [/INST]']);
  const answeredLast = buildV15Chat(tokenize, ids, [{ question: 'Q1', answer: 'A1' }]);
  t.same(answeredLast.after, [...sp('\nQ1 [/INST] A1 '), 2], 'a fully answered chat ends with </s>');
});
