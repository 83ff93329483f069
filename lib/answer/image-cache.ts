/**
 * Encoded images kept by content: the same image bytes asked about again skip the vision encoder,
 * and — since a sequence matches its cached prefix by embedding identity — reuse the KV cells
 * that hold the image (and the conversation around it). Least recently used entries no job is
 * using are freed beyond the capacity. Used inside the scheduler's loop only (one caller at a time).
 */
import { createHash } from 'node:crypto';
import type { ImageEmbedding } from '../engine/index.js';

interface Entry {
  embedding: ImageEmbedding;
  /** Jobs using it now. */
  refs: number;
}

/** What {@link ImageCache.acquire} hands out: the embedding, whether it was encoded now, and its release. */
export interface CachedImage {
  embedding: ImageEmbedding;
  /** Encoded by this call (false: reused). */
  fresh: boolean;
  /** Call once when the job using it ends. */
  release: () => void;
}

export class ImageCache {
  // A Map iterates in insertion order: re-inserting on use keeps the least recently used first.
  readonly #entries = new Map<string, Entry>();
  #hits = 0;
  #misses = 0;

  constructor(readonly capacity: number) {}

  /** Entries held now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Lookups answered from the cache, and those that encoded. */
  get counts(): { hits: number; misses: number } {
    return { hits: this.#hits, misses: this.#misses };
  }

  async acquire(bytes: Uint8Array, encode: () => Promise<ImageEmbedding>): Promise<CachedImage> {
    const key = createHash('sha256').update(bytes).digest('hex');
    let entry = this.#entries.get(key);
    const fresh = !entry;
    if (entry) {
      this.#hits++;
      this.#entries.delete(key);
    } else {
      this.#misses++;
      entry = { embedding: await encode(), refs: 0 };
    }
    entry.refs++;
    this.#entries.set(key, entry);
    this.evict();
    const e = entry;
    let released = false;
    return {
      embedding: e.embedding,
      fresh,
      release: () => {
        if (released) return;
        released = true;
        e.refs--;
        this.evict();
      },
    };
  }

  // A freed embedding may still be listed by a sequence that held it: it keeps its size there and
  // can never match a new prompt (prefixes match by identity), so its cells go at that sequence's next load.
  private evict(): void {
    for (const [key, e] of this.#entries) {
      if (this.#entries.size <= this.capacity) return;
      if (e.refs > 0) continue;
      this.#entries.delete(key);
      e.embedding.dispose();
    }
  }

  /** Frees every entry no job is using. */
  clear(): void {
    for (const [key, e] of this.#entries) {
      if (e.refs > 0) continue;
      this.#entries.delete(key);
      e.embedding.dispose();
    }
  }

  /** Frees every entry (the owner is being disposed). */
  dispose(): void {
    for (const e of this.#entries.values()) e.embedding.dispose();
    this.#entries.clear();
  }
}
