// End-to-end: tiny HF folders (test/helpers/tiny-hf.ts) → convertV0 / convertV15 / foldDelta.
import t, { type Test } from 'tap';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { convertV0, convertV15, foldDelta } from '../../lib/convert/index.js';
import { GgmlType, GgufValueType, readGgufHeader, readGgufTensorData, type GgufHeader } from '../../lib/formats/gguf.js';
import { openHfCheckpoint } from '../../lib/formats/hf-checkpoint.js';
import { isLlavaMedError } from '../../lib/errors.js';
import { makeTinyV0, makeTinyV15, TINY_LLM, type TinyV0Break } from '../helpers/tiny-hf.js';

const f32 = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
const kvOf = (h: GgufHeader, k: string) => h.kv.get(k);

async function rejects(t: Test, p: Promise<unknown>, code: string, re?: RegExp): Promise<void> {
  try {
    await p;
    t.fail(`expected ${code}`);
  } catch (e) {
    t.ok(isLlavaMedError(e) && e.code === code, `${code}: ${(e as Error).message}`);
    if (re) t.match((e as Error).message, re);
  }
}

t.test('v0 LLM GGUF: keys, vocab, BOS, folded values, Q/K permutation', async (t) => {
  const root = t.testdir({});
  const tiny = await makeTinyV0({ dir: join(root, 'in'), seed: 1 });
  const out = join(root, 'out');
  const phases = new Set<string>();
  const r = await convertV0({ ...tiny.dirs, out, name: 'tiny', outtype: 'f32', onProgress: (p) => phases.add(p.phase) });
  t.same((await readdir(out)).sort(), ['mmproj-tiny.gguf', 'tiny.gguf']);
  t.ok(phases.has('llm') && phases.has('mmproj') && phases.has('done'));
  const h = await readGgufHeader(r.model);
  const L = TINY_LLM;
  const nBase = tiny.config.tokens.nBaseVocab;
  const u32: [string, number][] = [
    ['llama.vocab_size', nBase + 4], ['llama.context_length', 2048], ['llama.embedding_length', L.hidden],
    ['llama.block_count', L.layers], ['llama.feed_forward_length', L.intermediate], ['llama.attention.head_count', L.heads],
    ['llama.attention.head_count_kv', L.heads], ['llama.rope.dimension_count', L.hidden / L.heads],
    ['tokenizer.ggml.bos_token_id', 2], ['tokenizer.ggml.eos_token_id', 2], ['tokenizer.ggml.unknown_token_id', 0],
    ['tokenizer.ggml.padding_token_id', nBase], ['llava_med.prompt_bos_token_id', 2], ['llava_med.image_token_count', 4],
    ['llava_med.image_start_token_id', nBase + 2], ['llava_med.image_end_token_id', nBase + 3], ['general.file_type', 0],
  ];
  for (const [k, v] of u32) {
    t.equal(kvOf(h, k)?.type, GgufValueType.UINT32, `${k} is u32`);
    t.equal(kvOf(h, k)?.value, v, k);
  }
  t.equal(kvOf(h, 'llama.attention.layer_norm_rms_epsilon')?.type, GgufValueType.FLOAT32);
  t.notOk(h.kv.has('llama.rope.freq_base'), 'no rope_theta in the v0 config: no freq_base');
  t.equal(kvOf(h, 'general.architecture')?.value, 'llama');
  t.equal(kvOf(h, 'llava_med.variant')?.value, 'v0');
  t.equal(kvOf(h, 'tokenizer.ggml.add_bos_token')?.value, true);
  t.ok(String(kvOf(h, 'llava_med.license_notice')?.value).includes('LLaMA'));
  const tokens = kvOf(h, 'tokenizer.ggml.tokens')!.value as string[];
  const types = kvOf(h, 'tokenizer.ggml.token_type')!.value as number[];
  t.equal(kvOf(h, 'tokenizer.ggml.token_type')?.elemType, GgufValueType.INT32);
  t.equal(kvOf(h, 'tokenizer.ggml.scores')?.elemType, GgufValueType.FLOAT32);
  t.equal(tokens.length, nBase + 4);
  t.same(tokens.slice(nBase), ['[PAD]', '<im_patch>', '<im_start>', '<im_end>']);
  t.same(types.slice(nBase), [3, 3, 3, 3], 'added tokens CONTROL');
  t.same(types.slice(0, 4), [2, 3, 3, 6], '<unk> UNKNOWN, <s> </s> CONTROL, <0x00> BYTE');

  // values: embeddings are the folded ones (incl. the absolute extra rows), F32 exact
  const emb = f32(await readGgufTensorData(h, 'token_embd.weight'));
  const ref = tiny.folded.get('model.embed_tokens.weight')!;
  let bad = 0;
  for (let i = 0; i < ref.data.length; i++) if (emb[i] !== Math.fround(ref.data[i]!)) bad++;
  t.equal(bad, 0, 'token_embd = fround(folded)');
  t.equal(h.tensors.find((x) => x.name === 'blk.0.attn_norm.weight')!.type, GgmlType.F32);
  // Q permutation by the index formula, K with n_head_kv (= n_head in v0)
  const hd = L.hidden / L.heads;
  for (const [g, hf] of [['blk.1.attn_q.weight', 'model.layers.1.self_attn.q_proj.weight'], ['blk.1.attn_k.weight', 'model.layers.1.self_attn.k_proj.weight']] as const) {
    const got = f32(await readGgufTensorData(h, g));
    const src = tiny.folded.get(hf)!;
    let wrong = 0;
    for (let head = 0; head < L.heads; head++) for (let i = 0; i < hd / 2; i++) for (let j = 0; j < 2; j++) for (let c = 0; c < L.hidden; c++) {
      if (got[(head * hd + 2 * i + j) * L.hidden + c] !== Math.fround(src.data[(head * hd + j * (hd / 2) + i) * L.hidden + c]!)) wrong++;
    }
    t.equal(wrong, 0, `${g} permuted`);
  }
  t.notOk(h.tensors.some((x) => x.name.startsWith('mm')), 'no projector in the LLM');
});

