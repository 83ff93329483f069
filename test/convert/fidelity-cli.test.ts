/**
 * The fidelity gate once through the real command line: `llava-med convert` (lib/cli/main.ts, the
 * package's bin) on the tiny v0 checkpoints (sharded .bin) must write the same tensors as the library
 * call and pass the F32 bounds against the float64 reference.
 *
 * The CLI runs as plain JavaScript in a child process. Rather than trusting a dist/ that may be stale
 * (or half-written by a concurrent build), the test transpiles lib/ with the TypeScript compiler into
 * a private folder keyed by the sources' hash, laid out like the package (dist/ + package.json), under
 * node_modules/.cache so the CLI's dependencies resolve from the project's node_modules.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { convertV0 } from '../../lib/convert/index.js';
import { compiledCli } from '../helpers/compiled-cli.js';
import { readGgufHeader, readGgufTensorData } from '../../lib/formats/gguf.js';
import { makeTinyV0, TINY_CLIP } from '../helpers/tiny-hf.js';
import { clipMeanStd, fmt, normalizedPixels, promptEmbeds, refGreedy, runEngine, runReference, testImage, type PromptIds, type RefModel } from '../helpers/fidelity.js';
import { compare, type ClipVisionConfig, type LlamaConfig } from '../reference/index.js';

const root = t.testdir({});
const tiny = await makeTinyV0({ dir: join(root, 'in'), format: 'bin', shards: 2, seed: 11 });

t.test('llava-med convert (v0, F32) writes what convertV0 writes and passes the gate', async (t) => {
  const cli = compiledCli();
  const out = join(root, 'cli-out');
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // no tap loader in the child: it runs the compiled JavaScript
  for (const k of Object.keys(env)) if (k.startsWith('TAP') || k.startsWith('NYC') || k.startsWith('_TAPJS')) delete env[k];
  const p = spawnSync(process.execPath, [cli, 'convert', '--base', tiny.dirs.base, '--delta', tiny.dirs.delta, '--vision', tiny.dirs.vision, '-o', out, '--name', 'tiny', '--outtype', 'f32'], {
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  t.equal(p.status, 0, `exit status 0 (stderr: ${p.stderr.slice(-500)})`);
  const model = join(out, 'tiny.gguf');
  const mmproj = join(out, 'mmproj-tiny.gguf');
  t.same(p.stdout.trim().split('\n').slice(-2), [model, mmproj], 'prints the two paths');
  t.same(readdirSync(out).sort(), ['mmproj-tiny.gguf', 'tiny.gguf'], 'nothing else in the out folder');

  const lib = await convertV0({ ...tiny.dirs, out: join(root, 'lib-out'), name: 'tiny', outtype: 'f32' });
  for (const [a, b] of [[model, lib.model], [mmproj, lib.mmproj]] as const) {
    const ha = await readGgufHeader(a);
    const hb = await readGgufHeader(b);
    t.same(ha.tensors.map((x) => [x.name, x.type, x.shape]), hb.tensors.map((x) => [x.name, x.type, x.shape]), `${a}: same tensor table as the library's`);
    let differing = 0;
    for (const x of ha.tensors) if (!(await readGgufTensorData(ha, x.name)).equals(await readGgufTensorData(hb, x.name))) differing++;
    t.equal(differing, 0, 'same tensor bytes');
  }

  const m: RefModel = {
    version: 'v0',
    llm: tiny.folded,
    llmCfg: tiny.config.llm as unknown as LlamaConfig,
    projector: tiny.folded,
    vision: tiny.vision,
    clipCfg: tiny.config.clip as unknown as ClipVisionConfig,
    imStart: tiny.config.tokens.imStart,
    imEnd: tiny.config.tokens.imEnd,
  };
  const tk = tiny.config.tokens;
  const ids: PromptIds = { before: [tk.promptBos, 262, 270, 281, 300, tk.imStart!], after: [tk.imEnd!, 290, 305, 277] };
  const size = TINY_CLIP.imageSize;
  const rgb = testImage(size, 7);
  const ref = runReference(m, normalizedPixels(rgb, size, await clipMeanStd(tiny.dirs.vision)), ids);
  const path = refGreedy(m, promptEmbeds(m, ids, ref.embeds), 16);
  const e = await runEngine({ model, mmproj, rgb, size, ids, greedy: 16 });
  const ce = compare(e.embeds, ref.embeds).relError;
  const cl = compare(e.logits, ref.logits).relError;
  t.comment(`CLI v0 F32: image embeddings rel ${fmt(ce)}, logits rel ${fmt(cl)}`);
  t.ok(ce <= 1e-3, `image embeddings ${fmt(ce)} ≤ 1e-3`);
  t.ok(cl <= 1e-3, `logits ${fmt(cl)} ≤ 1e-3`);
  t.ok(Math.min(...path.margins) > 0.01, 'reference margins not near-tied');
  t.same(e.greedy, path.ids, 'greedy 16 tokens identical');
});
