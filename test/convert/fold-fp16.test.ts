/**
 * The v0 fold's default arithmetic is the original's: apply_delta.py loads base and delta with
 * torch_dtype=torch.float16 and adds in fp16. Checked bit for bit against PyTorch on a committed
 * fixture (scripts/fixtures/make-fold-fixture.py: f16, f32 and bf16 base tensors, f16 and f32 delta
 * tensors, rounding ties, subnormals, signed zeros, overflow, values whose fp16 cast must come before
 * the add), then through convertV0 in every output type.
 */
import t from 'tap';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertV0 } from '../../lib/convert/index.js';
import { foldTensor, planFold } from '../../lib/convert/delta-fold.js';
import { isLlavaMedError } from '../../lib/errors.js';
import { readGgufHeader, readGgufTensorData, GgmlType } from '../../lib/formats/gguf.js';
import { f32ToF16, f16ToF32, quantizeQ8_0 } from '../../lib/formats/half.js';
import { openHfCheckpoint } from '../../lib/formats/hf-checkpoint.js';
import { makeTinyV0 } from '../helpers/tiny-hf.js';

const FIX = fileURLToPath(new URL('../fixtures/fold/', import.meta.url));

/** fp16 bit patterns of float32 values that must already be fp16 values. */
function f16Bits(a: Float32Array): Uint16Array {
  const out = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f32ToF16(a[i]!);
  return out;
}

t.test('foldTensor (fp16) equals PyTorch apply_delta bit for bit', async (t) => {
  const base = await openHfCheckpoint(join(FIX, 'base.bin'));
  const delta = await openHfCheckpoint(join(FIX, 'delta.bin'));
  const expected = await openHfCheckpoint(join(FIX, 'expected.bin'));
  t.teardown(async () => {
    await base.close();
    await delta.close();
    await expected.close();
  });
  const plan = planFold(base, delta);
  t.same(new Set(plan.map((e) => e.kind)), new Set(['add', 'add-top-left', 'copy']), 'the fixture exercises every kind of fold');
  t.same([...new Set(plan.map((e) => base.has(e.name) && base.get(e.name).dtype))].sort(), ['BF16', 'F16', 'F32', false], 'f16, f32 and bf16 base tensors (and a delta-only tensor)');
  let differFromExact = 0;
  for (const e of plan) {
    const want = expected.get(e.name);
    t.equal(want.dtype, 'F16', `${e.name}: PyTorch's result is fp16`);
    const wantBits = new Uint16Array(Uint8Array.from(await want.readRaw()).buffer);
    const got = await foldTensor(e, base, delta);
    // every value is an fp16 value (widening back gives the same float32), and its bits are PyTorch's
    let notHalf = 0;
    for (let i = 0; i < got.length; i++) if (!Object.is(f16ToF32(f32ToF16(got[i]!)), got[i]!) && !Number.isNaN(got[i])) notHalf++;
    t.equal(notHalf, 0, `${e.name}: every folded value is an fp16 value`);
    t.same(Array.from(f16Bits(got)), Array.from(wantBits), `${e.name} (${e.kind}): fp16 bits equal PyTorch's`);
    const exact = await foldTensor(e, base, delta, 'exact');
    for (let i = 0; i < exact.length; i++) if (!Object.is(exact[i], f16ToF32(wantBits[i]!))) differFromExact++;
  }
  t.ok(differFromExact > 20, `the exact float32 sum differs from PyTorch's fp16 fold in ${differFromExact} values (the fixture tells them apart)`);

  // The hand-picked edge pairs (first row of q_proj), as PyTorch computed them.
  const q = await foldTensor(plan.find((e) => e.name === 'model.layers.0.self_attn.q_proj.weight')!, base, delta);
  t.same(Array.from(q.subarray(0, 16)), [1, 1.001953125, -1.001953125, 2048, 2052, 1.1920928955078125e-7, 6.097555160522461e-5, 1.1920928955078125e-7, 0, -0, Infinity, 64992, 1.001953125, 1, 2.9981136322021484e-5, 0.2998046875]);
  t.ok(Object.is(q[9], -0) && Object.is(q[8], 0), 'signed zeros as PyTorch: -0 + -0 = -0, 0.5 - 0.5 = +0');
});

t.test('foldArithmetic is checked', async (t) => {
  const root = t.testdir({});
  const tiny = await makeTinyV0({ dir: join(root, 'in'), seed: 3 });
  await t.rejects(convertV0({ ...tiny.dirs, out: join(root, 'out'), foldArithmetic: 'fp32' as never }), { code: 'ERR_INVALID_ARGUMENT', message: /foldArithmetic/ });
  const e = await convertV0({ ...tiny.dirs, out: join(root, 'out'), foldArithmetic: 'fp32' as never }).catch((x: unknown) => x);
  t.ok(isLlavaMedError(e, 'ERR_INVALID_ARGUMENT'), 'a LlavaMedError');
});

t.test('convertV0 writes the fp16 fold in every output type; exact keeps the float32 sum', async (t) => {
  const root = t.testdir({});
  const tiny = await makeTinyV0({ dir: join(root, 'in'), seed: 5 });
  // tiny-hf's `folded` is fp16(base + delta) computed by the test helper (F16 operands stored), `foldedExact` the sum.
  const hf = 'model.layers.1.mlp.gate_proj.weight';
  const gguf = 'blk.1.ffn_gate.weight';
  const fp16 = Float32Array.from(tiny.folded.get(hf)!.data);
  const exact = Float32Array.from(tiny.foldedExact.get(hf)!.data);
  let differ = 0;
  for (let i = 0; i < fp16.length; i++) if (fp16[i] !== exact[i]) differ++;
  t.ok(differ > 100, `the two folds differ in ${differ} of ${fp16.length} values of ${hf}`);

  const read = async (outtype: 'f32' | 'f16' | 'q8_0', arithmetic?: 'fp16' | 'exact') => {
    const r = await convertV0({ ...tiny.dirs, out: join(root, `out-${outtype}-${arithmetic ?? 'default'}`), outtype, foldArithmetic: arithmetic });
    const h = await readGgufHeader(r.model);
    const info = h.tensors.find((x) => x.name === gguf)!;
    return { type: info.type, data: await readGgufTensorData(h, gguf), kv: h.kv.get('llava_med.fold_arithmetic')?.value };
  };
  const asF32 = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  const f32 = await read('f32');
  t.equal(f32.type, GgmlType.F32);
  t.same(Array.from(asF32(f32.data)), Array.from(fp16), 'F32 output holds the fp16 fold widened');
  t.equal(f32.kv, 'fp16', 'llava_med.fold_arithmetic records it');
  const f16 = await read('f16');
  t.equal(f16.type, GgmlType.F16);
  t.same(Array.from(new Uint16Array(Uint8Array.from(f16.data).buffer)), Array.from(f16Bits(fp16)), 'F16 output holds the fp16 fold bits');
  const q8 = await read('q8_0');
  t.equal(q8.type, GgmlType.Q8_0);
  t.ok(q8.data.equals(quantizeQ8_0(fp16)), 'Q8_0 output is quantized from the fp16 fold');
  t.notOk(q8.data.equals(quantizeQ8_0(exact)), '... not from the exact sum');
  const ex = await read('f32', 'exact');
  t.same(Array.from(asF32(ex.data)), Array.from(exact), "foldArithmetic 'exact': the float32 sum");
  t.equal(ex.kv, 'exact');
});
