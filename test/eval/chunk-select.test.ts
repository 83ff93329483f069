// selectChunk: the chunk of an array job equals the one the flags name; ambiguous settings are refused.
import t from 'tap';
import { selectChunk, splitChunks } from '../../lib/eval/chunks.js';

const questions = Array.from({ length: 10 }, (_, i) => i);

t.test('each array variable gives the chunk --chunk-idx gives', async (t) => {
  const n = 4;
  for (let k = 0; k < n; k++) {
    const flags = selectChunk({ chunkIdx: k, numChunks: n, env: {} });
    const want = splitChunks(questions, flags.numChunks, flags.chunkIdx);
    const envs: Record<string, string>[] = [
      // sbatch --array=0-3
      { SLURM_ARRAY_TASK_ID: String(k), SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_MAX: '3', SLURM_ARRAY_TASK_STEP: '1' },
      // sbatch --array=1-4%2: ids start at 1
      { SLURM_ARRAY_TASK_ID: String(k + 1), SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '4', SLURM_ARRAY_TASK_STEP: '1' },
      // Kubernetes Indexed Job, completions in the environment
      { JOB_COMPLETION_INDEX: String(k), LLAVA_MED_NUM_CHUNKS: '4' },
      { LLAVA_MED_CHUNK_IDX: String(k), LLAVA_MED_NUM_CHUNKS: '4' },
    ];
    for (const env of envs) {
      const s = selectChunk({ env });
      t.same([s.numChunks, s.chunkIdx], [n, k], JSON.stringify(env));
      t.same(splitChunks(questions, s.numChunks, s.chunkIdx), want);
      t.equal(s.source, Object.keys(env)[0]);
      t.match(s.description, new RegExp(`^chunk ${k} of 4 \\(0-based\\), from ${Object.keys(env)[0]}=${env[Object.keys(env)[0]!]}`));
    }
    // The count as a flag (--num-chunks 4 in an Indexed Job manifest).
    const k8s = selectChunk({ numChunks: n, env: { JOB_COMPLETION_INDEX: String(k) } });
    t.same([k8s.numChunks, k8s.chunkIdx, k8s.source], [n, k, 'JOB_COMPLETION_INDEX']);
    t.equal(k8s.description, `chunk ${k} of 4 (0-based), from JOB_COMPLETION_INDEX=${k}, --num-chunks=4`);
  }
});

t.test('defaults and explicit flags', async (t) => {
  t.same(selectChunk({ env: {} }), { numChunks: 1, chunkIdx: 0, source: 'default', description: 'chunk 0 of 1 (0-based), from the default (one chunk: every question)' });
  t.same(selectChunk({ numChunks: 3, env: {} }).chunkIdx, 0, '--num-chunks alone: the first chunk, as before');
  t.same(selectChunk({ env: { SLURM_ARRAY_TASK_ID: '', JOB_COMPLETION_INDEX: ' ' } }).source, 'default', 'empty variables are unset');
  // The flag wins over the environment, and the description says what was ignored (an array over models
  // where each task answers everything: --num-chunks 1 --chunk-idx 0).
  const f = selectChunk({ numChunks: 1, chunkIdx: 0, env: { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_COUNT: '3' } });
  t.same([f.numChunks, f.chunkIdx, f.source], [1, 0, 'flags']);
  t.match(f.description, /--chunk-idx 0 --num-chunks 1; SLURM_ARRAY_TASK_ID=2 ignored/);
  t.same(selectChunk({ env: { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_COUNT: '3', LLAVA_MED_NUM_CHUNKS: '3' } }).chunkIdx, 2, 'equal counts are fine');
  t.same(selectChunk({ numChunks: 3, env: { SLURM_ARRAY_TASK_ID: '1' } }).numChunks, 3, 'no SLURM_ARRAY_TASK_COUNT: the flag counts');
});

t.test('ambiguous or unusable settings are refused with a typed error', async (t) => {
  const bad: [Parameters<typeof selectChunk>[0], RegExp][] = [
    [{ env: { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '2', LLAVA_MED_CHUNK_IDX: '1' } }, /Ambiguous chunk: SLURM_ARRAY_TASK_ID=1 and LLAVA_MED_CHUNK_IDX=1 are all set/],
    [{ env: { JOB_COMPLETION_INDEX: '0', LLAVA_MED_CHUNK_IDX: '0', LLAVA_MED_NUM_CHUNKS: '2' } }, /Ambiguous chunk: JOB_COMPLETION_INDEX=0 and LLAVA_MED_CHUNK_IDX=0/],
    [{ numChunks: 8, env: { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '4' } }, /Ambiguous number of chunks: --num-chunks 8, SLURM_ARRAY_TASK_COUNT 4/],
    [{ numChunks: 2, env: { JOB_COMPLETION_INDEX: '1', LLAVA_MED_NUM_CHUNKS: '3' } }, /Ambiguous number of chunks: --num-chunks 2, LLAVA_MED_NUM_CHUNKS 3/],
    [{ env: { JOB_COMPLETION_INDEX: '1' } }, /JOB_COMPLETION_INDEX is set but no count: pass --num-chunks \(the Indexed Job's completions\)/],
    [{ env: { LLAVA_MED_CHUNK_IDX: '1' } }, /LLAVA_MED_CHUNK_IDX is set but no count/],
    [{ env: { SLURM_ARRAY_TASK_ID: '1' } }, /SLURM_ARRAY_TASK_COUNT: pass --num-chunks/],
    // --array=1,3,5,7 and --array=0-6:2
    [{ env: { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_MAX: '7' } }, /not a plain range.*--array=0-3/],
    [{ env: { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_STEP: '2' } }, /step 2/],
    [{ env: { JOB_COMPLETION_INDEX: '4', LLAVA_MED_NUM_CHUNKS: '4' } }, /Chunk index 4 \(from JOB_COMPLETION_INDEX=4, LLAVA_MED_NUM_CHUNKS=4\) is not below the number of chunks, 4/],
    [{ env: { LLAVA_MED_CHUNK_IDX: '-1', LLAVA_MED_NUM_CHUNKS: '4' } }, /LLAVA_MED_CHUNK_IDX="-1" is not an integer >= 0/],
    [{ env: { LLAVA_MED_CHUNK_IDX: '1', LLAVA_MED_NUM_CHUNKS: 'four' } }, /LLAVA_MED_NUM_CHUNKS="four" is not an integer >= 1/],
    [{ chunkIdx: -1, env: {} }, /chunkIdx must be a non-negative integer/],
  ];
  for (const [req, re] of bad) t.throws(() => selectChunk(req), { code: 'ERR_INVALID_ARGUMENT', message: re }, JSON.stringify(req));
});
