/**
 * Hand-made bad model and mmproj files, each named by what it breaks. Built from the tiny v0 pair
 * that the converter writes (test/helpers/tiny-llava.ts): model n_embd 64, 2 layers, 4 heads,
 * n_ff 128, 516 tokens; mmproj CLIP width 32, 1 layer, 4 heads, ff 64, 28 px / patch 14, projector
 * 32 -> 64 -> 64.
 *
 * `ts` is the LlavaMedError code the TypeScript pre-check (lib/engine/gguf-check*.ts) must give,
 * with `msg` the part of its message that proves which check fired; cases without `ts` pass the
 * pre-check (llama.cpp refuses them cleanly, or they load). The campaign runs every case through
 * the native code in a child process; test/engine/gguf-check.test.ts runs the pre-check alone.
 */
import { GgmlType as G, GgufValueType as V, type GgufScalar } from '../../lib/formats/gguf.js';
import { addTensor, byteSize, delKv, delTensor, encodeDoc, filler, getKv, getTensor, reshapeTensor, setKv, type GgufDoc } from './gguf-doc.js';

export interface GgufCase {
  name: string;
  kind: 'model' | 'mmproj';
  /** Edits the document in place, or returns the file bytes for edits below the document level. */
  edit: (d: GgufDoc) => void | Buffer;
  ts?: string;
  msg?: RegExp;
}

type Edit = GgufCase['edit'];
const cases: GgufCase[] = [];
const add = (kind: GgufCase['kind'], name: string, edit: Edit, ts?: string, msg?: RegExp) => cases.push({ kind, name, edit, ts, msg });
const M = (name: string, edit: Edit, ts?: string, msg?: RegExp) => add('model', name, edit, ts, msg);
const P = (name: string, edit: Edit, ts?: string, msg?: RegExp) => add('mmproj', name, edit, ts, msg);
const CORRUPT = 'ERR_GGUF_CORRUPT';
const INVALID = 'ERR_INVALID_ARGUMENT';

const set = (key: string, type: V, value: GgufScalar | GgufScalar[], elem?: V): Edit => (d) => setKv(d, key, type, value, elem);
const u32 = (key: string, v: number): Edit => set(key, V.UINT32, v);
const f32 = (key: string, v: number): Edit => set(key, V.FLOAT32, v);
const str = (key: string, v: string): Edit => set(key, V.STRING, v);
const del = (key: string): Edit => (d) => delKv(d, key);
const raw = (f: (b: Buffer, d: GgufDoc) => Buffer): Edit => (d) => f(encodeDoc(d), d);

// ---- language model: llama.* hyperparameters ------------------------------------------------------

