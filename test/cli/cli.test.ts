/** The `llava-med` command, run as a child process on the tiny models. */
import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LlavaMed } from '../../lib/llava-med.js';
import { RESEARCH_USE_NOTICE } from '../../lib/notice.js';
import { noisePng, tinyV0, tinyV15 } from '../helpers/tiny-llava.js';
import { ensureDist, runCli } from './util.js';

const Q = 'What is shown in this image?';
let dir = '';

t.before(async () => {
  ensureDist();
  dir = await mkdtemp(join(tmpdir(), 'llava-med-cli-'));
  await writeFile(join(dir, 'img.png'), await noisePng(34, 30, 81));
});
t.teardown(() => rm(dir, { recursive: true, force: true }));

t.test('--help shows the research-use notice', async (t) => {
  const r = await runCli(['--help']);
  t.equal(r.code, 0);
  t.ok(r.stdout.includes(RESEARCH_USE_NOTICE), 'notice in the help text');
  for (const cmd of ['ask', 'score', 'info', 'convert', 'quantize', 'demo']) t.match(r.stdout, new RegExp(`\\b${cmd}\\b`), `lists ${cmd}`);
  const bad = await runCli(['no-such-command']);
  t.not(bad.code, 0, 'an unknown command fails');
});

t.test('info on the tiny GGUFs (text and --json)', async (t) => {
  const v0 = await tinyV0();
  const j = await runCli(['info', v0.model, '--json']);
  t.equal(j.code, 0, j.stderr);
  const info = JSON.parse(j.stdout) as Record<string, unknown>;
  t.equal(info.architecture, 'llama');
  t.equal(info.variant, 'v0');
  t.equal(info.kind, 'language model');
  t.equal(info.fileType, 'F32');
  t.equal(info.embeddingLength, 64);
  t.equal(info.layers, 2);
  t.equal(info.vocabSize, v0.ids.nVocab);
  t.equal(Number(info.promptBos), 2);
  const m = await runCli(['info', v0.mmproj, '--json']);
  const mi = JSON.parse(m.stdout) as Record<string, unknown>;
  t.equal(mi.kind, 'projector (mmproj)');
  t.equal(mi.imageSize, 28);
  t.equal(mi.patchSize, 14);
  const txt = await runCli(['info', (await tinyV15()).model]);
  t.equal(txt.code, 0);
  t.match(txt.stdout, /^variant\s+v1\.5$/m, 'text mode: one key per line');
  t.match(txt.stdout, /^architecture\s+llama$/m);
  const missing = await runCli(['info', join(dir, 'nope.gguf')]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /ERR_FILE_NOT_FOUND/);
  t.equal(missing.stdout, '');
});

t.test('ask --json, ask streaming, score --json agree with the library', async (t) => {
  const v0 = await tinyV0();
  const img = join(dir, 'img.png');
  const flags = ['-m', v0.model, '-p', v0.mmproj, '-t', '1', '-i', img, '--temperature', '0', '--max-tokens', '10'];
  const med = await LlavaMed.load({ model: v0.model, mmproj: v0.mmproj, threads: 1 });
  t.teardown(() => med.dispose());
  const lib = await med.ask(img, Q, { temperature: 0, maxTokens: 10 });

  const j = await runCli(['ask', ...flags, '--json', Q]);
  t.equal(j.code, 0, j.stderr);
  const lines = j.stdout.split('\n').filter(Boolean);
  t.equal(lines.length, 1, 'one JSON line on stdout');
  const a = JSON.parse(lines[0]!) as { text: string; tokens: number[]; stopReason: string; timings: Record<string, number> };
  t.same(Object.keys(a).sort(), ['stopReason', 'text', 'timings', 'tokens']);
  t.same(a.tokens, lib.tokens, 'same tokens as the library');
  t.equal(a.text, lib.text);
  t.equal(a.stopReason, lib.stopReason);
  for (const k of ['imageEncodeMs', 'imageTokens', 'promptTokens', 'promptMs', 'generatedTokens', 'generateMs', 'totalMs']) t.type(a.timings[k], 'number', `timings.${k}`);
  t.equal(a.timings.generatedTokens, 10);

  const chunks: string[] = [];
  for await (const c of med.stream(img, Q, { temperature: 0, maxTokens: 10 })) chunks.push(c);
  const s = await runCli(['ask', ...flags, Q]);
  t.equal(s.code, 0, s.stderr);
  t.equal(s.stdout, `${chunks.join('')}\n`, 'stdout is the streamed answer and a newline, nothing else');

  const libScore = await med.score(img, Q, ['yes', 'no']);
  const sc = await runCli(['score', '-m', v0.model, '-p', v0.mmproj, '-t', '1', '-i', img, '--candidates', 'yes, no', '--json', Q]);
  t.equal(sc.code, 0, sc.stderr);
  t.same(JSON.parse(sc.stdout), libScore, 'score --json = library score');
  const sct = await runCli(['score', '-m', v0.model, '-p', v0.mmproj, '-t', '1', '-i', img, '--candidates', 'yes,no', Q]);
  const rows = sct.stdout.trim().split('\n').map((l) => l.split('\t'));
  const sorted = [...libScore].sort((x, y) => y.logProb - x.logProb);
  t.same(rows.map((r) => r[0]), sorted.map((x) => x.candidate), 'text mode: best candidate first');
  t.same(rows.map((r) => Number(r[1])), sorted.map((x) => Number(x.logProb.toFixed(4))));

  const bad = await runCli(['ask', '-m', v0.model, '-p', join(dir, 'nope.gguf'), '-i', img, Q]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /ERR_FILE_NOT_FOUND/);
  t.equal(bad.stdout, '', 'nothing on stdout on failure');
  const mism = await runCli(['ask', '-m', v0.model, '-p', (await tinyV15()).mmproj, '-i', img, Q]);
  t.match(mism.stderr, /ERR_MMPROJ_MISMATCH/);
});

t.test('convert with bad arguments', async (t) => {
  const out = join(dir, 'conv-out');
  const r = await runCli(['convert', '--base', dir, '--vision', dir, '-o', out]);
  t.not(r.code, 0, 'exits non-zero');
  t.match(r.stderr, /--delta/, 'names the missing flag');
  t.equal(r.stdout, '');
  t.notOk(existsSync(out) && (await readdir(out)).length > 0, 'no output files');
  const both = await runCli(['convert', '--model', dir, '--base', dir, '--delta', dir, '--vision', dir, '-o', out]);
  t.not(both.code, 0);
  t.match(both.stderr, /either --model/);
  const noVision = await runCli(['convert', '--model', dir, '-o', out]);
  t.not(noVision.code, 0);
  t.match(noVision.stderr, /--vision/);
  t.notOk(existsSync(out) && (await readdir(out)).length > 0, 'still no output files');
});
