import t from 'tap';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeMmprojGguf } from '../../lib/convert/mmproj-gguf.js';
import { defaultProvenance } from '../../lib/convert/provenance.js';
import type { ClipFolderConfig } from '../../lib/convert/hf-config.js';
import { GgmlType, GgufValueType, readGgufHeader, readGgufTensorData } from '../../lib/formats/gguf.js';
import { f16BufferToF32 } from '../../lib/formats/half.js';
import type { CheckpointReader, TensorSource } from '../../lib/formats/tensor.js';

// In-memory CLIP checkpoint (HF names) with deterministic values; 3 layers, width 8, 28 px / 14.
const D = 8, FF = 16, LAYERS = 3, IMG = 28, P = 14, NPOS = (IMG / P) ** 2 + 1;
function clipTensors(): Map<string, { shape: number[]; data: Float32Array }> {
  let k = 0;
  const m = new Map<string, { shape: number[]; data: Float32Array }>();
  const add = (n: string, shape: number[]) => {
    const len = shape.reduce((a, b) => a * b, 1);
    m.set(n, { shape, data: Float32Array.from({ length: len }, () => ((k++ % 97) - 48) / 64) });
  };
  add('vision_model.embeddings.class_embedding', [D]);
  add('vision_model.embeddings.patch_embedding.weight', [D, 3, P, P]);
  add('vision_model.embeddings.position_embedding.weight', [NPOS, D]);
  add('vision_model.pre_layrnorm.weight', [D]);
  add('vision_model.pre_layrnorm.bias', [D]);
  for (let i = 0; i < LAYERS; i++) {
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      add(`vision_model.encoder.layers.${i}.self_attn.${n}.weight`, [D, D]);
      add(`vision_model.encoder.layers.${i}.self_attn.${n}.bias`, [D]);
    }
    for (const n of ['layer_norm1', 'layer_norm2']) {
      add(`vision_model.encoder.layers.${i}.${n}.weight`, [D]);
      add(`vision_model.encoder.layers.${i}.${n}.bias`, [D]);
    }
    add(`vision_model.encoder.layers.${i}.mlp.fc1.weight`, [FF, D]);
    add(`vision_model.encoder.layers.${i}.mlp.fc1.bias`, [FF]);
    add(`vision_model.encoder.layers.${i}.mlp.fc2.weight`, [D, FF]);
    add(`vision_model.encoder.layers.${i}.mlp.fc2.bias`, [D]);
  }
  add('vision_model.post_layernorm.weight', [D]);
  add('vision_model.post_layernorm.bias', [D]);
  add('text_model.final_layer_norm.weight', [4]);
  add('visual_projection.weight', [4, D]);
  add('logit_scale', [1]);
  return m;
}
function reader(m: Map<string, { shape: number[]; data: Float32Array }>): CheckpointReader {
  const src = (name: string): TensorSource => {
    const v = m.get(name)!;
    return { name, dtype: 'F32', shape: v.shape, byteLength: v.data.byteLength, file: 'mem', readRaw: async () => Buffer.from(v.data.buffer.slice(0)), readF32: async () => Float32Array.from(v.data) };
  };
  return { files: ['mem'], names: () => [...m.keys()], has: (n) => m.has(n), get: src, close: async () => undefined };
}
const clip: ClipFolderConfig = {
  vision: { hidden_size: D, intermediate_size: FF, num_attention_heads: 2, num_hidden_layers: LAYERS, image_size: IMG, patch_size: P, layer_norm_eps: 1e-5, hidden_act: 'quick_gelu', num_channels: 3 },
  imageMean: [0.48145466, 0.4578275, 0.40821073],
  imageStd: [0.26862954, 0.26130258, 0.27577711],
};
const OUT = 12;
const W = Float32Array.from({ length: OUT * D }, (_, i) => ((i * 7) % 23) / 8 - 1.25);
const B = Float32Array.from({ length: OUT }, (_, i) => i / 4 - 1);
const lazyOf = (name: string, shape: number[], data: Float32Array) => ({ name, shape, read: async () => Float32Array.from(data) });

