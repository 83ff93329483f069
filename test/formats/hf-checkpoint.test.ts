import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, readdirSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openHfCheckpoint, writeHfCheckpoint } from '../../lib/formats/hf-checkpoint.js';
import { openSafetensors } from '../../lib/formats/safetensors.js';
import type { TensorData } from '../../lib/formats/tensor.js';

const root = mkdtempSync(join(tmpdir(), 'llava-hf-'));
let seq = 0;
const newDir = () => join(root, `d${seq++}`);

function tensors(): TensorData[] {
  return Array.from({ length: 7 }, (_, i) => ({
    name: `model.layers.${i}.weight`,
    dtype: i % 2 ? 'F16' : 'F32',
    shape: [i + 1, 3],
    data: new Float32Array(3 * (i + 1)).map((_, j) => i * 100 + j),
  }));
}

async function checkAll(t: Test, dir: string) {
  const r = await openHfCheckpoint(dir);
  const ts = tensors();
  t.same(r.names().sort(), ts.map((x) => x.name).sort());
  for (const x of ts) {
    const s = r.get(x.name);
    t.equal(s.dtype, x.dtype);
    t.same(s.shape, x.shape);
    t.same([...(await s.readF32())], [...(x.data as Float32Array)], `${x.name} values`);
  }
  await r.close();
  return r;
}

for (const format of ['safetensors', 'bin'] as const) {
  t.test(`${format}: single file and sharded checkpoints round trip`, async (t) => {
    const single = newDir();
    const files1 = await writeHfCheckpoint(single, tensors(), { format });
    t.same(files1.map((f) => f.slice(single.length + 1)), [format === 'safetensors' ? 'model.safetensors' : 'pytorch_model.bin']);
    await checkAll(t, single);
    // a single file path works too
    await checkAll(t, files1[0]!);

    const sharded = newDir();
    const files = await writeHfCheckpoint(sharded, tensors(), { format, shards: 3 });
    const stem = format === 'safetensors' ? 'model' : 'pytorch_model';
    const ext = format === 'safetensors' ? 'safetensors' : 'bin';
    t.same(files.map((f) => f.slice(sharded.length + 1)),
      [`${stem}-00001-of-00003.${ext}`, `${stem}-00002-of-00003.${ext}`, `${stem}-00003-of-00003.${ext}`, `${stem}.${ext}.index.json`]);
    const index = JSON.parse(readFileSync(files[3]!, 'utf8'));
    t.equal(Object.keys(index.weight_map).length, 7);
    t.equal(index.metadata.total_size, tensors().reduce((s, x) => s + x.shape[0]! * 3 * (x.dtype === 'F16' ? 2 : 4), 0));
    t.same(new Set(Object.values(index.weight_map)).size, 3, 'every shard is used');
    const r = await checkAll(t, sharded);
    t.equal(r.files.length, 3);
    t.same(readdirSync(sharded).filter((f) => f.endsWith('.tmp')), []);
  });
}

