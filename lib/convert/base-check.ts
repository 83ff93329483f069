/**
 * Refuses a base model that is not what the LLaVA-Med v0 delta was made from: the original LLaMA-7B
 * (LLaMA-1) in HF format. Llama-2 and Vicuna have the same tensor shapes (Vicuna v0 even one row more),
 * so a fold would "succeed" and produce a model that answers nonsense; the configs are the only signal
 * (LLaVA-Med issues #19, #66; the third-party Llama-2 script).
 */
import { llavaError } from '../errors.js';
import { contextLength, headCountKv, type LlmConfig } from './hf-config.js';

const USE_LLAMA1 =
  'LLaVA-Med v0 deltas must be applied to the original LLaMA-7B (LLaMA-1) converted to HF format ' +
  '(transformers convert_llama_weights_to_hf.py), not Llama-2, Vicuna or another fine-tune.';

export interface BaseFacts {
  dir: string;
  config: LlmConfig;
  /** Rows of the base's model.embed_tokens.weight. */
  embedRows: number;
  /** Number of added tokens in the base's tokenizer folder (added_tokens.json etc.), if it has one. */
  addedTokens: number;
}

export interface DeltaFacts {
  dir: string;
  config: LlmConfig;
  embedRows: number;
  /** Tokens the delta adds past the SentencePiece vocabulary ([PAD], <im_patch>, <im_start>, <im_end>). */
  extraTokens: number;
}

function wrong(base: BaseFacts, why: string): never {
  throw llavaError('ERR_WRONG_BASE', `${base.dir} is not the right base: ${why}. ${USE_LLAMA1}`);
}

export function checkV0Base(base: BaseFacts, delta: DeltaFacts): void {
  const c = base.config;
  const name = c._name_or_path ?? '';
  if (/llama[-_ ]?2/i.test(name)) wrong(base, `its config names ${JSON.stringify(name)} (Llama-2)`);
  if (/vicuna/i.test(name)) wrong(base, `its config names ${JSON.stringify(name)} (Vicuna)`);
  if (/mistral/i.test(name) || c.model_type === 'mistral') wrong(base, 'it is a Mistral model');
  if (c.model_type === 'llava' || c.mm_vision_tower !== undefined || (c.architectures ?? []).some((a) => /llava/i.test(a))) {
    wrong(base, 'it is itself a LLaVA model (a delta or an already merged model)');
  }
  const ctx = contextLength(c);
  if (ctx !== 2048) wrong(base, `its context length is ${ctx} (LLaMA-1 has 2048; 4096 means Llama-2)`);
  if (c.rms_norm_eps > 5e-6) wrong(base, `its rms_norm_eps is ${c.rms_norm_eps} (LLaMA-1 has 1e-6; 1e-5 means Llama-2)`);
  if (c.rope_theta !== undefined && c.rope_theta !== 10000) wrong(base, `its rope_theta is ${c.rope_theta} (LLaMA-1 uses 10000)`);

  const expectedRows = delta.embedRows - delta.extraTokens;
  if (base.addedTokens > 0 || base.embedRows !== expectedRows || c.vocab_size !== expectedRows) {
    const vicunaHint = base.embedRows === expectedRows + 1 || base.addedTokens > 0 ? ' (Vicuna v0 adds a [PAD] token)' : '';
    wrong(
      base,
      `it has ${base.embedRows} embedding rows (vocab_size ${c.vocab_size}, ${base.addedTokens} added tokens) ` +
        `but the delta expects ${expectedRows} = ${delta.embedRows} - ${delta.extraTokens} added tokens${vicunaHint}`,
    );
  }

  const d = delta.config;
  const dims: [string, number, number][] = [
    ['hidden_size', c.hidden_size, d.hidden_size],
    ['intermediate_size', c.intermediate_size, d.intermediate_size],
    ['num_hidden_layers', c.num_hidden_layers, d.num_hidden_layers],
    ['num_attention_heads', c.num_attention_heads, d.num_attention_heads],
    ['num_key_value_heads', headCountKv(c), headCountKv(d)],
  ];
  for (const [k, b, dv] of dims) {
    if (b !== dv) wrong(base, `its ${k} is ${b} but the delta's is ${dv} (a different model size)`);
  }
}
