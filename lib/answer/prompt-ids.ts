/**
 * lib/prompt builds token layouts with a synchronous tokenizer (its rules are pure
 * functions); the engine tokenizes asynchronously, off the JS thread. This adapter runs a
 * builder once to learn which text segments it needs, tokenizes them all, then runs it again
 * with the answers.
 */
import type { Model } from '../engine/index.js';
import type { Tokenize } from '../prompt/index.js';

export async function withTokenizer<T>(model: Model, build: (tokenize: Tokenize) => T): Promise<T> {
  const wanted = new Set<string>();
  build((text) => {
    wanted.add(text);
    return [];
  });
  const table = new Map<string, number[]>();
  await Promise.all(
    [...wanted].map(async (text) => {
      table.set(text, Array.from(await model.tokenize(text, { addSpecial: false, parseSpecial: false })));
    }),
  );
  return build((text) => {
    const ids = table.get(text);
    if (!ids) throw new Error(`prompt builder asked for an untokenized segment: ${JSON.stringify(text)}`);
    return ids;
  });
}
