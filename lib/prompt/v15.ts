/**
 * LLaVA-Med v1.5 (llava-med-v1.5-mistral-7b): conv_mistral_instruct (SeparatorStyle.LLAMA_2, system "",
 * sep "", sep2 "</s>") as llava/eval/model_vqa.py renders it, and the ids tokenizer_image_token produced.
 *
 * Text: "[INST] <image>\n{q} [/INST]"; later turns add " {answer} </s>" and "[INST] {q} [/INST]".
 *
 * Ids: tokenizer_image_token splits the text on "<image>" and tokenizes each chunk separately. builder.py
 * loads the tokenizer with a plain AutoTokenizer.from_pretrained (fast, converted from tokenizer.model by
 * transformers 4.36 with the legacy behaviour, like the slow LlamaTokenizer when tokenizer_config.json does
 * not set legacy=false): every text segment between special tokens gets its own dummy prefix "▁":
 *  - chunk 1 "[INST] " keeps its BOS: [<s>=1] + sp("[INST] ") -> "▁[" "INST" "]" "▁" (the trailing space is a token);
 *  - chunk 2 "\n{q} [/INST]" loses its BOS; its dummy prefix survives: sp("\n{q} [/INST]") = "▁" "<0x0A>" ...
 *    (the well-known "29871, 13" / Mistral "28705, 13" after the image);
 *  - in later turns "</s>" inside chunk 2 is the EOS special token (id 2), not text; nothing around it is
 *    stripped (AddedToken lstrip/rstrip false), and in the legacy behaviour the text after it gets a dummy
 *    prefix again.
 * Verify against the real tokenizer when one is at hand: these are read from the code, not run.
 */
import type { ChatTurn, PromptLayout, Tokenize } from './types.js';
import { cleanQuestion, IMAGE_PLACEHOLDER } from './v0.js';
import { pyStrip } from './py-strip.js';
import { llavaError } from '../errors.js';
import { assertNoMarkers } from './markers.js';

export const V15_INST_OPEN = '[INST] ';
export const V15_INST_CLOSE = ' [/INST]';
/** CLIP ViT-L/14 at 336 px: 24 x 24 patches. */
export const V15_IMAGE_TOKENS = 576;

export interface V15TokenIds {
  /** <s> = 1 for Mistral. */
  bos: number;
  /** </s> = 2 for Mistral; used as sep2 between turns. */
  eos: number;
}

function assertTurns(turns: readonly ChatTurn[]): void {
  if (!Array.isArray(turns) || turns.length === 0) throw llavaError('ERR_INVALID_ARGUMENT', 'A chat needs at least one turn.');
  turns.forEach((t, i) => {
    if (i < turns.length - 1 && typeof t.answer !== 'string') {
      throw llavaError('ERR_INVALID_ARGUMENT', `Turn ${i + 1} of ${turns.length} has no answer; only the last turn may be unanswered.`);
    }
  });
}

/** get_prompt() text; the first user message is "<image>\n" + cleaned question. */
export function v15ChatText(turns: readonly ChatTurn[]): string {
  assertTurns(turns);
  let s = '';
  turns.forEach((t, i) => {
    const q = i === 0 ? `${IMAGE_PLACEHOLDER}\n${cleanQuestion(t.question)}` : cleanQuestion(t.question);
    s += `[INST] ${q} [/INST]`;
    if (typeof t.answer === 'string') s += ` ${t.answer} </s>`;
  });
  return s;
}

export function v15PromptText(question: string): string {
  return v15ChatText([{ question }]);
}

/**
 * Ids of a v1.5 chat whose first turn carries the image:
 *   before = [bos] + sp("[INST] ")
 *   after  = sp("\n{q1} [/INST] {a1} ") + [eos] + sp("[INST] {q2} [/INST]") + ...
 * Answers are the model's text as decoded (model_vqa.py strip()s it; pass it stripped for the same text).
 */
export function buildV15Chat(tokenize: Tokenize, ids: V15TokenIds, turns: readonly ChatTurn[]): PromptLayout {
  assertTurns(turns);
  for (const k of ['bos', 'eos'] as const) {
    if (!Number.isInteger(ids?.[k]) || ids[k] < 0) throw llavaError('ERR_INVALID_ARGUMENT', `Token id ${k} must be a non-negative integer.`);
  }
  for (const t of turns) {
    assertNoMarkers(t.question, 'v1.5', 'question');
    if (typeof t.answer === 'string') assertNoMarkers(t.answer, 'v1.5', 'answer in the chat history');
  }
  const before = [ids.bos, ...tokenize(V15_INST_OPEN)];
  const after: number[] = [];
  // Text after the image, split at each "</s>" (the EOS special token) into separately encoded segments.
  let segment = `\n${cleanQuestion(turns[0]!.question)}${V15_INST_CLOSE}`;
  turns.forEach((t, i) => {
    if (i > 0) segment += `${V15_INST_OPEN}${cleanQuestion(t.question)}${V15_INST_CLOSE}`;
    if (typeof t.answer === 'string') {
      after.push(...tokenize(`${segment} ${t.answer} `), ids.eos);
      segment = '';
    }
  });
  if (segment) after.push(...tokenize(segment));
  return { before, after, imagePosition: before.length };
}

/** Ids of a single v1.5 VQA question with its image (model_vqa.py with --conv-mode mistral_instruct). */
export function buildV15Prompt(tokenize: Tokenize, ids: V15TokenIds, question: string): PromptLayout {
  return buildV15Chat(tokenize, ids, [{ question }]);
}

/** Record `answer` on the last turn and append a follow-up question. */
export function v15ChatTurn(turns: readonly ChatTurn[], answer: string, question: string): ChatTurn[] {
  assertTurns(turns);
  const out = turns.map((t) => ({ ...t }));
  out[out.length - 1]!.answer = pyStrip(answer);
  out.push({ question });
  return out;
}
