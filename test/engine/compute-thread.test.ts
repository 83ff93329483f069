// Every ggml graph of the process runs on one thread (native/common.h ComputeThread). With OpenMP,
// ggml's CPU workers are the team of the thread that calls the compute, one team per calling thread:
// run from whichever libuv worker took the call, a process collected a team per pool thread (more
// threads than CPUs, and libgomp then puts its workers to sleep at every barrier). Here the calls
// are spread over the libuv pool on purpose (file reads queued beside each one), and the process
// must not gain a thread after the first question.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { LlavaMed } from '../../lib/llava-med.js';
import { noisePng, tinyV0 } from '../llava-med/util.js';

/** This process's threads, without libvips' own pool (sharp sizes it by demand). */
function threads(): number {
  if (process.platform !== 'linux') return 0;
  return readdirSync('/proc/self/task').filter((id) => {
    try {
      return readFileSync(`/proc/self/task/${id}/comm`, 'utf8').trim() !== 'libvips worker';
    } catch {
      return false; // the thread ended meanwhile
    }
  }).length;
}

t.test('graphs run on one thread: the OpenMP team is made once, whichever libuv worker takes a call', { skip: process.platform !== 'linux' && 'reads /proc/self/task' }, async (t) => {
  const tiny = await tinyV0();
  // Two threads: each compute has an OpenMP team of one worker besides its calling thread.
  const med = await LlavaMed.load({ model: tiny.model, mmproj: tiny.mmproj, threads: 2, contextSize: 1024 });
  t.teardown(() => med.dispose());
  const self = fileURLToPath(import.meta.url);
  const images = await Promise.all([1, 2, 3, 4].map((s) => noisePng(64, 64, s)));
  const churn = () => Array.from({ length: 12 }, () => readFile(self));
  await med.ask(images[0]!, 'Is there a nodule?', { maxTokens: 4, temperature: 0 }); // sharp and the pool warm up
  const warm = threads();
  const seen: number[] = [];
  for (let i = 0; i < 12; i++) {
    // Questions, scores and image encodes, each queued behind and beside file reads on the pool.
    await Promise.all([...churn(), med.ask(images[i % 4]!, `Question ${i}?`, { maxTokens: 3, temperature: 0 }), ...churn()]);
    await Promise.all([...churn(), med.score(images[(i + 1) % 4]!, 'Is it?', ['yes', 'no']), ...churn()]);
    seen.push(threads());
  }
  t.same(seen, seen.map(() => warm), `no thread added after the first question (${warm} threads then; after each round: ${seen.join(', ')})`);
});
