// `llava-med demo` from a fresh cache: converts the bundled checkpoint (base + delta + CLIP folders), answers
// every bundled question as the task's generator recorded it, and reuses the cache on the next run.
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_TEST, demoAnswerMatches } from '../../lib/demo/index.js';
import { RESEARCH_USE_NOTICE } from '../../lib/notice.js';
import { ensureDist, runCli } from '../cli/util.js';

ensureDist();
const work = mkdtempSync(join(tmpdir(), 'llava-med-demo-cli-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const cache = join(work, 'cache');

t.test('demo --json: converts, then every bundled question gets its expected answer', async (t) => {
  const r = await runCli(['demo', '--cache', cache, '--json', '-t', '2'], { timeoutMs: 300_000 });
  t.equal(r.code, 0, r.stderr.slice(-2000));
  t.match(r.stderr, /folding the delta into the base and converting to GGUF/);
  t.match(r.stderr, /model built at/);
  t.ok(r.stderr.includes(RESEARCH_USE_NOTICE), 'research-use notice on stderr');
  t.same(readdirSync(cache).sort(), ['checkpoint.sha256', 'llava-med-demo.gguf', 'mmproj-llava-med-demo.gguf'], 'the cache holds the converted pair and the checkpoint hash it was built from');
  const out = JSON.parse(r.stdout) as { image: string; question: string; expected: string; answer: string }[];
  const test = JSON.parse(readFileSync(DEMO_TEST.questionFile, 'utf8')) as { image: string; conversations: { value: string }[] }[];
  const kinds = new Set(out.map((o) => o.image));
  t.equal(kinds.size, 4, 'four images (radiograph, CT, histology, microscopy)');
  t.ok(out.length >= 8, `${out.length} questions`);
  for (const o of out) {
    t.same(Object.keys(o).sort(), ['answer', 'expected', 'image', 'question']);
    const e = test.find((x) => join(DEMO_TEST.imageFolder, x.image) === o.image && x.conversations[0]!.value.startsWith(o.question));
    t.equal(e?.conversations[1]!.value, o.expected, `expected answer of "${o.question}" comes from test.json`);
    t.ok(demoAnswerMatches(o.answer, o.expected), `${o.question} -> ${JSON.stringify(o.answer)} (expected ${o.expected})`);
  }
});

t.test('demo (text): cached model, answers beside the expected ones, the toy disclaimer', async (t) => {
  const r = await runCli(['demo', '--cache', cache, '-t', '2'], { timeoutMs: 300_000 });
  t.equal(r.code, 0, r.stderr.slice(-2000));
  t.match(r.stderr, /model cached at/);
  t.match(r.stdout, /not a medical model/);
  t.match(r.stdout, /^Answer: {3}\S.*$/m);
  t.match(r.stdout, /^Expected: \S+ \(correct\)$/m);
  t.notMatch(r.stdout, /\(WRONG\)/);
  t.match(r.stdout, /^Timings \(\d+ questions\): image encode \d+ ms, prefill \d+ ms, generated \d+ tokens in \d+ ms$/m);
  t.notMatch(r.stderr, /folding the delta/, 'not converted again');
});
