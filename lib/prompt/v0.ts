/**
 * LLaVA-Med v0 ("simple" conversation, llava/eval/model_vqa_med.py at tag v1.0.0) and the explicit id
 * layout the original produced with transformers 4.28's slow LlamaTokenizer.
 *
 * Text the original built (SeparatorStyle.SINGLE, sep "###", no trailing "Assistant:" cue):
 *   SYSTEM + "###" + "Human: Hi!###" + "Assistant: Hi there!  How can I help you today?\n###"
 *   + "Human: " + q + "\n<im_start>" + "<im_patch>" * 256 + "<im_end>" + "###"
 * where q = question.replace("<image>", "").strip().
 *
 * How that text became ids (see docs: llava-med-reference.md, "Tokenization of the v0 prompt"):
 *  - <im_start>, <im_patch>, <im_end> are plain-string added tokens: the slow tokenizer splits on them and
 *    strips whitespace on both sides, so the "\n" before <im_start> never reaches the model;
 *  - each remaining text piece is SentencePiece-encoded on its own, with its own dummy prefix, so the
 *    "###" after <im_end> is encoded as if it began a text ("▁###...");
 *  - the delta's special_tokens_map makes "</s>" (id 2) the BOS, prepended once.
 * The 256 <im_patch> ids are never fed: LLaVA v0 replaced their embeddings with the image features, so
 * the engine puts the projector output there instead.
 * llama.cpp's tokenizer on the whole string would keep the "\n" and use its own BOS: do not use it for this.
 */
import type { ChatTurn, PromptLayout, Tokenize } from './types.js';
import { pyRstrip, pyLstrip, pyStrip } from './py-strip.js';
import { llavaError } from '../errors.js';
import { assertNoMarkers } from './markers.js';

export const V0_SYSTEM =
  "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.";
export const V0_SEP = '###';
export const V0_ROLES = { human: 'Human', assistant: 'Assistant' } as const;
/** The few-shot exchange of `simple_conv`; note the two spaces after "!" and the "\n" before the sep. */
export const V0_FEW_SHOT: readonly (readonly [string, string])[] = [
  ['Human', 'Hi!'],
  ['Assistant', 'Hi there!  How can I help you today?\n'],
];
export const IMAGE_PLACEHOLDER = '<image>';
export const IM_START = '<im_start>';
export const IM_PATCH = '<im_patch>';
export const IM_END = '<im_end>';
/** CLIP ViT-L/14 at 224 px: 16 x 16 patches. */
export const V0_IMAGE_TOKENS = 256;
/** --answer-prompter's second pass appends this to prompt + first answer (max 64 new tokens). */
export const V0_ANSWER_PROMPTER_SUFFIX = ' ###\nANSWER:';

/** Everything up to and including "Human: " of the first (image-carrying) turn. */
export const V0_PREAMBLE =
  V0_SYSTEM + V0_SEP + V0_FEW_SHOT.map(([role, msg]) => `${role}: ${msg}${V0_SEP}`).join('') + `${V0_ROLES.human}: `;

/** The question as model_vqa_med.py cleaned it: every "<image>" removed, then Python strip(). */
export function cleanQuestion(question: string): string {
  if (typeof question !== 'string') throw llavaError('ERR_INVALID_ARGUMENT', 'The question must be a string.');
  return pyStrip(question.split(IMAGE_PLACEHOLDER).join(''));
}

/**
 * A generated v0 answer often starts with "Assistant:" itself (the prompt has no cue). When such an answer
 * goes back into the history it is rendered as "Assistant: {answer}", so a generated label is not doubled.
 */
function historyAnswer(answer: string): string {
  const a = pyStrip(answer);
  const label = `${V0_ROLES.assistant}:`;
  return a.startsWith(label) ? pyLstrip(a.slice(label.length)) : a;
}

function assertTurns(turns: readonly ChatTurn[]): void {
  if (!Array.isArray(turns) || turns.length === 0) throw llavaError('ERR_INVALID_ARGUMENT', 'A chat needs at least one turn.');
  turns.forEach((t, i) => {
    if (i < turns.length - 1 && typeof t.answer !== 'string') {
      throw llavaError('ERR_INVALID_ARGUMENT', `Turn ${i + 1} of ${turns.length} has no answer; only the last turn may be unanswered.`);
    }
  });
}

