/**
 * `pull` end to end against the stand-in Hub: tiny checkpoints in the released layouts (v1.5 as
 * sharded safetensors; v0 base + delta as torch .bin shards; a repo of ready GGUF files) are
 * downloaded, converted, quantized and registered; the registered name loads and answers — the same
 * answer as the model converted by hand from the original folders — and a second pull downloads
 * nothing.
 */
import t, { type Test } from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertV15 } from '../../lib/convert/index.js';
import { quantize } from '../../lib/convert/quantize.js';
import { readGgufHeader, readGgufTensorData } from '../../lib/formats/gguf.js';
import { LlavaMed } from '../../lib/llava-med.js';
import { listModels, pull, removeModel, type PullOptions } from '../../lib/pull/index.js';
import { ensureDist, runCli } from '../cli/util.js';
import { HubServer, filesFromDir } from '../helpers/hub-server.js';
import { makeTinyV0, makeTinyV15 } from '../helpers/tiny-hf.js';
import { noisePng, tinyV0 } from '../helpers/tiny-llava.js';

let hub: HubServer;
let root = '';
let img = '';
const V15 = 'microsoft/llava-med-v1.5-mistral-7b';
const CLIP336 = 'openai/clip-vit-large-patch14-336';
let v15Dirs: { model: string; vision: string };

t.before(async () => {
  ensureDist();
  hub = await HubServer.start();
  root = await mkdtemp(join(tmpdir(), 'llava-med-pull-'));
  const tiny = await makeTinyV15({ dir: join(root, 'src-v15'), seed: 5 });
  v15Dirs = tiny.dirs;
  hub.addRepo(V15, [...(await filesFromDir(tiny.dirs.model)), { path: 'README.md', data: Buffer.from('# card\n') }]);
  // The CLIP repos hold the same weights in four formats: only the safetensors may be fetched.
  hub.addRepo(CLIP336, [
    ...(await filesFromDir(tiny.dirs.vision)),
    { path: 'tf_model.h5', data: Buffer.alloc(1000, 1) },
    { path: 'flax_model.msgpack', data: Buffer.alloc(1000, 2) },
    { path: 'pytorch_model.bin', data: Buffer.alloc(1000, 3) },
  ]);
  img = join(root, 'img.png');
  await writeFile(img, await noisePng(40, 36, 3));
});
t.teardown(async () => {
  await hub.close();
  await rm(root, { recursive: true, force: true });
});

let n = 0;
function opts(o: Partial<PullOptions> & { source: string }): PullOptions & { modelsDir: string; cacheDir: string } {
  n++;
  return { endpoint: hub.url, cacheDir: join(root, `hf-${n}`), modelsDir: join(root, `models-${n}`), env: {}, token: undefined, offline: false, threads: 1, retry: { baseDelayMs: 5 }, ...o };
}

