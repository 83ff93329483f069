/**
 * gpuLayers accepts 'auto' | 'max' | number, like node-llama-cpp: the resolution rule against
 * device lists written out here (expected counts computed by hand), validation before any file
 * is read, and what a CPU-only build does with each value.
 */
import t from 'tap';
import os from 'node:os';
import { Model, loadAddon, resolveGpuLayers } from '../../lib/engine/index.js';
import { AUTO_RESERVE_BYTES } from '../../lib/engine/gpu-layers.js';
import { failsWith, tinyPair } from './util.js';

const GiB = 1024 ** 3;
const cpu = { type: 'cpu', memoryFree: 64 * GiB };
const gpu = (free: number) => ({ type: 'gpu', memoryFree: free });

t.test('numbers and max', async (t) => {
  const ctx = { devices: [cpu], modelBytes: 4 * GiB, nLayer: 32 };
  t.equal(resolveGpuLayers(undefined, ctx), 0, 'default: CPU only');
  t.equal(resolveGpuLayers(0, ctx), 0);
  t.equal(resolveGpuLayers(20, ctx), 20);
  t.equal(resolveGpuLayers('max', ctx), -1, "llama.cpp's negative count = all layers");
  t.equal(resolveGpuLayers(-1, ctx), -1, '-1 stays an alias of max');
});

t.test("'auto': everything when it fits, the share that fits otherwise, nothing without a GPU", async (t) => {
  const model = { modelBytes: 4 * GiB, nLayer: 32 };
  t.equal(AUTO_RESERVE_BYTES, 512 * 1024 ** 2);
  t.equal(resolveGpuLayers('auto', { ...model, devices: [cpu] }), 0, 'CPU device only');
  t.equal(resolveGpuLayers('auto', { ...model, devices: [cpu, gpu(8 * GiB)] }), -1, '8 GiB free for a 4 GiB model');
  t.equal(resolveGpuLayers('auto', { ...model, devices: [cpu, gpu(4.5 * GiB)] }), -1, 'exactly model + reserve');
  // (2 GiB - 0.5 GiB) / (4 GiB / 33 layers) = 12.375
  t.equal(resolveGpuLayers('auto', { ...model, devices: [cpu, gpu(2 * GiB)] }), 12);
  // two devices: 1 + 1.5 GiB free: (2.5 - 0.5) / (4 / 33) = 16.5
  t.equal(resolveGpuLayers('auto', { ...model, devices: [cpu, gpu(1 * GiB), { type: 'igpu', memoryFree: 1.5 * GiB }] }), 16);
  t.equal(resolveGpuLayers('auto', { ...model, devices: [cpu, gpu(256 * 1024 ** 2)] }), 0, 'less than the reserve');
});

t.test('anything else is ERR_INVALID_ARGUMENT before the file is read', async (t) => {
  for (const bad of ['all', '3', 1.5, -2, true, Number.NaN]) {
    const e = await failsWith(t, () => Model.load('/nonexistent/model.gguf', { gpuLayers: bad as never }), 'ERR_INVALID_ARGUMENT', `gpuLayers ${JSON.stringify(bad)}`);
    t.match(e?.message, /^gpuLayers must be 'auto', 'max' or an integer >= 0, not /);
  }
});

t.test('this CPU build: ggml lists no GPU device, auto resolves to 0, max offloads nothing', async (t) => {
  const devices = loadAddon().backends();
  t.notOk(devices.some((d) => d.type === 'gpu' || d.type === 'igpu'), `devices: ${devices.map((d) => `${d.name} (${d.type})`).join(', ')}`);
  const c = devices.find((d) => d.type === 'cpu')!;
  t.ok(Math.abs(c.memoryTotal - os.totalmem()) / os.totalmem() < 0.05, `CPU device memory ${c.memoryTotal} ~ os.totalmem() ${os.totalmem()}`);
  const { llm } = await tinyPair();
  for (const [setting, want] of [['auto', 0], ['max', -1], [3, 3]] as const) {
    const model = await Model.load(llm.path, { gpuLayers: setting });
    t.equal(model.gpuLayers, want, `${setting} -> ${want}`);
    t.equal(model.offloaded, false, `${setting}: nothing offloaded without a GPU device`);
    await model.dispose();
  }
});
