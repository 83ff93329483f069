/**
 * writeSyntheticV0 draws each tensor's values only when the writer reaches it (so the 32-layer
 * 7B-shaped bench model is written in bounded memory). The draws must happen in the same order as
 * when every tensor was made up front: the golden hashes below are the files the eager generator
 * (before the change, commit 2244f72) wrote for this seed and size.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_DIMS, writeSyntheticV0 } from '../../lib/demo/synthetic-v0.js';

t.test('same seed, same bytes as the eager generator (3 layers, 2 shards)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'llava-synth-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await writeSyntheticV0(dir, { ...DEMO_DIMS, layers: 3 }, { shards: 2, seed: 99 });
  const golden: Record<string, string> = {
    'base/model-00001-of-00002.safetensors': 'efbaa49ed3b42bdf',
    'base/model-00002-of-00002.safetensors': 'e40e83e88a1e0047',
    'delta/model-00001-of-00002.safetensors': '8032a4921f5765aa',
    'delta/model-00002-of-00002.safetensors': '847a19bb84e0484d',
    'vision/model.safetensors': '0bbd9b7afa64f485',
  };
  for (const [f, h] of Object.entries(golden)) {
    t.equal(createHash('sha256').update(readFileSync(join(dir, f))).digest('hex').slice(0, 16), h, f);
  }
});
