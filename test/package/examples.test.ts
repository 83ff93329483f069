/**
 * examples/ run as a user runs them (`node examples/x.mjs`, importing the package by name), on the
 * demo model built once into a temporary cache: they cannot rot without this test failing.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { REPO } from '../helpers/tiny-llava.js';
import { cleanEnv, ensureDist } from '../cli/util.js';

ensureDist();
const cache = mkdtempSync(join(tmpdir(), 'llava-med-examples-'));
t.teardown(() => rmSync(cache, { recursive: true, force: true }));

function run(name: string): unknown {
  const r = spawnSync(process.execPath, [join(REPO, 'examples', `${name}.mjs`)], {
    cwd: REPO, encoding: 'utf8', env: cleanEnv({ XDG_CACHE_HOME: cache }), timeout: 300_000,
  });
  if (r.status !== 0) throw new Error(`examples/${name}.mjs exited ${String(r.status)}:\n${r.stderr}`);
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as unknown;
}

t.test('ask answers within the requested token budget', async (t) => {
  const a = run('ask') as { text: string; stopReason: string; generatedTokens: number };
  // The demo model is trained to answer briefly and end with "###" (a stop string), else the budget ends it.
  t.ok(a.stopReason === 'stop' || (a.stopReason === 'length' && a.generatedTokens === 32), `${a.stopReason} after ${a.generatedTokens} tokens`);
  t.ok(a.generatedTokens >= 1 && a.generatedTokens <= 32);
  t.ok(a.text.length > 0);
});

t.test('stream yields chunks', async (t) => {
  const s = run('stream') as { chunks: number };
  t.ok(s.chunks > 0, "at least one chunk streamed (the example prints its count even when the 20 s signal stops it)");
});

t.test('chat reuses the first turn in the second', async (t) => {
  const turns = run('chat') as { reusedTokens: number }[];
  t.equal(turns.length, 2);
  t.equal(turns[0].reusedTokens, 0);
  t.ok(turns[1].reusedTokens > 256, 'the image and the first turn are not decoded again');
});

t.test('score ranks the candidates', async (t) => {
  const s = run('score') as { scores: { candidate: string; logProb: number }[]; best: string };
  t.same(s.scores.map((x) => x.candidate), ['yes', 'no']);
  const max = s.scores.reduce((a, b) => (b.logProb > a.logProb ? b : a));
  t.equal(s.best, max.candidate);
  for (const x of s.scores) t.ok(x.logProb < 0);
});

t.test('batch-eval answers and scores the test set', async (t) => {
  const r = run('batch-eval') as { answered: number; paper: { open: number | null; closed: number } };
  t.equal(r.answered, 2);
  t.type(r.paper.closed, 'number');
});

t.test('convert folds, writes GGUF and quantizes', async (t) => {
  const r = run('convert') as { model: string; mmproj: string; fileType: string; kind: string };
  t.same(r, { model: 'llava-med-7b-v0.Q4_K_M.gguf', mmproj: 'mmproj-llava-med-7b-v0.gguf', fileType: 'Q4_K_M', kind: 'language model' });
});
