/**
 * OperationQueue, the FIFO every engine object and LlavaMed run their calls through: a waiting
 * call whose signal aborts is rejected at once and never runs; close() rejects the waiting
 * calls, aborts the running one (reported as ERR_DISPOSED) and resolves once it has settled.
 * Pure TypeScript: the operations are promises the test settles by hand.
 */
import t from 'tap';
import { LlavaMedError, llavaError } from '../../lib/errors.js';
import { OperationQueue } from '../../lib/engine/lifecycle.js';

/** An operation the test finishes by hand; records whether it started and its signal. */
function manual<T = string>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const done = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  const op = {
    started: false,
    signal: undefined as AbortSignal | undefined,
    run: (signal: AbortSignal) => {
      op.started = true;
      op.signal = signal;
      return done;
    },
    resolve,
    reject,
  };
  return op;
}

/** Settlement of a promise, observable without awaiting it. */
function watch<T>(p: Promise<T>) {
  const w = { settled: false, value: undefined as T | undefined, error: undefined as unknown };
  p.then(
    (v) => Object.assign(w, { settled: true, value: v }),
    (e) => Object.assign(w, { settled: true, error: e }),
  );
  return w;
}

const tick = () => new Promise((r) => setImmediate(r));
const code = (e: unknown) => (e instanceof LlavaMedError ? e.code : `not a LlavaMedError: ${String(e)}`);

t.test('a waiting call whose signal aborts rejects at once, while the running call goes on', async (t) => {
  const q = new OperationQueue('thing');
  const first = manual();
  const waiting = manual();
  const after = manual();
  const ac = new AbortController();
  const r1 = watch(q.run(first.run));
  const r2 = watch(q.run(waiting.run, ac.signal));
  const r3 = watch(q.run(after.run));
  await tick();
  t.ok(first.started, 'the first call runs');
  t.equal(q.size, 3);
  ac.abort(new Error('user gave up'));
  await tick();
  t.ok(r2.settled, 'the aborted waiting call settled before the running one finished');
  t.equal(code(r2.error), 'ERR_ABORTED');
  t.equal(((r2.error as Error).cause as Error | undefined)?.message, 'user gave up', "the signal's reason is the cause");
  t.notOk(r1.settled, 'the running call is still running');
  t.equal(q.size, 2, 'the aborted call left the queue');
  first.resolve('one');
  await tick();
  t.equal(r1.value, 'one');
  t.notOk(waiting.started, 'the aborted call never ran');
  t.ok(after.started, 'the call behind it runs next');
  after.resolve('three');
  await tick();
  t.equal(r3.value, 'three');
  t.equal(q.size, 0);
});

t.test('a signal that already fired rejects without queueing', async (t) => {
  const q = new OperationQueue('thing');
  const op = manual();
  await t.rejects(q.run(op.run, AbortSignal.abort()), { code: 'ERR_ABORTED' });
  t.notOk(op.started);
  t.equal(q.size, 0);
});

t.test('the running call gets a signal that fires with its caller\'s', async (t) => {
  const q = new OperationQueue('thing');
  const op = manual();
  const ac = new AbortController();
  const r = watch(q.run(op.run, ac.signal));
  await tick();
  t.equal(op.signal?.aborted, false);
  ac.abort();
  t.equal(op.signal?.aborted, true, 'fired');
  op.reject(llavaError('ERR_ABORTED', 'stopped'));
  await tick();
  t.equal(code(r.error), 'ERR_ABORTED', 'an abort the caller asked for stays ERR_ABORTED');
});

t.test('close(): waiting calls reject at once, the running call is aborted, close resolves after it settled', async (t) => {
  const q = new OperationQueue('thing');
  const running = manual();
  const queued = manual();
  const r1 = watch(q.run(running.run));
  const r2 = watch(q.run(queued.run));
  await tick();
  const closed = watch(q.close());
  t.equal(q.isClosed, true);
  t.equal(running.signal?.aborted, true, "the running call's signal fired");
  await tick();
  t.equal(code(r2.error), 'ERR_DISPOSED', 'the waiting call rejected before the running one settled');
  t.notOk(r1.settled || closed.settled, 'close waits for the running call');
  await t.rejects(q.run(manual().run), { code: 'ERR_DISPOSED' }, 'a new call after close');
  running.reject(llavaError('ERR_ABORTED', 'stopped by the flag'));
  await tick();
  t.ok(closed.settled, 'close resolved');
  t.equal(code(r1.error), 'ERR_DISPOSED', 'the call stopped by close reports the dispose');
  t.notOk(queued.started);
});

t.test('close(): a running call that finishes anyway keeps its result', async (t) => {
  const q = new OperationQueue('thing');
  const op = manual();
  const r = q.run(op.run);
  await tick();
  const closed = q.close();
  op.resolve('done');
  t.equal(await r, 'done');
  await closed;
});

t.test('close() on an idle queue resolves; size counts waiting and running calls', async (t) => {
  const q = new OperationQueue('thing');
  const a = manual();
  const b = manual();
  const ra = q.run(a.run);
  const rb = q.run(b.run);
  t.equal(q.size, 2);
  a.resolve('a');
  b.resolve('b');
  t.same(await Promise.all([ra, rb]), ['a', 'b']);
  t.equal(q.size, 0);
  await q.close();
  t.pass('resolved');
});

t.test('a synchronous throw inside an operation becomes a rejection; the queue goes on', async (t) => {
  const q = new OperationQueue('thing');
  const bad = q.run(() => {
    throw Object.assign(new Error('native says no'), { code: 'ERR_DECODE' });
  });
  const good = q.run(async () => 'fine');
  await t.rejects(bad, { code: 'ERR_DECODE', message: 'native says no' });
  t.equal(await good, 'fine');
});
