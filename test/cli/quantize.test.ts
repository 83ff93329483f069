/** `llava-med quantize` F32 → Q8_0 gives a loadable model; quantize({ signal }) abort leaves nothing behind. */
import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LlavaMed } from '../../lib/llava-med.js';
import { readGgufHeader } from '../../lib/formats/gguf.js';
import { noisePng, tinyV0 } from '../helpers/tiny-llava.js';
import { makeTinyLlamaGguf } from '../helpers/tiny-gguf.js';
import { REPO } from '../helpers/tiny-llava.js';
import { ensureDist, runCli } from './util.js';

let dir = '';
t.before(async () => {
  ensureDist();
  dir = await mkdtemp(join(tmpdir(), 'llava-med-quant-'));
});
t.teardown(() => rm(dir, { recursive: true, force: true }));

t.test('quantize F32 → Q8_0 via the CLI', async (t) => {
  const v0 = await tinyV0();
  const out = join(dir, 'q8.gguf');
  // Three runs: the child's IPC race (a llama.cpp log line sent after disconnect) failed most runs.
  for (let i = 0; i < 3; i++) {
    const r = await runCli(['quantize', v0.model, out, '--type', 'Q8_0', '-t', '1']);
    t.equal(r.code, 0, `run ${i + 1} exits 0${r.code === 0 ? '' : `: ${r.stderr.slice(-600)}`}`);
    t.match(r.stdout, /q8\.gguf \([\d.]+ MB\)/, `run ${i + 1} prints the output path and size`);
  }
  const h = await readGgufHeader(out);
  t.equal(Number(h.kv.get('general.file_type')?.value), 7, 'file type Q8_0');
  t.equal(String(h.kv.get('llava_med.variant')?.value), 'v0', 'LLaVA-Med metadata kept');
  const info = JSON.parse((await runCli(['info', out, '--json'])).stdout) as { fileType: string; tensorTypes: Record<string, number> };
  t.equal(info.fileType, 'Q8_0');
  t.ok((info.tensorTypes.Q8_0 ?? 0) > 0, 'some tensors are Q8_0');
  const med = await LlavaMed.load({ model: out, mmproj: v0.mmproj, threads: 1, contextSize: 512 });
  t.teardown(() => med.dispose());
  const img = await noisePng(30, 30, 91);
  const a = await med.ask(img, 'What is shown?', { temperature: 0, maxTokens: 6, stop: [] });
  t.equal(a.tokens.length, 6, 'the quantized model answers');
  const same = await med.ask(img, 'What is shown?', { temperature: 0, maxTokens: 6, stop: [] });
  t.same(same.tokens, a.tokens, 'deterministically');
  t.same((await readdir(dir)).sort(), ['q8.gguf'], 'no temporary files left');
  const bad = await runCli(['quantize', v0.model, join(dir, 'x.gguf'), '--type', 'Q3_K']);
  t.not(bad.code, 0, 'an unknown type is refused');
  t.notOk(existsSync(join(dir, 'x.gguf')));
  const same2 = await runCli(['quantize', v0.model, v0.model, '--type', 'Q8_0']);
  t.not(same2.code, 0, 'output = input is refused');
});

t.test('Q4_0 and IQ4_NL (the types ggml repacks at load): file type, tensor types, the model answers', async (t) => {
  const v0 = await tinyV0();
  const { quantize } = (await import(pathToFileURL(join(REPO, 'dist', 'convert', 'quantize.js')).href)) as typeof import('../../lib/convert/quantize.js');
  for (const [type, ftype, ggml] of [['Q4_0', 2, 2], ['IQ4_NL', 25, 20]] as const) {
    const out = join(dir, `${type}.gguf`);
    await quantize({ input: v0.model, output: out, type, threads: 1 });
    const h = await readGgufHeader(out);
    t.equal(Number(h.kv.get('general.file_type')?.value), ftype, `${type}: llama_ftype ${ftype}`);
    t.ok(h.tensors.some((x) => /^blk\.\d+\.ffn_up\.weight$/.test(x.name) && x.type === ggml), `${type}: the FFN weights are GGML type ${ggml}`);
    const med = await LlavaMed.load({ model: out, mmproj: v0.mmproj, threads: 1, contextSize: 512 });
    const a = await med.ask(await noisePng(30, 30, 91), 'What is shown?', { temperature: 0, maxTokens: 4, stop: [] });
    await med.dispose();
    t.equal(a.tokens.length, 4, `${type}: the quantized model answers`);
  }
});

t.test('quantize({ signal }) abort: ERR_ABORTED, no output, no temp file', async (t) => {
  // A ~140 MB F32 model so quantizing takes a while; the compiled module (its child is dist/convert/quantize-child.js).
  const big = await makeTinyLlamaGguf(undefined, { mode: 'random', nEmbd: 512, nLayer: 4, nFf: 1024, nHead: 8 });
  const { quantize } = (await import(pathToFileURL(join(REPO, 'dist', 'convert', 'quantize.js')).href)) as typeof import('../../lib/convert/quantize.js');
  const outDir = join(dir, 'abort');
  const out = join(outDir, 'q.gguf');
  const ac = new AbortController();
  let progress = 0;
  const e = await quantize({
    input: big.path, output: out, type: 'Q8_0', threads: 1, signal: ac.signal,
    onProgress: () => {
      progress++;
      ac.abort();
    },
  }).then(() => undefined, (err: unknown) => err);
  t.ok(progress >= 1, 'it had started (progress reported)');
  t.equal((e as { code?: string } | undefined)?.code, 'ERR_ABORTED', 'rejects with ERR_ABORTED');
  t.notOk(existsSync(out), 'no output file');
  t.same(existsSync(outDir) ? await readdir(outDir) : [], [], 'no temporary file left');
  const pre = await quantize({ input: big.path, output: out, type: 'Q8_0', signal: AbortSignal.abort() }).then(() => undefined, (err: unknown) => err);
  t.equal((pre as { code?: string } | undefined)?.code, 'ERR_ABORTED', 'an already-aborted signal');
  t.notOk(existsSync(out));
});
