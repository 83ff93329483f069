/**
 * The bench's steps that write files make their folders themselves, whatever --skip-* flags ran
 * before them: `npm run bench -- --skip-llamanode` on a fresh clone once stopped with "cannot open
 * output file bench/peers/bandwidth" (bench/peers/ was made by the llama.node step only). Here the
 * bandwidth tool is compiled in a folder that holds nothing but bench/bandwidth.c, as a fresh clone
 * that skipped the llama.node step does, and then run (tiny buffer, one pass).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { bandwidthTool } from '../../bench/lib/bandwidth.mjs';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const src = readFileSync(path.join(repo, 'bench', 'bandwidth.c'), 'utf8');

t.test('the bandwidth tool compiles and runs in a fresh clone without bench/peers/', async (t) => {
  const root = t.testdir({ bench: { 'bandwidth.c': src } });
  const bw = bandwidthTool(root);
  t.equal(bw, path.join(root, 'bench', 'peers', 'bandwidth'));
  const r = spawnSync(bw, ['16', '1', '1', '0'], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.ok(JSON.parse(r.stdout.trim()).bestGBs > 0, `bestGBs in ${r.stdout}`);
  // up to date: not compiled again
  const mtime = statSync(bw).mtimeMs;
  t.equal(bandwidthTool(root), bw);
  t.equal(statSync(bw).mtimeMs, mtime);
});

t.test('--rerender (bench/run.mjs, bench/quant.mjs) in a fresh clone says that a run must come first', async (t) => {
  // bench/ as a fresh clone has it (what git tracks or would: no .cache, no peers)
  const files = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', 'bench'], { cwd: repo, encoding: 'utf8' }).stdout.trim().split('\n');
  const root = t.testdir({});
  for (const f of files) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    copyFileSync(path.join(repo, f), path.join(root, f));
  }
  const r = spawnSync(process.execPath, [path.join(root, 'bench', 'run.mjs'), '--rerender', '--skip-llamanode'], { cwd: root, encoding: 'utf8' });
  t.equal(r.status, 1);
  t.match(r.stderr, /--rerender renders the last run from bench\/\.cache\/last-run\.json, which does not exist yet: run npm run bench first/);
  t.notOk(existsSync(path.join(root, 'BENCHMARKS.md')), 'no report written');
  const f = spawnSync(process.execPath, [path.join(root, 'bench', 'run.mjs'), '--full', '--rerender'], { cwd: root, encoding: 'utf8' });
  t.equal(f.status, 1);
  t.match(f.stderr, /--full --rerender renders the last --full run from bench\/\.cache\/full-size\.json, which does not exist yet: run npm run bench -- --full first/);
  t.notOk(existsSync(path.join(root, 'BENCHMARKS.md')), 'no report written');
  const q = spawnSync(process.execPath, [path.join(root, 'bench', 'quant.mjs'), '--rerender'], { cwd: root, encoding: 'utf8' });
  t.equal(q.status, 1);
  t.match(q.stderr, /--rerender renders the last run from bench\/\.cache\/quant\.json, which does not exist yet: run node bench\/quant\.mjs first/);
  t.notOk(existsSync(path.join(root, 'BENCHMARKS.md')), 'no report written');
});

t.test('LLAVA_MED_PEERS: peers built elsewhere are used as they are, a missing one is named', async (t) => {
  const bin = t.testdir({ 'llama-mtmd-cli': '', 'llama-bench': '', 'llama-server': '' });
  // in a child without cmake on PATH: if the folder were ignored, the build would fail instead of printing
  const run = (dir: string) => spawnSync(process.execPath, ['--input-type=module', '-e',
    `const { buildPeers } = await import(${JSON.stringify(path.join(repo, 'bench', 'build-peers.mjs'))}); console.log(JSON.stringify(buildPeers()));`],
  { encoding: 'utf8', env: { PATH: '', LLAVA_MED_PEERS: dir } });
  const ok = run(bin);
  t.equal(ok.status, 0, ok.stderr);
  t.same(JSON.parse(ok.stdout), { mtmdCli: path.join(bin, 'llama-mtmd-cli'), llamaBench: path.join(bin, 'llama-bench'), llamaServer: path.join(bin, 'llama-server') });
  const partial = t.testdir({ 'llama-mtmd-cli': '' });
  const bad = run(partial);
  t.not(bad.status, 0);
  t.match(bad.stderr, `LLAVA_MED_PEERS=${partial} lacks llama-bench, llama-server`);
});
