/** The chain model both generation-loop tests run on, loaded once per test file (not a test file itself). */
import t from 'tap';
import { Context, Model } from '../../lib/engine/index.js';
import { makeTinyLlamaGguf, type TinyLlamaOptions } from '../helpers/tiny-gguf.js';

export async function loadChain(opts?: TinyLlamaOptions) {
  const llm = await makeTinyLlamaGguf(undefined, opts);
  const model = await Model.load(llm.path);
  const ctx = await Context.create(model, { contextSize: 256, threads: 1 });
  t.teardown(async () => {
    await ctx.dispose();
    await model.dispose();
  });
  /** The text generation builds: the tokens' pieces, concatenated. */
  const textOf = async (ids: number[]): Promise<string> => Buffer.concat(await model.tokenPieces(ids)).toString('utf8');
  return { llm, chain: llm.chainTokens, model, ctx, textOf };
}
