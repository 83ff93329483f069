/**
 * Text that looks like a special token. The original tokenizers did not treat it as text:
 *  - v0 (transformers 4.28 slow LlamaTokenizer): the special tokens <s>, </s>, <unk> and the delta's added
 *    tokens [PAD], <im_patch>, <im_start>, <im_end> are "no-split" tokens, so such text in a question
 *    became that single id (whitespace around it stripped). LlavaLlamaModel.forward then raised a
 *    ValueError for an extra <im_start> / <im_end> (start/end counts differ, or no <im_end> 257
 *    positions later), and fed </s>, [PAD], <im_patch> mid-prompt as token ids.
 *  - v1.5 (LlamaTokenizerFast of Mistral): <s>, </s>, <unk> became their ids; the v0 image markers are
 *    ordinary text there (not in the 32000-token vocabulary).
 *  - both: every "<image>" is removed from the question (cleanQuestion), as model_vqa(_med).py did.
 * llama.cpp cannot reproduce that from a GGUF: with parse_special=false it matches USER_DEFINED tokens
 * (how llama.cpp's own legacy LLaVA scripts type the added tokens) but not CONTROL ones (how our
 * converter types them), so the same question would give different ids depending on who wrote the file.
 * We refuse such text with ERR_INVALID_ARGUMENT instead, whichever converter wrote the file; nothing
 * the original answered sensibly is lost (v0 crashed on image markers, the rest put a special token in
 * the middle of the prompt).
 */
import { llavaError } from '../errors.js';

/** SentencePiece control tokens of both vocabularies. */
export const SPECIAL_TOKEN_TEXTS = ['<s>', '</s>', '<unk>'] as const;
/** The tokens the v0 delta added to LLaMA's vocabulary. */
export const V0_ADDED_TOKEN_TEXTS = ['[PAD]', '<im_patch>', '<im_start>', '<im_end>'] as const;

export function markerTexts(variant: 'v0' | 'v1.5'): readonly string[] {
  return variant === 'v0' ? [...SPECIAL_TOKEN_TEXTS, ...V0_ADDED_TOKEN_TEXTS] : SPECIAL_TOKEN_TEXTS;
}

/** The first special-token text found in `text`, if any. */
export function findMarker(text: string, variant: 'v0' | 'v1.5'): string | undefined {
  let first: { at: number; m: string } | undefined;
  for (const m of markerTexts(variant)) {
    const at = text.indexOf(m);
    if (at >= 0 && (!first || at < first.at)) first = { at, m };
  }
  return first?.m;
}

/**
 * Throws ERR_INVALID_ARGUMENT when `text` (a question, a chat answer or a score candidate) contains
 * text the original tokenizer read as a special token of this variant.
 */
export function assertNoMarkers(text: string, variant: 'v0' | 'v1.5', what: string): void {
  const m = findMarker(text, variant);
  if (m === undefined) return;
  throw llavaError(
    'ERR_INVALID_ARGUMENT',
    `The ${what} contains ${JSON.stringify(m)}, which LLaVA-Med ${variant}'s tokenizer read as a special token, not as text. ` +
      `Remove it or write it differently (e.g. with a space: ${JSON.stringify(m.replace(/^(<\/?|\[)/, '$1 '))}). ` +
      `Refused: ${markerTexts(variant).join(' ')} ("<image>" is removed, as the original did).`,
  );
}
