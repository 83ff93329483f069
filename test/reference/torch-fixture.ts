// Loader for the committed PyTorch fixture (fixtures/torch-tiny.{json,bin}, made by
// fixtures/make-torch-expected.py). Weights are stored as float32 (they were drawn as
// float32 values, so this is exact) and expected outputs as float64.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Tensor, Weights } from './tensor-ops.js';

interface Entry {
  dtype: 'f32' | 'f64';
  shape: number[];
  offset: number;
}

export interface TorchFixture {
  // The JSON metadata (configs, ids, expectations that are integers); typed loosely on purpose.
  meta: Record<string, any>;
  /** One stored tensor by key, e.g. 'llama.logits'. */
  tensor(key: string): Tensor;
  /** Rows of a 2-D (or the last two dims of a higher-D) tensor as Float64Array views. */
  rows(key: string): Float64Array[];
  /** All weights of a group ('clip', 'llama', 'mistral', 'proj_v0', 'proj_v15') under their HF names. */
  weights(group: string): Weights;
}

export function loadTorchFixture(): TorchFixture {
  const dir = new URL('./fixtures/', import.meta.url);
  const meta = JSON.parse(readFileSync(fileURLToPath(new URL('torch-tiny.json', dir)), 'utf8'));
  const bin = readFileSync(fileURLToPath(new URL('torch-tiny.bin', dir)));
  const index = meta.tensors as Record<string, Entry>;
  const tensor = (key: string): Tensor => {
    const e = index[key];
    if (!e) throw new Error(`fixture: no tensor ${key}`);
    const n = e.shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      data[i] = e.dtype === 'f32' ? bin.readFloatLE(e.offset + 4 * i) : bin.readDoubleLE(e.offset + 8 * i);
    }
    return { shape: e.shape, data };
  };
  return {
    meta,
    tensor,
    rows(key) {
      const t = tensor(key);
      const w = t.shape.at(-1)!;
      return Array.from({ length: t.data.length / w }, (_, i) => t.data.subarray(i * w, (i + 1) * w));
    },
    weights(group) {
      const out: Weights = new Map();
      for (const key of Object.keys(index)) {
        if (key.startsWith(`${group}/`)) out.set(key.slice(group.length + 1), tensor(key));
      }
      if (out.size === 0) throw new Error(`fixture: no weights for group ${group}`);
      return out;
    },
  };
}
