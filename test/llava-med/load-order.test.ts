/**
 * LlavaMed.load checks both files' headers before the model's weights are read: a projector that
 * would crash clip.cpp, or that does not fit the model, is refused without a single byte of the
 * model loaded (no 'model' progress is ever reported) — and Model.load is never called.
 * The NaN/Inf scan of the small tensors guards answers, not the process, so it runs while the
 * model's weights load; when it refuses a file, the model loaded beside it is freed.
 */
import t from 'tap';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LlavaMed, type LoadProgress } from '../../lib/llava-med.js';
import { Model } from '../../lib/engine/model.js';
import { cloneDoc, encodeDoc, readDoc, setKv } from '../campaign/gguf-doc.js';
import { GgufValueType as V, readGgufHeader } from '../../lib/formats/gguf.js';
import { tinyV0 } from '../helpers/tiny-llava.js';

const v0 = await tinyV0();
const dir = mkdtempSync(join(tmpdir(), 'llava-load-order-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

async function badMmproj(key: string, type: V, value: number): Promise<string> {
  const d = cloneDoc(await readDoc(v0.mmproj));
  setKv(d, key, type, value);
  const p = join(dir, `${key}-${value}.gguf`);
  writeFileSync(p, encodeDoc(d));
  return p;
}

for (const [what, key, value, code] of [
  ['a head count that does not divide the width', 'clip.vision.attention.head_count', 3, 'ERR_GGUF_CORRUPT'],
] as const) {
  t.test(`an mmproj with ${what} is refused before the model loads`, async (t) => {
    const path = await badMmproj(key, V.UINT32, value);
    const events: LoadProgress[] = [];
    const real = Model.load;
    let modelLoads = 0;
    Model.load = (...args: Parameters<typeof Model.load>) => {
      modelLoads++;
      return real.apply(Model, args);
    };
    t.teardown(() => {
      Model.load = real;
    });
    const e = await LlavaMed.load({ model: v0.model, mmproj: path, threads: 1, contextSize: 256, onProgress: (p) => events.push(p) }).then(() => undefined, (x: { code?: string }) => x);
    t.equal(e?.code, code);
    t.equal(modelLoads, 0, 'Model.load was never called');
    t.same(events.filter((p) => p.phase === 'model'), [], 'no model progress');
  });
}

t.test('a NaN in a small projector tensor is refused, and the model loaded beside the scan is freed', async (t) => {
  const path = join(dir, 'nan-mmproj.gguf');
  copyFileSync(v0.mmproj, path);
  const h = await readGgufHeader(path);
  const ti = h.tensors.find((x) => x.type === 0 && x.shape.length === 1)!;
  const fh = await open(path, 'r+');
  const nan = Buffer.alloc(4);
  nan.writeFloatLE(NaN);
  await fh.write(nan, 0, 4, ti.offset);
  await fh.close();
  const real = Model.load;
  const loaded: Model[] = [];
  Model.load = async (...args: Parameters<typeof Model.load>) => {
    const m = await real.apply(Model, args);
    loaded.push(m);
    return m;
  };
  t.teardown(() => {
    Model.load = real;
  });
  const e = await LlavaMed.load({ model: v0.model, mmproj: path, threads: 1, contextSize: 256 }).then(() => undefined, (x: { code?: string; message?: string }) => x);
  t.equal(e?.code, 'ERR_GGUF_CORRUPT');
  t.match(e?.message, /holds a non-finite value/);
  t.equal(loaded.length, 1, 'the model loaded beside the scan');
  t.ok(loaded.every((m) => m.disposed), 'the model that loaded is freed');
});
