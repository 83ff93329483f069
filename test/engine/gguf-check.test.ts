/**
 * The TypeScript pre-checks alone (no native code): every hand-made bad file of the campaign
 * (test/campaign/gguf-cases.ts) is refused with the expected code and by the check named in its
 * message, and the files the pre-check must let through (llama.cpp refuses them cleanly, or they
 * load) pass. The campaign (test/campaign/campaign.test.ts) runs the same files through llama.cpp
 * in child processes and proves none of them crashes or hangs.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LlavaMedError } from '../../lib/errors.js';
import { checkModelFile, checkPairing, checkProjectorFile } from '../../lib/engine/index.js';
import { tinyV0 } from '../helpers/tiny-llava.js';
import { GGUF_CASES } from '../campaign/gguf-cases.js';
import { cloneDoc, encodeDoc, readDoc } from '../campaign/gguf-doc.js';

const v0 = await tinyV0();
const base = { model: await readDoc(v0.model), mmproj: await readDoc(v0.mmproj) };
const modelInfo = await checkModelFile(v0.model);
const dir = mkdtempSync(join(tmpdir(), 'llava-gguf-check-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('the unedited pair passes', async (t) => {
  checkPairing(modelInfo, await checkProjectorFile(v0.mmproj));
  t.pass();
});

t.test('the vocabulary is checked in place: one buffer per array, not a JS value per token', async (t) => {
  for (const k of ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type']) {
    const kv = modelInfo.header.kv.get(k)!;
    t.ok(kv.compact && kv.compact.length === modelInfo.header.kv.get('llama.vocab_size')?.value, `${k} read compact (${kv.compact?.data.length} bytes)`);
  }
});

let i = 0;
for (const c of GGUF_CASES) {
  t.test(`${c.kind}: ${c.name}`, async (t) => {
    const d = cloneDoc(base[c.kind]);
    const out = c.edit(d);
    const path = join(dir, `case-${i++}.gguf`);
    writeFileSync(path, out ?? encodeDoc(d));
    let err: unknown;
    try {
      if (c.kind === 'model') await checkModelFile(path);
      else checkPairing(modelInfo, await checkProjectorFile(path));
    } catch (e) {
      err = e;
    }
    if (c.ts === undefined) {
      t.equal(err, undefined, `passes the pre-check (${err instanceof Error ? err.message : ''})`);
      return;
    }
    t.ok(err instanceof LlavaMedError, `a LlavaMedError (${String(err)})`);
    t.equal((err as LlavaMedError).code, c.ts, 'the expected code');
    if (c.msg) t.match((err as Error).message, c.msg, 'refused by the expected check');
  });
}

t.test("Model.load checks a file itself unless it is handed that very file's check (LlavaMed.load's one parse)", async (t) => {
  const { Model } = await import('../../lib/engine/index.js');
  // a file the pre-check refuses (and llama.cpp would abort on), handed the check of another file
  const c = GGUF_CASES.find((x) => x.kind === 'model' && x.ts === 'ERR_GGUF_CORRUPT')!;
  const d = cloneDoc(base.model);
  const out = c.edit(d);
  const path = join(dir, 'handed-another-check.gguf');
  writeFileSync(path, out ?? encodeDoc(d));
  await t.rejects(Model.load(path, { checked: modelInfo }), { code: 'ERR_GGUF_CORRUPT' }, `refused by its own check (${c.name})`);
  // handed its own check: loads without parsing again
  const m = await Model.load(v0.model, { checked: modelInfo });
  t.equal(m.file, modelInfo, 'the check handed in is the one kept');
  await m.dispose();
});
