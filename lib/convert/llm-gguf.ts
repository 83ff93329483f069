/**
 * The language-model GGUF: llama architecture, hyper-parameters, SentencePiece vocabulary, special ids,
 * LLaVA-Med keys for the prompt layer, provenance, and the tensors (Q/K permuted for llama.cpp's RoPE).
 * Key names and types follow conversion/base.py + conversion/llama.py (llama-cpp-notes §5).
 */
import { llavaError } from '../errors.js';
import { GgmlType, GgufValueType, GgufWriter } from '../formats/gguf.js';
import { contextLength, headCountKv, type LlmConfig } from './hf-config.js';
import { resolveSpecialTokens, type HfTokenizer, type ResolvedSpecial, type SpecialKind } from './hf-tokenizer.js';
import { permuteQK } from './permute.js';
import { emitTensors, type EmitProgress, type PlannedTensor } from './emit.js';
import { llmTensorName } from './tensor-names.js';
import { addProvenance, type Provenance } from './provenance.js';
import type { LazyTensor, LlavaMedVariant, OutType, WarningCallback } from './types.js';
import { buildGgufVocab } from './vocab.js';

/** llama_ftype values for general.file_type. */
const FILE_TYPE: Record<OutType, number> = { f32: 0, f16: 1, q8_0: 7 };

export interface LlmGgufOptions {
  path: string;
  config: LlmConfig;
  tokenizer: HfTokenizer;
  /** All tensors of the checkpoint (HF names); multimodal ones are skipped here. */
  tensors: readonly LazyTensor[];
  outtype: OutType;
  variant: LlavaMedVariant;
  /** Image embeddings the vision side produces per image (256 for v0 at 224 px, 576 for v1.5 at 336 px). */
  imageTokenCount: number;
  /** v0: how base + delta was computed (recorded as llava_med.fold_arithmetic). */
  foldArithmetic?: 'fp16' | 'exact';
  provenance: Provenance;
  signal?: AbortSignal | undefined;
  onTensor?: ((p: EmitProgress) => void) | undefined;
  /** Write NaN/Inf weights instead of refusing them (emit.ts). */
  allowNonFinite?: boolean | undefined;
  onWarning?: WarningCallback | undefined;
}

/** The language-model GGUF a conversion wrote. */
export interface LlmGgufResult {
  /** Its path. */
  path: string;
  /** Tensors written. */
  tensorCount: number;
  /** Vocabulary size (v0: 32004 with the 4 added tokens). */
  nVocab: number;
  /** The special tokens found in the tokenizer files and the file each came from. */
  special: Partial<Record<SpecialKind, ResolvedSpecial>>;
  /** The id the original tokenizer prepended to every prompt (v0: "</s>" = 2). */
  promptBosId: number;
}

/** Sort key: token_embd first, then blocks in layer order, then output_norm and output (as convert_hf_to_gguf emits). */
function orderKey(ggufName: string): [number, number, string] {
  if (ggufName === 'token_embd.weight') return [0, 0, ''];
  const m = /^blk\.(\d+)\.(.+)$/.exec(ggufName);
  if (m) return [1, Number(m[1]), m[2]!];
  return [2, 0, ggufName === 'output_norm.weight' ? 'a' : 'b' + ggufName];
}

function compareNames(a: string, b: string): number {
  const ka = orderKey(a);
  const kb = orderKey(b);
  return ka[0] - kb[0] || ka[1] - kb[1] || (ka[2] < kb[2] ? -1 : ka[2] > kb[2] ? 1 : 0);
}

/** Weight type for one LLM tensor: 1-D (norms) F32; others by outtype, q8_0 only where rows split into 32-blocks. */
export function llmTensorType(name: string, shape: readonly number[], outtype: OutType, warn?: WarningCallback): GgmlType {
  if (shape.length === 1 || name.endsWith('_norm.weight')) return GgmlType.F32;
  if (outtype === 'f32') return GgmlType.F32;
  if (outtype === 'f16') return GgmlType.F16;
  const ne0 = shape[shape.length - 1]!;
  if (ne0 % 32 !== 0) {
    warn?.(`${name}: row length ${ne0} is not a multiple of 32, written as F16 instead of Q8_0.`);
    return GgmlType.F16;
  }
  return GgmlType.Q8_0;
}