t.test('v0 mmproj: keys with exact types, layers 0..n-2, [I;-I] / [W|-W] projector', async (t) => {
  const dir = t.testdir({});
  const weights = clipTensors();
  const path = join(dir, 'mmproj.gguf');
  const res = await writeMmprojGguf({
    path, clip, clipWeights: reader(weights), outtype: 'f16', variant: 'v0',
    projector: { kind: 'linear', weight: lazyOf('model.mm_projector.weight', [OUT, D], W), bias: lazyOf('model.mm_projector.bias', [OUT], B) },
    provenance: defaultProvenance('v0', 'mmproj-test', [{ role: 'vision', dir: '/x/clip' }], 'mmproj'),
  });
  t.equal(res.imageTokenCount, 4);
  t.same(await readdir(dir), ['mmproj.gguf'], 'no temp files left');
  const h = await readGgufHeader(path);
  const kv = (k: string) => h.kv.get(k);
  const expectKv: [string, GgufValueType, unknown][] = [
    ['general.architecture', GgufValueType.STRING, 'clip'],
    ['clip.has_vision_encoder', GgufValueType.BOOL, true],
    ['clip.projector_type', GgufValueType.STRING, 'mlp'],
    ['clip.use_gelu', GgufValueType.BOOL, false],
    ['clip.vision.image_size', GgufValueType.UINT32, IMG],
    ['clip.vision.patch_size', GgufValueType.UINT32, P],
    ['clip.vision.embedding_length', GgufValueType.UINT32, D],
    ['clip.vision.feed_forward_length', GgufValueType.UINT32, FF],
    ['clip.vision.projection_dim', GgufValueType.UINT32, OUT],
    ['clip.vision.attention.head_count', GgufValueType.UINT32, 2],
    ['clip.vision.block_count', GgufValueType.UINT32, LAYERS - 1],
    ['general.file_type', GgufValueType.UINT32, 1],
    ['llava_med.variant', GgufValueType.STRING, 'v0'],
    ['llava_med.projector', GgufValueType.STRING, 'linear'],
  ];
  for (const [k, type, value] of expectKv) {
    t.equal(kv(k)?.type, type, `${k} type`);
    t.equal(kv(k)?.value, value, `${k} value`);
  }
  t.equal(kv('clip.vision.attention.layer_norm_epsilon')?.type, GgufValueType.FLOAT32);
  t.equal(kv('clip.vision.feature_layer')?.type, GgufValueType.ARRAY);
  t.equal(kv('clip.vision.feature_layer')?.elemType, GgufValueType.INT32);
  t.same(kv('clip.vision.feature_layer')?.value, [LAYERS - 1]);
  t.equal(kv('clip.vision.image_mean')?.elemType, GgufValueType.FLOAT32);
  t.equal(kv('clip.vision.image_std')?.elemType, GgufValueType.FLOAT32);

  const names = h.tensors.map((x) => x.name);
  t.ok(names.includes('v.blk.1.ffn_down.weight'));
  t.notOk(names.some((n) => n.startsWith(`v.blk.${LAYERS - 1}.`)), 'last layer dropped');
  t.notOk(names.some((n) => n.startsWith('v.post_ln')), 'no post_ln');
  t.equal(names.length, 5 + (LAYERS - 1) * 16 + 4);
  const info = (n: string) => h.tensors.find((x) => x.name === n)!;
  t.same(info('v.patch_embd.weight').shape, [P, P, 3, D]);
  t.equal(info('v.patch_embd.weight').type, GgmlType.F16);
  t.equal(info('v.position_embd.weight').type, GgmlType.F32);
  t.equal(info('v.class_embd').type, GgmlType.F32);
  t.same(info('v.blk.0.ffn_up.weight').shape, [D, FF], 'fc1 is ffn_up (ne[0] = n_embd)');
  t.same(info('mm.0.weight').shape, [D, 2 * D]);
  t.same(info('mm.2.weight').shape, [2 * D, OUT]);

  const f16 = async (n: string) => f16BufferToF32(await readGgufTensorData(h, n));
  const f32 = async (n: string) => { const b = await readGgufTensorData(h, n); return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); };
  const m0 = await f16(`mm.0.weight`);
  let badI = 0;
  for (let r = 0; r < 2 * D; r++) for (let c = 0; c < D; c++) if (m0[r * D + c] !== (r === c ? 1 : r === c + D ? -1 : 0)) badI++;
  t.equal(badI, 0, '[I; -I] element-wise');
  t.same(Array.from(await f32('mm.0.bias')), new Array(2 * D).fill(0));
  const m2 = await f16('mm.2.weight');
  const f16round = f16BufferToF32(Buffer.from((await import('../../lib/formats/half.js')).f32ToF16Buffer(W)));
  let bad = 0;
  for (let r = 0; r < OUT; r++) for (let c = 0; c < D; c++) {
    if (m2[r * 2 * D + c] !== f16round[r * D + c] || m2[r * 2 * D + D + c] !== -f16round[r * D + c]!) bad++;
  }
  t.equal(bad, 0, '[W | -W] element-wise');
  t.same(Array.from(await f32('mm.2.bias')), Array.from(B));
  // a vision tensor read back equals the source
  t.same(Array.from(await f32('v.blk.1.attn_q.bias')), Array.from(weights.get('vision_model.encoder.layers.1.self_attn.q_proj.bias')!.data));
});

