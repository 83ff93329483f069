/** Child process of quantize.ts: runs llama_model_quantize and reports over IPC. */
import { unlinkSync } from 'node:fs';
import { loadAddon } from '../engine/binding.js';
import type { QuantizeJob } from './quantize.js';

const job = JSON.parse(process.argv[2] ?? '{}') as QuantizeJob;
let finished = false;

// The parent went away (exit, crash or SIGKILL closes the IPC channel): remove the temporary output
// and die at once. SIGKILL to ourselves, not process.exit: exit would wait for the libuv thread that is
// still inside llama_model_quantize.
process.on('disconnect', () => {
  if (finished) return;
  try {
    unlinkSync(job.output);
  } catch {
    // not created yet, or already gone
  }
  process.kill(process.pid, 'SIGKILL');
});

// Logs may still arrive while the channel closes: a send then must be dropped, not raise.
const send = (m: unknown) => {
  if (process.connected) process.send?.(m, undefined, undefined, () => {});
};

async function main(): Promise<void> {
  let addon: ReturnType<typeof loadAddon> | undefined;
  try {
    // Inside the try: a missing addon is reported to the parent as its typed error, not a stack on stderr.
    addon = loadAddon();
    addon.setLogger((_level, text) => send({ type: 'log', text }), 'info');
    await addon.quantize(job.input, job.output, { ftype: job.ftype, threads: job.threads, keepF16: job.keepF16 });
    process.exitCode = 0;
  } catch (e) {
    const err = e as { code?: string; message?: string };
    send({ type: 'error', error: { code: err.code ?? 'ERR_QUANTIZE', message: err.message ?? String(e) } });
    process.exitCode = 1;
  }
  addon?.setLogger(null, 'error');
  await new Promise((r) => setImmediate(r)); // let queued log callbacks run before closing the channel
  finished = true;
  process.disconnect?.();
}

void main();