t.test('.bin and safetensors inputs give identical tensor bytes; q8_0 types', async (t) => {
  const root = t.testdir({});
  const a = await makeTinyV0({ dir: join(root, 'a'), seed: 3, format: 'safetensors', shards: 2 });
  const b = await makeTinyV0({ dir: join(root, 'b'), seed: 3, format: 'bin' });
  const ra = await convertV0({ ...a.dirs, out: join(root, 'oa'), outtype: 'q8_0' });
  const rb = await convertV0({ ...b.dirs, out: join(root, 'ob'), outtype: 'q8_0' });
  const ha = await readGgufHeader(ra.model);
  const hb = await readGgufHeader(rb.model);
  t.same(ha.tensors.map((x) => [x.name, x.type, x.shape]), hb.tensors.map((x) => [x.name, x.type, x.shape]));
  t.equal(ha.tensors.find((x) => x.name === 'blk.0.ffn_down.weight')!.type, GgmlType.Q8_0);
  for (const ti of ha.tensors) t.ok((await readGgufTensorData(ha, ti.name)).equals(await readGgufTensorData(hb, ti.name)), ti.name);
});

t.test('v1.5: GQA, rope_theta, projector from the checkpoint, vision from the CLIP folder', async (t) => {
  const root = t.testdir({});
  const tiny = await makeTinyV15({ dir: join(root, 'in'), seed: 5 });
  const r = await convertV15({ ...tiny.dirs, out: join(root, 'out'), outtype: 'f32' });
  const h = await readGgufHeader(r.model);
  t.equal(kvOf(h, 'llama.attention.head_count_kv')?.value, 2);
  t.equal(kvOf(h, 'llama.rope.freq_base')?.value, 1e6);
  t.equal(kvOf(h, 'llama.context_length')?.value, 32768);
  t.equal(kvOf(h, 'tokenizer.ggml.bos_token_id')?.value, 1);
  t.equal(kvOf(h, 'llava_med.variant')?.value, 'v1.5');
  t.notOk(h.tensors.some((x) => /vision|mm_/.test(x.name)));
  const hd = TINY_LLM.hidden / TINY_LLM.heads;
  const k = f32(await readGgufTensorData(h, 'blk.0.attn_k.weight'));
  const src = tiny.weights.get('model.layers.0.self_attn.k_proj.weight')!;
  let wrong = 0;
  for (let head = 0; head < 2; head++) for (let i = 0; i < hd / 2; i++) for (let j = 0; j < 2; j++) for (let c = 0; c < TINY_LLM.hidden; c++) {
    if (k[(head * hd + 2 * i + j) * TINY_LLM.hidden + c] !== src.data[(head * hd + j * (hd / 2) + i) * TINY_LLM.hidden + c]) wrong++;
  }
  t.equal(wrong, 0, 'K permuted with n_head_kv = 2');
  const m = await readGgufHeader(r.mmproj);
  t.equal(kvOf(m, 'llava_med.projector')?.value, 'mlp2x_gelu');
  const w2 = f32(await readGgufTensorData(m, 'mm.2.weight'));
  t.same(Array.from(w2), Array.from(tiny.weights.get('model.mm_projector.2.weight')!.data));
  const pe = f32(await readGgufTensorData(m, 'v.position_embd.weight'));
  t.same(Array.from(pe), Array.from(tiny.vision.get('vision_model.embeddings.position_embedding.weight')!.data));
});

