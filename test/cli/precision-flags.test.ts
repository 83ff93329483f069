/**
 * The CLI flags of the precision choices reach the engine and the converter:
 *  - `--projector-flash-attn` (default off): clip.cpp logs the mode it runs at its warm-up encode;
 *  - `convert --fold fp16|exact` (default fp16), recorded as llava_med.fold_arithmetic; v1.5 refuses it.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { readGgufHeader } from '../../lib/formats/gguf.js';
import { childEnv, compiledCli } from '../helpers/compiled-cli.js';
import { makeTinyV0 } from '../helpers/tiny-hf.js';
import { noisePng, tinyV0 } from '../helpers/tiny-llava.js';
import { writeFile } from 'node:fs/promises';

const cli = compiledCli();
const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { env: childEnv(), encoding: 'utf8', timeout: 120_000 });

t.test('--projector-flash-attn reaches clip.cpp (default off)', async (t) => {
  const tiny = await tinyV0();
  const dir = t.testdir({});
  const img = join(dir, 'x.png');
  await writeFile(img, await noisePng(28, 28, 3));
  const args = ['score', '-m', tiny.model, '-p', tiny.mmproj, '-i', img, '-t', '1', '--quiet', '--json', '--candidates', 'yes,no', '-v', 'Is it normal?'];
  for (const [flag, want] of [[[], 'disabled'], [['--projector-flash-attn', 'on'], 'enabled'], [['--projector-flash-attn', 'off'], 'disabled']] as const) {
    const r = run([...args.slice(0, 1), ...flag, ...args.slice(1)]);
    t.equal(r.status, 0, `${flag.join(' ') || 'default'}: exit 0 ${r.stderr.slice(-200)}`);
    const line = /warmup: flash attention is (enabled|disabled)/.exec(r.stderr);
    t.equal(line?.[1], want, `${flag.join(' ') || 'default'}: the encoder's flash attention is ${want}`);
  }
  const bad = run(['score', '--projector-flash-attn', 'fast', ...args.slice(1)]);
  t.not(bad.status, 0, 'an unknown mode is a usage error');
  t.match(bad.stderr, /projector-flash-attn/, '... naming the flag');
});

t.test('convert --fold: fp16 by default, exact on request, refused for v1.5', async (t) => {
  const dir = t.testdir({});
  const tiny = await makeTinyV0({ dir: join(dir, 'in'), seed: 8 });
  const base = ['convert', '--base', tiny.dirs.base, '--delta', tiny.dirs.delta, '--vision', tiny.dirs.vision, '--name', 'm', '--quiet'];
  for (const [flag, want] of [[[], 'fp16'], [['--fold', 'exact'], 'exact']] as const) {
    const out = join(dir, `out-${want}`);
    const r = run([...base, ...flag, '-o', out]);
    t.equal(r.status, 0, `${flag.join(' ') || 'default'}: exit 0 ${r.stderr.slice(-200)}`);
    const h = await readGgufHeader(join(out, 'm.gguf'));
    t.equal(h.kv.get('llava_med.fold_arithmetic')?.value, want, `llava_med.fold_arithmetic = ${want}`);
  }
  const v15 = run(['convert', '--model', tiny.dirs.delta, '--vision', tiny.dirs.vision, '--fold', 'exact', '-o', join(dir, 'v15'), '--quiet']);
  t.equal(v15.status, 2, 'v1.5 with --fold: usage error (exit 2)');
  t.match(v15.stderr, /--fold applies to v0/, '... saying why');
});