const U32_MAX = 0xffffffff;
for (const k of ['context_length', 'embedding_length', 'block_count', 'feed_forward_length', 'attention.head_count', 'attention.layer_norm_rms_epsilon']) {
  M(`llama.${k} missing`, del(`llama.${k}`), CORRUPT, new RegExp(`'llama\\.${k.replace(/\./g, '\\.')}' is missing`));
}
for (const [k, want] of [
  ['block_count', V.UINT32], ['embedding_length', V.UINT32], ['context_length', V.UINT32], ['feed_forward_length', V.UINT32],
  ['attention.head_count', V.UINT32], ['attention.head_count_kv', V.UINT32], ['rope.dimension_count', V.UINT32],
  ['attention.layer_norm_rms_epsilon', V.FLOAT32], ['vocab_size', V.UINT32],
] as const) {
  for (const [tname, type, value] of [['INT32', V.INT32, 4], ['FLOAT32', V.FLOAT32, 4], ['STRING', V.STRING, '4'], ['UINT64', V.UINT64, 4n], ['UINT16', V.UINT16, 4], ['BOOL', V.BOOL, true]] as const) {
    if (type === want) continue;
    M(`llama.${k} stored as ${tname}`, set(`llama.${k}`, type, value), CORRUPT, /llama\.cpp reads it as/);
  }
}
M('llama.block_count 0', u32('llama.block_count', 0), CORRUPT, /block_count is 0; llama\.cpp supports 1 to 512/);
M('llama.block_count 513 (> LLAMA_MAX_LAYERS)', u32('llama.block_count', 513), CORRUPT, /block_count is 513/);
M('llama.block_count 2^32-1', u32('llama.block_count', U32_MAX), CORRUPT, /block_count is 4294967295/);
M('llama.block_count 1 (tensors of layer 1 left over)', u32('llama.block_count', 1));
M('llama.block_count 3 (layer 2 missing)', u32('llama.block_count', 3));
M('llama.embedding_length 0', u32('llama.embedding_length', 0), CORRUPT, /embedding_length is 0/);
M('llama.embedding_length 63 (heads do not divide it)', u32('llama.embedding_length', 63), CORRUPT, /not a multiple of attention\.head_count/);
M('llama.embedding_length 128 (tensors are 64 wide)', u32('llama.embedding_length', 128), CORRUPT, /rope\.dimension_count is 16 but the head size is 32/);
M('llama.embedding_length 2^31', u32('llama.embedding_length', 2 ** 31), CORRUPT, /rope\.dimension_count/);
M('llama.context_length 0', u32('llama.context_length', 0), CORRUPT, /context_length is 0/);
M('llama.context_length 1', u32('llama.context_length', 1));
M('llama.context_length 2^32-1', u32('llama.context_length', U32_MAX));
M('llama.feed_forward_length 0', u32('llama.feed_forward_length', 0), CORRUPT, /feed_forward_length is 0/);
M('llama.feed_forward_length 2^32-1', u32('llama.feed_forward_length', U32_MAX));
M('llama.feed_forward_length per layer, different', set('llama.feed_forward_length', V.ARRAY, [128, 64], V.UINT32), CORRUPT, /differs between layers/);
M('llama.feed_forward_length array of 3 for 2 layers', set('llama.feed_forward_length', V.ARRAY, [128, 128, 128], V.UINT32), CORRUPT, /has 3 values for 2 layers/);
M('llama.feed_forward_length array of INT32', set('llama.feed_forward_length', V.ARRAY, [128, 128], V.INT32), CORRUPT, /reads it as UINT32/);
M('llama.feed_forward_length per layer, equal', set('llama.feed_forward_length', V.ARRAY, [128, 128], V.UINT32));
for (const n of [0]) M(`llama.attention.head_count ${n}`, u32('llama.attention.head_count', n), CORRUPT, /head_count is 0/);
for (const n of [3, 5, 7, 48]) M(`llama.attention.head_count ${n} (does not divide 64)`, (d) => { setKv(d, 'llama.attention.head_count', V.UINT32, n); delKv(d, 'llama.attention.head_count_kv'); }, CORRUPT, /not a multiple of attention\.head_count/);
M('llama.attention.head_count 64 (head size 1, odd)', (d) => { setKv(d, 'llama.attention.head_count', V.UINT32, 64); delKv(d, 'llama.attention.head_count_kv'); delKv(d, 'llama.rope.dimension_count'); }, CORRUPT, /head size 1 .* is odd/);
M('llama.attention.head_count 2^20', (d) => { setKv(d, 'llama.attention.head_count', V.UINT32, 2 ** 20); delKv(d, 'llama.attention.head_count_kv'); }, CORRUPT, /not a multiple/);
M('llama.attention.head_count 8, rope dims 16 (head size 8)', (d) => { setKv(d, 'llama.attention.head_count', V.UINT32, 8); delKv(d, 'llama.attention.head_count_kv'); }, CORRUPT, /rope\.dimension_count is 16 but the head size is 8/);
M('llama.attention.head_count 8, rope dims 8 (tensors fit, heads differ)', (d) => { setKv(d, 'llama.attention.head_count', V.UINT32, 8); setKv(d, 'llama.attention.head_count_kv', V.UINT32, 8); setKv(d, 'llama.rope.dimension_count', V.UINT32, 8); });
M('llama.attention.head_count 2, rope dims 32 (head size 32)', (d) => { setKv(d, 'llama.attention.head_count', V.UINT32, 2); setKv(d, 'llama.attention.head_count_kv', V.UINT32, 2); setKv(d, 'llama.rope.dimension_count', V.UINT32, 32); });
for (const n of [0, 3, 8, U32_MAX]) M(`llama.attention.head_count_kv ${n}`, u32('llama.attention.head_count_kv', n), CORRUPT, /head_count_kv is \d+; it must divide head_count/);
M('llama.attention.head_count_kv 2 (GQA, tensors sized for 4)', u32('llama.attention.head_count_kv', 2));
M('llama.attention.head_count_kv 1 (MQA, tensors sized for 4)', u32('llama.attention.head_count_kv', 1));
M('llama.attention.head_count per layer, different', set('llama.attention.head_count', V.ARRAY, [4, 2], V.UINT32), CORRUPT, /differs between layers/);
M('llama.attention.head_count_kv per layer, different', set('llama.attention.head_count_kv', V.ARRAY, [4, 2], V.UINT32), CORRUPT, /differs between layers/);
M('llama.attention.head_count_kv array of 1 for 2 layers', set('llama.attention.head_count_kv', V.ARRAY, [4], V.UINT32));
for (const [k, v] of [['attention.key_length', 8], ['attention.key_length', 0], ['attention.value_length', 32], ['attention.value_length', 0], ['rope.dimension_count', 0], ['rope.dimension_count', 15], ['rope.dimension_count', 8], ['rope.dimension_count', 1024]] as const) {
  M(`llama.${k} ${v} (head size is 16)`, u32(`llama.${k}`, v), CORRUPT, new RegExp(`llama\\.${k.replace(/\./g, '\\.')} is ${v} but the head size is 16`));
}
M('llama.attention.key_length 16 (= head size)', u32('llama.attention.key_length', 16));
M('llama.attention.key_length_swa 8 (unused by llama)', u32('llama.attention.key_length_swa', 8));
for (const v of [NaN, -1e-6, 0, Infinity, -Infinity, 1, 1e30]) {
  M(`llama RMS epsilon ${v}`, f32('llama.attention.layer_norm_rms_epsilon', v), CORRUPT, /layer_norm_rms_epsilon is .*small positive epsilon/);
}
M('llama RMS epsilon 1e-38 (tiny but positive)', f32('llama.attention.layer_norm_rms_epsilon', 1e-38));
for (const v of ['bogus', '', 'YARN', 'linear ', 'unspecified']) M(`llama.rope.scaling.type '${v}'`, str('llama.rope.scaling.type', v), CORRUPT, /rope\.scaling\.type .* is not one llama\.cpp knows/);
for (const v of ['none', 'linear', 'yarn', 'longrope']) M(`llama.rope.scaling.type '${v}'`, str('llama.rope.scaling.type', v));
M('llama.rope.scaling.type as UINT32', u32('llama.rope.scaling.type', 1), CORRUPT, /reads it as STRING/);
for (const v of [NaN, 0, -1, Infinity]) M(`llama.rope.freq_base ${v}`, f32('llama.rope.freq_base', v), CORRUPT, /llama\.rope\.freq_base is/);
M('llama.rope.freq_base 1e6', f32('llama.rope.freq_base', 1e6));
for (const v of [NaN, -1, Infinity]) M(`llama.rope.scaling.factor ${v}`, f32('llama.rope.scaling.factor', v), CORRUPT, /rope\.scaling\.factor is/);
M('llama.rope.scaling.factor 0 (means none)', f32('llama.rope.scaling.factor', 0));
M('llama.rope.scaling.factor 4', f32('llama.rope.scaling.factor', 4));
M('llama.rope.scale_linear NaN', f32('llama.rope.scale_linear', NaN), CORRUPT, /rope\.scale_linear is NaN/);
M('llama.rope.scaling.attn_factor -2', f32('llama.rope.scaling.attn_factor', -2), CORRUPT, /attn_factor is -2/);
M('llama.rope.scaling.original_context_length 0', u32('llama.rope.scaling.original_context_length', 0), CORRUPT, /original_context_length is 0/);
M('yarn with original_context_length 0', (d) => { setKv(d, 'llama.rope.scaling.type', V.STRING, 'yarn'); setKv(d, 'llama.rope.scaling.original_context_length', V.UINT32, 0); }, CORRUPT, /original_context_length is 0/);
M('yarn scaling factor 8, original context 256', (d) => { setKv(d, 'llama.rope.scaling.type', V.STRING, 'yarn'); setKv(d, 'llama.rope.scaling.factor', V.FLOAT32, 8); setKv(d, 'llama.rope.scaling.original_context_length', V.UINT32, 256); });
for (const [k, v] of [['expert_count', 1], ['expert_count', 8], ['expert_count', 2000], ['expert_used_count', 1], ['expert_group_count', 1], ['expert_group_used_count', 1]] as const) {
  M(`llama.${k} ${v} (mixture of experts)`, u32(`llama.${k}`, v), CORRUPT, /dense LLaMA models \(no experts\)/);
}
M('llama.expert_count 0 (dense, explicit)', u32('llama.expert_count', 0));
for (const v of [1, 2, 3]) M(`llama.nextn_predict_layers ${v}`, u32('llama.nextn_predict_layers', v), CORRUPT, /nextn_predict_layers/);
for (const v of [1, 2, 99, U32_MAX]) M(`llama.pooling_type ${v}`, u32('llama.pooling_type', v), CORRUPT, /pooling_type is/);
for (const v of [1, 128]) M(`llama.embedding_length_out ${v}`, u32('llama.embedding_length_out', v), CORRUPT, /embedding_length_out/);
M('llama.attention.causal false', set('llama.attention.causal', V.BOOL, false));
M('llama.attention.causal as UINT32', u32('llama.attention.causal', 0), CORRUPT, /reads it as BOOL/);
M('llama.vocab_size 0', u32('llama.vocab_size', 0), CORRUPT, /vocab_size is 0 but the vocabulary holds 516/);
M('llama.vocab_size 515 (one short)', u32('llama.vocab_size', 515), CORRUPT, /vocab_size is 515/);
M('llama.vocab_size 517 (one more)', u32('llama.vocab_size', 517), CORRUPT, /vocab_size is 517/);
M('llama.vocab_size 32000', u32('llama.vocab_size', 32000), CORRUPT, /vocab_size is 32000/);
M('llama.vocab_size absent', del('llama.vocab_size'));

