/** ImageCache: hits by content, LRU eviction beyond capacity, never an entry a job still uses. */
import t from 'tap';
import { ImageCache } from '../../lib/answer/image-cache.js';
import type { ImageEmbedding } from '../../lib/engine/index.js';

const fake = (name: string) => {
  const e = { name, disposed: false, dispose() { this.disposed = true; } };
  return e as unknown as ImageEmbedding & typeof e;
};

t.test('same bytes hit, least recently used unused entries go first, used ones stay', async (t) => {
  const cache = new ImageCache(2);
  const made: ReturnType<typeof fake>[] = [];
  const get = (s: string) => cache.acquire(Buffer.from(s), async () => {
    const e = fake(s);
    made.push(e);
    return e;
  });
  const a = await get('a');
  t.equal(a.fresh, true);
  a.release();
  const a2 = await get('a');
  t.equal(a2.fresh, false, 'the same bytes: reused');
  t.equal(a2.embedding, a.embedding, 'the same embedding object (sequences match it by identity)');
  const b = await get('b');
  b.release();
  // a is in use (a2 not released): c evicts b, the least recently used unused entry, not a.
  const c = await get('c');
  t.same(made.map((e) => [e.name, e.disposed]), [['a', false], ['b', true], ['c', false]], 'b evicted, a kept while in use');
  c.release();
  a2.release();
  a2.release(); // a second release does nothing
  const d = await get('d');
  d.release();
  t.same(made.map((e) => [e.name, e.disposed]), [['a', true], ['b', true], ['c', false], ['d', false]], 'a (least recently used) evicted once released');
  t.equal(cache.size, 2);
  t.same(cache.counts, { hits: 1, misses: 4 });
  // clear() beside a job still using an entry (LlavaMed.clearCache waits for the jobs; the cache does not rely on it).
  const e = await get('e');
  cache.clear();
  t.equal(cache.size, 1, 'clear keeps the entry in use');
  t.same(made.filter((x) => !x.disposed).map((x) => x.name), ['e'], 'clear frees every unused entry, not the one in use');
  t.equal((await get('e')).fresh, false, 'which is still found');
  e.release();
  cache.clear();
  t.equal(cache.size, 1, 'the second acquire still holds it');
  cache.dispose();
  t.ok(made.every((x) => x.disposed), 'dispose frees everything');
});
