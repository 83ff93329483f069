/**
 * Checks a language-model GGUF header against what llama.cpp asserts on, divides by, indexes with
 * or silently accepts during load, context creation and the first decode (sources and constants in
 * gguf-keys.ts). llama.cpp throws cleanly for most problems (a missing key, a wrong key type, a
 * tensor of the wrong shape, a missing tensor, a tensor too many); what is checked here are the
 * rest: GGML_ASSERTs and GGML_ABORTs (block_count, rope scaling type, duplicate token texts, a
 * tokenizer without vocabulary), values that only fail later in the graph or the CPU kernels (head
 * counts, head size, RMS epsilon, weight types), and nonsense llama.cpp accepts without a word
 * (context_length 0, vocab_size that disagrees with the token list, bos/eos outside the vocabulary).
 *
 * Only the dense LLaMA architecture with a SentencePiece vocabulary is accepted: that is what
 * LLaVA-Med v0 (LLaMA) and v1.5 (Mistral, converted as `llama`) are.
 */
import { isUtf8 } from 'node:buffer';
import { llavaError } from '../errors.js';
import { GgufValueType as T, ggmlTypeName, ggufValueTypeName, type GgufCompactArray, type GgufHeader, type GgufKv } from '../formats/gguf-types.js';
import { LLAMA_KEYS, LLAMA_MAX_LAYERS, LLAVA_MED_ID_KEYS, MATMUL_TYPES, ROPE_SCALING_TYPES, TOKEN_ID_KEYS, VECTOR_TYPES } from './gguf-keys.js';

function bad(h: GgufHeader, msg: string): never {
  throw llavaError('ERR_GGUF_CORRUPT', `${h.path}: ${msg}; this model cannot be loaded (convert it again with \`llava-med convert\`).`);
}

function typeName(kv: GgufKv): string {
  return kv.type === T.ARRAY ? `ARRAY of ${ggufValueTypeName(kv.elemType!)}` : ggufValueTypeName(kv.type);
}

/** A scalar of exactly `type` (or an array of it where `arr`), as numbers; undefined when absent. */
function values(h: GgufHeader, key: string, type: T, arr = false): (number | string | boolean)[] | undefined {
  const kv = h.kv.get(key);
  if (!kv) return undefined;
  if (kv.type === type) return [kv.value as number | string | boolean];
  if (arr && kv.type === T.ARRAY && kv.elemType === type) return (kv.value as (number | string | boolean)[]).slice();
  bad(h, `key '${key}' is ${typeName(kv)} but llama.cpp reads it as ${ggufValueTypeName(type)}${arr ? ' (or an array of it, one per layer)' : ''}`);
}

export interface LlamaCheck {
  nEmbd: number;
  nVocab: number;
  bos: number;
  eos: number;
}

