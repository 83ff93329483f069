/**
 * LlavaMed.load checks both files' headers before the model's weights are read: a projector that
 * would crash clip.cpp, or that does not fit the model, is refused without a single byte of the
 * model loaded (no 'model' progress is ever reported) — and Model.load is never called.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LlavaMed, type LoadProgress } from '../../lib/llava-med.js';
import { Model } from '../../lib/engine/model.js';
import { cloneDoc, encodeDoc, readDoc, setKv } from '../campaign/gguf-doc.js';
import { GgufValueType as V } from '../../lib/formats/gguf.js';
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
