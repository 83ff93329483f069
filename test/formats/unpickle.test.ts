import t from 'tap';
import { readFileSync } from 'node:fs';
import { unpickle, pickleToPlain, SAFE_GLOBALS } from '../../lib/formats/unpickle.js';

const fx = (n: string) => readFileSync(new URL(`../fixtures/formats/pickle/${n}`, import.meta.url));
// Written by scripts/fixtures/make-pickle-fixtures.py with CPython's pickle; tuples become arrays.
const expected = JSON.parse(fx('expected.json').toString('utf8'));

t.test('Python data pickles in protocols 2-5 (PathVQA-style question lists)', async (t) => {
  for (const p of [2, 3, 4, 5]) {
    const v = unpickle(fx(`questions-p${p}.pkl`), { source: `questions-p${p}.pkl` });
    t.ok(Array.isArray(v), `protocol ${p}: a list`);
    t.ok((v as unknown[])[0] instanceof Map, `protocol ${p}: dicts are Maps`);
    t.same(pickleToPlain(v), expected, `protocol ${p}: same data as Python`);
  }
});

t.test('protocol 2 bytes (_codecs.encode), sets, big ints', async (t) => {
  const v = unpickle(fx('bytes-p2.pkl')) as Map<string, unknown>;
  t.same([...(v.get('b') as Buffer)], [0, 255, 0x61, 0x62]);
  t.same([...(v.get('s') as Set<number>)], [1, 2]);
  t.same([...(v.get('fs') as Set<number>)], [3]);
  t.equal(v.get('big'), 2n ** 80n);
});

t.test('a caller-supplied allow-list replaces the default one', async (t) => {
  // Without builtins.set in the list, the protocol-2 set global is refused.
  const noSets = Object.fromEntries(Object.entries(SAFE_GLOBALS).filter(([k]) => !k.endsWith('set')));
  t.throws(() => unpickle(fx('bytes-p2.pkl'), { globals: noSets }), { code: 'ERR_UNSAFE_PICKLE', message: /__builtin__\.set/ });
  // A custom global builds whatever plain value the caller wants.
  const v = unpickle(fx('bytes-p2.pkl'), { globals: { ...SAFE_GLOBALS, '__builtin__.set': { call: () => 'a set' } } }) as Map<string, unknown>;
  t.equal(v.get('s'), 'a set');
});