t.test('missing shard, missing tensor, bad index, empty folder', async (t) => {
  const d = newDir();
  await writeHfCheckpoint(d, tensors(), { format: 'safetensors', shards: 2 });
  const idx = join(d, 'model.safetensors.index.json');
  const index = JSON.parse(readFileSync(idx, 'utf8'));

  const missing = newDir();
  mkdirSync(missing);
  copyFileSync(idx, join(missing, 'model.safetensors.index.json'));
  copyFileSync(join(d, 'model-00001-of-00002.safetensors'), join(missing, 'model-00001-of-00002.safetensors'));
  await t.rejects(openHfCheckpoint(missing), { code: 'ERR_MISSING_SHARD', message: /model-00002-of-00002\.safetensors/ });

  // index lists a tensor the shard lacks
  writeFileSync(idx, JSON.stringify({ ...index, weight_map: { ...index.weight_map, 'ghost.weight': 'model-00001-of-00002.safetensors' } }));
  await t.rejects(openHfCheckpoint(d), { code: 'ERR_FORMAT', message: /'ghost\.weight'.*model-00001-of-00002/ });

  // path traversal in the index
  writeFileSync(idx, JSON.stringify({ weight_map: { a: '../../etc/passwd' } }));
  await t.rejects(openHfCheckpoint(d), { code: 'ERR_FORMAT', message: /not a plain shard file name/ });
  writeFileSync(idx, '{"weight_map": ');
  await t.rejects(openHfCheckpoint(d), { code: 'ERR_FORMAT', message: /not valid JSON/ });
  writeFileSync(idx, '{"metadata": {}}');
  await t.rejects(openHfCheckpoint(d), { code: 'ERR_FORMAT', message: /weight_map/ });

  // shards without an index
  rmSync(idx);
  await t.rejects(openHfCheckpoint(d), { code: 'ERR_FILE_NOT_FOUND', message: /no index\.json/ });
  const empty = newDir();
  mkdirSync(empty);
  await t.rejects(openHfCheckpoint(empty), { code: 'ERR_FILE_NOT_FOUND', message: /pytorch_model\.bin/ });
  await t.rejects(openHfCheckpoint(join(root, 'nope')), { code: 'ERR_FILE_NOT_FOUND' });

  // a corrupt shard is reported as such (not as a missing tensor)
  const c = newDir();
  await writeHfCheckpoint(c, tensors(), { format: 'bin', shards: 2 });
  writeFileSync(join(c, 'pytorch_model-00002-of-00002.bin'), 'garbage');
  await t.rejects(openHfCheckpoint(c), { code: 'ERR_FORMAT', message: /pytorch_model-00002-of-00002\.bin/ });
});

t.test('writer options are validated; shards are clamped to the tensor count; safetensors carry format=pt', async (t) => {
  const d = newDir();
  await t.rejects(writeHfCheckpoint(d, tensors(), { format: 'onnx' as 'bin' }), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(writeHfCheckpoint(d, tensors(), { format: 'bin', shards: 0 }), { code: 'ERR_INVALID_ARGUMENT' });
  const files = await writeHfCheckpoint(d, tensors().slice(0, 2), { format: 'safetensors', shards: 5 });
  t.equal(files.length, 3, 'two shards and an index');
  const r = await openSafetensors(files[0]!);
  t.same(r.metadata, { format: 'pt' });
  await r.close();
});

t.test('lazy tensor data: each tensor is produced only after the previous ones are on disk (streamed), same file as eager data', async (t) => {
  const eagerDir = newDir();
  await writeHfCheckpoint(eagerDir, tensors(), { format: 'safetensors', shards: 2 });
  const lazyDir = newDir();
  mkdirSync(lazyDir, { recursive: true });
  const eager = tensors();
  const bytes = (x: TensorData) => x.shape[0]! * 3 * (x.dtype === 'F16' ? 2 : 4);
  const onDisk = () => readdirSync(lazyDir).reduce((s, f) => s + readFileSync(join(lazyDir, f)).length, 0);
  const calls: number[] = [];
  const diskAt: number[] = [];
  const lazy: TensorData[] = eager.map((x, i) => ({
    ...x,
    data: () => {
      calls.push(i);
      diskAt[i] = onDisk();
      // between producing tensor i-1 and tensor i the writer put tensor i-1's bytes on disk
      // (temp shard files included): only one tensor's values exist at a time
      if (i > 0 && diskAt[i]! - diskAt[i - 1]! < bytes(eager[i - 1]!)) {
        t.fail(`tensor ${i} was produced before tensor ${i - 1} was written (${diskAt[i]! - diskAt[i - 1]!} of ${bytes(eager[i - 1]!)} bytes on disk)`);
      }
      return x.data as Float32Array;
    },
  }));
  await writeHfCheckpoint(lazyDir, lazy, { format: 'safetensors', shards: 2 });
  t.same(calls, [0, 1, 2, 3, 4, 5, 6], 'each produced once, in order');
  for (const f of readdirSync(eagerDir)) t.same(readFileSync(join(lazyDir, f)), readFileSync(join(eagerDir, f)), f);
});
