/**
 * One sequence of a Context: the only code that changes that sequence's KV cells. It owns the
 * sequence's history (the token ids and image embeddings its cells hold, in order), its
 * positions, prefix reuse (load) and the rollback of a failed decode, so what it says it holds is
 * what llama.cpp holds.
 */
import { llavaError } from '../errors.js';
import { AbortLink, abortedError, type OperationQueue } from './lifecycle.js';
import type { Model } from './model.js';
import type { NativeContext, NativeSampler } from './native-types.js';
import { ImageEmbedding } from './projector.js';

/** What a sequence holds at one place: a text token id, or an image embedding (nTokens positions). */
export type SequenceItem = number | ImageEmbedding;

export interface LoadStats {
  /** Positions reused from the cache (copied ones included). */
  reused: number;
  /** Of those, positions copied from another sequence's cells (Sequence.loadPieces' `from`) instead of decoded. */
  copied: number;
  /** Text tokens decoded. */
  promptTokens: number;
  promptMs: number;
  /** Image embedding positions decoded. */
  imageTokens: number;
  imageDecodeMs: number;
}

export interface SampledToken {
  token: number;
  /** The token's text bytes (may be part of a UTF-8 character). */
  piece: Buffer;
  /** End-of-generation token (EOS/EOT). */
  eog: boolean;
}

/** @internal What a sequence uses of its context (never handed to users). */
export interface SequenceHost {
  readonly native: NativeContext;
  readonly queue: OperationQueue;
  readonly model: Model;
  readonly batchSize: number;
}

const size = (it: SequenceItem): number => (typeof it === 'number' ? 1 : it.nTokens);

function positions(items: readonly SequenceItem[], count = items.length): number {
  let p = 0;
  for (let i = 0; i < count; i++) p += size(items[i]!);
  return p;
}

/**
 * The items of `items` that a sequence holding `held` keeps when it loads `items`: the longest
 * common prefix in whole items (an image is the same embedding object), never the last item (it is
 * decoded again for its logits). The one reuse rule, for a sequence's own cells and for copies.
 */
function commonItems(held: readonly SequenceItem[], items: readonly SequenceItem[]): number {
  let keep = 0;
  const cap = items.length - 1;
  while (keep < cap && keep < held.length && held[keep] === items[keep]) keep++;
  return keep;
}

/** Positions a sequence holding `held` would keep of `items` (see commonItems): what a sequence that is still loading `held` will share with `items`. */
export function sharedPositions(held: readonly SequenceItem[], items: readonly SequenceItem[]): number {
  return positions(items, commonItems(held, items));
}

export class Sequence {
  readonly #host: SequenceHost;
  #items: SequenceItem[] = [];
  #length = 0;

  /** @internal created by Context */
  constructor(
    host: SequenceHost,
    /** llama.cpp's sequence id. */
    readonly id: number,
    /** Positions this sequence can hold (llama_n_ctx_seq: the whole context in a shared KV buffer, its share in separate ones). */
    readonly capacity: number,
  ) {
    this.#host = host;
  }

  /** Positions held (an image embedding counts nTokens). */
  get length(): number {
    return this.#length;
  }

  /** What the cells hold, in order. */
  get items(): readonly SequenceItem[] {
    return this.#items;
  }

  private checkRoom(n: number): void {
    if (this.#length + n > this.capacity) {
      throw llavaError(
        'ERR_CONTEXT_FULL',
        `The prompt does not fit: sequence ${this.id} holds ${this.#length} positions and ${n} more exceed its ${this.capacity}. Use a larger contextSize or a shorter prompt.`,
      );
    }
  }

