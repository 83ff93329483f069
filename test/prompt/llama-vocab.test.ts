// v0 layout with LLaMA's real SentencePiece ids (test/prompt/fixtures/llama-spm-v0-ids.json, produced by
// make-llama-spm-ids.py from llama.cpp's LLaMA SPM vocab and checked there against HF tokenizer outputs).
// The tokenizer here is a lookup: any text segment the library asks for that the original would not have
// encoded fails the test, and the assembled ids must equal the independently built layouts.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { buildV0Prompt, V0_PREAMBLE } from '../../lib/prompt/index.js';

interface Fixture {
  ids: { bos: number; imStart: number; imEnd: number };
  segments: { text: string; ids: number[]; pieces: string[] }[];
  layouts: { question: string; before: number[]; after: number[] }[];
}

const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'llama-spm-v0-ids.json');
const fx = JSON.parse(await readFile(file, 'utf8')) as Fixture;
const table = new Map(fx.segments.map((s) => [s.text, s.ids]));
const lookup = (text: string): number[] => {
  const ids = table.get(text);
  if (!ids) throw new Error(`segment not in the fixture: ${JSON.stringify(text)}`);
  return ids;
};

t.test('fixture sanity', async (t) => {
  t.ok(fx.layouts.length >= 3);
  t.same(fx.segments.find((s) => s.text === '###')?.pieces, ['▁###'], '"###" after <im_end> is one dummy-prefixed piece');
  const pre = fx.segments.find((s) => s.text.startsWith(V0_PREAMBLE));
  t.equal(pre?.pieces[0], '▁A', 'the system text starts with the dummy prefix');
  t.ok(pre?.pieces.includes('<0x0A>'), 'the few-shot "\\n" is a byte-fallback piece');
});

for (const l of fx.layouts) {
  t.test(`question ${JSON.stringify(l.question)}`, async (t) => {
    const p = buildV0Prompt(lookup, fx.ids, `<image>\n${l.question}`);
    t.same(p.before, l.before);
    t.same(p.after, l.after);
    t.equal(p.imagePosition, l.before.length);
  });
}
