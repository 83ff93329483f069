/**
 * Model weights and the KV cache on transparent huge pages (native/patches/0005): a model whose
 * weights fill a ≥ 32 MiB CPU buffer, loaded with loadMode 'none', has that buffer on 2 MiB pages
 * (the kernel's own count, AnonHugePages in /proc/self/smaps_rollup), and so does a KV cache of
 * ≥ 32 MiB; LLAVA_MED_HUGEPAGES=0 leaves both on 4 KiB pages, =weights only the weights. What the
 * kernel does depends on /sys/kernel/mm/transparent_hugepage/enabled: with `madvise` (the usual
 * distribution default) only advised memory gets huge pages, with `always` everything may, with
 * `never` nothing does — the assertions follow the mode this machine is in. Linux only.
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

async function run(env: Record<string, string>) {
  const out = join(dir, `r-${Object.values(env).join('-') || 'default'}.json`);
  const e = { ...process.env, ...env };
  if (!('LLAVA_MED_HUGEPAGES' in env)) delete e.LLAVA_MED_HUGEPAGES;
  const child = spawn(process.execPath, [CHILD, out, model, String(CTX)], { env: e, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  if (code !== 0) throw new Error(`child exited ${code}: ${err}`);
  const r = JSON.parse(readFileSync(out, 'utf8')) as { before: number; afterModel: number; afterContext: number };
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
