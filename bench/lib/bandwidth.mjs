// The streaming-read bandwidth tool of the roofline (bench/bandwidth.c), compiled into
// <root>/bench/peers/bandwidth when missing or older than its source. bench/peers/ is otherwise
// made by the llama.node step, which --skip-llamanode skips: on a fresh clone gcc stopped with
// "cannot open output file bench/peers/bandwidth", so the folder is made here
// (test/bench/fresh-clone.test.ts compiles it in a folder that has only bench/bandwidth.c).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

/** Returns the path of the compiled tool under `root`, compiling it first if needed; throws with gcc's status. */
export function bandwidthTool(root) {
  const bw = path.join(root, 'bench', 'peers', 'bandwidth');
  const src = path.join(root, 'bench', 'bandwidth.c');
  const stale = !existsSync(bw) || statSync(bw).mtimeMs < statSync(src).mtimeMs;
  mkdirSync(path.dirname(bw), { recursive: true });
  if (stale) {
    const r = spawnSync('gcc', ['-O3', '-march=native', '-fopenmp', src, '-o', bw], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error(`gcc -O3 -march=native -fopenmp ${src} -o ${bw} failed (${r.status ?? r.signal})`);
  }
  return bw;
}
