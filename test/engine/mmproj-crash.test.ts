/**
 * Malformed mmproj files must never kill the process. clip.cpp reads scalar keys with
 * type-asserting gguf_get_val_* (a wrong type is a GGML_ASSERT abort) and loads most tensors as
 * optional (nullptr when absent) although the llava graph then dereferences them. Each case runs
 * in a child `node` process (child.mjs) so a crash is observed as a signal, not as a dead test.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { GgufValueType as V } from '../../lib/formats/gguf.js';
import { makeTinyMmproj } from '../helpers/tiny-gguf.js';
import { childEnv, compiledEngine, runNode, tinyPair, type ChildResult } from './util.js';

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'llava-engine-mmproj-crash-'));
const env = childEnv({ LLAVA_MED_ENGINE: pathToFileURL(compiledEngine()).href });
const { llm } = await tinyPair();
let n = 0;

interface Run extends ChildResult {
  result: { steps: string[]; code?: string } | undefined;
}

async function child(scenario: string, args: object): Promise<Run> {
  const out = join(dir, `result-${n++}.json`);
  const r = await runNode(CHILD, [scenario, out, JSON.stringify(args)], 60_000, env);
  const result = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as Run['result']) : undefined;
  return { ...r, result };
}

function summary(r: Run): string {
  return `code ${r.code} signal ${r.signal} steps ${JSON.stringify(r.result?.steps)} stderr ${JSON.stringify(r.stderr.slice(0, 300))}`;
}

t.test('the TS checks are load-bearing: the raw addon aborts on a wrong key type, Projector.load refuses it', async (t) => {
  const bad = await makeTinyMmproj(undefined, { keyTypes: { 'clip.vision.image_size': V.INT32 } });
  const raw = await child('raw-load-projector', { model: llm.path, mmproj: bad.path });
  t.equal(raw.signal, 'SIGABRT', `the raw native load GGML_ASSERTs (${summary(raw)})`);
  t.same(raw.result?.steps, ['model loaded'], 'it died inside the projector load');
  // native/log.cpp's abort callback: ggml's message on stderr, and no gdb/lldb attach (which can hang inside Node)
  t.match(raw.stderr, /llava-med: fatal error in llama\.cpp: .*GGML_ASSERT/, 'the abort message is printed');
  t.notMatch(raw.stderr, /gdb|lldb|Attaching to process|#0 /, 'no debugger backtrace was attempted');
  const safe = await child('load-projector', { model: llm.path, mmproj: bad.path });
  t.equal(safe.signal, null, summary(safe));
  t.equal(safe.code, 0);
  t.equal(safe.result?.code, 'ERR_GGUF_CORRUPT', 'through the engine: ERR_GGUF_CORRUPT');
});

t.test('an mmproj missing a tensor the llava graph uses never kills the process', async (t) => {
  // clip.cpp loads most of these as optional (nullptr when absent), and the llava graph then
  // dereferences them: the engine must refuse such files before mtmd sees them.
  const names = [
    'v.blk.0.attn_out.weight', // required by clip.cpp itself: a clean throw (control case)
    'v.blk.1.attn_q.weight',
    'v.blk.0.attn_k.weight',
    'v.blk.0.attn_v.weight',
    'v.blk.0.ffn_up.weight',
    'v.blk.2.ffn_down.weight',
    'v.blk.0.ln1.weight',
    'v.patch_embd.weight',
    'v.position_embd.weight',
    'mm.0.bias',
  ];
  const files = [];
  for (const name of names) files.push({ name, path: (await makeTinyMmproj(undefined, { omitTensors: [name] })).path });
  // two children at a time (each loads the model: ~1 s)
  const runs: Run[] = [];
  for (let i = 0; i < files.length; i += 2) {
    runs.push(...(await Promise.all(files.slice(i, i + 2).map((f) => child('load-projector', { model: llm.path, mmproj: f.path })))));
  }
  files.forEach(({ name }, i) => {
    const r = runs[i]!;
    t.equal(r.signal, null, `without ${name}: no signal (${summary(r)})`);
    t.equal(r.code, 0, `without ${name}: the child finished`);
    t.ok(
      r.result?.code === 'ERR_GGUF_CORRUPT' || r.result?.code === 'ERR_MMPROJ_LOAD',
      `without ${name}: refused with a clean error code (got ${r.result?.code})`,
    );
  });
});
