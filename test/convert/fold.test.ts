import t, { type Test } from 'tap';
import { planFold, foldTensor } from '../../lib/convert/delta-fold.js';
import type { CheckpointReader, TensorSource } from '../../lib/formats/tensor.js';
import { isLlavaMedError } from '../../lib/errors.js';

// A CheckpointReader over in-memory float32 tensors, enough for the fold logic.
function mem(tensors: Record<string, { shape: number[]; data: number[] }>): CheckpointReader {
  const src = (name: string): TensorSource => {
    const v = tensors[name]!;
    const f = Float32Array.from(v.data);
    return {
      name, dtype: 'F32', shape: v.shape, byteLength: f.byteLength, file: 'mem',
      readRaw: async () => Buffer.from(f.buffer.slice(0)),
      readF32: async () => Float32Array.from(f),
    };
  };
  return {
    files: ['mem'],
    names: () => Object.keys(tensors),
    has: (n) => n in tensors,
    get: (n) => {
      if (!(n in tensors)) throw new Error(`no ${n}`);
      return src(n);
    },
    close: async () => undefined,
  };
}

const seq = (n: number, k: number) => Array.from({ length: n }, (_, i) => (i + 1) * k);

t.test('equal shapes add, embeddings add on the top-left block only, projector copied', async (t) => {
  // base vocab 3 x hidden 2; delta vocab 5 (two added tokens)
  const base = mem({
    'model.embed_tokens.weight': { shape: [3, 2], data: seq(6, 1) },
    'lm_head.weight': { shape: [3, 2], data: seq(6, 10) },
    'model.norm.weight': { shape: [2], data: [1, 2] },
    'model.layers.0.self_attn.rotary_emb.inv_freq': { shape: [1], data: [0.5] },
  });
  const delta = mem({
    'model.embed_tokens.weight': { shape: [5, 2], data: seq(10, 0.5) },
    'lm_head.weight': { shape: [5, 2], data: seq(10, 0.25) },
    'model.norm.weight': { shape: [2], data: [0.5, -1] },
    'model.mm_projector.weight': { shape: [2, 2], data: [7, 8, 9, 10] },
    'model.mm_projector.bias': { shape: [2], data: [11, 12] },
  });
  const plan = planFold(base, delta);
  t.same(plan.map((e) => [e.name, e.kind]), [
    ['model.embed_tokens.weight', 'add-top-left'],
    ['lm_head.weight', 'add-top-left'],
    ['model.norm.weight', 'add'],
    ['model.mm_projector.weight', 'copy'],
    ['model.mm_projector.bias', 'copy'],
  ]);
  const get = async (n: string) => Array.from(await foldTensor(plan.find((e) => e.name === n)!, base, delta));
  // rows 0..2: base + delta; rows 3..4: delta as stored
  t.same(await get('model.embed_tokens.weight'), [1.5, 3, 4.5, 6, 7.5, 9, 3.5, 4, 4.5, 5]);
  t.same(await get('lm_head.weight'), [10.25, 20.5, 30.75, 41, 51.25, 61.5, 1.75, 2, 2.25, 2.5]);
  t.same(await get('model.norm.weight'), [1.5, 1]);
  t.same(await get('model.mm_projector.weight'), [7, 8, 9, 10]);
  t.same(await get('model.mm_projector.bias'), [11, 12]);
});

t.test('top-left block uses the base column count when the delta is wider', async (t) => {
  const base = mem({ 'model.embed_tokens.weight': { shape: [1, 2], data: [1, 1] } });
  const delta = mem({
    'model.embed_tokens.weight': { shape: [2, 3], data: [0, 0, 0, 0, 0, 0] },
    'model.mm_projector.weight': { shape: [1], data: [0] },
    'model.mm_projector.bias': { shape: [1], data: [0] },
  });
  const plan = planFold(base, delta);
  t.same(Array.from(await foldTensor(plan[0]!, base, delta)), [1, 1, 0, 0, 0, 0]);
});

function throwsCode(t: Test, fn: () => unknown, code: string, re?: RegExp): void {
  try {
    fn();
    t.fail(`expected ${code}`);
  } catch (e) {
    t.ok(isLlavaMedError(e) && e.code === code, `${code}: ${(e as Error).message}`);
    if (re) t.match((e as Error).message, re);
  }
}

t.test('errors name the tensor', async (t) => {
  const proj = { 'model.mm_projector.weight': { shape: [1], data: [0] }, 'model.mm_projector.bias': { shape: [1], data: [0] } };
  // unexpected tensor not in base
  throwsCode(t, () => planFold(mem({}), mem({ ...proj, 'model.extra.weight': { shape: [1], data: [1] } })), 'ERR_CONVERT', /model\.extra\.weight/);
  // shape mismatch on a tensor that may not grow
  throwsCode(
    t,
    () => planFold(mem({ 'model.norm.weight': { shape: [2], data: [1, 1] } }), mem({ ...proj, 'model.norm.weight': { shape: [3], data: [1, 1, 1] } })),
    'ERR_SHAPE_MISMATCH', /model\.norm\.weight/,
  );
  // embeddings that shrink
  throwsCode(
    t,
    () => planFold(mem({ 'model.embed_tokens.weight': { shape: [3, 2], data: seq(6, 1) } }), mem({ ...proj, 'model.embed_tokens.weight': { shape: [2, 2], data: seq(4, 1) } })),
    'ERR_SHAPE_MISMATCH',
  );
  // delta without projector
  throwsCode(t, () => planFold(mem({ 'model.norm.weight': { shape: [1], data: [1] } }), mem({ 'model.norm.weight': { shape: [1], data: [1] } })), 'ERR_CONVERT', /mm_projector/);
});