function expectShape(name: string, shape: readonly number[], want: readonly number[]): void {
  if (shape.length !== want.length || shape.some((d, i) => d !== want[i])) {
    throw llavaError('ERR_SHAPE_MISMATCH', `Tensor ${name} has shape [${shape.join(', ')}], expected [${want.join(', ')}] from config.json.`);
  }
}

export async function writeLlmGguf(o: LlmGgufOptions): Promise<LlmGgufResult> {
  const c = o.config;
  const nHead = c.num_attention_heads;
  const nHeadKv = headCountKv(c);
  const headDim = c.hidden_size / nHead;

  // Map, validate and order the tensors before creating any file.
  const mapped: { gguf: string; src: LazyTensor }[] = [];
  for (const t of o.tensors) {
    const gguf = llmTensorName(t.name);
    if (gguf !== null) mapped.push({ gguf, src: t });
  }
  mapped.sort((a, b) => compareNames(a.gguf, b.gguf));
  const embd = mapped.find((m) => m.gguf === 'token_embd.weight');
  if (!embd) throw llavaError('ERR_CONVERT', 'The checkpoint has no model.embed_tokens.weight.');
  const nVocab = embd.src.shape[0]!;
  const H = c.hidden_size;
  const kvRows = nHeadKv * headDim;
  for (const m of mapped) {
    const s = m.src.shape;
    const leaf = m.gguf.replace(/^blk\.\d+\./, '');
    if (m.gguf === 'token_embd.weight' || m.gguf === 'output.weight') expectShape(m.src.name, s, [nVocab, H]);
    else if (leaf === 'attn_q.weight' || leaf === 'attn_output.weight') expectShape(m.src.name, s, [H, H]);
    else if (leaf === 'attn_k.weight' || leaf === 'attn_v.weight') expectShape(m.src.name, s, [kvRows, H]);
    else if (leaf === 'ffn_gate.weight' || leaf === 'ffn_up.weight') expectShape(m.src.name, s, [c.intermediate_size, H]);
    else if (leaf === 'ffn_down.weight') expectShape(m.src.name, s, [H, c.intermediate_size]);
    else expectShape(m.src.name, s, [H]);
  }
  for (let il = 0; il < c.num_hidden_layers; il++) {
    for (const leaf of ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down']) {
      const n = `blk.${il}.${leaf}.weight`;
      if (!mapped.some((m) => m.gguf === n)) {
        throw llavaError('ERR_CONVERT', `The checkpoint lacks the tensor for ${n} (layer ${il} of ${c.num_hidden_layers}); is a shard missing?`);
      }
    }
  }
  const extraBlock = mapped.find((m) => /^blk\.(\d+)\./.test(m.gguf) && Number(/^blk\.(\d+)\./.exec(m.gguf)![1]) >= c.num_hidden_layers);
  if (extraBlock) throw llavaError('ERR_CONVERT', `${extraBlock.src.name} is beyond num_hidden_layers = ${c.num_hidden_layers}.`);
  if (!mapped.some((m) => m.gguf === 'output_norm.weight')) throw llavaError('ERR_CONVERT', 'The checkpoint has no model.norm.weight.');

  const vocab = buildGgufVocab(o.tokenizer, nVocab);
  const special = resolveSpecialTokens(o.tokenizer);
  const bos = special.bos;
  const eos = special.eos;
  if (!bos || !eos) throw llavaError('ERR_CONVERT', `${o.tokenizer.dir}: cannot resolve the BOS/EOS tokens from the tokenizer files.`);
  for (const [k, v] of Object.entries(special)) {
    if (v && v.id >= nVocab) throw llavaError('ERR_CONVERT', `${k} token id ${v.id} is outside the vocabulary of ${nVocab}.`);
  }

  const plan: PlannedTensor[] = mapped.map((m) => {
    const type = llmTensorType(m.gguf, m.src.shape, o.outtype, o.onWarning);
    const leaf = m.gguf.replace(/^blk\.\d+\./, '');
    const permuteHeads = leaf === 'attn_q.weight' ? nHead : leaf === 'attn_k.weight' ? nHeadKv : 0;
    return {
      name: m.gguf,
      type,
      shape: m.src.shape,
      produce: async () => {
        const v = await m.src.read();
        return permuteHeads ? permuteQK(v, m.src.shape[0]!, m.src.shape[1]!, permuteHeads) : v;
      },
    };
  });

  const w = await GgufWriter.create(o.path);
  try {
    w.addString('general.architecture', 'llama');
    w.addString('general.type', 'model');
    addProvenance(w, o.provenance);
    w.addU32('general.file_type', FILE_TYPE[o.outtype]);
    w.addU32('general.quantization_version', 2);

    w.addU32('llama.vocab_size', nVocab);
    w.addU32('llama.context_length', contextLength(c));
    w.addU32('llama.embedding_length', H);
    w.addU32('llama.block_count', c.num_hidden_layers);
    w.addU32('llama.feed_forward_length', c.intermediate_size);
    w.addU32('llama.attention.head_count', nHead);
    w.addU32('llama.attention.head_count_kv', nHeadKv);
    w.addU32('llama.rope.dimension_count', headDim);
    w.addF32('llama.attention.layer_norm_rms_epsilon', c.rms_norm_eps);
    if (c.rope_theta !== undefined) w.addF32('llama.rope.freq_base', c.rope_theta);

    w.addString('tokenizer.ggml.model', 'llama');
    w.addString('tokenizer.ggml.pre', 'default');
    w.addArray('tokenizer.ggml.tokens', GgufValueType.STRING, vocab.tokens);
    w.addArray('tokenizer.ggml.scores', GgufValueType.FLOAT32, vocab.scores);
    w.addArray('tokenizer.ggml.token_type', GgufValueType.INT32, vocab.types);
    w.addU32('tokenizer.ggml.bos_token_id', bos.id);
    w.addU32('tokenizer.ggml.eos_token_id', eos.id);
    if (special.unk) w.addU32('tokenizer.ggml.unknown_token_id', special.unk.id);
    if (special.pad) w.addU32('tokenizer.ggml.padding_token_id', special.pad.id);
    w.addBool('tokenizer.ggml.add_bos_token', o.tokenizer.addBos);
    w.addBool('tokenizer.ggml.add_eos_token', o.tokenizer.addEos);

    // What the prompt layer needs to rebuild the original id sequence without re-deriving tokenizer quirks.
    w.addString('llava_med.variant', o.variant);
    w.addU32('llava_med.image_token_count', o.imageTokenCount);
    w.addU32('llava_med.prompt_bos_token_id', bos.id);
    w.addString('llava_med.prompt_bos_source', bos.from);
    if (o.foldArithmetic) w.addString('llava_med.fold_arithmetic', o.foldArithmetic);
    const idOf = (text: string): number | undefined => o.tokenizer.added.find((a) => a.content === text)?.id;
    for (const [key, text] of [
      ['llava_med.image_start_token_id', '<im_start>'],
      ['llava_med.image_end_token_id', '<im_end>'],
      ['llava_med.image_patch_token_id', '<im_patch>'],
    ] as const) {
      const id = idOf(text);
      if (id !== undefined) w.addU32(key, id);
    }
  } catch (e) {
    await w.abort();
    throw e;
  }
  await emitTensors(w, plan, { signal: o.signal, onTensor: o.onTensor, what: 'LLM conversion', allowNonFinite: o.allowNonFinite });
  return { path: o.path, tensorCount: plan.length, nVocab, special, promptBosId: bos.id };
}
