import t from 'tap';
import { allInOrder, llavaError, isLlavaMedError, LlavaMedError, throwIfAborted } from '../lib/errors.js';

t.test('error factory gives a typed error with a stable code', async (t) => {
  const e = llavaError('ERR_NOT_GGUF', 'not a GGUF file');
  t.ok(e instanceof LlavaMedError);
  t.ok(e instanceof Error);
  t.equal(e.code, 'ERR_NOT_GGUF');
  t.ok(isLlavaMedError(e, 'ERR_NOT_GGUF'));
  t.notOk(isLlavaMedError(e, 'ERR_BUSY'));
  const ac = new AbortController();
  throwIfAborted(ac.signal);
  ac.abort();
  t.throws(() => throwIfAborted(ac.signal, 'load'), { code: 'ERR_ABORTED' });
});

t.test('allInOrder reports the first failure in argument order, not the first to settle', async (t) => {
  const late = new Promise<number>((_, reject) => setTimeout(() => reject(new Error('first argument')), 30));
  const early = Promise.reject(new Error('second argument'));
  await t.rejects(allInOrder(late, early), { message: 'first argument' });
  const slow = new Promise<string>((resolve) => setTimeout(() => resolve('a'), 20));
  t.same(await allInOrder(slow, Promise.resolve(2)), ['a', 2], 'values in argument order');
  await t.rejects(allInOrder(Promise.resolve(1), Promise.reject(new Error('only'))), { message: 'only' });
});
