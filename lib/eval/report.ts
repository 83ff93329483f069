/**
 * A self-contained HTML report of one evaluation: score table, a bar chart per question type
 * (inline SVG), and every wrong answer with its image (downscaled, embedded as a data URI),
 * question, reference and prediction. No scripts, no external resources; all text escaped.
 *
 * "Wrong" follows the paper's two metrics: a CLOSED answer is wrong when the reference is not a
 * substring of the normalized prediction; an OPEN answer is wrong when its token recall is < 1.
 */
import { join, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { llavaError } from '../errors.js';
import { hasDicmMagic, renderDicom } from '../image/index.js';
import { MAX_IMAGE_FILE_BYTES } from '../image/load.js';
import { readRegularFile } from '../formats/file-read.js';
import { writeFileAtomic } from './atomic.js';
import { testEntryAnswer, testEntryQuestion, type AnswerLine, type TestEntry } from './formats.js';
import { evaluate, scoreItems, type EvaluateOptions, type EvaluateResult } from './metrics/evaluate.js';
import { pyFixed } from './metrics/pystr.js';

/** Options of {@link writeReport}. */
export interface ReportOptions extends EvaluateOptions {
  /** The test.json entries (references). */
  gt: readonly TestEntry[];
  /** The answers, in the same id order (as {@link evaluate} requires). */
  pred: readonly AnswerLine[];
  /** Folder the test.json image paths are relative to. */
  imagesDir: string;
  /** Output .html path (written atomically). */
  out: string;
  /** Page title. Default 'LLaVA-Med VQA evaluation'. */
  title?: string;
  /** Longest side of embedded thumbnails in pixels (default 256). */
  thumbnailSize?: number;
  /** At most this many wrong-answer cards (default: all). */
  maxWrong?: number;
}

/** What {@link writeReport} wrote. */
export interface ReportResult {
  /** Wrong answers found. */
  wrong: number;
  /** Wrong-answer cards in the report (≤ maxWrong). */
  shown: number;
  /** Size of the HTML file in bytes. */
  bytes: number;
  /** The evaluation the report shows. */
  result: EvaluateResult;
}

/** Escapes `& < > " '` for HTML text and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const pct = (x: number | null): string => (x === null ? '–' : pyFixed(x * 100, 2));

const CSS = `
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1d1d1f;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#f3f3f3}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:1rem}
.card{border:1px solid #ddd;border-radius:8px;padding:.8rem;display:flex;gap:.8rem;background:#fafafa}
.card img{width:128px;height:auto;object-fit:contain;border-radius:4px;background:#000;flex:none}
.card dl{margin:0;font-size:.9rem}.card dt{font-weight:600;color:#555}.card dd{margin:0 0 .4rem 0;white-space:pre-wrap;word-break:break-word}
.noimg{width:128px;height:128px;display:flex;align-items:center;justify-content:center;background:#eee;color:#888;font-size:.8rem;flex:none}
.tag{display:inline-block;font-size:.75rem;padding:0 .4rem;border-radius:4px;background:#e0e0e0;margin-right:.3rem}
svg text{font-size:12px;font-family:inherit}
`;

function metricRows(r: EvaluateResult): string {
  const o = r.overall;
  const rows: [string, string][] = [
    ['Open (token recall) — paper', pct(o.recall)],
    ['Closed (yes/no accuracy, substring) — paper', pct(o.closedAccuracy)],
    ['Closed, run_eval.py yes/no gate', pct(o.closedAccuracyGated)],
    ['Open accuracy (substring)', pct(o.openAccuracy)],
    ['Open accuracy (candidates)', pct(o.openAccuracyCandidates)],
    ['Exact match score', pct(o.exactMatch)],
    ['F1', pct(o.f1)],
    ['Precision', pct(o.precision)],
    ['BLEU', pct(o.bleu)],
    ['BLEU-1', pct(o.bleu1)],
    ['BLEU-2', pct(o.bleu2)],
    ['BLEU-3', pct(o.bleu3)],
    ['Recall (closed)', pct(o.recallClosed)],
  ];
  return rows.map(([k, v]) => `<tr><th scope="row">${escapeHtml(k)}</th><td class="metric">${v}</td></tr>`).join('');
}

/** Horizontal bars, one per question type, value in [0,1]. */
function barChart(title: string, bars: { label: string; value: number; n: number }[]): string {
  if (bars.length === 0) return '';
  const rowH = 22;
  const labelW = 170;
  const barW = 420;
  const h = bars.length * rowH + 30;
  const parts = bars.map((b, i) => {
    const y = 24 + i * rowH;
    const w = Math.max(0, Math.min(1, b.value)) * barW;
    return (
      `<text x="${labelW - 6}" y="${y + 14}" text-anchor="end">${escapeHtml(b.label)} (n=${b.n})</text>` +
      `<rect class="bar" x="${labelW}" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="#4a7bd0"/>` +
      `<text x="${labelW + w + 4}" y="${y + 14}">${pyFixed(b.value * 100, 2)}</text>`
    );
  });
  return (
    `<figure><svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${escapeHtml(title)}" width="${labelW + barW + 60}" height="${h}">` +
    `<text x="0" y="14" font-weight="600">${escapeHtml(title)}</text>${parts.join('')}</svg></figure>`
  );
}

async function thumbnail(imagesDir: string, rel: string, size: number): Promise<string | null> {
  const root = resolve(imagesDir);
  const p = resolve(join(root, rel));
  // test.json paths are data, not trusted: never read outside the images folder.
  if (p !== root && !p.startsWith(root + sep)) return null;
  try {
    const bytes = await readRegularFile(p, { what: 'Image file', maxBytes: MAX_IMAGE_FILE_BYTES });
    // a DICOM file is shown as the model saw it (rendered with its default window)
    const d = hasDicmMagic(bytes) ? await renderDicom(bytes, { maxPixels: 100_000_000 }) : undefined;
    const src = d ? sharp(d.samples, { raw: { width: d.width, height: d.height, channels: d.channels } }) : sharp(bytes).rotate();
    const buf = await src.resize(size, size, { fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 70 }).toBuffer();
    return `data:image/jpeg;base64,${buf.toString('base64')}`;
  } catch {
    return null;
  }
}

/**
 * Writes a self-contained HTML report (scores, per-question-type chart, each wrong answer with its image)
 * to `out`, atomically. An image that cannot be read is shown as missing, not an error.
 * @throws LlavaMedError `ERR_INVALID_ARGUMENT` (no `out`), `ERR_EVAL` (gt and pred ids differ, as {@link evaluate}).
 */
export async function writeReport(o: ReportOptions): Promise<ReportResult> {
  if (!o.out) throw llavaError('ERR_INVALID_ARGUMENT', 'writeReport needs an output path.');
  const result = evaluate(o.gt, o.pred, o);
  const items = scoreItems(o.gt, o.pred, o);
  const size = o.thumbnailSize ?? 256;
  const wrongIdx: number[] = [];
  items.forEach((it, i) => {
    if ((it.closed && it.closed.hit === 0) || (it.open && it.open.recall < 1)) wrongIdx.push(i);
  });
  const shownIdx = wrongIdx.slice(0, o.maxWrong ?? wrongIdx.length);
  const thumbs = new Map<string, string | null>();
  const cards: string[] = [];
  for (const i of shownIdx) {
    const g = o.gt[i]!;
    const p = o.pred[i]!;
    let img: string | null = null;
    if (g.image !== undefined) {
      if (!thumbs.has(g.image)) thumbs.set(g.image, await thumbnail(o.imagesDir, g.image, size));
      img = thumbs.get(g.image)!;
    }
    const question = testEntryQuestion(g).split('<image>').join('').trim();
    cards.push(
      `<article class="card" data-id="${escapeHtml(String(g.id))}">` +
        (img ? `<img src="${img}" alt="${escapeHtml(g.image ?? '')}">` : `<div class="noimg">no image</div>`) +
        `<dl><dt>Question <span class="tag">${escapeHtml(g.answer_type)}</span><span class="tag">${escapeHtml(String(g.question_type ?? ''))}</span></dt><dd class="question">${escapeHtml(question)}</dd>` +
        `<dt>Reference</dt><dd class="reference">${escapeHtml(testEntryAnswer(g))}</dd>` +
        `<dt>Prediction</dt><dd class="prediction">${escapeHtml(p.text)}</dd></dl></article>`,
    );
  }
  const qtypes = Object.keys(result.byQuestionType).sort();
  const openBars = qtypes.filter((k) => result.byQuestionType[k]!.numOpen > 0).map((k) => ({ label: k || '(none)', value: result.byQuestionType[k]!.recall ?? 0, n: result.byQuestionType[k]!.numOpen }));
  const closedBars = qtypes.filter((k) => result.byQuestionType[k]!.numClosed > 0).map((k) => ({ label: k || '(none)', value: result.byQuestionType[k]!.closedAccuracy, n: result.byQuestionType[k]!.numClosed }));
  const title = o.title ?? 'LLaVA-Med VQA evaluation';
  const o2 = result.overall;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title><style>${CSS}</style></head>
<body>
<h1>${escapeHtml(title)}</h1>
<p>${o2.numOpen} open and ${o2.numClosed} closed questions${o2.numIgnored ? `, ${o2.numIgnored} with another answer type (ignored, as the original does)` : ''}. Metrics reproduce LLaVA-Med's run_eval_batch.py / run_eval.py.</p>
<h2>Scores</h2>
<table id="scores"><thead><tr><th>Metric</th><th>Score (× 100)</th></tr></thead><tbody>${metricRows(result)}</tbody></table>
<h2>By question type</h2>
${barChart('Open: token recall by question type', openBars)}
${barChart('Closed: accuracy by question type', closedBars)}
<h2>Wrong answers (${wrongIdx.length}${shownIdx.length < wrongIdx.length ? `, first ${shownIdx.length} shown` : ''})</h2>
<section class="cards" id="wrong">${cards.join('\n')}</section>
</body></html>
`;
  await writeFileAtomic(o.out, html);
  return { wrong: wrongIdx.length, shown: shownIdx.length, bytes: Buffer.byteLength(html), result };
}