const fetchedFiles = (from: number) =>
  hub.requests.slice(from).filter((q) => q.path.includes('/resolve/') || q.server === 'cdn').map((q) => decodeURIComponent(q.path.split('?')[0]).replace(/^.*\//, ''));

async function tensorsEqual(t: Test, a: string, b: string): Promise<void> {
  const [ha, hb] = [await readGgufHeader(a), await readGgufHeader(b)];
  t.same(ha.tensors.map((x) => x.name), hb.tensors.map((x) => x.name), 'same tensors');
  let same = true;
  for (const x of ha.tensors) if (!(await readGgufTensorData(ha, x.name)).equals(await readGgufTensorData(hb, x.name))) same = false;
  t.ok(same, 'every tensor byte-identical');
}

t.test('v1.5: licence first, then download → convert → quantize → register; the name answers as the hand-made model does', async (t) => {
  const o = opts({ source: 'v1.5', quant: ['Q8_0', 'F16'] });
  const before = hub.requests.length;
  await t.rejects(pull(o), { code: 'ERR_LICENSE', message: /--accept-license.*RESEARCH USE ONLY/ });
  t.equal(hub.requests.length, before, 'nothing requested before the terms are accepted');

  const phases = new Set<string>();
  const r = await pull({ ...o, acceptLicense: true, onProgress: (p) => phases.add(p.phase) });
  t.same(r.models.map((m) => m.name), ['llava-med:v1.5-q8_0', 'llava-med:v1.5-f16']);
  t.same([...phases], ['resolve', 'download', 'convert', 'quantize', 'register']);
  const got = fetchedFiles(before);
  t.notOk(got.some((f) => /tf_model|flax|pytorch_model|README/.test(f)), 'only the safetensors checkpoint and configs are fetched');
  t.ok(got.includes('model-00001-of-00002.safetensors'));
  t.same(readdirSync(o.modelsDir).filter((d) => d.startsWith('.') && d !== '.licenses.json'), [], 'no work folders left');

  // Reference: the same converter and quantizer run by hand on the original folders.
  const ref = join(root, 'ref-v15');
  const conv = await convertV15({ ...v15Dirs, out: ref, name: 'ref', outtype: 'f16' });
  await quantize({ input: conv.model, output: join(ref, 'q8.gguf'), type: 'Q8_0', threads: 1 });
  await tensorsEqual(t, r.models[0].model, join(ref, 'q8.gguf'));
  await tensorsEqual(t, r.models[1].model, conv.model);
  await tensorsEqual(t, r.models[0].mmproj, conv.mmproj);
  const h = await readGgufHeader(r.models[0].model);
  const commit = r.models[0].manifest.sources.find((s) => s.role === 'model')!.commit!;
  const kv = (k: string) => String(h.kv.get(k)?.value);
  t.same([kv('llava_med.source.model.repo'), kv('llava_med.source.model.revision'), kv('llava_med.source.model.commit')], [V15, 'main', commit], 'the GGUF records repo, revision and commit');
  t.equal(kv('llava_med.source.vision.repo'), CLIP336);
  const hp = await readGgufHeader(r.models[0].mmproj);
  t.equal(String(hp.kv.get('llava_med.source.model.commit')?.value), commit, 'so does the mmproj');

  const q = 'What is shown?';
  const g = { temperature: 0, maxTokens: 5, stop: [] };
  const refMed = await LlavaMed.load({ model: join(ref, 'q8.gguf'), mmproj: conv.mmproj, threads: 1, contextSize: 512 });
  const expected = await refMed.ask(img, q, g);
  await refMed.dispose();
  process.env.LLAVA_MED_MODELS = o.modelsDir;
  t.teardown(() => void delete process.env.LLAVA_MED_MODELS);
  const med = await LlavaMed.load({ model: 'llava-med:v1.5-q8_0', threads: 1, contextSize: 512 });
  const a = await med.ask(img, q, g);
  await med.dispose();
  t.same(a.tokens, expected.tokens, 'LlavaMed.load by name, no mmproj given: same tokens as the hand-made model');
  t.ok(a.tokens.length > 0);

  const cli = await runCli(['ask', '-m', 'llava-med:v1.5-q8_0', '-i', img, '--temperature', '0', '--max-tokens', '5', q], { env: { LLAVA_MED_MODELS: o.modelsDir } });
  t.equal(cli.code, 0, cli.stderr);
  t.equal(cli.stdout.trim(), expected.text.trim(), '`ask -m <name>` answers the same');

  const again = hub.requests.length;
  const r2 = await pull({ ...o, acceptLicense: false });
  t.ok(r2.upToDate, 'second pull: up to date (the accepted licence is remembered)');
  t.equal(r2.bytesFetched, 0);
  t.same(fetchedFiles(again), [], 'second pull downloads nothing');

  const offline = hub.requests.length;
  t.ok((await pull({ ...o, offline: true })).upToDate, 'HF_HUB_OFFLINE: up to date from the cache');
  t.equal(hub.requests.length, offline, 'offline: not one request');

  // Another name from the same cached files, then --delete-source: converted without a download,
  // and the checkpoint's blobs leave the HF cache afterwards.
  const other = hub.requests.length;
  const r3 = await pull({ ...o, quant: 'Q8_0', name: 'again', keepSource: false });
  t.same(r3.models.map((m) => m.name), ['llava-med:again-q8_0']);
  t.same(fetchedFiles(other), [], 'converted from the cache');
  const snapDir = join(o.cacheDir, `models--${V15.replace('/', '--')}`, 'snapshots', commit);
  t.notOk(existsSync(join(snapDir, 'model-00001-of-00002.safetensors')), '--delete-source removed the downloaded checkpoint');
  t.same(readdirSync(join(o.cacheDir, `models--${V15.replace('/', '--')}`, 'blobs')), [], 'and its blobs');
  await removeModel('llava-med:again-q8_0', o.modelsDir);

  const list = await runCli(['list', '--json'], { env: { LLAVA_MED_MODELS: o.modelsDir } });
  t.same((JSON.parse(list.stdout) as { name: string }[]).map((m) => m.name), ['llava-med:v1.5-f16', 'llava-med:v1.5-q8_0']);
  const rmr = await runCli(['rm', 'llava-med:v1.5-f16'], { env: { LLAVA_MED_MODELS: o.modelsDir } });
  t.equal(rmr.code, 0, rmr.stderr);
  t.same((await listModels(o.modelsDir)).map((m) => m.name), ['llava-med:v1.5-q8_0']);
  await t.rejects(LlavaMed.load({ model: 'llava-med:v1.5-f16' }), { code: 'ERR_MODEL_NOT_FOUND', message: /llava-med list/ });
  await t.rejects(removeModel('llava-med:v1.5-f16', o.modelsDir), { code: 'ERR_MODEL_NOT_FOUND' });
});

t.test('v0-vqarad --base <repo> through the CLI (torch .bin shards), default Q4_K_M; a Llama-2 base is refused before the weights move', async (t) => {
  const tiny = await makeTinyV0({ dir: join(root, 'src-v0'), seed: 9, format: 'bin', shards: 2 });
  hub.addRepo('katielink/llava-med-7b-vqarad-delta', await filesFromDir(tiny.dirs.delta));
  hub.addRepo('openai/clip-vit-large-patch14', await filesFromDir(tiny.dirs.vision));
  hub.addRepo('someone/llama-7b', await filesFromDir(tiny.dirs.base));
  const bad = await makeTinyV0({ dir: join(root, 'src-v0-bad'), seed: 9, format: 'bin', break: 'llama2-base' });
  hub.addRepo('someone/llama-2-7b', await filesFromDir(bad.dirs.base));

  const o = opts({ source: 'v0-vqarad' });
  const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: o.cacheDir, LLAVA_MED_MODELS: o.modelsDir };
  const noBase = await runCli(['pull', 'v0-vqarad', '--accept-license', '-q'], { env });
  t.equal(noBase.code, 1);
  t.match(noBase.stderr, /ERR_INVALID_ARGUMENT: .*--base/);

  const before = hub.requests.length;
  const wrong = await runCli(['pull', 'v0-vqarad', '--base', 'someone/llama-2-7b', '--accept-license', '-q'], { env });
  t.match(wrong.stderr, /ERR_WRONG_BASE/, wrong.stderr);
  t.notOk(fetchedFiles(before).some((f) => f.endsWith('.bin')), 'no weights downloaded for a wrong base');

  const r = await runCli(['pull', 'v0-vqarad', '--base', 'someone/llama-7b', '--accept-license', '-t', '1'], { env, timeoutMs: 180_000 });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.trim(), 'llava-med:v0-vqarad-q4_k_m');
  const ask = await runCli(['ask', '-m', 'llava-med:v0-vqarad-q4_k_m', '-i', img, '--temperature', '0', '--max-tokens', '4', '--json', 'What is shown?'], { env });
  t.equal(ask.code, 0, ask.stderr);
  const a = JSON.parse(ask.stdout) as { tokens: number[] };
  t.ok(a.tokens.length > 0, 'the registered v0 model answers');
  const h = await readGgufHeader((await listModels(o.modelsDir))[0].model);
  t.equal(Number(h.kv.get('general.file_type')?.value), 15, 'Q4_K_M');
});

