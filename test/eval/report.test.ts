// The report is rendered by headless Chromium (Debian package `chromium`) and its DOM is checked.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { prepareDataset } from '../../lib/eval/prepare/index.js';
import { parseTestFile, type AnswerLine } from '../../lib/eval/formats.js';
import { escapeHtml, writeReport } from '../../lib/eval/report.js';
import { pyFixed } from '../../lib/eval/metrics/pystr.js';

const run = promisify(execFile);
const FIX = fileURLToPath(new URL('../fixtures/eval/', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';

async function dumpDom(file: string, profile: string): Promise<string> {
  const { stdout } = await run(
    CHROMIUM,
    ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', `--user-data-dir=${profile}`, '--virtual-time-budget=5000', '--dump-dom', `file://${file}`],
    { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
  );
  return stdout;
}

t.test('report renders in Chromium with scores, wrong-answer cards and decoded images', async (t) => {
  const dir = t.testdir();
  const data = join(dir, 'rad');
  await prepareDataset({ dataset: 'vqa-rad', src: join(FIX, 'vqa-rad/data_RAD'), out: data });
  const gt = parseTestFile(JSON.parse(await readFile(join(data, 'test.json'), 'utf8'))).slice(0, 24);
  // Every third answer is wrong; one wrong answer tries to inject markup.
  const pred: AnswerLine[] = gt.map((g, i) => ({
    question_id: g.id,
    prompt: '',
    text: i % 3 === 0 ? (i === 0 ? '<script>document.title="pwned"</script></dd><b>x</b> & "q"' : 'zzz') : g.conversations![1]!.value,
    answer_id: 'a',
    model_id: 'm',
    metadata: {},
  }));
  const out = join(dir, 'report.html');
  const r = await writeReport({ gt, pred, imagesDir: join(data, 'images'), out, title: 'RAD <test>' });
  t.equal(r.wrong, 8, '24 answers, every third wrong');
  t.ok((await stat(out)).size < 400_000, 'thumbnails keep the page small');

  // Test-only copy with a probe script that records how many images actually decoded.
  const html = await readFile(out, 'utf8');
  t.notMatch(html, /<script/i, 'the report itself has no script');
  const probe = join(dir, 'probe.html');
  await writeFile(
    probe,
    html.replace('</body>', `<script>addEventListener('load',()=>{document.body.dataset.decoded=[...document.images].filter(i=>i.complete&&i.naturalWidth>0).length})</script></body>`),
  );
  const dom = await dumpDom(probe, join(dir, 'profile'));
  t.match(dom, /<title>RAD &lt;test&gt;<\/title>/);
  t.equal((dom.match(/<article class="card"/g) ?? []).length, 8);
  t.equal((dom.match(/<img /g) ?? []).length, 8);
  t.match(dom, /data-decoded="8"/, 'all 8 thumbnails decoded');
  // The injected markup stays text.
  t.ok(dom.includes(escapeHtml('<script>document.title="pwned"</script></dd><b>x</b> & "q"').replace(/&quot;/g, '"').replace(/&#39;/g, "'")));
  t.notMatch(dom, /<b>x<\/b>/);
  // Score table values match evaluate(): first row open recall, second closed accuracy.
  const cells = [...dom.matchAll(/<td class="metric">([^<]*)<\/td>/g)].map((m) => m[1]);
  t.equal(cells[0], pyFixed(r.result.overall.recall! * 100, 2));
  t.equal(cells[1], pyFixed(r.result.overall.closedAccuracy * 100, 2));
  t.equal((dom.match(/<svg /g) ?? []).length, r.result.overall.numOpen > 0 ? 2 : 1);
});