/** Throws ERR_GGUF_CORRUPT / ERR_INVALID_ARGUMENT for anything llama.cpp would crash on or silently misuse. */
export function checkLlamaHeader(h: GgufHeader, opts: { vocabOnly?: boolean } = {}): LlamaCheck {
  const arch = h.kv.get('general.architecture')!.value as string;
  if (arch !== 'llama') {
    throw llavaError('ERR_INVALID_ARGUMENT', `${h.path} has architecture '${arch}'; llava-med runs LLaVA-Med language models, which are 'llama' (LLaMA and Mistral).`);
  }
  const split = h.kv.get('split.count');
  if (split && !(split.type === T.UINT16 && Number(split.value) <= 1)) {
    throw llavaError('ERR_INVALID_ARGUMENT', `${h.path} is one part of a split model (split.count ${String(split.value)}); merge the parts first (llama-gguf-split --merge).`);
  }

  // Every llama.* key llama.cpp reads, with its type (a scalar, or one value per layer).
  const kv = new Map<string, (number | string | boolean)[]>();
  for (const [k, spec] of Object.entries(LLAMA_KEYS)) {
    const v = values(h, `llama.${k}`, spec.type, spec.arr);
    if (v !== undefined) kv.set(k, v);
  }
  const num = (k: string): number | undefined => (kv.has(k) ? (kv.get(k)![0] as number) : undefined);

  const { nVocab, bos, eos } = checkVocab(h);
  const vocabSize = num('vocab_size');
  if (vocabSize !== undefined && vocabSize !== nVocab) {
    bad(h, `llama.vocab_size is ${vocabSize} but the vocabulary holds ${nVocab} tokens`);
  }
  const nEmbdKey = num('embedding_length');
  if (opts.vocabOnly) return { nEmbd: nEmbdKey ?? 0, nVocab, bos, eos };

  // load_hparams: required keys, then the asserts.
  for (const k of ['context_length', 'embedding_length', 'block_count', 'attention.layer_norm_rms_epsilon']) {
    if (!kv.has(k)) bad(h, `required key 'llama.${k}' is missing`);
  }
  const nEmbd = nEmbdKey!;
  if (nEmbd < 1) bad(h, `llama.embedding_length is ${nEmbd}`);
  const nCtx = num('context_length')!;
  if (nCtx < 1) bad(h, `llama.context_length is ${nCtx}: the model must declare the context it was trained with`);
  const nLayer = num('block_count')!;
  if (nLayer < 1 || nLayer > LLAMA_MAX_LAYERS) bad(h, `llama.block_count is ${nLayer}; llama.cpp supports 1 to ${LLAMA_MAX_LAYERS} layers`);
  if ((num('nextn_predict_layers') ?? 0) !== 0) bad(h, `llama.nextn_predict_layers is ${num('nextn_predict_layers')}; LLaVA-Med models have no next-token-prediction layers`);
  const outWidth = num('embedding_length_out') ?? 0;
  if (outWidth !== 0 && outWidth !== nEmbd) bad(h, `llama.embedding_length_out ${outWidth} differs from embedding_length ${nEmbd}`);
  // Mixture-of-experts keys go through a chain of GGML_ASSERTs; LLaVA-Med is dense.
  for (const k of ['expert_count', 'expert_used_count', 'expert_group_count', 'expert_group_used_count']) {
    const v = kv.get(k);
    if (v && v.some((x) => x !== 0)) bad(h, `llama.${k} is ${v.join(', ')}; llava-med runs dense LLaMA models (no experts)`);
  }
  if ((num('pooling_type') ?? 0) !== 0) bad(h, `llama.pooling_type is ${num('pooling_type')}; a generative model has none (0)`);

  // Per-layer keys: one value, or exactly one per layer (get_key_or_arr throws on another length);
  // LLaVA-Med's layers are all alike.
  const perLayer = (k: string, required: boolean): number | undefined => {
    const v = kv.get(k);
    if (!v) {
      if (required) bad(h, `required key 'llama.${k}' is missing`);
      return undefined;
    }
    if (v.length !== 1 && v.length !== nLayer) bad(h, `llama.${k} has ${v.length} values for ${nLayer} layers`);
    if (v.some((x) => x !== v[0])) bad(h, `llama.${k} differs between layers (${v.join(', ')}); LLaVA-Med's layers are all alike`);
    return v[0] as number;
  };
  const nFf = perLayer('feed_forward_length', true)!;
  if (nFf < 1) bad(h, `llama.feed_forward_length is ${nFf}`);
  const nHead = perLayer('attention.head_count', true)!;
  if (nHead < 1) bad(h, `llama.attention.head_count is ${nHead}`);
  const nHeadKv = perLayer('attention.head_count_kv', false) ?? nHead;
  if (nHeadKv < 1 || nHead % nHeadKv !== 0) {
    bad(h, `llama.attention.head_count_kv is ${nHeadKv}; it must divide head_count ${nHead} (grouped-query attention)`);
  }
  if (nEmbd % nHead !== 0) bad(h, `llama.embedding_length ${nEmbd} is not a multiple of attention.head_count ${nHead}`);
  const headDim = nEmbd / nHead;
  // The llama graph asserts key size == value size == rope dimensions; RoPE rotates pairs.
  for (const k of ['attention.key_length', 'attention.value_length', 'rope.dimension_count']) {
    const v = num(k);
    if (v !== undefined && v !== headDim) bad(h, `llama.${k} is ${v} but the head size is ${headDim} (embedding_length / head_count)`);
  }
  if (headDim % 2 !== 0) bad(h, `the head size ${headDim} (embedding_length / head_count) is odd; RoPE needs an even one`);

  const eps = num('attention.layer_norm_rms_epsilon')!;
  if (!Number.isFinite(eps) || eps <= 0 || eps >= 1) bad(h, `llama.attention.layer_norm_rms_epsilon is ${eps}; RMS norm needs a small positive epsilon`);
  const ropeType = kv.get('rope.scaling.type')?.[0] as string | undefined;
  if (ropeType !== undefined && !(ROPE_SCALING_TYPES as readonly string[]).includes(ropeType)) {
    bad(h, `llama.rope.scaling.type '${ropeType}' is not one llama.cpp knows (${ROPE_SCALING_TYPES.join(', ')})`);
  }
  const finite = (k: string, min: number, strict: boolean) => {
    const v = num(k);
    if (v !== undefined && (!Number.isFinite(v) || (strict ? v <= min : v < min))) bad(h, `llama.${k} is ${v}`);
  };
  finite('rope.freq_base', 0, true);
  finite('rope.scaling.factor', 0, false);
  finite('rope.scale_linear', 0, false);
  finite('rope.scaling.attn_factor', 0, false);
  finite('rope.scaling.alpha', 0, false);
  if (kv.has('rope.scaling.original_context_length') && num('rope.scaling.original_context_length')! < 1) {
    bad(h, 'llama.rope.scaling.original_context_length is 0');
  }
  checkTensorTypes(h);
  return { nEmbd, nVocab, bos, eos };
}

