/**
 * Reuses what a context already holds. Each sequence's content is tracked as a list of
 * items (token ids and image embeddings); a new prompt keeps the longest common prefix
 * with its own sequence, or copies a longer one from another sequence (llama.cpp shares the
 * cells, nothing is recomputed), and decodes only the rest. For v0 that skips the system
 * prompt on every question; for v1.5, whose image comes first, it skips the image itself
 * for every further question about the same image.
 */
import { llavaError } from '../errors.js';
import type { Context, ImageEmbedding } from '../engine/index.js';

export type PromptItem = number | ImageEmbedding;

export interface LoadStats {
  /** Positions reused from the cache. */
  reused: number;
  /** Text tokens decoded. */
  promptTokens: number;
  promptMs: number;
  /** Image embedding positions decoded. */
  imageTokens: number;
  imageDecodeMs: number;
}

const size = (it: PromptItem): number => (typeof it === 'number' ? 1 : it.nTokens);

export class KvReuse {
  private readonly contents: PromptItem[][];

  constructor(readonly ctx: Context) {
    this.contents = Array.from({ length: ctx.sequences }, () => []);
  }

  private static lcp(a: readonly PromptItem[], b: readonly PromptItem[]): number {
    const n = Math.min(a.length, b.length);
    let i = 0;
    while (i < n && a[i] === b[i]) i++;
    return i;
  }

  private static positions(items: readonly PromptItem[], count: number): number {
    let p = 0;
    for (let i = 0; i < count; i++) p += size(items[i]);
    return p;
  }

  /**
   * Makes sequence `seq` hold exactly `items`, leaving the logits of its last position ready
   * for sampling. The last item must be a token (LLaVA prompts always end with text).
   */
  async load(seq: number, items: readonly PromptItem[], signal?: AbortSignal): Promise<LoadStats> {
    if (items.length === 0 || typeof items[items.length - 1] !== 'number') {
      throw llavaError('ERR_INVALID_ARGUMENT', 'a prompt must end with text tokens.');
    }
    const total = KvReuse.positions(items, items.length);
    if (total > this.ctx.contextSize) {
      throw llavaError('ERR_CONTEXT_FULL', `The prompt needs ${total} positions but the context holds ${this.ctx.contextSize}; use a larger contextSize or a shorter question.`);
    }
    // The final token is always decoded again: its logits are what generation starts from.
    const cap = items.length - 1;
    let keep = Math.min(KvReuse.lcp(this.contents[seq], items), cap);
    let source = seq;
    // Another sequence's cells can only be shared within one KV buffer.
    for (let s = 0; s < (this.ctx.kvUnified ? this.contents.length : 0); s++) {
      if (s === seq) continue;
      const l = Math.min(KvReuse.lcp(this.contents[s], items), cap);
      if (l > keep) {
        keep = l;
        source = s;
      }
    }
    const keepPos = KvReuse.positions(items, keep);
    if (source !== seq) {
      await this.ctx.copyPrefix(source, seq, keepPos);
    } else {
      await this.ctx.trim(seq, keepPos);
    }
    this.contents[seq] = items.slice(0, keep);
    const stats: LoadStats = { reused: keepPos, promptTokens: 0, promptMs: 0, imageTokens: 0, imageDecodeMs: 0 };
    let i = keep;
    while (i < items.length) {
      const it = items[i];
      if (typeof it !== 'number') {
        const r = await this.ctx.decodeImage(it, { seq, signal });
        this.contents[seq].push(it);
        stats.imageTokens += it.nTokens;
        stats.imageDecodeMs += r.ms;
        i++;
        continue;
      }
      let j = i;
      while (j < items.length && typeof items[j] === 'number') j++;
      const run = items.slice(i, j) as number[];
      const last = j === items.length;
      // Decode in batch-sized slices so a long prompt keeps abort responsive between slices.
      for (let k = 0; k < run.length; k += this.ctx.batchSize) {
        const slice = run.slice(k, k + this.ctx.batchSize);
        const r = await this.ctx.decode(slice, { seq, logits: last && k + slice.length === run.length ? 'last' : 'none', signal });
        this.contents[seq].push(...slice);
        stats.promptTokens += slice.length;
        stats.promptMs += r.ms;
      }
      i = j;
    }
    return stats;
  }

  /** Records tokens that generation decoded after the prompt (they stay reusable). */
  appendDecoded(seq: number, tokens: readonly number[]): void {
    const n = this.ctx.length(seq) - KvReuse.positions(this.contents[seq], this.contents[seq].length);
    this.contents[seq].push(...tokens.slice(0, Math.max(0, n)));
  }

  /** Keeps only the first `nItems` items of `seq`. */
  async truncate(seq: number, nItems: number): Promise<void> {
    const items = this.contents[seq].slice(0, nItems);
    await this.ctx.trim(seq, KvReuse.positions(items, items.length));
    this.contents[seq] = items;
  }

  /** Forgets what `seq` holds (after an error left it in an unknown state). */
  async reset(seq: number): Promise<void> {
    this.contents[seq] = [];
    await this.ctx.trim(seq, 0);
  }

  /** Drops every cached item that refers to `image` (it is being disposed). */
  async forgetImage(image: ImageEmbedding): Promise<void> {
    for (let s = 0; s < this.contents.length; s++) {
      const at = this.contents[s].indexOf(image);
      if (at >= 0) {
        const pos = KvReuse.positions(this.contents[s], at);
        this.contents[s] = this.contents[s].slice(0, at);
        await this.ctx.trim(s, pos);
      }
    }
  }
}
