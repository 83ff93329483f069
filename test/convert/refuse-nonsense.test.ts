/**
 * Refuse nonsense with a reason: NaN/Inf weights are refused at convert naming the tensor (and F16
 * overflows), with an override; configs with NaN or a zero image_std are refused; caller objects whose
 * getters throw are ERR_INVALID_ARGUMENT, not ERR_NATIVE.
 */
import t from 'tap';
import { copyFile, open, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { convertV15 } from '../../lib/convert/index.js';
import { LlavaMedError } from '../../lib/errors.js';
import { GgmlType, GgufWriter, readGgufHeader, readGgufTensorData } from '../../lib/formats/gguf.js';
import { checkSmallTensorsFinite } from '../../lib/engine/finite-check.js';
import { loadImage } from '../../lib/image/load.js';
import { LlavaMed } from '../../lib/llava-med.js';
import { makeTinyV15 } from '../helpers/tiny-hf.js';
import { noisePixels, tinyV0 } from '../helpers/tiny-llava.js';
import { ensureDist, runCli } from '../cli/util.js';

async function errOf(p: Promise<unknown> | (() => unknown)): Promise<LlavaMedError> {
  const e = await (typeof p === 'function' ? Promise.resolve().then(p) : p).then(() => undefined, (x: unknown) => x);
  if (!(e instanceof LlavaMedError)) throw new Error(`expected a LlavaMedError, got ${e === undefined ? 'success' : String(e)}`);
  return e;
}

/** Overwrites element `index` of a BF16 tensor in a (sharded) safetensors folder with `bits`. */
async function setBf16(dir: string, name: string, index: number, bits: number): Promise<void> {
  const idx = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
  const file = join(dir, idx.weight_map[name]!);
  const buf = await readFile(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.toString('utf8', 8, 8 + n)) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const e = header[name]!;
  if (e.dtype !== 'BF16') throw new Error(`${name} is ${e.dtype}`);
  buf.writeUInt16LE(bits, 8 + n + e.data_offsets[0] + 2 * index);
  await writeFile(file, buf);
}

const TENSOR = 'model.layers.1.mlp.down_proj.weight';
const GGUF_NAME = 'blk.1.ffn_down.weight';

t.test('non-finite weights: refused at convert naming the tensor; allowNonFinite writes them', async (t) => {
  const root = t.testdir({});
  for (const [what, bits, re] of [
    ['NaN', 0x7fc0, /Tensor blk\.1\.ffn_down\.weight holds a non-finite value \(NaN at flat index 5\)/],
    ['-Infinity', 0xff80, /holds a non-finite value \(-Infinity at flat index 5\)/],
  ] as const) {
    const tiny = await makeTinyV15({ dir: join(root, what, 'in'), seed: 3 });
    await setBf16(tiny.dirs.model, TENSOR, 5, bits);
    const out = join(root, what, 'out');
    const e = await errOf(convertV15({ ...tiny.dirs, out, outtype: 'f32' }));
    t.equal(e.code, 'ERR_CONVERT', `${what}: ERR_CONVERT`);
    t.match(e.message, re, `${what}: names the tensor and the value`);
    t.match(e.message, /allowNonFinite/, `${what}: says how to override`);
    t.same(await readdir(out).catch(() => []), [], `${what}: nothing written`);
    const r = await convertV15({ ...tiny.dirs, out, outtype: 'f32', allowNonFinite: true });
    const h = await readGgufHeader(r.model);
    const data = await readGgufTensorData(h, GGUF_NAME);
    const v = new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    t.same(String(v[5]), what, `${what}: with allowNonFinite the value is written as is`);
  }
});

t.test('CLI: convert refuses a NaN weight; --allow-non-finite writes it', async (t) => {
  ensureDist();
  const root = t.testdir({});
  const tiny = await makeTinyV15({ dir: join(root, 'in'), seed: 3 });
  await setBf16(tiny.dirs.model, TENSOR, 5, 0x7fc0);
  const args = ['convert', '--model', tiny.dirs.model, '--vision', tiny.dirs.vision, '-o', join(root, 'out'), '--outtype', 'f32'];
  const bad = await runCli(args, { timeoutMs: 120_000 });
  t.equal(bad.code, 1, 'exit 1');
  t.match(bad.stderr, /ERR_CONVERT: Tensor blk\.1\.ffn_down\.weight holds a non-finite value/, 'the tensor is named');
  const ok = await runCli([...args, '--allow-non-finite'], { timeoutMs: 120_000 });
  t.equal(ok.code, 0, ok.code === 0 ? 'with --allow-non-finite: exit 0' : ok.stderr.slice(-500));
});

t.test('F16 overflow: a finite BF16 value beyond ±65504 is refused for f16, fine for f32', async (t) => {
  const root = t.testdir({});
  const tiny = await makeTinyV15({ dir: join(root, 'in'), seed: 4 });
  await setBf16(tiny.dirs.model, TENSOR, 7, 0x47c3); // 99840 in BF16
  const e = await errOf(convertV15({ ...tiny.dirs, out: join(root, 'f16'), outtype: 'f16' }));
  t.equal(e.code, 'ERR_CONVERT');
  t.match(e.message, /Tensor blk\.1\.ffn_down\.weight holds 99840 at flat index 7, beyond F16's range/);
  const r = await convertV15({ ...tiny.dirs, out: join(root, 'f32'), outtype: 'f32' });
  t.ok(r.model, 'f32 holds it');
  t.equal((await errOf(convertV15({ ...tiny.dirs, out: join(root, 'x'), allowNonFinite: 'yes' as unknown as boolean }))).code, 'ERR_INVALID_ARGUMENT', 'allowNonFinite must be a boolean');
});

t.test('configs: NaN in config.json and a zero image_std are refused with a reason', async (t) => {
  const root = t.testdir({});
  const tiny = await makeTinyV15({ dir: join(root, 'in'), seed: 6 });
  const cfgPath = join(tiny.dirs.model, 'config.json');
  const cfg = await readFile(cfgPath, 'utf8');
  await writeFile(cfgPath, cfg.replace(/"rms_norm_eps":\s*[^,}]+/, '"rms_norm_eps": NaN'));
  const e = await errOf(convertV15({ ...tiny.dirs, out: join(root, 'a') }));
  t.equal(e.code, 'ERR_FORMAT');
  t.match(e.message, /holds NaN .*not a finite number/);
  await writeFile(cfgPath, cfg);
  const pre = join(tiny.dirs.vision, 'preprocessor_config.json');
  await writeFile(pre, JSON.stringify({ image_mean: [0.5, 0.5, 0.5], image_std: [0.2, 0, 0.2], crop_size: 28 }));
  const e2 = await errOf(convertV15({ ...tiny.dirs, out: join(root, 'b') }));
  t.equal(e2.code, 'ERR_FORMAT');
  t.match(e2.message, /image_std/);
});

t.test('objects whose getters throw are ERR_INVALID_ARGUMENT (loadImage, ask, askBatch, load)', async (t) => {
  const px = noisePixels(8, 8, 1);
  const boom = () => { throw new Error('boom'); };
  const rawWithGetter = { data: px, width: 8, height: 8, get channels(): 3 { return boom(); } };
  const e = await errOf(loadImage(rawWithGetter));
  t.equal(e.code, 'ERR_INVALID_ARGUMENT', 'loadImage: raw pixels with a throwing getter');
  t.match(e.message, /Reading the image object threw \(boom\)/);
  const proxy = new Proxy({}, { has: boom, get: boom, getPrototypeOf: boom, ownKeys: boom });
  t.equal((await errOf(loadImage(proxy as never))).code, 'ERR_INVALID_ARGUMENT', 'loadImage: a Proxy whose traps throw');
  t.equal((await errOf(loadImage(px, { get maxPixels(): number { return boom(); } }))).code, 'ERR_INVALID_ARGUMENT', 'loadImage: options getter');

  const m = await tinyV0();
  t.equal((await errOf(LlavaMed.load({ model: m.model, mmproj: m.mmproj, get threads(): number { return boom(); } }))).code, 'ERR_INVALID_ARGUMENT', 'load: options getter');
  const med = await LlavaMed.load({ model: m.model, mmproj: m.mmproj, threads: 1, contextSize: 512 });
  t.teardown(() => med.dispose());
  const ask = await errOf(med.ask(rawWithGetter, 'What is shown?', { maxTokens: 2 }));
  t.equal(ask.code, 'ERR_INVALID_ARGUMENT', 'ask: raw pixels with a throwing getter (was ERR_NATIVE)');
  t.equal((await errOf(med.ask({ data: px, width: 8, height: 8, channels: 3 }, 'What?', { get maxTokens(): number { return boom(); } }))).code, 'ERR_INVALID_ARGUMENT', 'ask: options getter');
  t.equal((await errOf(med.askBatch([{ image: px, get question(): string { return boom(); } }]))).code, 'ERR_INVALID_ARGUMENT', 'askBatch: request getter');
  t.equal((await errOf(med.score(px, 'What?', ['yes'], { get signal(): AbortSignal { return boom(); } }))).code, 'ERR_INVALID_ARGUMENT', 'score: options getter');
  const ok = await med.ask({ data: px, width: 8, height: 8, channels: 3 }, 'What is shown?', { maxTokens: 2, temperature: 0 });
  t.equal(ok.tokens.length > 0, true, 'the instance still answers');
});

t.test('load: NaN in a small tensor (norm, bias) of the model or the projector is ERR_GGUF_CORRUPT naming it', async (t) => {
  const root = t.testdir({});
  const m = await tinyV0();
  /** A copy of `src` with element 3 of tensor `pick` set to NaN; returns the path and the tensor name. */
  const poisoned = async (src: string, pick: (h: Awaited<ReturnType<typeof readGgufHeader>>) => string, dst: string) => {
    await copyFile(src, dst);
    const h = await readGgufHeader(dst);
    const name = pick(h);
    const ti = h.tensors.find((x) => x.name === name)!;
    t.equal(ti.type, 0, `${name} is F32`);
    const fh = await open(dst, 'r+');
    const nan = Buffer.alloc(4);
    nan.writeFloatLE(NaN);
    await fh.write(nan, 0, 4, ti.offset + 12);
    await fh.close();
    return name;
  };
  const model = join(root, 'model.gguf');
  const mName = await poisoned(m.model, () => 'output_norm.weight', model);
  const e = await errOf(LlavaMed.load({ model, mmproj: m.mmproj, threads: 1, contextSize: 512 }));
  t.equal(e.code, 'ERR_GGUF_CORRUPT', 'model: ERR_GGUF_CORRUPT');
  t.match(e.message, new RegExp(`tensor '${mName}' holds a non-finite value .* at index 3`), 'names the tensor');
  const mmproj = join(root, 'mmproj.gguf');
  const pName = await poisoned(m.mmproj, (h) => h.tensors.find((x) => x.type === 0 && x.shape.length === 1)!.name, mmproj);
  const e2 = await errOf(LlavaMed.load({ model: m.model, mmproj, threads: 1, contextSize: 512 }));
  t.equal(e2.code, 'ERR_GGUF_CORRUPT', 'projector: ERR_GGUF_CORRUPT');
  t.match(e2.message, new RegExp(`projector .*tensor '${pName.replace(/\./g, '\\.')}' holds a non-finite value`), 'names the tensor');
});

t.test('checkSmallTensorsFinite: F16 infinities too; large tensors are not scanned', async (t) => {
  const root = t.testdir({});
  const write = async (name: string, f16: number[], bigNan: boolean) => {
    const p = join(root, name);
    const w = await GgufWriter.create(p);
    w.addString('general.architecture', 'test');
    w.addTensorInfo('small.f16', GgmlType.F16, [f16.length]);
    w.addTensorInfo('big.f32', GgmlType.F32, [32 << 10]); // 128 KiB: over the scan limit
    await w.writeHeader();
    const h = Buffer.alloc(2 * f16.length);
    f16.forEach((b, i) => h.writeUInt16LE(b, 2 * i));
    await w.writeTensor('small.f16', h);
    const big = new Float32Array(32 << 10);
    if (bigNan) big[5] = NaN;
    await w.writeTensor('big.f32', Buffer.from(big.buffer));
    await w.finish();
    return readGgufHeader(p);
  };
  await checkSmallTensorsFinite(await write('ok.gguf', [0x3c00, 0x7bff, 0xfbff], true), 'model');
  t.pass('finite F16 (incl. ±65504) passes; a NaN in a 128 KiB tensor is not looked for');
  const e = await errOf(checkSmallTensorsFinite(await write('inf.gguf', [0x3c00, 0xfc00], false), 'model'));
  t.match(e.message, /tensor 'small\.f16' holds a non-finite value .* at index 1/, 'F16 -Inf found');
});
