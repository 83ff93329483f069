// v0 "simple" template: text and the explicit id layout, checked against literals typed from
// llava/conversation.py + model_vqa_med.py (not rebuilt from the library's own constants).
import t from 'tap';
import {
  v0PromptText,
  v0ChatText,
  buildV0Prompt,
  buildV0Chat,
  v0ChatTurn,
  cleanQuestion,
  V0_IMAGE_TOKENS,
} from '../../lib/prompt/index.js';
import { isLlavaMedError } from '../../lib/errors.js';

// Fake SentencePiece: DUMMY marks the dummy prefix "▁" added at the start of every encoded segment;
// each character becomes its code point. Deterministic and makes segment boundaries visible.
const DUMMY = -1;
const sp = (text: string): number[] => [DUMMY, ...Array.from(text, (c) => c.codePointAt(0)!)];
const calls: string[] = [];
const tokenize = (text: string): number[] => {
  calls.push(text);
  return sp(text);
};
const ids = { bos: 2, imStart: 32002, imEnd: 32003 };

const SYSTEM_LITERAL =
  "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.";
const PREFIX_LITERAL = SYSTEM_LITERAL + '###Human: Hi!###Assistant: Hi there!  How can I help you today?\n###Human: ';

t.test('prompt text as model_vqa_med.py builds it', async (t) => {
  t.equal(V0_IMAGE_TOKENS, 256);
  t.equal(
    v0PromptText('  <image>What is shown?  ', 2),
    PREFIX_LITERAL + 'What is shown?\n<im_start><im_patch><im_patch><im_end>###',
  );
  const full = v0PromptText('Q');
  t.equal(full.split('<im_patch>').length - 1, 256, '256 patch tokens by default');
  t.ok(full.endsWith('<im_patch><im_end>###'), 'ends with <im_end>### and no Assistant cue');
  t.equal(cleanQuestion('Is this\n<image> normal?<image>\n'), 'Is this\n normal?', 'all <image> removed, Python strip');
  t.equal(cleanQuestion('\x1cQ\x85'), 'Q', 'Python whitespace set (\\x1c, \\x85), not JavaScript trim');
  t.equal(cleanQuestion('\ufeffQ'), '\ufeffQ', 'BOM is not Python whitespace');
});

t.test('id layout: [bos] sp(left rstripped) <im_start> | image | <im_end> sp("###")', async (t) => {
  calls.length = 0;
  const p = buildV0Prompt(tokenize, ids, 'What is shown?\n<image>');
  t.same(p.before, [2, ...sp(PREFIX_LITERAL + 'What is shown?'), 32002], 'newline before <im_start> stripped; BOS = </s> id given');
  t.same(p.after, [32003, DUMMY, 35, 35, 35], '"###" encoded on its own with a dummy prefix');
  t.equal(p.imagePosition, p.before.length, 'image goes right after <im_start>');
  t.same(calls, [PREFIX_LITERAL + 'What is shown?', '###'], 'exactly two SentencePiece calls');
});

t.test('empty question: the space after "Human:" is stripped too (rstrip of the whole left piece)', async (t) => {
  const p = buildV0Prompt(tokenize, ids, '<image>');
  t.same(p.before, [2, ...sp(PREFIX_LITERAL.slice(0, -1)), 32002]);
});

t.test('multi-turn: "Assistant: {a}###Human: {q}###" continues the one segment after <im_end>', async (t) => {
  let turns = [{ question: 'What modality?' }];
  turns = v0ChatTurn(turns, 'Assistant: A chest X-ray.', 'Any effusion?');
  t.same(turns, [{ question: 'What modality?', answer: 'Assistant: A chest X-ray.' }, { question: 'Any effusion?' }]);
  t.equal(
    v0ChatText(turns, 1),
    PREFIX_LITERAL + 'What modality?\n<im_start><im_patch><im_end>###Assistant: A chest X-ray.###Human: Any effusion?###',
    'a generated "Assistant:" label is not doubled',
  );
  const p = buildV0Chat(tokenize, ids, turns);
  t.same(p.after, [32003, ...sp('###Assistant: A chest X-ray.###Human: Any effusion?###')]);
  const unlabeled = buildV0Chat(tokenize, ids, [{ question: 'Q1', answer: ' Yes. ' }, { question: 'Q2' }]);
  t.same(unlabeled.after, [32003, ...sp('###Assistant: Yes.###Human: Q2###')], 'a bare answer gets the role label');
});

t.test('argument checks', async (t) => {
  const throwsCode = (f: () => unknown, what: string) => {
    try {
      f();
      t.fail(`${what}: no error`);
    } catch (e) {
      t.ok(isLlavaMedError(e, 'ERR_INVALID_ARGUMENT'), what);
    }
  };
  throwsCode(() => buildV0Chat(tokenize, ids, []), 'no turns');
  throwsCode(() => buildV0Chat(tokenize, ids, [{ question: 'a' }, { question: 'b' }]), 'unanswered middle turn');
  throwsCode(() => buildV0Prompt(tokenize, { bos: -1, imStart: 1, imEnd: 2 }, 'q'), 'negative id');
  throwsCode(() => v0PromptText('q', -3), 'negative image token count');
  throwsCode(() => cleanQuestion(5 as unknown as string), 'non-string question');
});
