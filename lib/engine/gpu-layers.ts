/**
 * `gpuLayers`: how many of the model's layers go to a GPU backend, as in node-llama-cpp —
 * a number (0 = CPU only), 'max' (every layer; llama.cpp's negative count) or 'auto' (as many
 * as fit in the GPU devices' free memory, none on a build without a GPU backend).
 */
import { llavaError } from '../errors.js';

/** Layers on a GPU backend: a count (0 = CPU only), 'max' (all) or 'auto' (what fits in free GPU memory). */
export type GpuLayers = 'auto' | 'max' | number;

export interface GpuDevice {
  type: string;
  memoryFree?: number;
}

/** What 'auto' keeps free on the devices for the KV cache and compute buffers. */
export const AUTO_RESERVE_BYTES = 512 * 1024 * 1024;

export function isGpuDevice(d: GpuDevice): boolean {
  return d.type === 'gpu' || d.type === 'igpu';
}

/**
 * The layer count for llama.cpp (-1 = all). 'auto': all layers when the model file plus
 * AUTO_RESERVE_BYTES fits in the GPU devices' free memory, else the share of layers that fits
 * (a layer is taken as modelBytes / (nLayer + 1): the output layer counts as one), 0 without a GPU.
 */
export function resolveGpuLayers(setting: unknown, ctx: { devices: GpuDevice[]; modelBytes: number; nLayer: number }): number {
  if (setting === undefined) return 0;
  if (setting === 'max' || setting === -1) return -1;
  if (typeof setting === 'number' && Number.isInteger(setting) && setting >= 0) return setting;
  if (setting !== 'auto') {
    throw llavaError('ERR_INVALID_ARGUMENT', `gpuLayers must be 'auto', 'max' or an integer >= 0, not ${typeof setting === 'string' ? `'${setting}'` : String(setting)}.`);
  }
  const gpus = ctx.devices.filter(isGpuDevice);
  if (!gpus.length) return 0;
  const free = gpus.reduce((s, d) => s + (d.memoryFree ?? 0), 0);
  if (free >= ctx.modelBytes + AUTO_RESERVE_BYTES) return -1;
  const perLayer = ctx.modelBytes / (ctx.nLayer + 1);
  return Math.max(0, Math.min(ctx.nLayer, Math.floor((free - AUTO_RESERVE_BYTES) / perLayer)));
}