/** The SentencePiece vocabulary as llama-vocab.cpp loads it. */
function checkVocab(h: GgufHeader): { nVocab: number; bos: number; eos: number } {
  const model = h.kv.get('tokenizer.ggml.model');
  if (!model) bad(h, "required key 'tokenizer.ggml.model' is missing");
  if (model.type !== T.STRING) bad(h, `key 'tokenizer.ggml.model' is ${typeName(model)}, not STRING`);
  if (model.value !== 'llama') {
    throw llavaError('ERR_INVALID_ARGUMENT', `${h.path}: tokenizer '${String(model.value)}' is not LLaVA-Med's SentencePiece tokenizer ('llama'); llava-med cannot run this model.`);
  }
  const tokens = h.kv.get('tokenizer.ggml.tokens');
  if (!tokens) bad(h, "the vocabulary 'tokenizer.ggml.tokens' is missing");
  if (tokens.type !== T.ARRAY || tokens.elemType !== T.STRING) bad(h, `'tokenizer.ggml.tokens' is ${typeName(tokens)}, not an ARRAY of STRING`);
  const list = compactStrings(tokens);
  const nVocab = list.length;
  // The SPM defaults (unk 0, bos 1, eos 2) need three tokens.
  if (nVocab < 3) bad(h, `the vocabulary holds ${nVocab} tokens`);
  // llama-vocab.cpp maps text -> id and GGML_ASSERTs the map is as long as the list: two tokens
  // with the same text abort the process. It reads each text as a C string (gguf_get_arr_str), so a
  // NUL ends it; an empty text becomes "[EMPTY_<id>]".
  const dup = firstDuplicateText(list);
  if (dup) {
    const [prev, i, text] = dup;
    bad(h, `tokens ${prev} and ${i} have the same text ${JSON.stringify(text.slice(0, 40))} (texts that are not valid UTF-8 count as equal)`);
  }
  for (const key of [...TOKEN_ID_KEYS, ...LLAVA_MED_ID_KEYS]) {
    const kv = h.kv.get(key);
    if (kv && kv.type !== T.UINT32) bad(h, `key '${key}' is ${typeName(kv)}, not UINT32`);
  }
  const id = (key: string): number | undefined => {
    const v = h.kv.get(key)?.value as number | undefined;
    if (v !== undefined && v >= nVocab) bad(h, `${key} is ${v}, outside the vocabulary of ${nVocab} tokens`);
    return v;
  };
  const bos = id('tokenizer.ggml.bos_token_id') ?? 1;
  const eos = id('tokenizer.ggml.eos_token_id') ?? 2;
  for (const key of LLAVA_MED_ID_KEYS) id(key);
  const variant = h.kv.get('llava_med.variant');
  if (variant && (variant.type !== T.STRING || !['v0', 'v1.5'].includes(variant.value as string))) {
    bad(h, `llava_med.variant is ${JSON.stringify(variant.value)}, not 'v0' or 'v1.5'`);
  }
  return { nVocab, bos, eos };
}

/** A STRING array as one buffer + offsets: as read (gguf-check.ts reads the vocabulary compact), or built from its values. */
function compactStrings(kv: GgufKv): Required<GgufCompactArray> {
  if (kv.compact?.offsets) return kv.compact as Required<GgufCompactArray>;
  const parts = (kv.value as string[]).map((s) => Buffer.from(s, 'utf8'));
  const offsets = new Float64Array(parts.length + 1);
  parts.forEach((p, i) => (offsets[i + 1] = offsets[i]! + p.length));
  return { length: parts.length, data: Buffer.concat(parts), offsets };
}

