/** The registry of model names: validation, listing, a damaged manifest, and two registrations of one name at once. */
import t from 'tap';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findModel, isModelName, listModels, registerModel, removeModel, resolveModel, type ModelManifest } from '../../lib/pull/registry.js';

let root = '';
t.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'llava-med-registry-'));
});
t.teardown(() => rm(root, { recursive: true, force: true }));

const manifest = (name: string, created = new Date().toISOString()): ModelManifest => ({ name, quant: 'Q4_K_M', model: 'model.gguf', mmproj: 'mmproj.gguf', sources: [{ role: 'model', repo: 'a/b', revision: 'main', commit: 'c'.repeat(40) }], created });

async function staging(tag: string): Promise<string> {
  const d = await mkdtemp(join(root, '.staging-'));
  await writeFile(join(d, 'model.gguf'), `model ${tag}`);
  await writeFile(join(d, 'mmproj.gguf'), `mmproj ${tag}`);
  return d;
}

t.test('names are namespace:tag; paths are not names', async (t) => {
  for (const n of ['llava-med:v1.5-q4_k_m', 'llava-med-gguf:q8_0']) t.ok(isModelName(n), n);
  for (const n of ['model.gguf', './llava-med:v1', '/abs/x:y', 'a:..', 'Llava:v1', '.hidden:v1', 'x:V1', 'no-colon', 'a:b:c']) t.notOk(isModelName(n), n);
  await t.rejects(findModel('../etc:passwd', root), { code: 'ERR_INVALID_ARGUMENT' });
  await t.rejects(resolveModel('llava-med:absent', root), { code: 'ERR_MODEL_NOT_FOUND', message: /llava-med pull v1\.5/ });
});

t.test('register, list, resolve, remove; dot-folders and damaged manifests', async (t) => {
  const m = await registerModel(await staging('a'), manifest('llava-med:v1.5-q4_k_m'), root);
  t.equal(m.model, join(root, 'llava-med', 'v1.5-q4_k_m', 'model.gguf'));
  t.equal(m.bytes, 'model a'.length + 'mmproj a'.length);
  // What a registration or removal moves aside holds a valid manifest for a moment: never listed.
  const { cp } = await import('node:fs/promises');
  await cp(m.dir, join(root, 'llava-med', '.v1.5-q4_k_m.old-0-1-0'), { recursive: true });
  await cp(m.dir, join(root, '.work-x', 'tag'), { recursive: true });
  t.same((await listModels(root)).map((x) => x.name), ['llava-med:v1.5-q4_k_m'], 'moved-aside and work folders are not models');
  await mkdir(join(root, 'llava-med', 'broken'), { recursive: true });
  await writeFile(join(root, 'llava-med', 'broken', 'manifest.json'), '{"name": 3');
  await t.rejects(findModel('llava-med:broken', root), { code: 'ERR_FORMAT', message: /not a llava-med model manifest/ });
  t.same((await listModels(root)).map((x) => x.name), ['llava-med:v1.5-q4_k_m'], 'a damaged entry is left out of the list');
  await rm(m.model);
  await t.rejects(resolveModel('llava-med:v1.5-q4_k_m', root), { code: 'ERR_MODEL_NOT_FOUND', message: /is gone/ });
  await removeModel('llava-med:v1.5-q4_k_m', root);
  t.equal(await findModel('llava-med:v1.5-q4_k_m', root), undefined);
});

t.test('three registrations of one name at once: all finish, one complete entry remains, nothing left aside', async (t) => {
  // 20 rounds: the leftover this guards (a loser's moved-aside entry that could not be put back) shows
  // up in about one round in five on a quiet machine.
  const { readFile, readdir } = await import('node:fs/promises');
  for (let i = 0; i < 20; i++) {
    const tags = ['a', 'b', 'c'];
    const dirs = await Promise.all(tags.map((x) => staging(x)));
    const done = await Promise.all(tags.map((x, k) => registerModel(dirs[k]!, manifest('llava-med:race', x), root)));
    t.ok(done.every(Boolean), `round ${i}: all registrations finished`);
    const m = await resolveModel('llava-med:race', root);
    t.equal(await readFile(m.model, 'utf8'), `model ${m.manifest.created}`, `round ${i}: the entry's files belong to its manifest`);
    t.same((await readdir(join(root, 'llava-med'))).filter((d) => d.includes('.race.')), [], `round ${i}: no moved-aside entries left`);
  }
});
