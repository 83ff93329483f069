import type { Test } from 'tap';
import type { LlavaMed } from '../../lib/llava-med.js';
import { pyStrip } from '../../lib/prompt/index.js';

/**
 * A stop string that cuts a generated text right after whitespace, so the text before it ends in
 * whitespace the final answer strips (the original's strip()): the first two-character word start
 * after whitespace that occurs nowhere earlier, past some non-whitespace text. Undefined when the
 * text has none.
 */
export function stopAfterSpace(raw: string): { stop: string; cut: string } | undefined {
  for (let i = 2; i < raw.length - 1; i++) {
    const stop = raw.slice(i, i + 2);
    if (/\s/u.test(raw[i - 1]!) && /\S/u.test(raw[i]!) && /\S/u.test(raw.slice(0, i - 1)) && raw.indexOf(stop) === i) return { stop, cut: raw.slice(0, i) };
  }
  return undefined;
}

/**
 * Asks `med` greedily and returns a stop string that cuts its answer right after whitespace (see
 * stopAfterSpace), asserting that the answer has one and that the cut text has whitespace to strip.
 */
export async function stopCaseFor(t: Test, med: LlavaMed, image: Buffer, question: string, maxTokens: number): Promise<{ stop: string; cut: string }> {
  const pieces: string[] = [];
  await med.ask(image, question, { temperature: 0, maxTokens, onTextChunk: (p) => pieces.push(p) });
  const found = stopAfterSpace(pieces.join(''));
  t.ok(found, `the answer has a word after a space to stop at (${JSON.stringify(pieces.join(''))})`);
  const { stop, cut } = found!;
  t.not(pyStrip(cut), cut, `the text before the stop has whitespace to strip (${JSON.stringify(cut)})`);
  return { stop, cut };
}
