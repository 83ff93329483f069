#!/usr/bin/env node
// node bench/child-touch.mjs <MiB>: maps, touches (writes every page of) and frees about <MiB> of
// anonymous memory, then exits. bench --full runs it before each measured process, sized to the
// peak RSS that process had in the previous round, so the kernel's work of making that much memory
// free (reclaiming, compacting, zeroing pages another process just released) is done here and not
// charged to whichever tool happens to run first after a change in memory use (bench/README.md).
const mib = Number(process.argv[2]);
const chunks = [];
const t0 = performance.now();
for (let left = Math.max(0, mib); left > 0; left -= 64) {
  const b = Buffer.allocUnsafeSlow(Math.min(64, left) << 20);
  for (let i = 0; i < b.length; i += 4096) b[i] = 1;
  chunks.push(b);
}
process.stdout.write(`TOUCHED ${JSON.stringify({ mib, ms: performance.now() - t0 })}\n`);
