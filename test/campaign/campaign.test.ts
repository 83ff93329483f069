/**
 * The bad-input campaign: every case runs through the public API in a child process (run.ts,
 * child.mjs) and must end as a typed LlavaMedError or a success — never a crash, a hang, or an
 * untyped error. Cases:
 *   - hand-made GGUF model and mmproj files, named by what they break (gguf-cases.ts);
 *   - seeded mutants of the valid tiny v0 model and mmproj (mutants.ts): 2,000 of each; a sample of
 *     500 per run, drawn with the day's seed (LLAVA_MED_CAMPAIGN_SEED overrides), the full 4,000
 *     with LLAVA_MED_CAMPAIGN=full (`node scripts/campaign.mjs --full`);
 *   - bad images through LlavaMed.ask (image-cases.ts);
 *   - bad converter inputs through convertV15 (convert-cases.ts).
 * Generators are committed, corpora are not: everything is written to a temporary folder.
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rng } from '../../lib/demo/rng.js';
import { ensureDist } from '../cli/util.js';
import { tinyV0 } from '../helpers/tiny-llava.js';
import { convertCases } from './convert-cases.js';
import { GGUF_CASES } from './gguf-cases.js';
import { cloneDoc, encodeDoc, readDoc } from './gguf-doc.js';
import { imageCases } from './image-cases.js';
import { mutant, mutantBase } from './mutants.js';
import { runCases, tally, type CampaignCase, type CaseResult } from './run.js';

const FULL = process.env.LLAVA_MED_CAMPAIGN === 'full';
const MUTANTS_PER_FILE = 2000;
const SAMPLE = 500;
const day = new Date().toISOString().slice(0, 10);
const seed = Number(process.env.LLAVA_MED_CAMPAIGN_SEED ?? day.replace(/-/g, ''));

ensureDist();
const v0 = await tinyV0();
const dir = mkdtempSync(join(tmpdir(), 'llava-med-campaign-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const base = { model: await readDoc(v0.model), mmproj: await readDoc(v0.mmproj) };
let n = 0;
const file = (bytes: Buffer) => {
  const p = join(dir, `f-${n++}.gguf`);
  writeFileSync(p, bytes);
  return p;
};

const cases: CampaignCase[] = [];
for (const c of GGUF_CASES) {
  const d = cloneDoc(base[c.kind]);
  const out = c.edit(d);
  cases.push({ group: `gguf-${c.kind}`, name: c.name, kind: c.kind, path: file(out ?? encodeDoc(d)), model: v0.model });
}
// files that pass the pre-checks go through LlavaMed.load as well (pairing, prompt ids, one ask)
for (const c of GGUF_CASES.filter((x) => x.ts === undefined)) {
  const d = cloneDoc(base[c.kind]);
  const out = c.edit(d);
  const kind = c.kind === 'mmproj' ? 'pair' : 'pair-model';
  cases.push({ group: `gguf-${kind}`, name: c.name, kind, path: file(out ?? encodeDoc(d)), model: v0.model, mmproj: v0.mmproj });
}
const mb = { model: mutantBase(base.model), mmproj: mutantBase(base.mmproj) };
const picks: { kind: 'model' | 'mmproj'; i: number }[] = [];
for (const kind of ['model', 'mmproj'] as const) for (let i = 0; i < MUTANTS_PER_FILE; i++) picks.push({ kind, i });
const r = rng(seed);
for (let i = picks.length - 1; i > 0; i--) {
  const j = Math.floor(r() * (i + 1));
  [picks[i], picks[j]] = [picks[j]!, picks[i]!];
}
for (const { kind, i } of FULL ? picks : picks.slice(0, SAMPLE)) {
  cases.push({ group: `mutant-${kind}`, name: `${kind} mutant #${i}`, kind, path: file(mutant(mb[kind], i)), model: v0.model });
}
const images = await imageCases(join(dir, 'images'), { model: v0.model, mmproj: v0.mmproj });
cases.push(...images.cases);
cases.push(...(await convertCases(join(dir, 'convert'))));

function report(t: Test, results: readonly CaseResult[], label: string): void {
  const { total, byGroup } = tally(results);
  t.comment(`${label}: ${results.length} cases — typed ${total.typed}, success ${total.success}, untyped ${total.untyped}, crash ${total.crash}, hang ${total.hang}`);
  for (const [g, c] of [...byGroup].sort()) t.comment(`  ${g}: ${Object.entries(c).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ')}`);
}

t.test(`campaign (${FULL ? 'full' : `sample, seed ${seed}`})`, async (t) => {
  const started = Date.now();
  const results = await runCases(cases, { workers: 2, timeoutMs: 60_000 });
  report(t, results, `campaign in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  t.ok(cases.length >= (FULL ? 5500 : 2000), `${cases.length} cases`);
  for (const outcome of ['crash', 'hang', 'untyped'] as const) {
    const bad = results.filter((x) => x.outcome === outcome);
    t.equal(bad.length, 0, `no ${outcome}${bad.length ? `:\n${bad.slice(0, 25).map((x) => `  [${x.c.group}] ${x.c.name}: ${x.code ?? ''} ${x.message ?? ''}`).join('\n')}` : ''}`);
  }
  const left = results.filter((x) => x.leftovers?.length);
  t.equal(left.length, 0, `a refused conversion leaves nothing in its out folder${left.length ? `: ${left.map((x) => `${x.c.name} (${x.leftovers!.join(', ')})`).join('; ')}` : ''}`);
  const valid = results.filter((x) => x.c.group === 'convert-valid' || x.c.group === 'image-valid');
  t.ok(valid.every((x) => x.outcome === 'success'), `the unmodified inputs succeed (${valid.map((x) => `${x.c.name}: ${x.outcome} ${x.message ?? ''}`).filter((s) => !s.includes('success')).join('; ')})`);
});

// Paths that are FIFOs or devices: reading them blocked the libuv pool (FIFO without a writer) or
// grew memory without end (/dev/zero) until every path became a regular-file, size-limited read
// (lib/formats/file-read.ts). A short time limit: a regression shows as a hang quickly.
t.test('FIFO and device paths as images', async (t) => {
  const fifo = join(dir, 'image.fifo');
  execFileSync('mkfifo', [fifo]);
  const special: CampaignCase[] = [...images.special, { group: 'image-special', name: 'FIFO without a writer', kind: 'image', model: v0.model, mmproj: v0.mmproj, image: { path: fifo }, timeoutMs: 20_000 }];
  const results = await runCases(special, { workers: 2, timeoutMs: 20_000 });
  report(t, results, 'special files');
  for (const x of results) t.ok(x.outcome === 'typed', `${x.c.name}: ${x.outcome} ${x.code ?? ''} ${x.message ?? ''}`);
});
