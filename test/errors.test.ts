import t from 'tap';
import { llavaError, isLlavaMedError, LlavaMedError, throwIfAborted } from '../lib/errors.js';

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