  // Drops cells from position `from` on and the items that held them. An image that starts
  // before `from` and ends after it is dropped whole (half an image is no prefix of anything).
  // The cells go even when the history does not list them: a failed decode may have stored some.
  private cut(from: number): void {
    let keep = 0;
    let p = 0;
    while (keep < this.#items.length && p + size(this.#items[keep]!) <= from) p += size(this.#items[keep++]!);
    this.#host.native.seqRm(this.id, p, -1);
    this.#items.length = keep;
    this.#length = p;
  }

  /**
   * Appends text tokens. `logits`: which positions keep logits ('last' for generation, 'all' for
   * scoring a continuation, or 'none'). A failed decode (including one aborted between its
   * batch-sized slices) leaves the sequence as it was.
   */
  decode(tokens: ArrayLike<number>, opts: { logits?: 'last' | 'all' | 'none'; signal?: AbortSignal } = {}): Promise<{ ms: number }> {
    if (tokens === null || typeof tokens !== 'object' || typeof tokens.length !== 'number') {
      return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', 'tokens must be an array of token ids.'));
    }
    const ids = Int32Array.from(tokens);
    if (ids.length === 0) return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', 'decode needs at least one token.'));
    const nVocab = this.#host.model.info.nVocab;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] !== tokens[i] || ids[i]! < 0 || ids[i]! >= nVocab) return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', `token ${String(tokens[i])} at index ${i} is not a valid id.`));
    }
    const mode = opts.logits ?? 'last';
    if (mode !== 'last' && mode !== 'all' && mode !== 'none') return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', `logits must be 'last', 'all' or 'none', not ${JSON.stringify(mode)}.`));
    if (mode === 'all' && ids.length > this.#host.batchSize) {
      return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', `logits for every position need at most batchSize (${this.#host.batchSize}) tokens per decode.`));
    }
    return this.#host.queue.run(async (signal) => {
      this.checkRoom(ids.length);
      const start = this.#length;
      const n = ids.length;
      const logits = new Uint8Array(n);
      if (mode === 'all') logits.fill(1);
      else if (mode === 'last') logits[n - 1] = 1;
      const pos = new Int32Array(n).map((_, i) => start + i);
      using link = new AbortLink(signal);
      try {
        const r = await this.#host.native.decode({ tokens: ids, pos, seq: new Int32Array(n).fill(this.id), logits }, link.flag);
        this.#items.push(...ids);
        this.#length = start + n;
        return r;
      } catch (e) {
        this.cut(start);
        if (link.aborted) throw abortedError('decode', opts.signal);
        throw e;
      }
    }, opts.signal);
  }

  /** Appends image features (from Projector.encode). */
  decodeImage(image: ImageEmbedding, opts: { signal?: AbortSignal } = {}): Promise<{ ms: number }> {
    if (!(image instanceof ImageEmbedding)) return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', 'decodeImage expects an ImageEmbedding from Projector.encode().'));
    try {
      image.assertLive();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#host.queue.run(async (signal) => {
      this.checkRoom(image.nTokens);
      const start = this.#length;
      using link = new AbortLink(signal);
      try {
        const r = await this.#host.native.decodeEmbedding(image.native, this.id, start, link.flag);
        this.#items.push(image);
        this.#length = start + image.nTokens;
        return r;
      } catch (e) {
        this.cut(start);
        if (link.aborted) throw abortedError('image decode', opts.signal);
        throw e;
      }
    }, opts.signal);
  }

  /**
   * Makes the sequence hold exactly `items`, keeping the longest prefix it already holds and
   * decoding the rest (in batch-sized slices, so abort stays responsive), and leaves the logits of
   * the last position ready for sampling. The last item must be a token, and it is always decoded
   * again even when the whole prompt is cached: its logits are what generation starts from.
   * A failure (an abort included) leaves the part already decoded, which is a valid prefix.
   */
  async load(items: readonly SequenceItem[], signal?: AbortSignal, from?: Sequence): Promise<LoadStats> {
    const pieces = this.loadPieces(items, signal, from);
    for (;;) {
      const r = await pieces.next();
      if (r.done) return r.value;
    }
  }

  /**
   * load() one piece at a time: each `next()` decodes one piece — an image, or a slice of at most
   * batchSize text tokens (the first also drops what the prompt does not share with the cache) —
   * and the last one returns the stats. The pieces are load()'s, so the cells and logits are the
   * same whether or not other work runs between them (a scheduler steps the other sequences there,
   * so their answers keep flowing while a long prompt loads). Between two pieces the sequence holds
   * a valid prefix of `items`; the logits are ready once the generator is done, before anything else
   * decodes.
   *
   * `from`: another sequence of the same context. When it holds a longer prefix of `items` than this
   * one (by the same rule: whole items, never the last one), its cells for that prefix are copied
   * here first (Sequence.copyPrefix) and only the rest is decoded; `stats.copied` counts them.
   */
  async *loadPieces(items: readonly SequenceItem[], signal?: AbortSignal, from?: Sequence): AsyncGenerator<void, LoadStats, void> {
    if (!Array.isArray(items) || items.length === 0 || typeof items[items.length - 1] !== 'number') {
      throw llavaError('ERR_INVALID_ARGUMENT', 'a prompt must end with text tokens.');
    }
    const total = positions(items);
    if (total > this.capacity) {
      throw llavaError('ERR_CONTEXT_FULL', `The prompt needs ${total} positions but sequence ${this.id} holds ${this.capacity}; use a larger contextSize or a shorter question.`);
    }
    const copied = from === undefined ? 0 : await this.copyPrefix(from, items);
    const keep = this.prefixItems(items);
    await this.keep(keep);
    const stats: LoadStats = { reused: this.#length, copied, promptTokens: 0, promptMs: 0, imageTokens: 0, imageDecodeMs: 0 };
    let i = keep;
    let first = true;
    while (i < items.length) {
      if (!first) yield;
      first = false;
      const it = items[i]!;
      if (typeof it !== 'number') {
        const r = await this.decodeImage(it, { signal });
        stats.imageTokens += it.nTokens;
        stats.imageDecodeMs += r.ms;
        i++;
        continue;
      }
      let j = i;
      while (j < items.length && typeof items[j] === 'number') j++;
      const run = items.slice(i, j) as number[];
      const last = j === items.length;
      for (let k = 0; k < run.length; k += this.#host.batchSize) {
        if (k > 0) yield;
        const slice = run.slice(k, k + this.#host.batchSize);
        const r = await this.decode(slice, { logits: last && k + slice.length === run.length ? 'last' : 'none', signal });
        stats.promptTokens += slice.length;
        stats.promptMs += r.ms;
      }
      i = j;
    }
    return stats;
  }

  // Items of `items` that load() would keep: the common prefix, never the last item (it is decoded
  // again for its logits).
  private prefixItems(items: readonly SequenceItem[]): number {
    return commonItems(this.#items, items);
  }

  /**
   * Makes this sequence hold `from`'s cells for the prefix of `items` that `from` would keep when
   * loading `items` (sharedPrefix: whole items, never the last one), copied (K/V values and
   * positions, the same cell layout) instead of decoded; what this sequence held before is dropped.
   * Nothing changes when `from` shares no more of `items` than this sequence does. Returns the
   * positions copied. The cells are `from`'s own, so a prompt continued from them answers exactly as
   * it would on `from`. The buffer copy itself runs at the start of the next decode of the context
   * (llama.cpp queues it), so its cost shows in that decode's time.
   */
  copyPrefix(from: Sequence, items: readonly SequenceItem[]): Promise<number> {
    if (!(from instanceof Sequence) || from.#host !== this.#host) {
      return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', 'copyPrefix needs another sequence of the same context.'));
    }
    if (from === this) return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', `sequence ${this.id} cannot copy from itself.`));
    if (!Array.isArray(items)) return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', 'items must be an array of prompt items.'));
    return this.#host.queue.run(async () => {
      const n = from.prefixItems(items);
      const p = positions(from.#items, n);
      if (p <= this.sharedPrefix(items)) return 0;
      try {
        this.#host.native.seqCopy(from.id, this.id);
      } catch (e) {
        // The copy may have emptied this sequence's cells: say so.
        this.#host.native.seqRm(this.id, -1, -1);
        this.#items = [];
        this.#length = 0;
        throw e;
      }
      // This sequence now holds every cell of `from`: drop what follows the shared prefix.
      this.#items = from.#items.slice();
      this.#length = from.#length;
      this.cut(p);
      return p;
    });
  }

  /** Positions load(items) would reuse from what this sequence holds (a scheduler picks the sequence with the most). */
  sharedPrefix(items: readonly SequenceItem[]): number {
    return positions(items, this.prefixItems(items));
  }

  /** Keeps only the first `nItems` items (and their cells). */
  keep(nItems: number): Promise<void> {
    if (!Number.isInteger(nItems) || nItems < 0) return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', 'nItems must be an integer >= 0.'));
    return this.#host.queue.run(async () => {
      if (nItems < this.#items.length) this.cut(positions(this.#items, nItems));
    });
  }

  /** Drops positions from `from` on (an image straddling `from` is dropped whole). */
  trim(from: number): Promise<void> {
    if (!Number.isInteger(from) || from < 0) return Promise.reject(llavaError('ERR_INVALID_ARGUMENT', 'from must be an integer >= 0.'));
    return this.#host.queue.run(async () => {
      if (from < this.#length) this.cut(from);
    });
  }

  /** Empties the sequence. */
  clear(): Promise<void> {
    return this.#host.queue.run(async () => {
      this.#host.native.seqRm(this.id, -1, -1);
      this.#items = [];
      this.#length = 0;
    });
  }

  /** Drops `image` and everything after it (the embedding is being disposed). */
  forget(image: ImageEmbedding): Promise<void> {
    return this.#host.queue.run(async () => {
      const at = this.#items.indexOf(image);
      if (at >= 0) this.cut(positions(this.#items, at));
    });
  }

  /**
   * @internal One generation step for several sequences of one context (Context.step): feeds
   * each entry's token at the end of its sequence in one batch, then samples each sequence's
   * next token. Runs inside the context's queue.
   */
  static async step(
    host: SequenceHost,
    entries: readonly { sequence: Sequence; token: number; sampler: NativeSampler }[],
    signal?: AbortSignal,
  ): Promise<SampledToken[]> {
    for (const e of entries) e.sequence.checkRoom(1);
    const starts = entries.map((e) => e.sequence.#length);
    using link = new AbortLink(signal);
    try {
      const r = await host.native.step(
        Int32Array.from(entries, (e) => e.token),
        Int32Array.from(entries, (e) => e.sequence.id),
        Int32Array.from(starts),
        entries.map((e) => e.sampler),
        link.flag,
      );
      for (const e of entries) {
        e.sequence.#items.push(e.token);
        e.sequence.#length += 1;
      }
      return Array.from(r.tokens, (t, i) => ({ token: t, piece: r.pieces[i]!, eog: r.eog[i] === 1 }));
    } catch (e) {
      entries.forEach((en, i) => en.sequence.cut(starts[i]!));
      if (link.aborted) throw abortedError('generation step', signal);
      throw e;
    }
  }
}
