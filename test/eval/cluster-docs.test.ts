// docs/cluster: the Indexed Job manifest's command, run as its pod would (the Job controller's
// JOB_COMPLETION_INDEX plus the manifest's env), picks the chunk of its index; the manifest's completions
// and the sbatch script's --array agree with the counts they pass. The sbatch script itself runs end to
// end in e2e.test.ts (it needs the tiny model and the prepared data).
import t from 'tap';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { CLI, ensureDist } from '../cli/util.js';
import { REPO } from '../helpers/tiny-llava.js';

const exec = promisify(execFile);

interface Manifest {
  kind: string;
  spec: {
    completionMode: string;
    completions: number;
    parallelism: number;
    template: { spec: { containers: { command: string[]; env: { name: string; value: string }[] }[] } };
  };
}

t.test('the Indexed Job pod answers the chunk of its JOB_COMPLETION_INDEX', async (t) => {
  ensureDist();
  const m = parse(readFileSync(join(REPO, 'docs/cluster/eval-indexed-job.yaml'), 'utf8')) as Manifest;
  t.equal(m.kind, 'Job');
  t.equal(m.spec.completionMode, 'Indexed');
  const [c] = m.spec.template.spec.containers;
  const [sh, flag, script] = c!.command;
  t.same([sh, flag], ['sh', '-c']);
  t.match(script, new RegExp(`--num-chunks ${m.spec.completions} `), 'the count passed equals completions');
  const bin = mkdtempSync(join(tmpdir(), 'llava-med-k8s-'));
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  writeFileSync(join(bin, 'llava-med'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
  chmodSync(join(bin, 'llava-med'), 0o755);
  const podEnv = Object.fromEntries(c!.env.map((e) => [e.name, e.value]));
  for (const index of [0, 5, m.spec.completions - 1]) {
    // The model files exist only in the cluster: the run states its chunk, then stops at the missing model.
    const r = await exec('sh', ['-c', script!], { env: { PATH: `${bin}:${process.env.PATH ?? ''}`, ...podEnv, JOB_COMPLETION_INDEX: String(index) } }).catch((e: { code: number; stderr: string }) => e);
    t.match(r, { code: 1 });
    t.match(r.stderr, new RegExp(`^answering chunk ${index} of ${m.spec.completions} \\(0-based\\), from JOB_COMPLETION_INDEX=${index}, --num-chunks=${m.spec.completions}\\n`), `index ${index}`);
    t.match(r.stderr, /llava-med: ERR_[A-Z_]+: .*llava-med-v1\.5-q4_k_m\.gguf/, 'then the model path from the manifest');
  }
  // A pod whose index is beyond the count (completions raised, --num-chunks not) is refused up front.
  const r = await exec('sh', ['-c', script!], { env: { PATH: `${bin}:${process.env.PATH ?? ''}`, ...podEnv, JOB_COMPLETION_INDEX: String(m.spec.completions) } }).catch((e: { code: number; stderr: string }) => e);
  t.match(r.stderr, /ERR_INVALID_ARGUMENT: Chunk index 8 \(from JOB_COMPLETION_INDEX=8, --num-chunks=8\) is not below the number of chunks, 8/);
});

t.test('the sbatch script asks for a plain array and leaves the chunk to llava-med', async (t) => {
  const s = readFileSync(join(REPO, 'docs/cluster/eval-array.sbatch'), 'utf8');
  t.match(s, /^#SBATCH --array=0-\d+$/m);
  t.notMatch(s, /--chunk-idx|--num-chunks/, 'no flags: the Slurm variables decide (and win only when no flag is given)');
  const r = await exec('bash', ['-n', join(REPO, 'docs/cluster/eval-array.sbatch')]);
  t.equal(r.stderr, '', 'bash -n: the script parses');
});