t.test('a repo of ready GGUF files: --file picks the model, the mmproj is found, registered where it lies', async (t) => {
  const v0 = await tinyV0();
  const { readFile } = await import('node:fs/promises');
  hub.addRepo('someone/LLaVA-Med-GGUF', [
    { path: 'llava-med-tiny-Q8_0.gguf', data: await readFile(v0.model) },
    { path: 'llava-med-tiny-F32.gguf', data: await readFile(v0.model) },
    { path: 'mmproj-llava-med-tiny-f16.gguf', data: await readFile(v0.mmproj) },
  ]);
  const o = opts({ source: 'someone/LLaVA-Med-GGUF', acceptLicense: true });
  await t.rejects(pull(o), { code: 'ERR_INVALID_ARGUMENT', message: /--file <pattern> .*llava-med-tiny-Q8_0\.gguf/ });
  await t.rejects(pull({ ...o, files: ['*.gguf'] }), { code: 'ERR_HUB_NOT_FOUND', message: /matches 2 model GGUF/ });
  const r = await pull({ ...o, files: ['*Q8_0.gguf'] });
  t.equal(r.models[0].name, 'llava-med-gguf:q8_0');
  t.match(r.models[0].mmproj, /mmproj-llava-med-tiny-f16\.gguf$/);
  process.env.LLAVA_MED_MODELS = o.modelsDir;
  t.teardown(() => void delete process.env.LLAVA_MED_MODELS);
  const med = await LlavaMed.load({ model: 'llava-med-gguf:q8_0', threads: 1, contextSize: 512 });
  const a = await med.ask(img, 'What is shown?', { temperature: 0, maxTokens: 3, stop: [] });
  await med.dispose();
  const ref = await LlavaMed.load({ model: v0.model, mmproj: v0.mmproj, threads: 1, contextSize: 512 });
  t.same(a.tokens, (await ref.ask(img, 'What is shown?', { temperature: 0, maxTokens: 3, stop: [] })).tokens, 'same answer as the served files');
  await ref.dispose();
  const again = hub.requests.length;
  t.ok((await pull({ ...o, files: ['*Q8_0.gguf'] })).upToDate);
  t.same(fetchedFiles(again), []);
});