/**
 * The first token whose text (as llama-vocab.cpp keys it: cut at the first NUL, "[EMPTY_<id>]" when
 * empty) equals an earlier one's: [earlier id, id, text], or undefined. Texts compare as the JS
 * strings they decode to, as the check always has: a text that is not valid UTF-8 is compared by its
 * decoding (with U+FFFD for each bad sequence), re-encoded. Works on the bytes in place (an
 * open-addressing table of ids keyed by an FNV-1a hash), so checking a 32k-token vocabulary
 * allocates a few typed arrays instead of a JS string per token.
 */
function firstDuplicateText(list: Required<GgufCompactArray>): [number, number, string] | undefined {
  const { data, offsets, length: n } = list;
  // Text i is bytes [start[i], end[i]) of data, or of `extra` where inExtra[i] (the canonical bytes
  // of an empty text or of one that is not valid UTF-8).
  const start = new Float64Array(n);
  const end = new Float64Array(n);
  const inExtra = new Uint8Array(n);
  // Valid UTF-8 overall with every text starting on a character boundary means every text is valid
  // on its own (a text then holds whole characters), so one isUtf8 call covers the common case.
  let allValid = isUtf8(data);
  let nul = data.indexOf(0); // the next NUL at or after the current text's start (-1: none)
  for (let i = 0; i < n; i++) {
    const s = offsets[i]!;
    let e = offsets[i + 1]!;
    if (nul >= 0 && nul < s) nul = data.indexOf(0, s);
    if (nul >= 0 && nul < e) e = nul;
    start[i] = s;
    end[i] = e;
    if (e > s && (data[s]! & 0xc0) === 0x80) allValid = false;
  }
  const parts: Buffer[] = [];
  let extraLength = 0;
  for (let i = 0; i < n; i++) {
    const s = start[i]!;
    const e = end[i]!;
    let canonical: Buffer | undefined;
    if (e === s) canonical = Buffer.from(`[EMPTY_${i}]`);
    else if (!allValid && !isUtf8(data.subarray(s, e))) canonical = Buffer.from(data.toString('utf8', s, e), 'utf8');
    if (canonical) {
      parts.push(canonical);
      inExtra[i] = 1;
      start[i] = extraLength;
      extraLength += canonical.length;
      end[i] = extraLength;
    }
  }
  const extra = Buffer.concat(parts, extraLength);
  let size = 16;
  while (size < 2 * n) size *= 2;
  const table = new Int32Array(size).fill(-1);
  const hashes = new Int32Array(size);
  for (let i = 0; i < n; i++) {
    const b = inExtra[i] ? extra : data;
    const s = start[i]!;
    const e = end[i]!;
    let hash = 0x811c9dc5 | 0;
    for (let j = s; j < e; j++) hash = Math.imul(hash ^ b[j]!, 0x01000193);
    for (let slot = hash & (size - 1); ; slot = (slot + 1) & (size - 1)) {
      const k = table[slot]!;
      if (k < 0) {
        table[slot] = i;
        hashes[slot] = hash;
        break;
      }
      if (hashes[slot] !== hash) continue;
      const kb = inExtra[k] ? extra : data;
      const ks = start[k]!;
      if (end[k]! - ks === e - s && kb.compare(b, s, e, ks, end[k]!) === 0) return [k, i, b.toString('utf8', s, e)];
    }
  }
  return undefined;
}

/** Weight types the CPU kernels can use; every dimension at least 1. */
function checkTensorTypes(h: GgufHeader): void {
  for (const t of h.tensors) {
    if (t.shape.some((n) => n < 1)) bad(h, `tensor '${t.name}' has an empty dimension [${t.shape.join(', ')}]`);
    const vector = t.shape.length === 1 || t.shape.slice(1).every((n) => n === 1);
    const ok = vector ? VECTOR_TYPES.has(t.type) : MATMUL_TYPES.has(t.type);
    if (!ok) {
      bad(h, `tensor '${t.name}' is stored as ${ggmlTypeName(t.type)}, which llama.cpp's CPU kernels cannot use for a ${vector ? 'norm weight or bias (F32 only)' : 'weight matrix'}`);
    }
  }
}
