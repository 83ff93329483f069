// BENCHMARKS.md has several writers: bench/run.mjs writes the main report, and single-topic
// scripts (bench/abort-latency.mjs, …) each own one section between the markers
// `<!-- section:NAME -->` and `<!-- /section:NAME -->` (bench/prebuild-vs-native.mjs writes
// `<!-- NAME:start -->` … `<!-- NAME:end -->`, kept the same way). Every writer keeps the sections
// it does not own, so running one script never drops another's figures.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const RE = /<!-- section:([\w-]+) -->\n[\s\S]*?<!-- \/section:\1 -->\n?/g;
const RE_START_END = /<!-- ([\w-]+):start -->\n[\s\S]*?<!-- \1:end -->\n?/g;

/** The marked sections of `text`, by name. */
export function sections(text) {
  const out = new Map();
  for (const re of [RE, RE_START_END]) for (const m of text.matchAll(re)) out.set(m[1], m[0].endsWith('\n') ? m[0] : `${m[0]}\n`);
  return out;
}

/** `text` followed by the marked sections of the old file that `text` does not hold itself. */
export function keepSections(file, text) {
  if (!existsSync(file)) return text;
  const oldText = readFileSync(file, 'utf8');
  text = keepAnalysis(oldText, text); // hand-written analysis blocks stay
  const mine = sections(text);
  const kept = [...sections(oldText)].filter(([name]) => !mine.has(name)).map(([, s]) => s);
  return kept.length ? `${text.replace(/\n*$/, '\n\n')}${kept.join('\n')}` : text;
}

/** Replaces (or appends) section `name` of `file` with `markdown`, leaving the rest as it is. */
export function writeSection(file, name, markdown) {
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const block = `<!-- section:${name} -->\n${keepAnalysis(sections(old).get(name), markdown).replace(/\n*$/, '\n')}<!-- /section:${name} -->\n`;
  let found = false;
  const next = old.replace(RE, (s, n) => (n === name ? ((found = true), block) : s));
  writeFileSync(file, found ? next : `${old.replace(/\n*$/, '\n\n')}${block}`);
}

/**
 * Keeps hand-written analysis across regeneration: every `<!-- analysis:ID -->…<!-- /analysis:ID -->`
 * block of `newText` (the renderer emits them empty) gets the content the same block had in
 * `oldText`. Blocks the new text does not emit are dropped (their anchor is gone).
 */
export function keepAnalysis(oldText, newText) {
  const re = /<!-- analysis:([\w-]+) -->\n([\s\S]*?)<!-- \/analysis:\1 -->/g;
  const old = new Map([...String(oldText ?? '').matchAll(re)].map((m) => [m[1], m[2]]));
  return newText.replace(re, (s, id, body) => (old.has(id) && !body.trim() ? `<!-- analysis:${id} -->\n${old.get(id)}<!-- /analysis:${id} -->` : s));
}

/** An empty analysis block (kept by keepAnalysis). */
export const analysisBlock = (id) => [`<!-- analysis:${id} -->`, `<!-- /analysis:${id} -->`];