t.test('mlp2x_gelu projector maps to mm.0 / mm.2 directly; f32 outtype keeps F32', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'm.gguf');
  const w0 = Float32Array.from({ length: 6 * D }, (_, i) => i / 100);
  const w2 = Float32Array.from({ length: OUT * 6 }, (_, i) => -i / 100);
  await writeMmprojGguf({
    path, clip, clipWeights: reader(clipTensors()), outtype: 'f32', variant: 'v1.5',
    projector: { kind: 'mlp2x_gelu', w0: lazyOf('a', [6, D], w0), b0: lazyOf('b', [6], new Float32Array(6).fill(0.5)), w2: lazyOf('c', [OUT, 6], w2), b2: lazyOf('d', [OUT], B) },
    provenance: defaultProvenance('v1.5', 'x', [], 'mmproj'),
  });
  const h = await readGgufHeader(path);
  t.equal(h.kv.get('llava_med.projector')?.value, 'mlp2x_gelu');
  t.equal(h.kv.get('general.file_type')?.value, 0);
  const t2 = h.tensors.find((x) => x.name === 'mm.2.weight')!;
  t.equal(t2.type, GgmlType.F32);
  t.same(t2.shape, [6, OUT]);
  const b = await readGgufTensorData(h, 'mm.2.weight');
  t.same(Array.from(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))), Array.from(w2));
  t.equal(h.tensors.find((x) => x.name === 'v.patch_embd.weight')!.type, GgmlType.F32);
});

t.test('abort and bad projector shapes leave no file', async (t) => {
  const dir = t.testdir({});
  const ac = new AbortController();
  ac.abort();
  await t.rejects(writeMmprojGguf({
    path: join(dir, 'a.gguf'), clip, clipWeights: reader(clipTensors()), outtype: 'f16', variant: 'v0', signal: ac.signal,
    projector: { kind: 'linear', weight: lazyOf('w', [OUT, D], W), bias: lazyOf('b', [OUT], B) },
    provenance: defaultProvenance('v0', 'x', [], 'mmproj'),
  }), { code: 'ERR_ABORTED' });
  await t.rejects(writeMmprojGguf({
    path: join(dir, 'b.gguf'), clip, clipWeights: reader(clipTensors()), outtype: 'f16', variant: 'v0',
    projector: { kind: 'linear', weight: lazyOf('w', [OUT, D + 1], W), bias: lazyOf('b', [OUT], B) },
    provenance: defaultProvenance('v0', 'x', [], 'mmproj'),
  }), { code: 'ERR_SHAPE_MISMATCH' });
  t.same(await readdir(dir), []);
});