t.test('foldDelta writes an HF folder with the folded values and the delta tokenizer', async (t) => {
  const root = t.testdir({});
  const tiny = await makeTinyV0({ dir: join(root, 'in'), seed: 2 });
  const out = join(root, 'folded');
  // A partial folder left by a killed fold (owner pid dead) is swept; the run leaves no partial of its own.
  const { spawnSync } = await import('node:child_process');
  const { mkdir, writeFile } = await import('node:fs/promises');
  const { tempPathFor } = await import('../../lib/formats/temp-files.js');
  const stale = tempPathFor(out, spawnSync(process.execPath, ['-e', '0']).pid!, 'partial');
  await mkdir(stale);
  await writeFile(join(stale, 'model-00001-of-00002.safetensors'), 'x');
  await foldDelta({ base: tiny.dirs.base, delta: tiny.dirs.delta, out, maxShardBytes: 64 * 1024 });
  t.same((await readdir(root)).sort(), ['folded', 'in'], 'the stale partial folder is gone, no new one is left');
  const files = await readdir(out);
  for (const f of ['config.json', 'tokenizer.model', 'added_tokens.json', 'special_tokens_map.json', 'model.safetensors.index.json']) t.ok(files.includes(f), f);
  const r = await openHfCheckpoint(out);
  for (const [name, ref] of tiny.folded) {
    const got = await r.get(name).readF32();
    const { f16ToF32, f32ToF16 } = await import('../../lib/formats/half.js');
    let bad = 0;
    for (let i = 0; i < ref.data.length; i++) if (got[i] !== f16ToF32(f32ToF16(ref.data[i]!))) bad++;
    t.equal(bad, 0, name);
  }
  await r.close();
});

t.test('every error case and an abort leave no file in the out folder', async (t) => {
  const root = t.testdir({});
  const cases: [TinyV0Break, string, RegExp][] = [
    ['llama2-base', 'ERR_WRONG_BASE', /Llama-2/],
    ['vicuna-base', 'ERR_WRONG_BASE', /Vicuna/],
    ['no-projector', 'ERR_CONVERT', /mm_projector/],
    ['not-clip', 'ERR_CONVERT', /not a CLIP/],
    ['missing-shard', 'ERR_MISSING_SHARD', /./],
    ['unexpected-tensor', 'ERR_CONVERT', /model\.extra_head\.weight/],
  ];
  for (const [brk, code, re] of cases) {
    const tiny = await makeTinyV0({ dir: join(root, brk), seed: 4, break: brk });
    const out = join(root, `out-${brk}`);
    await rejects(t, convertV0({ ...tiny.dirs, out }), code, re);
    t.same(await readdir(out).catch(() => []), [], `${brk}: nothing written`);
  }
  const tiny = await makeTinyV0({ dir: join(root, 'ok'), seed: 4 });
  const ac = new AbortController();
  const out = join(root, 'out-abort');
  await rejects(t, convertV0({ ...tiny.dirs, out, signal: ac.signal, onProgress: (p) => { if (p.phase === 'llm' && p.tensorsDone === 3) ac.abort(); } }), 'ERR_ABORTED');
  t.same(await readdir(out), [], 'abort during the LLM: the finished mmproj is removed too');
});
