/**
 * Nothing left behind: `convert` and `quantize` killed with SIGKILL at random points (after their
 * temporary output exists) leave no file once the next run into the same folder is done; the quantize
 * child dies with its parent and removes its temporary itself; SIGTERM aborts cleanly (no temp at all).
 * Before: every killed convert left a hidden .<name>.gguf.<hex>.tmp forever, and a killed quantize left
 * its child running, which then wrote a complete .tmp-<pid>-<ts> that nobody removed.
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_DIMS, writeSyntheticV0 } from '../../lib/demo/synthetic-v0.js';
import { rng } from '../../lib/demo/rng.js';
import { CLI, cleanEnv, ensureDist, runCli } from './util.js';
import { REPO } from '../helpers/tiny-llava.js';
import { makeTinyLlamaGguf } from '../helpers/tiny-gguf.js';

let dir = '';
let src: { base: string; delta: string; vision: string };
t.before(async () => {
  ensureDist();
  dir = await mkdtemp(join(tmpdir(), 'llava-med-leftovers-'));
  src = await writeSyntheticV0(join(dir, 'src'), DEMO_DIMS, { seed: 7 });
});
t.teardown(() => rm(dir, { recursive: true, force: true }));

const isTemp = (n: string) => n.endsWith('.tmp') || n.includes('.tmp-');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startCli(args: string[]): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { cwd: REPO, env: cleanEnv(), stdio: 'ignore' });
}

/** Waits until a temporary file shows up in `out` (or the process ends); true if one did. */
async function waitForTemp(out: string, p: ChildProcess): Promise<boolean> {
  for (;;) {
    if (p.exitCode !== null || p.signalCode !== null) return false;
    const names = await readdir(out).catch(() => [] as string[]);
    if (names.some(isTemp)) return true;
    await sleep(1);
  }
}

const exited = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('exit', () => r())));

/** Pids of processes whose command line mentions `needle` (the quantize child carries its job, with the output path). */
async function processesMentioning(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(needle)) out.push(Number(e));
  }
  return out;
}

const convertArgs = (out: string) => ['convert', '--base', src.base, '--delta', src.delta, '--vision', src.vision, '-o', out, '--name', 'm', '--outtype', 'f32'];

t.test('convert killed with SIGKILL at random points: the next run leaves only its outputs', async (t) => {
  const out = join(dir, 'convert');
  const r = rng(20261206);
  let tempsLeft = 0;
  for (let i = 0; i < 4; i++) {
    const p = startCli(convertArgs(out));
    if (await waitForTemp(out, p)) await sleep(Math.floor(r() * 40));
    p.kill('SIGKILL');
    await exited(p);
    if ((await readdir(out).catch(() => [] as string[])).some(isTemp)) tempsLeft++;
  }
  t.ok(tempsLeft > 0, `the kills hit while a temporary file existed (${tempsLeft} of 4 left one)`);
  const ok = await runCli(convertArgs(out), { timeoutMs: 120_000 });
  t.equal(ok.code, 0, ok.code === 0 ? 'the next convert succeeds' : ok.stderr.slice(-500));
  t.same((await readdir(out)).sort(), ['m.gguf', 'mmproj-m.gguf'], 'only the outputs remain: stale temporaries of dead runs were swept');
});

t.test('quantize killed with SIGKILL: its child dies too and removes the temporary; the next run leaves only its output', async (t) => {
  // A ~140 MB F32 model, so that quantizing takes long enough for the kills to land mid-way.
  const input = (await makeTinyLlamaGguf(undefined, { mode: 'random', nEmbd: 512, nLayer: 4, nFf: 1024, nHead: 8 })).path;
  const out = join(dir, 'quant');
  const target = join(out, 'q.gguf');
  const r = rng(7);
  let hits = 0;
  let cleanedByChild = 0;
  let leftByKill = 0;
  for (let i = 0; i < 3; i++) {
    const p = startCli(['quantize', input, target, '--type', 'Q8_0', '-t', '1']);
    if (await waitForTemp(out, p)) {
      hits++;
      await sleep(Math.floor(r() * 150));
    }
    p.kill('SIGKILL');
    await exited(p);
    // Not a timing assertion: a generous guard for the orphan check.
    let left: number[] = [];
    for (let k = 0; k < 300; k++) {
      left = await processesMentioning(out);
      if (left.length === 0) break;
      await sleep(100);
    }
    t.same(left, [], `kill ${i + 1}: no quantize child outlives its parent`);
    // The child removes the temporary when its parent dies mid-quantize. A kill that lands after the
    // child finished (the parent was about to rename) leaves a complete one for the next run's sweep.
    if ((await readdir(out).catch(() => [] as string[])).some(isTemp)) leftByKill++;
    else cleanedByChild++;
  }
  t.ok(hits > 0, `the kills hit while quantizing (${hits} of 3)`);
  t.ok(cleanedByChild > leftByKill, `the child removed its temporary after ${cleanedByChild} of 3 kills (${leftByKill} landed after it had finished)`);
  const ok = await runCli(['quantize', input, target, '--type', 'Q8_0', '-t', '1'], { timeoutMs: 120_000 });
  t.equal(ok.code, 0, ok.code === 0 ? 'the next quantize succeeds' : ok.stderr.slice(-500));
  t.same(await readdir(out), ['q.gguf'], 'only the output remains');
});

t.test('SIGTERM aborts convert cleanly: exit 130, no temporary, no output', async (t) => {
  const out = join(dir, 'term');
  const p = startCli(convertArgs(out));
  t.ok(await waitForTemp(out, p), 'convert was writing');
  p.kill('SIGTERM');
  await exited(p);
  t.equal(p.exitCode, 130, 'exit code 130 (aborted)');
  t.same(await readdir(out), [], 'nothing left behind');
});
