/**
 * Plain SentencePiece encoding of ONE text segment: the model's SPM vocabulary with its dummy prefix
 * ("▁" prepended, i.e. add_space_prefix), no BOS/EOS, and no parsing of special-token text. In llama.cpp
 * terms: llama_tokenize(text, add_special = false, parse_special = false) on an SPM vocab.
 */
export type Tokenize = (text: string) => number[];

/**
 * Token ids around the image. The engine decodes `before`, then the image embeddings (the slot sits at
 * index `imagePosition` of the full sequence, i.e. right after `before`), then `after`.
 */
export interface PromptLayout {
  before: number[];
  after: number[];
  imagePosition: number;
}

/** One exchange of a chat. The last turn normally has no answer yet (it is the one being asked). */
export interface ChatTurn {
  /** The user's question. */
  question: string;
  /** The model's answer, once given. */
  answer?: string;
}
