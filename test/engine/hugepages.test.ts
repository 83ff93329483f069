/**
 * Model weights and the KV cache on transparent huge pages (native/patches/0005): a model whose
 * weights fill a ≥ 32 MiB CPU buffer, loaded with loadMode 'none', has that buffer on 2 MiB pages
 * (the kernel's own count, AnonHugePages in /proc/self/smaps_rollup), and so does a KV cache of
 * ≥ 32 MiB; LLAVA_MED_HUGEPAGES=0 leaves both on 4 KiB pages, =weights only the weights. What the
 * kernel does depends on /sys/kernel/mm/transparent_hugepage/enabled: with `madvise` (the usual
 * distribution default) only advised memory gets huge pages, with `always` everything may, with
 * `never` nothing does — the assertions follow the mode this machine is in. Linux only.
 * A Q4_0 model's block weights are repacked by the CPU backend into a buffer of their own
 * (CPU_REPACK, q4_0_8x8 with AVX2; the weights decode streams): its mapping in /proc/self/smaps is
 * checked on its own, since that buffer type reports is_host false and was once left unadvised.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTinyLlamaGguf } from '../helpers/tiny-gguf.js';

const CHILD = fileURLToPath(new URL('./hugepages-child.mjs', import.meta.url));
const thp = (() => {
  try {
    return /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? 'never';
  } catch {
    return 'never';
  }
})();

// F32, 32004 x 384: token embedding and output 49 MB each, ~100 MB of weights in one CPU buffer.
// KV: 2 layers x 2 (K, V) x 384 wide x 12288 cells x 2 bytes (F16) = 36 MiB.
const N_EMBD = 384;
const CTX = 12288;
const { path: model } = await makeTinyLlamaGguf(undefined, { mode: 'random', seed: 5, nEmbd: N_EMBD, nHead: 6, nLayer: 2, nFf: 512, contextLength: CTX });
const weightsMb = (2 * 32004 * N_EMBD * 4) / 2 ** 20;
const kvMb = (2 * 2 * N_EMBD * CTX * 2) / 2 ** 20;
const dir = mkdtempSync(join(tmpdir(), 'llava-hp-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

async function runChild(env: Record<string, string>, modelPath: string, ctx: number) {
  const out = join(dir, `r-${Object.values(env).join('-') || 'default'}-${ctx}.json`);
  const e = { ...process.env, ...env };
  if (!('LLAVA_MED_HUGEPAGES' in env)) delete e.LLAVA_MED_HUGEPAGES;
  const child = spawn(process.execPath, [CHILD, out, modelPath, String(ctx)], { env: e, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  if (code !== 0) throw new Error(`child exited ${code}: ${err}`);
  return JSON.parse(readFileSync(out, 'utf8')) as { before: number; afterModel: number; afterContext: number; mappings: [number, number][] };
}
async function run(env: Record<string, string>) {
  const r = await runChild(env, model, CTX);
  return { weights: r.afterModel - r.before, kv: r.afterContext - r.afterModel };
}

t.test(`weights and KV cache on huge pages (THP '${thp}' on this machine)`, { skip: process.platform !== 'linux' ? 'Linux only (madvise)' : false }, async (t) => {
  const on = await run({});
  const weightsOnly = await run({ LLAVA_MED_HUGEPAGES: 'weights' });
  const off = await run({ LLAVA_MED_HUGEPAGES: '0' });
  t.comment(`huge pages, MB: default ${JSON.stringify(on)}, weights ${JSON.stringify(weightsOnly)}, off ${JSON.stringify(off)} (weights ${weightsMb.toFixed(0)} MB, KV ${kvMb.toFixed(0)} MB)`);
  if (thp === 'never') {
    t.same([on.weights, on.kv], [0, 0], "THP 'never': the advice changes nothing");
    return;
  }
  // the 2 MiB-aligned interior of each buffer: all but a few MB
  t.ok(on.weights >= weightsMb - 8, `weights: ${on.weights} MB of ${weightsMb.toFixed(0)} on huge pages`);
  t.ok(on.kv >= kvMb - 4, `KV cache: ${on.kv} MB of ${kvMb.toFixed(0)} on huge pages`);
  t.ok(weightsOnly.weights >= weightsMb - 8, 'LLAVA_MED_HUGEPAGES=weights: the weights still are');
  if (thp === 'madvise') {
    t.ok(weightsOnly.kv < 4, `LLAVA_MED_HUGEPAGES=weights: the KV cache is not (${weightsOnly.kv} MB)`);
    t.ok(off.weights < 4 && off.kv < 4, `LLAVA_MED_HUGEPAGES=0: neither is (${off.weights} / ${off.kv} MB)`);
  }
});

// Q4_0 blocks, 3 x (4 x 384² + 3 x 384 x 24576) weights at 18 bytes per 32: 46.5 MiB repacked
// (q4_0_8x8 keeps Q4_0's size). Needs AVX2 (x86) or SVE-256/i8mm, else nothing is repacked.
const FF = 24576;
const { path: q4Model } = await makeTinyLlamaGguf(undefined, { mode: 'random', seed: 6, nEmbd: N_EMBD, nHead: 6, nLayer: 3, nFf: FF, contextLength: 512, q4_0: true });
const repackKb = (3 * (4 * N_EMBD * N_EMBD + 3 * N_EMBD * FF) * 18) / 32 / 1024;
const cpuFlags = (() => {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
})();
const repacks = process.arch === 'x64' ? /\bavx2\b/.test(cpuFlags) : false;

t.test(`the repacked weights (CPU_REPACK) on huge pages (THP '${thp}')`, { skip: process.platform !== 'linux' ? 'Linux only (madvise)' : !repacks ? 'no repacked Q4_0 kernels on this CPU (x86 AVX2)' : false }, async (t) => {
  // the repack buffer's mapping: within a few MiB of its size (a 2 MiB-aligned allocation
  // carries up to 2 MiB of slack; the advice splits the mapping at the aligned interior)
  const near = (ms: [number, number][]) => ms.filter(([size]) => size >= repackKb - 4096 && size <= repackKb + 8192);
  const on = near((await runChild({}, q4Model, 512)).mappings);
  const off = near((await runChild({ LLAVA_MED_HUGEPAGES: '0' }, q4Model, 512)).mappings);
  t.comment(`mappings near ${(repackKb / 1024).toFixed(1)} MiB [size kB, AnonHugePages kB]: default ${JSON.stringify(on)}, off ${JSON.stringify(off)}`);
  if (thp === 'never') {
    t.ok(on.every(([, huge]) => huge === 0), "THP 'never': the advice changes nothing");
    return;
  }
  t.ok(on.some(([, huge]) => huge >= repackKb - 4096), 'the repack buffer: all but its unaligned edges on huge pages');
  if (thp === 'madvise') t.ok(off.length > 0 && off.every(([, huge]) => huge < 4096), 'LLAVA_MED_HUGEPAGES=0: it is not');
});