// ---- language model: architecture and general keys -------------------------------------------------

for (const a of ['gpt2', 'llama4', 'mistral', 'LLAMA', '', 'bert']) M(`general.architecture '${a}'`, str('general.architecture', a), INVALID, /llava-med runs LLaVA-Med language models/);
M('general.architecture missing', del('general.architecture'), CORRUPT, /no general\.architecture string/);
M('general.architecture as UINT32', u32('general.architecture', 1), CORRUPT, /no general\.architecture string/);
M("general.architecture 'clip' (an mmproj as model)", str('general.architecture', 'clip'), INVALID, /is a projector \(mmproj\) file/);
M('split.count 2', set('split.count', V.UINT16, 2), INVALID, /one part of a split model/);
M('split.count as UINT32', u32('split.count', 1), INVALID, /split model/);
M('split.count 1', set('split.count', V.UINT16, 1));

// ---- language model: vocabulary --------------------------------------------------------------------

for (const m of ['none', 'no_vocab', 'gpt2', 'bert', 't5', 'rwkv', 'plamo2', '', 'LLAMA']) {
  M(`tokenizer.ggml.model '${m}'`, str('tokenizer.ggml.model', m), INVALID, /is not LLaVA-Med's SentencePiece tokenizer/);
}
M('tokenizer.ggml.model missing', del('tokenizer.ggml.model'), CORRUPT, /tokenizer\.ggml\.model' is missing/);
M('tokenizer.ggml.model as UINT32', u32('tokenizer.ggml.model', 0), CORRUPT, /tokenizer\.ggml\.model' is UINT32/);
M('tokenizer.ggml.tokens missing', del('tokenizer.ggml.tokens'), CORRUPT, /tokenizer\.ggml\.tokens' is missing/);
M('tokenizer.ggml.tokens as ARRAY of INT32', (d) => { const kv = getKv(d, 'tokenizer.ggml.tokens')!; kv.elemType = V.INT32; kv.value = (kv.value as string[]).map((_, i) => i); }, CORRUPT, /not an ARRAY of STRING/);
M('tokenizer.ggml.tokens empty', set('tokenizer.ggml.tokens', V.ARRAY, [], V.STRING), CORRUPT, /vocabulary holds 0 tokens/);
M('tokenizer.ggml.tokens of 2', set('tokenizer.ggml.tokens', V.ARRAY, ['<unk>', '<s>'], V.STRING), CORRUPT, /vocabulary holds 2 tokens/);
const tokens = (d: GgufDoc) => getKv(d, 'tokenizer.ggml.tokens')!.value as string[];
M('two tokens with the same text', (d) => { tokens(d)[300] = tokens(d)[301]!; }, CORRUPT, /tokens 300 and 301 have the same text/);
M('a token equal to the first token', (d) => { tokens(d)[515] = tokens(d)[0]!; }, CORRUPT, /tokens 0 and 515 have the same text/);
M('an empty token next to "[EMPTY_7]"', (d) => { tokens(d)[7] = ''; tokens(d)[8] = '[EMPTY_7]'; }, CORRUPT, /tokens 7 and 8 have the same text "\[EMPTY_7\]"/);
M('one empty token (llama.cpp renames it)', (d) => { tokens(d)[400] = ''; });
M('two tokens equal up to a NUL (llama.cpp reads C strings)', (d) => { tokens(d)[300] = `${tokens(d)[301]}\0x`; }, CORRUPT, /tokens 300 and 301 have the same text/);
M('a token that is one NUL next to "[EMPTY_9]"', (d) => { tokens(d)[9] = '\0'; tokens(d)[10] = '[EMPTY_9]'; }, CORRUPT, /tokens 9 and 10 have the same text/);
M('token text not valid UTF-8 twice (bytes differ)', raw((b) => {
  // Two tokens "<0xAA>"-like texts turned into lone continuation bytes at the same length.
  const i = b.indexOf(Buffer.from('<0xA0>')), j = b.indexOf(Buffer.from('<0xA1>'));
  if (i < 0 || j < 0) throw new Error('byte tokens not found');
  Buffer.from([0x80, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a]).copy(b, i);
  Buffer.from([0x81, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a]).copy(b, j);
  return b;
}), CORRUPT, /same text .*not valid UTF-8/);
M('token texts not valid UTF-8 on their own, valid run together (bytes differ)', raw((b) => {
  // Byte tokens 163-166 are stored next to each other: "ZZZZZ\xE2" + "\x96\x81ZZZZ" and "ZZZZZ\xE3" +
  // "\x80\x80ZZZZ" are valid UTF-8 when concatenated (U+2581, U+3000), but 163 and 165 each decode
  // to "ZZZZZ\uFFFD" on their own, as llava-med compares texts.
  const at = (s: string) => { const i = b.indexOf(Buffer.from(s)); if (i < 0) throw new Error(`${s} not found`); return i; };
  Buffer.from([0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0xe2]).copy(b, at('<0xA0>'));
  Buffer.from([0x96, 0x81, 0x5a, 0x5a, 0x5a, 0x5a]).copy(b, at('<0xA1>'));
  Buffer.from([0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0xe3]).copy(b, at('<0xA2>'));
  Buffer.from([0x80, 0x80, 0x5a, 0x5a, 0x5a, 0x5a]).copy(b, at('<0xA3>'));
  return b;
}), CORRUPT, /tokens 163 and 165 have the same text "ZZZZZ\uFFFD" .*not valid UTF-8/);
M('a very long token (64 KiB)', (d) => { tokens(d)[450] = 'x'.repeat(65536); });
M('scores shorter than tokens', (d) => { const kv = getKv(d, 'tokenizer.ggml.scores')!; kv.value = (kv.value as number[]).slice(0, 10); });
M('scores as ARRAY of STRING', (d) => { const kv = getKv(d, 'tokenizer.ggml.scores')!; kv.elemType = V.STRING; kv.value = (kv.value as number[]).map(String); });
M('scores NaN', (d) => { const kv = getKv(d, 'tokenizer.ggml.scores')!; kv.value = (kv.value as number[]).map(() => NaN); });
M('scores missing', del('tokenizer.ggml.scores'));
M('token_type shorter than tokens', (d) => { const kv = getKv(d, 'tokenizer.ggml.token_type')!; kv.value = (kv.value as number[]).slice(0, 3); });
M('token_type as ARRAY of UINT8', (d) => { const kv = getKv(d, 'tokenizer.ggml.token_type')!; kv.elemType = V.UINT8; });
M('token_type values 99 and -1', (d) => { const kv = getKv(d, 'tokenizer.ggml.token_type')!; const v = kv.value as number[]; v[100] = 99; v[101] = -1; });
M('every token BYTE type (texts not <0xNN>)', (d) => { const kv = getKv(d, 'tokenizer.ggml.token_type')!; kv.value = (kv.value as number[]).map(() => 6); });
M('a BYTE token with a 2-byte text', (d) => { tokens(d)[300] = 'Ω'; (getKv(d, 'tokenizer.ggml.token_type')!.value as number[])[300] = 6; });
M('every token CONTROL type', (d) => { const kv = getKv(d, 'tokenizer.ggml.token_type')!; kv.value = (kv.value as number[]).map(() => 3); });
M('token_type missing', del('tokenizer.ggml.token_type'));
M('newline byte token missing', (d) => { const i = tokens(d).indexOf('<0x0A>'); tokens(d)[i] = '<0x0A>x'; });
for (const k of ['bos', 'eos']) {
  M(`${k} id = vocabulary size`, u32(`tokenizer.ggml.${k}_token_id`, 516), CORRUPT, new RegExp(`${k}_token_id is 516, outside the vocabulary`));
  M(`${k} id 2^32-1`, u32(`tokenizer.ggml.${k}_token_id`, U32_MAX), CORRUPT, /outside the vocabulary/);
  M(`${k} id as INT32`, set(`tokenizer.ggml.${k}_token_id`, V.INT32, 1), CORRUPT, /is INT32, not UINT32/);
  M(`${k} id missing (SPM default)`, del(`tokenizer.ggml.${k}_token_id`));
}
M('padding id outside the vocabulary (llama.cpp ignores it)', u32('tokenizer.ggml.padding_token_id', 9999));
M('unknown id as STRING', str('tokenizer.ggml.unknown_token_id', '0'), CORRUPT, /is STRING, not UINT32/);
M('add_bos_token as UINT32', u32('tokenizer.ggml.add_bos_token', 1));
M('add_bos_token false', set('tokenizer.ggml.add_bos_token', V.BOOL, false));
for (const k of ['prompt_bos_token_id', 'image_start_token_id', 'image_end_token_id', 'image_patch_token_id']) {
  M(`llava_med.${k} = vocabulary size`, u32(`llava_med.${k}`, 516), CORRUPT, new RegExp(`llava_med\\.${k} is 516, outside the vocabulary`));
  M(`llava_med.${k} as STRING`, str(`llava_med.${k}`, '2'), CORRUPT, /is STRING, not UINT32/);
}
M('llava_med.prompt_bos_token_id 2^32-1', u32('llava_med.prompt_bos_token_id', U32_MAX), CORRUPT, /outside the vocabulary/);
M("llava_med.variant 'v2'", str('llava_med.variant', 'v2'), CORRUPT, /llava_med\.variant is "v2"/);
M('llava_med.variant as UINT32', u32('llava_med.variant', 0), CORRUPT, /llava_med\.variant is 0/);
M('llava_med.variant missing', del('llava_med.variant'));

// ---- language model: tensors -----------------------------------------------------------------------

for (const t of [G.F16, G.Q8_0, G.I32, G.BF16]) M(`output_norm.weight as ${G[t]}`, (d) => reshapeTensor(d, 'output_norm.weight', [64], t), CORRUPT, /output_norm\.weight' is stored as .* norm weight or bias \(F32 only\)/);
for (const t of [G.I8, G.I16, G.I32, G.I64, G.F64, G.Q8_1, G.Q8_K]) M(`blk.0.attn_q.weight as ${G[t]}`, (d) => reshapeTensor(d, 'blk.0.attn_q.weight', [64, 64], t), CORRUPT, /attn_q\.weight' (is stored as .* weight matrix|of type Q8_K has 64 elements per row)/);
for (const t of [G.F16, G.BF16, G.Q8_0, G.Q4_0, G.Q5_1]) M(`blk.0.ffn_up.weight as ${G[t]}`, (d) => reshapeTensor(d, 'blk.0.ffn_up.weight', [64, 128], t));
M('token_embd.weight as I32', (d) => reshapeTensor(d, 'token_embd.weight', [64, 516], G.I32), CORRUPT, /weight matrix/);
M('token_embd.weight as Q8_0', (d) => reshapeTensor(d, 'token_embd.weight', [64, 516], G.Q8_0));
M('a tensor with a 0 dimension', (d) => reshapeTensor(d, 'blk.1.attn_v.weight', [64, 0]), CORRUPT, /empty dimension/);
M('token_embd.weight for 515 tokens', (d) => reshapeTensor(d, 'token_embd.weight', [64, 515]));
M('token_embd.weight transposed', (d) => reshapeTensor(d, 'token_embd.weight', [516, 64]));
M('blk.0.attn_q.weight [64, 32]', (d) => reshapeTensor(d, 'blk.0.attn_q.weight', [64, 32]));
M('blk.0.attn_k.weight [64, 32] (GQA shape, no GQA key)', (d) => reshapeTensor(d, 'blk.0.attn_k.weight', [64, 32]));
M('blk.1.ffn_down.weight transposed', (d) => reshapeTensor(d, 'blk.1.ffn_down.weight', [64, 128]));
M('output_norm.weight [63]', (d) => reshapeTensor(d, 'output_norm.weight', [63]));
M('output_norm.weight [64, 1]', (d) => reshapeTensor(d, 'output_norm.weight', [64, 1]));
M('blk.0.attn_norm.weight 3-D', (d) => reshapeTensor(d, 'blk.0.attn_norm.weight', [64, 1, 2]));
for (const t of ['output_norm.weight', 'token_embd.weight', 'blk.0.attn_q.weight', 'blk.1.ffn_gate.weight', 'blk.0.attn_norm.weight']) M(`${t} missing`, (d) => delTensor(d, t));
M('output.weight missing (tied to token_embd)', (d) => delTensor(d, 'output.weight'));
M('an extra tensor', (d) => addTensor(d, 'blk.0.extra.weight', G.F32, [64]));
M('a layer-2 tensor beyond block_count', (d) => addTensor(d, 'blk.2.attn_norm.weight', G.F32, [64]));
M('attention biases of the wrong width', (d) => addTensor(d, 'blk.0.attn_output.bias', G.F32, [32]));
M('attention output bias of the right width', (d) => addTensor(d, 'blk.0.attn_output.bias', G.F32, [64]));
M('rope_freqs of the wrong width', (d) => addTensor(d, 'rope_freqs.weight', G.F32, [7]));
M('rope_freqs of the right width', (d) => addTensor(d, 'rope_freqs.weight', G.F32, [8]));
M('fused attn_qkv next to attn_q', (d) => addTensor(d, 'blk.0.attn_qkv.weight', G.F32, [64, 192]));
M('two tensors with one name', (d) => { d.tensors[2]!.name = d.tensors[1]!.name; }, CORRUPT);
M('all weights NaN', (d) => { for (const t of d.tensors) if (t.type === G.F32) t.data = filler(t.data.length, G.F32, NaN); });
M('all weights +inf', (d) => { for (const t of d.tensors) if (t.type === G.F32) t.data = filler(t.data.length, G.F32, Infinity); });
M('all weights 1e38', (d) => { for (const t of d.tensors) if (t.type === G.F32) t.data = filler(t.data.length, G.F32, 1e38); });
M('all weights 0', (d) => { for (const t of d.tensors) t.data = Buffer.alloc(t.data.length); });

// ---- both: file structure --------------------------------------------------------------------------

for (const kind of ['model', 'mmproj'] as const) {
  const K = (name: string, edit: Edit, ts?: string, msg?: RegExp) => add(kind, `${kind}: ${name}`, edit, ts, msg);
  for (const v of [0, 1, 2, 4, U32_MAX]) K(`GGUF version ${v}`, (d) => { d.version = v; }, v === 2 ? undefined : CORRUPT, v === 2 ? undefined : /GGUF version/);
  K('bad magic', raw((b) => { b.write('GGUG', 0, 'latin1'); return b; }), 'ERR_NOT_GGUF');
  K('empty file', () => Buffer.alloc(0), 'ERR_NOT_GGUF');
  K('4 bytes: the magic only', () => Buffer.from('GGUF', 'latin1'), CORRUPT);
  for (const frac of [0.01, 0.1, 0.5, 0.9, 0.999]) K(`truncated at ${frac * 100}%`, raw((b) => b.subarray(0, Math.floor(b.length * frac))), CORRUPT, /truncated/);
  K('tensor count 2^63', raw((b) => { b.writeBigUInt64LE(2n ** 63n, 8); return b; }), CORRUPT);
  K('tensor count 2^32', raw((b) => { b.writeBigUInt64LE(2n ** 32n, 8); return b; }), CORRUPT);
  K('key count 2^40', raw((b) => { b.writeBigUInt64LE(2n ** 40n, 16); return b; }), CORRUPT);
  K('key count 0', raw((b) => { b.writeBigUInt64LE(0n, 16); return b; }), CORRUPT);
  K('first key length 2^62', raw((b) => { b.writeBigUInt64LE(2n ** 62n, 24); return b; }), CORRUPT);
  K('first key type 13 (unknown)', raw((b) => { const n = Number(b.readBigUInt64LE(24)); b.writeInt32LE(13, 32 + n); return b; }), CORRUPT);
  K('first key type -1', raw((b) => { const n = Number(b.readBigUInt64LE(24)); b.writeInt32LE(-1, 32 + n); return b; }), CORRUPT);
  K('a duplicate key', (d) => { d.kvs.push({ ...d.kvs[3]! }); }, CORRUPT, /duplicate key/);
  K('general.alignment 0', u32('general.alignment', 0), CORRUPT);
  K('general.alignment 3', u32('general.alignment', 3), CORRUPT);
  K('general.alignment 2^31', u32('general.alignment', 2 ** 31), CORRUPT);
  K('general.alignment 64 (data still at 32)', u32('general.alignment', 64));
  K('general.alignment as UINT64', set('general.alignment', V.UINT64, 32n), CORRUPT);
  K('an array of 2^40 strings', raw((b, d) => {
    const key = kind === 'model' ? 'tokenizer.ggml.tokens' : 'clip.vision.image_mean';
    const i = b.indexOf(Buffer.from(key)) + key.length + 8; b.writeBigUInt64LE(2n ** 40n, i); return b;
  }), CORRUPT);
  K('an array of nested arrays', raw((b) => {
    const key = kind === 'model' ? 'tokenizer.ggml.scores' : 'clip.vision.image_std';
    const i = b.indexOf(Buffer.from(key)) + key.length + 4; b.writeInt32LE(V.ARRAY, i); return b;
  }), CORRUPT);
  K('a tensor with 5 dimensions', raw((b, d) => { const name = d.tensors[0]!.name; const i = b.lastIndexOf(Buffer.from(name)) + name.length; b.writeUInt32LE(5, i); return b; }), CORRUPT);
  K('a tensor with a negative dimension', raw((b, d) => { const name = d.tensors[0]!.name; const i = b.lastIndexOf(Buffer.from(name)) + name.length + 4; b.writeBigInt64LE(-1n, i); return b; }), CORRUPT);
  K('a tensor of ggml type 4 (removed)', raw((b, d) => { const t = d.tensors[0]!; const i = b.lastIndexOf(Buffer.from(t.name)) + t.name.length + 4 + 8 * t.ne.length; b.writeInt32LE(4, i); return b; }), CORRUPT);
  K('a tensor of ggml type 1000', raw((b, d) => { const t = d.tensors[0]!; const i = b.lastIndexOf(Buffer.from(t.name)) + t.name.length + 4 + 8 * t.ne.length; b.writeInt32LE(1000, i); return b; }), CORRUPT);
  K('a tensor offset past the end', raw((b, d) => { const t = d.tensors[d.tensors.length - 1]!; const i = b.lastIndexOf(Buffer.from(t.name)) + t.name.length + 4 + 8 * t.ne.length + 4; b.writeBigUInt64LE(2n ** 40n, i); return b; }), CORRUPT);
  K('a tensor offset not aligned', raw((b, d) => { const t = d.tensors[1]!; const i = b.lastIndexOf(Buffer.from(t.name)) + t.name.length + 4 + 8 * t.ne.length + 4; b.writeBigUInt64LE(b.readBigUInt64LE(i) + 4n, i); return b; }), CORRUPT);
  K('two tensors overlapping', raw((b, d) => { const t = d.tensors[1]!; const i = b.lastIndexOf(Buffer.from(t.name)) + t.name.length + 4 + 8 * t.ne.length + 4; b.writeBigUInt64LE(0n, i); return b; }), CORRUPT, /has offset 0, expected/);
  K('a tensor name of 64 bytes', (d) => { d.tensors[d.tensors.length - 1]!.name = 'x'.repeat(64); }, CORRUPT);
  K('a tensor with 2^62 elements', raw((b, d) => { const name = d.tensors[0]!.name; const i = b.lastIndexOf(Buffer.from(name)) + name.length + 4; b.writeBigInt64LE(2n ** 62n, i); return b; }), CORRUPT);
  K('data section 4 KiB short', raw((b) => b.subarray(0, b.length - 4096)), CORRUPT);
  K('1 MiB of zeros appended', raw((b) => Buffer.concat([b, Buffer.alloc(1 << 20)])));
}

// ---- mmproj: keys ----------------------------------------------------------------------------------

const CLIP_U32 = ['clip.vision.embedding_length', 'clip.vision.feed_forward_length', 'clip.vision.block_count', 'clip.vision.projection_dim', 'clip.vision.attention.head_count', 'clip.vision.image_size', 'clip.vision.patch_size'];
for (const k of CLIP_U32) {
  P(`${k} missing`, del(k), CORRUPT, /required key .* is missing/);
  for (const [tname, type, value] of [['INT32', V.INT32, 4], ['FLOAT32', V.FLOAT32, 4], ['STRING', V.STRING, '4'], ['UINT64', V.UINT64, 4n]] as const) {
    P(`${k} stored as ${tname}`, set(k, type, value), CORRUPT, /but clip\.cpp requires UINT32/);
  }
}
for (const [k, t] of [['clip.has_vision_encoder', V.UINT32], ['clip.use_gelu', V.UINT8], ['clip.projector_type', V.UINT32], ['clip.vision.attention.layer_norm_epsilon', V.FLOAT64], ['general.file_type', V.INT32], ['general.name', V.UINT32], ['clip.vision.attention.head_dim', V.INT32], ['clip.minicpmv_version', V.UINT32]] as const) {
  P(`${k} stored as ${V[t]}`, set(k, t, t === V.FLOAT64 ? 1e-5 : 1), CORRUPT, /but clip\.cpp requires/);
}
for (const [k, t] of [['clip.vision.image_mean', V.FLOAT64], ['clip.vision.image_std', V.INT32], ['clip.vision.feature_layer', V.UINT32], ['clip.vision.image_grid_pinpoints', V.FLOAT32]] as const) {
  P(`${k} as ARRAY of ${V[t]}`, set(k, V.ARRAY, [1, 1, 1], t), CORRUPT, /but clip\.cpp requires ARRAY of/);
  P(`${k} as a scalar`, set(k, V.FLOAT32, 1), CORRUPT, /but clip\.cpp requires ARRAY of/);
}
P('clip.has_vision_encoder false', set('clip.has_vision_encoder', V.BOOL, false), INVALID, /no vision encoder/);
P('clip.has_audio_encoder true', set('clip.has_audio_encoder', V.BOOL, true), INVALID, /audio encoder/);
P('clip.has_gen_audio_encoder true', set('clip.has_gen_audio_encoder', V.BOOL, true), INVALID, /audio encoder/);
P('clip.has_audio_encoder false', set('clip.has_audio_encoder', V.BOOL, false));
for (const v of ['ldp', 'ldpv2', 'mlp_norm', 'resampler', 'qwen2vl_merger', 'gemma3', 'idefics3', '', 'MLP', 'bogus']) P(`clip.projector_type '${v}'`, str('clip.projector_type', v), INVALID, /is not a LLaVA projector/);
P('clip.use_gelu and clip.use_silu both true', (d) => { setKv(d, 'clip.use_gelu', V.BOOL, true); setKv(d, 'clip.use_silu', V.BOOL, true); }, CORRUPT, /both true/);
P('clip.use_gelu true', set('clip.use_gelu', V.BOOL, true));
P('clip.use_silu true', set('clip.use_silu', V.BOOL, true));
P("mm_patch_merge_type 'spatial_unpad'", str('clip.vision.mm_patch_merge_type', 'spatial_unpad'), CORRUPT, /mm_patch_merge_type is 'spatial_unpad'/);
P("mm_patch_merge_type 'flat'", str('clip.vision.mm_patch_merge_type', 'flat'));
P('image_grid_pinpoints [336, 672]', set('clip.vision.image_grid_pinpoints', V.ARRAY, [336, 672], V.INT32), CORRUPT, /image_grid_pinpoints is set/);
P('image_grid_pinpoints of 3 (odd)', set('clip.vision.image_grid_pinpoints', V.ARRAY, [336, 672, 1], V.INT32), CORRUPT, /image_grid_pinpoints is set/);
P('image_grid_pinpoints empty', set('clip.vision.image_grid_pinpoints', V.ARRAY, [], V.INT32));
P('clip.vision.embedding_length 0', u32('clip.vision.embedding_length', 0), CORRUPT, /embedding_length is 0/);
for (const v of [31, 33, 64, 2 ** 20]) P(`clip.vision.embedding_length ${v} (tensors are 32 wide)`, u32('clip.vision.embedding_length', v), CORRUPT, v % 4 ? /does not divide embedding_length/ : /shape/);
P('clip.vision.feed_forward_length 0', u32('clip.vision.feed_forward_length', 0), CORRUPT, /feed_forward_length is 0/);
P('clip.vision.feed_forward_length 7 (unused by the graph)', u32('clip.vision.feed_forward_length', 7));
for (const v of [0, 3, 5, 64, 2 ** 20, U32_MAX]) P(`clip head_count ${v} (width 32)`, u32('clip.vision.attention.head_count', v), CORRUPT, /head_count \d+ does not divide embedding_length 32/);
for (const v of [1, 2, 8, 16, 32]) P(`clip head_count ${v} (divides 32)`, u32('clip.vision.attention.head_count', v));
P('clip head_dim 7', u32('clip.vision.attention.head_dim', 7), CORRUPT, /head_dim 7 is not embedding_length \/ head_count = 8/);
P('clip head_dim 8 (= 32 / 4)', u32('clip.vision.attention.head_dim', 8));
P('clip head_count_kv 2', u32('clip.vision.attention.head_count_kv', 2), CORRUPT, /head_count_kv 2 differs/);
P('clip.vision.block_count 0', u32('clip.vision.block_count', 0), CORRUPT, /block_count is 0/);
P('clip.vision.block_count 0, feature_layer removed', (d) => { setKv(d, 'clip.vision.block_count', V.UINT32, 0); delKv(d, 'clip.vision.feature_layer'); }, CORRUPT, /block_count is 0/);
P('clip.vision.block_count 2 (layer 1 missing)', u32('clip.vision.block_count', 2), CORRUPT, /v\.blk\.1\.attn_q\.weight' is missing/);
P('clip.vision.block_count 2^32-1', u32('clip.vision.block_count', U32_MAX), CORRUPT, /feature_layer|missing/);
for (const v of [[2], [100], [-5], [U32_MAX | 0], [1, 2]]) P(`feature_layer [${v}] (block_count 1)`, set('clip.vision.feature_layer', V.ARRAY, v, V.INT32), CORRUPT, /feature_layer -?\d+ is outside 0\.\.1/);
P('feature_layer [-1]', set('clip.vision.feature_layer', V.ARRAY, [-1], V.INT32), CORRUPT, /feature_layer -1 is outside/);
P('feature_layer [0]', set('clip.vision.feature_layer', V.ARRAY, [0], V.INT32));
P('feature_layer [0, 1] (two layers stacked, mm.0 sized for one)', set('clip.vision.feature_layer', V.ARRAY, [0, 1], V.INT32), CORRUPT, /mm\.0\.weight' has shape \[32, 64\]/);
P('feature_layer [1, 1]', set('clip.vision.feature_layer', V.ARRAY, [1, 1], V.INT32));
P('feature_layer empty', set('clip.vision.feature_layer', V.ARRAY, [], V.INT32));
P('feature_layer missing', del('clip.vision.feature_layer'));
P('feature_layer [0, 1] with mm.0 sized for both', (d) => { setKv(d, 'clip.vision.feature_layer', V.ARRAY, [0, 1], V.INT32); reshapeTensor(d, 'mm.0.weight', [64, 64]); });
for (const v of [0, 27, 14 * 3, 8192 + 14, 2 ** 31]) P(`clip.vision.image_size ${v}`, u32('clip.vision.image_size', v), CORRUPT, /image_size|position_embd/);
for (const v of [0, 3, 28, 29, U32_MAX]) P(`clip.vision.patch_size ${v}`, u32('clip.vision.patch_size', v), CORRUPT, /patch_size|patch_embd|position_embd/);
for (const v of [NaN, -1e-5, 0, Infinity, 2]) P(`clip layer_norm_epsilon ${v}`, f32('clip.vision.attention.layer_norm_epsilon', v), CORRUPT, /layer_norm_epsilon is .*small positive epsilon/);
for (const [name, v] of [['zeros', [0, 0, 0]], ['NaN', [NaN, 0.26, 0.27]], ['negative', [-0.26, 0.26, 0.27]], ['inf', [Infinity, 0.26, 0.27]], ['short', [0.26, 0.26]], ['empty', []]] as const) {
  P(`image_std ${name}`, set('clip.vision.image_std', V.ARRAY, [...v], V.FLOAT32), CORRUPT, /image_std/);
}
for (const [name, v] of [['NaN', [NaN, 0.4, 0.4]], ['-inf', [-Infinity, 0.4, 0.4]], ['short', [0.4]]] as const) {
  P(`image_mean ${name}`, set('clip.vision.image_mean', V.ARRAY, [...v], V.FLOAT32), CORRUPT, /image_mean/);
}
P('image_mean missing', del('clip.vision.image_mean'), CORRUPT, /image_mean must hold 3 floats/);
P('image_std of 4', set('clip.vision.image_std', V.ARRAY, [0.26, 0.26, 0.27, 0], V.FLOAT32));
P("general.architecture 'llama' (a model as mmproj)", str('general.architecture', 'llama'), INVALID, /not 'clip'/);

// ---- mmproj: tensors -------------------------------------------------------------------------------

const required = ['v.patch_embd.weight', 'v.position_embd.weight', 'v.blk.0.attn_q.weight', 'v.blk.0.attn_k.weight', 'v.blk.0.attn_v.weight', 'v.blk.0.attn_out.weight',
  'v.blk.0.ln1.weight', 'v.blk.0.ln1.bias', 'v.blk.0.ln2.weight', 'v.blk.0.ln2.bias', 'v.blk.0.ffn_up.weight', 'v.blk.0.ffn_down.weight', 'mm.0.weight', 'mm.0.bias', 'mm.2.weight', 'mm.2.bias'];
for (const t of required) P(`${t} missing`, (d) => delTensor(d, t), CORRUPT, new RegExp(`tensor '${t.replace(/\./g, '\\.')}' is missing`));
for (const t of ['v.class_embd', 'v.pre_ln.weight', 'v.pre_ln.bias', 'v.blk.0.attn_q.bias', 'v.blk.0.attn_out.bias', 'v.blk.0.ffn_up.bias', 'v.blk.0.ffn_down.bias']) {
  P(`${t} missing (optional)`, (d) => delTensor(d, t), t === 'v.class_embd' ? CORRUPT : undefined, t === 'v.class_embd' ? /position_embd\.weight' has shape \[32, 5\]/ : undefined);
}
P('v.class_embd missing, position_embd for 4 patches', (d) => { delTensor(d, 'v.class_embd'); reshapeTensor(d, 'v.position_embd.weight', [32, 4]); });
for (const [t, ne] of [
  ['v.blk.0.attn_q.bias', [31]], ['v.blk.0.attn_k.bias', [64]], ['v.blk.0.attn_v.bias', [32, 2]], ['v.blk.0.attn_out.bias', [1]],
  ['v.blk.0.ffn_up.bias', [32]], ['v.blk.0.ffn_down.bias', [64]], ['v.blk.0.ln1.bias', [33]], ['v.blk.0.ln2.weight', [16]],
  ['mm.0.bias', [65]], ['mm.0.bias', [32]], ['mm.2.bias', [63]], ['mm.2.bias', [128]], ['v.pre_ln.weight', [31]], ['v.class_embd', [33]], ['v.patch_embd.weight', [14, 14, 3, 31]],
  ['v.patch_embd.weight', [14, 14, 4, 32]], ['v.patch_embd.weight', [7, 7, 3, 32]], ['v.position_embd.weight', [32, 4]], ['v.position_embd.weight', [32, 6]], ['v.position_embd.weight', [5, 32]],
  ['v.blk.0.attn_q.weight', [32, 16]], ['v.blk.0.attn_out.weight', [16, 32]], ['v.blk.0.attn_k.weight', [32, 32, 2]], ['v.blk.0.ffn_up.weight', [32, 32]], ['v.blk.0.ffn_down.weight', [33, 32]],
  ['v.blk.0.ffn_up.weight', [31, 64]], ['mm.0.weight', [31, 64]], ['mm.0.weight', [32, 64, 2]], ['mm.2.weight', [63, 64]],
] as const) {
  P(`${t} shaped [${ne}]`, (d) => reshapeTensor(d, t, [...ne]), CORRUPT, /has shape|do not fit/);
}
P('mm.2 outputs 32 wide (the model takes 64)', (d) => { reshapeTensor(d, 'mm.2.weight', [64, 32]); reshapeTensor(d, 'mm.2.bias', [32]); }, 'ERR_MMPROJ_MISMATCH');
P('mm.0 hidden width 128', (d) => { reshapeTensor(d, 'mm.0.weight', [32, 128]); reshapeTensor(d, 'mm.0.bias', [128]); reshapeTensor(d, 'mm.2.weight', [128, 64]); });
P('ffn up/down swapped (legacy names)', (d) => {
  const up = getTensor(d, 'v.blk.0.ffn_up.weight'), down = getTensor(d, 'v.blk.0.ffn_down.weight');
  [up.name, down.name] = [down.name, up.name];
  const ub = getTensor(d, 'v.blk.0.ffn_up.bias'), db = getTensor(d, 'v.blk.0.ffn_down.bias');
  [ub.name, db.name] = [db.name, ub.name];
});
P('ffn weights swapped, biases not', (d) => {
  const up = getTensor(d, 'v.blk.0.ffn_up.weight'), down = getTensor(d, 'v.blk.0.ffn_down.weight');
  [up.name, down.name] = [down.name, up.name];
}, CORRUPT, /ffn_(up|down)\.bias' has shape/);
for (const [t, type] of [['v.patch_embd.weight', G.Q8_0], ['v.patch_embd.weight', G.BF16], ['v.position_embd.weight', G.Q8_0], ['v.position_embd.weight', G.I32], ['v.blk.0.ln1.weight', G.F16], ['mm.0.bias', G.F16], ['v.class_embd', G.BF16], ['v.blk.0.attn_q.weight', G.I32], ['mm.0.weight', G.F64], ['mm.2.weight', G.Q8_K], ['v.blk.0.ffn_up.weight', G.I8]] as const) {
  P(`${t} as ${G[type]}`, (d) => { const x = getTensor(d, t); reshapeTensor(d, t, x.ne, type); }, CORRUPT, /is stored as .* clip\.cpp cannot use there|not a multiple of the block size/);
}
for (const [t, type] of [['v.blk.0.attn_q.weight', G.Q8_0], ['v.blk.0.attn_q.weight', G.F16], ['mm.0.weight', G.Q4_0], ['v.position_embd.weight', G.F16], ['v.patch_embd.weight', G.F16]] as const) {
  P(`${t} as ${G[type]} (usable)`, (d) => { const x = getTensor(d, t); reshapeTensor(d, t, x.ne, type); });
}
for (const [t, ne] of [
  ['v.blk.0.attn_q_norm.weight', [32]], ['v.blk.0.attn_qkv.weight', [32, 96]], ['v.blk.0.ffn_gate.weight', [32, 64]], ['v.blk.0.ls1.weight', [32]],
  ['mm.1.weight', [64, 64]], ['mm.1.bias', [64]], ['mm.3.weight', [64, 64]], ['mm.model.mlp.1.weight', [32, 64]], ['v.patch_embd.weight.1', [14, 14, 3, 32]],
  ['v.blk.1.attn_q.weight', [32, 32]], ['v.blk.7.ln1.weight', [32]], ['v.deepstack.0.norm.weight', [32]], ['resampler.query', [32, 64]], ['v.norm_embd.weight', [32]],
] as const) {
  P(`extra tensor ${t}`, (d) => addTensor(d, t, G.F32, [...ne]), CORRUPT, /is not part of a LLaVA CLIP projector|beyond block_count/);
}
for (const [t, ne] of [['v.post_ln.weight', [32]], ['v.post_ln.bias', [32]], ['v.patch_embd.bias', [32]]] as const) P(`optional tensor ${t}`, (d) => addTensor(d, t, G.F32, [...ne]));
P('v.post_ln.weight [31]', (d) => addTensor(d, 'v.post_ln.weight', G.F32, [31]), CORRUPT, /v\.post_ln\.weight' has shape/);
P('v.patch_embd.bias [31]', (d) => addTensor(d, 'v.patch_embd.bias', G.F32, [31]), CORRUPT, /patch_embd\.bias' has shape/);
P('all weights NaN', (d) => { for (const t of d.tensors) if (t.type === G.F32) t.data = filler(t.data.length, G.F32, NaN); });
P('all weights 0', (d) => { for (const t of d.tensors) t.data = Buffer.alloc(t.data.length); });
P('position_embd data shorter than its shape (offsets overlap)', (d) => { const t = getTensor(d, 'v.position_embd.weight'); t.data = t.data.subarray(0, byteSize(t.type, t.ne) - 64); }, CORRUPT);

export const GGUF_CASES: readonly GgufCase[] = cases;
