/**
 * Generation settings and answer post-processing of the original evaluation scripts.
 *
 * v0 (model_vqa_med.py): do_sample=True, temperature 0.7, max_new_tokens 1024, no seed. HF's sampling
 * defaults then apply: top_k 50, top_p 1.0. It stops when the decoded new text contains "###"
 * (KeywordsStoppingCriteria); the delta's generation_config has a stale eos_token_id = 1, so "</s>" did
 * not stop it. We also stop at the vocab's EOS: text after "</s>" is noise and is cut at "###" anyway
 * when "###" follows, but an EOS without "###" would otherwise run to max tokens.
 * Answer: text[:text.index("###")].strip() — the "simple" mode keeps a leading "Assistant:".
 *
 * v1.5 (model_vqa.py, README: --temperature 0.0): greedy, max_new_tokens 1024, stops at EOS id 2 only
 * (a stopping criterion is built but never passed to generate). Answer: decode(skip_special_tokens).strip().
 */
import { pyStrip } from './py-strip.js';

export interface GenerationSettings {
  /** 0 = greedy. */
  temperature: number;
  topK: number;
  topP: number;
  maxTokens: number;
  /** Stop as soon as the generated text contains one of these. */
  stop: readonly string[];
  /** Stop at the vocabulary's end-of-generation token. */
  stopAtEos: boolean;
}

export const GENERATION_DEFAULTS: Readonly<Record<'v0' | 'v1.5', Readonly<GenerationSettings>>> = Object.freeze({
  v0: Object.freeze({ temperature: 0.7, topK: 50, topP: 1.0, maxTokens: 1024, stop: Object.freeze(['###']), stopAtEos: true }),
  'v1.5': Object.freeze({ temperature: 0, topK: 50, topP: 1.0, maxTokens: 1024, stop: Object.freeze([] as string[]), stopAtEos: true }),
});

/** v0: cut at the first "###" (if any), then Python strip(). */
export function postprocessV0(text: string): string {
  const i = text.indexOf('###');
  return pyStrip(i >= 0 ? text.slice(0, i) : text);
}

/** v1.5: Python strip() of the decoded text (special tokens already skipped by the detokenizer). */
export function postprocessV15(text: string): string {
  return pyStrip(text);
}
