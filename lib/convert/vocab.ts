/**
 * The GGUF vocabulary (tokenizer.ggml.tokens / scores / token_type) for a SentencePiece LLaMA model,
 * following conversion/base.py's _create_vocab_sentencepiece (llama-cpp-notes §5.2): pieces with their
 * scores and proto types, added tokens at their ids, unfilled ids as "[PAD{id}]" UNUSED, n_vocab taken
 * from the embedding matrix so token_embd/output and the vocabulary always agree.
 */
import { llavaError } from '../errors.js';
import { TokenType, type HfTokenizer } from './hf-tokenizer.js';

export interface GgufVocab {
  tokens: string[];
  scores: number[];
  types: number[];
}

/**
 * Added tokens (LLaVA-Med v0: [PAD] 32000, <im_patch> 32001, <im_start> 32002, <im_end> 32003) are typed
 * CONTROL, not USER_DEFINED (convert_hf_to_gguf's default for added_tokens.json). Both kinds are matched
 * as single tokens by llama.cpp's tokenizer; the difference is that USER_DEFINED tokens are matched even
 * with parse_special=false and printed by token_to_piece(special=false). For this model:
 *  - [PAD] must be CONTROL: llama.cpp otherwise warns and overrides it (build-notes).
 *  - <im_start>/<im_end>/<im_patch> are image markers the prompt layer places by id or through mtmd with
 *    parse_special=true. As CONTROL, a user's question that happens to contain the text "<im_start>" stays
 *    text (no prompt injection of image markers with parse_special=false), and a generated marker never
 *    leaks into answer text.
 * A tokenizer_config.json added_tokens_decoder entry with special=false is honoured (USER_DEFINED), since
 * it states the intent explicitly.
 */
export function addedTokenType(special: boolean | undefined): number {
  return special === false ? TokenType.USER_DEFINED : TokenType.CONTROL;
}

export function buildGgufVocab(tok: HfTokenizer, nVocab: number): GgufVocab {
  const tokens = new Array<string>(nVocab);
  const scores = new Array<number>(nVocab);
  const types = new Array<number>(nVocab);
  for (let i = 0; i < nVocab; i++) {
    tokens[i] = `[PAD${i}]`;
    scores[i] = -10000;
    types[i] = TokenType.UNUSED;
  }
  const nSp = Math.min(tok.sp.pieces.length, nVocab);
  for (let i = 0; i < nSp; i++) {
    const p = tok.sp.pieces[i]!;
    tokens[i] = p.piece;
    scores[i] = p.score;
    types[i] = p.type;
  }
  for (const a of tok.added) {
    if (a.id >= nVocab) {
      throw llavaError(
        'ERR_SHAPE_MISMATCH',
        `Added token ${JSON.stringify(a.content)} has id ${a.id}, but the embedding matrix has only ${nVocab} rows.`,
      );
    }
    // An added token that re-states a SentencePiece piece (e.g. "<s>" in added_tokens_decoder) keeps the piece's data.
    if (a.id < nSp && tokens[a.id] === a.content) continue;
    tokens[a.id] = a.content;
    scores[a.id] = -1000;
    types[a.id] = addedTokenType(a.special);
  }
  // llama.cpp asserts unique token texts (llama-vocab.cpp); fail here with a useful message instead.
  const seen = new Map<string, number>();
  for (let i = 0; i < nVocab; i++) {
    const prev = seen.get(tokens[i]!);
    if (prev !== undefined) {
      throw llavaError('ERR_CONVERT', `Token text ${JSON.stringify(tokens[i])} appears twice in the vocabulary (ids ${prev} and ${i}).`);
    }
    seen.set(tokens[i]!, i);
  }
  return { tokens, scores, types };
}
