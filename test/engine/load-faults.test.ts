/**
 * Loading with loadMode 'none' touches each page of the weights about once (native/patches/0007).
 * The weights the CPU backend repacks (CPU_REPACK: Q4_0 -> q4_0_8x8 with AVX2) are read through a
 * staging buffer; llama.cpp allocated one per tensor, and with the addon's fixed 1 MiB malloc mmap
 * threshold (native/addon.cpp) each was a fresh mapping, so every staged byte was faulted in and
 * zeroed twice: on the 4-layer Q4_K_M bench model 261,000 minor faults for a 164,000-page file.
 * The kernel's own count (getrusage minor faults) of a second load in a child process, with huge
 * pages off (LLAVA_MED_HUGEPAGES=0: 4 KiB pages, so one fault per page touched), is compared with
 * the pages the weights need. Linux only (the staging buffer's pages are given back with madvise).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTinyLlamaGguf } from '../helpers/tiny-gguf.js';

const CHILD = fileURLToPath(new URL('./load-faults-child.mjs', import.meta.url));
const cpuFlags = (() => {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
})();
const repacks = process.arch === 'x64' && /\bavx2\b/.test(cpuFlags);

t.test('a load in mode none faults each page of the weights in once', { skip: process.platform !== 'linux' ? 'Linux only' : !repacks ? 'no repacked Q4_0 kernels on this CPU (x86 AVX2)' : false }, async (t) => {
  // Q4_0 blocks: 3 x (4 x 384² + 3 x 384 x 24576) repacked weights (~46 MiB, each FFN matrix
  // 5.3 MB: over the 1 MiB threshold), plus the F32 token embedding and output (~98 MB, read in place).
  const { path: model } = await makeTinyLlamaGguf(undefined, { mode: 'random', seed: 6, nEmbd: 384, nHead: 6, nLayer: 3, nFf: 24576, contextLength: 512, q4_0: true });
  const pages = statSync(model).size / 4096;
  const dir = mkdtempSync(join(tmpdir(), 'llava-faults-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'r.json');
  const child = spawn(process.execPath, [CHILD, out, model], { env: { ...process.env, LLAVA_MED_HUGEPAGES: '0' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  t.equal(code, 0, err);
  const { faults } = JSON.parse(readFileSync(out, 'utf8')) as { faults: number };
  const repackPages = (3 * (4 * 384 * 384 + 3 * 384 * 24576) * 18) / 32 / 4096;
  t.comment(`minor faults ${faults} for a ${Math.round(pages)}-page file (${Math.round(repackPages)} pages repacked)`);
  // measured: 41,175 (the weights once, the staging buffer's first and biggest tensor, the loader's
  // own allocations); a staging buffer per tensor faulted all the repacked pages in again: 51,452
  const bound = pages + repackPages * 0.75;
  t.ok(faults < bound, `${faults} faults < ${Math.round(bound)}`);
});