/**
 * Text after <im_end> for a whole chat: "###" and then, per later exchange, "Assistant: {a}###Human: {q}###".
 * Multi-turn v0 is our extension (the original only evaluated single questions); it follows the same
 * SINGLE-style rendering get_prompt() would give if the answers were appended to the conversation.
 */
function afterImageText(turns: readonly ChatTurn[]): string {
  let s = V0_SEP;
  for (let i = 1; i < turns.length; i++) {
    s += `${V0_ROLES.assistant}: ${historyAnswer(turns[i - 1]!.answer!)}${V0_SEP}`;
    s += `${V0_ROLES.human}: ${cleanQuestion(turns[i]!.question)}${V0_SEP}`;
  }
  const last = turns[turns.length - 1]!;
  if (typeof last.answer === 'string') s += `${V0_ROLES.assistant}: ${historyAnswer(last.answer)}${V0_SEP}`;
  return s;
}

/** The full prompt text of a single v0 VQA question, as model_vqa_med.py built it (for display / logs). */
export function v0PromptText(question: string, nImageTokens: number = V0_IMAGE_TOKENS): string {
  return v0ChatText([{ question }], nImageTokens);
}

/** The text of a v0 chat whose first turn carries the image. */
export function v0ChatText(turns: readonly ChatTurn[], nImageTokens: number = V0_IMAGE_TOKENS): string {
  assertTurns(turns);
  if (!Number.isInteger(nImageTokens) || nImageTokens < 0) {
    throw llavaError('ERR_INVALID_ARGUMENT', `nImageTokens must be a non-negative integer, got ${String(nImageTokens)}.`);
  }
  const image = `\n${IM_START}${IM_PATCH.repeat(nImageTokens)}${IM_END}`;
  return V0_PREAMBLE + cleanQuestion(turns[0]!.question) + image + afterImageText(turns);
}

export interface V0TokenIds {
  /** BOS as the released delta's tokenizer used it: "</s>" = 2 (check the converted GGUF). */
  bos: number;
  imStart: number;
  imEnd: number;
}

function assertIds(ids: V0TokenIds): void {
  for (const k of ['bos', 'imStart', 'imEnd'] as const) {
    if (!Number.isInteger(ids?.[k]) || ids[k] < 0) throw llavaError('ERR_INVALID_ARGUMENT', `Token id ${k} must be a non-negative integer.`);
  }
}

/**
 * Ids of a v0 chat: [bos] + sp(preamble + q1 rstripped) + [<im_start>] | image | [<im_end>] + sp(rest lstripped).
 * Text segments are stripped exactly as the slow tokenizer stripped them around added tokens; a segment
 * that strips to nothing is dropped (as the original skipped empty pieces).
 */
export function buildV0Chat(tokenize: Tokenize, ids: V0TokenIds, turns: readonly ChatTurn[]): PromptLayout {
  assertTurns(turns);
  assertIds(ids);
  for (const t of turns) {
    assertNoMarkers(t.question, 'v0', 'question');
    if (typeof t.answer === 'string') assertNoMarkers(t.answer, 'v0', 'answer in the chat history');
  }
  const left = pyRstrip(V0_PREAMBLE + cleanQuestion(turns[0]!.question));
  const right = pyLstrip(afterImageText(turns));
  const before = [ids.bos, ...(left ? tokenize(left) : []), ids.imStart];
  const after = [ids.imEnd, ...(right ? tokenize(right) : [])];
  return { before, after, imagePosition: before.length };
}

/** Ids of a single v0 VQA question with its image (model_vqa_med.py). */
export function buildV0Prompt(tokenize: Tokenize, ids: V0TokenIds, question: string): PromptLayout {
  return buildV0Chat(tokenize, ids, [{ question }]);
}

/**
 * Add a follow-up question to a v0 chat: records `answer` on the last turn and appends the new one.
 * Rebuild with buildV0Chat and reuse the cached prefix: the whole text after <im_end> is ONE SentencePiece
 * segment in this format, so the new ids are not simply appended ids of the new text.
 */
export function v0ChatTurn(turns: readonly ChatTurn[], answer: string, question: string): ChatTurn[] {
  assertTurns(turns);
  const out = turns.map((t) => ({ ...t }));
  out[out.length - 1]!.answer = answer;
  out.push({ question });
  return out;
}