t.test('abort during conversion: ERR_ABORTED, nothing registered, no work files', async (t) => {
  const o = opts({ source: 'v1.5', acceptLicense: true, quant: 'Q8_0' });
  const ac = new AbortController();
  await t.rejects(pull({ ...o, signal: ac.signal, onProgress: (p) => p.phase === 'convert' && p.tensorsDone > 0 && ac.abort() }), { code: 'ERR_ABORTED' });
  t.same(await listModels(o.modelsDir), []);
  t.same(readdirSync(o.modelsDir).filter((d) => d !== '.licenses.json'), [], 'no .work or .staging folder left');
  t.ok(existsSync(o.cacheDir), 'the downloads stay in the cache for the next try');
});

t.test("both repositories fail to download: the model repository's error is reported, not the first to fail", async (t) => {
  // The model's config.json fails late (three 503s, 150 ms apart); the vision repository's at once.
  const o = opts({ source: 'v1.5', acceptLicense: true, quant: 'Q8_0', retry: { retries: 2, baseDelayMs: 150, maxDelayMs: 150 } });
  for (let i = 0; i < 3; i++) hub.fault(V15, 'config.json', { kind: 'status', status: 503 });
  hub.fault(CLIP336, 'config.json', { kind: 'status', status: 404 });
  await t.rejects(pull(o), { code: 'ERR_HUB_NETWORK', message: new RegExp(`${V15}.*config\\.json.*HTTP 503.*gave up after 3 tries`) });
  t.equal(hub.pendingFaults(CLIP336, 'config.json'), 0, 'the vision repository was tried (and failed first)');
  t.same(await listModels(o.modelsDir), []);
});

t.test('not enough space for download + conversion: refused before any file moves', async (t) => {
  const repo = 'microsoft/llava-med-v1.5-mistral-7b';
  const o = opts({ source: 'v1.5', acceptLicense: true });
  hub.announce(repo, 'model-00002-of-00002.safetensors', { size: 5e14 });
  t.teardown(() => hub.announce(repo, 'model-00002-of-00002.safetensors', {}));
  const before = hub.requests.length;
  await t.rejects(pull(o), { code: 'ERR_DISK_SPACE', message: /needs about .* to download, .* to convert and quantize/ });
  t.same(fetchedFiles(before), []);
});

t.test('on a terminal the CLI shows the terms and asks; n refuses, y is remembered (script(1) gives it a pty)', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { CLI } = await import('../cli/util.js');
  const { cleanEnv } = await import('../cli/util.js');
  const o = opts({ source: 'v1.5' });
  const env = cleanEnv({ LLAVA_MED_MODELS: o.modelsDir, HF_HUB_CACHE: o.cacheDir, HF_HUB_OFFLINE: '1' });
  const run = (answer: string) => spawnSync('script', ['-qec', `"${process.execPath}" "${CLI}" pull v1.5`, '/dev/null'], { input: answer, env, encoding: 'utf8', timeout: 60_000 });
  const no = run('n\n');
  t.match(no.stdout, /RESEARCH USE ONLY[\s\S]*Do you accept these terms\? \[y\/N\]/, 'the terms and the question are shown');
  t.match(no.stdout, /ERR_LICENSE: .*declined, so nothing was downloaded/);
  t.notOk(existsSync(join(o.modelsDir, '.licenses.json')), 'nothing recorded');
  const yes = run('y\n');
  t.match(yes.stdout, /ERR_HUB_NOT_FOUND: HF_HUB_OFFLINE/, 'accepted: it goes on to the Hub (offline here)');
  t.ok(existsSync(join(o.modelsDir, '.licenses.json')), 'acceptance recorded');
  const again = run('');
  t.notMatch(again.stdout, /Do you accept/, 'not asked again');
});
