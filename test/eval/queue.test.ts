// The Redis work queue end to end, through the CLI: a real redis-server (started here on a free loopback
// port, with a password), `eval answer --queue` as the producer and `eval worker` processes on a tiny
// random-weight v0 model, answering the first questions of VQA-RAD's test split (the real records and
// images in test/fixtures/eval). The reference is a single-process `eval answer` of the same questions:
// at temperature 0 the queued run must write the same file (ids, order, answers), whatever worker
// answered what, with one worker SIGKILLed in the middle of a job and with Redis restarted mid-run.
import t, { type Test } from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { writeSyntheticV0 } from '../../lib/demo/synthetic-v0.js';
import { convertV0 } from '../../lib/convert/index.js';
import { prepareDataset } from '../../lib/eval/prepare/index.js';
import { parseTestFile, type AnswerLine, type TestEntry } from '../../lib/eval/formats.js';
import { parseQueueUrl } from '../../lib/eval/queue/connection.js';
import { compiledCli, REPO_ADDON } from '../helpers/compiled-cli.js';

const FIX = fileURLToPath(new URL('../fixtures/eval/vqa-rad/data_RAD', import.meta.url));
const QUESTIONS = 60; // of 451 (26 images): the whole split takes ~35 s per single-process pass on 2 loaded cores
const MAX_TOKENS = '16';
const PASSWORD = `pw-${randomBytes(8).toString('hex')}`;

const have = spawnSync('redis-server', ['--version']).status === 0;
if (!have) {
  t.fail('redis-server is not installed (.ci/run installs it; apt-get install redis-server)');
  process.exit(1);
}

const CLI = compiledCli();
const dir = t.testdir();
const m1 = { model: join(dir, 'm1/tiny.gguf'), mmproj: join(dir, 'm1/mmproj-tiny.gguf') };
const m2 = { model: join(dir, 'm2/tiny.gguf'), mmproj: join(dir, 'm2/mmproj-tiny.gguf') };
const data = join(dir, 'rad');
const subset = join(dir, 'subset.json');
let entries: TestEntry[] = [];
let reference: AnswerLine[] = [];
const children = new Set<ChildProcess>();

// ---------------------------------------------------------------- helpers

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A redis-server without persistence on a loopback port; `restart()` loses everything, as a crash would. */
class RedisServer {
  proc: ChildProcess | undefined;
  constructor(readonly port: number) {}
  async start(): Promise<void> {
    const p = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', PASSWORD, '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = p;
    let out = '';
    p.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve, reject) => {
      p.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('Ready to accept connections')) resolve();
      });
      p.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
      timer = setTimeout(() => {
        p.kill('SIGKILL');
        reject(new Error(`redis-server did not start within 20 s: ${out}`));
      }, 20_000);
    }).finally(() => clearTimeout(timer));
    p.stdout!.resume();
  }
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    const hard = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(hard);
  }
}

interface Run {
  proc: ChildProcess;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LLAVA_MED_ADDON: process.env.LLAVA_MED_ADDON ?? REPO_ADDON, ...env } });
  children.add(proc);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  proc.stdout!.resume();
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => {
    children.delete(proc);
    resolve({ code, signal });
  }));
  return { proc, stderr: () => err, exit };
}

const modelFlags = (m: typeof m1) => ['-m', m.model, '-p', m.mmproj, '-t', '1'];
// The producer loads no model: only the files that name the run's model (engine flags are the workers').
const producerArgs = (url: string, questions: string, answers: string, extra: string[] = []) => [
  'eval', 'answer', '-m', m1.model, '-p', m1.mmproj, '--queue', url, '--question-file', questions, '--image-folder', join(data, 'images'),
  '--answers-file', answers, '--temperature', '0', '--max-tokens', MAX_TOKENS, '--lock-timeout', '2', ...extra,
];
const worker = (url: string, m = m1, extra: string[] = []) => start(['eval', 'worker', ...modelFlags(m), '--queue', url, ...extra], { LLAVA_MED_REDIS_PASSWORD: PASSWORD });

/**
 * Polls `cond` until it holds. Bounded: fails after `ms`, also when one poll hangs (a Redis command waiting for a
 * connection), and at once when one of `watch` (the processes the wait depends on) has exited, with their stderr.
 */
async function until(what: string, cond: () => Promise<boolean> | boolean, ms = 60_000, watch: Run[] = []): Promise<void> {
  const t0 = Date.now();
  const fail = (why: string) => new Error(`${why} while waiting for ${what}. ${watch.map((w) => `stderr of ${w.proc.spawnargs.slice(2, 4).join(' ')} (exit ${w.proc.exitCode ?? w.proc.signalCode}):\n${w.stderr().slice(-2000)}`).join('\n---\n')}`);
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const left = ms - (Date.now() - t0);
    const ok = await Promise.race([
      Promise.resolve().then(cond),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(fail(`timed out after ${ms / 1000} s`)), Math.max(0, left)))),
    ]).finally(() => clearTimeout(timer));
    if (ok) return;
    const dead = watch.find((w) => w.proc.exitCode !== null || w.proc.signalCode !== null);
    if (dead) throw fail(`${dead.proc.spawnargs.slice(2, 4).join(' ')} exited`);
    if (Date.now() - t0 > ms) throw fail(`timed out after ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits for a process to exit; after `ms` kills it and fails with everything the run's processes said. */
async function exited(r: Run, what: string, ms = 120_000, others: Run[] = []): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      for (const o of [r, ...others]) o.proc.kill('SIGKILL');
      reject(new Error(`${what} did not exit within ${ms / 1000} s. Its stderr:\n${r.stderr().slice(-3000)}\nThe others:\n${others.map((o) => o.stderr().slice(-1500)).join('\n---\n')}`));
    }, ms);
  });
  try {
    return await Promise.race([r.exit, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function readLines(file: string): Promise<AnswerLine[]> {
  const text = await readFile(file, 'utf8');
  t.ok(text.endsWith('\n'), `${file} ends with a whole line`);
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as AnswerLine);
}

/** The queued file equals the single-process one: same ids in the same order, same answers, each id once. */
function sameAsReference(tt: Test, lines: AnswerLine[], ref: AnswerLine[]): void {
  tt.same(lines.map((l) => l.question_id), ref.map((l) => l.question_id), 'same ids, in test.json order');
  tt.equal(new Set(lines.map((l) => JSON.stringify(l.question_id))).size, lines.length, 'no id twice');
  tt.same(lines.map((l) => l.text), ref.map((l) => l.text), 'the same greedy answers');
  tt.same(lines.map((l) => [l.prompt, l.model_id, l.metadata]), ref.map((l) => [l.prompt, l.model_id, l.metadata]), 'prompt, model_id, metadata as the single process wrote them');
  tt.equal(new Set(lines.map((l) => l.answer_id)).size, lines.length, 'answer ids are unique');
}

let redisServer: RedisServer;
let client: Redis;

t.teardown(async () => {
  for (const c of children) c.kill('SIGKILL');
  client?.disconnect();
  await redisServer?.stop('SIGKILL');
});

t.before(async () => {
  // Two tiny models that differ only in their weights (seed): same keys, same shapes.
  const dims = { hidden: 64, layers: 2, heads: 4, intermediate: 128, vocab: 512, clipHidden: 32, clipLayers: 2, clipHeads: 4, clipIntermediate: 64, imageSize: 28, patchSize: 14 };
  for (const [m, seed] of [[m1, 1234], [m2, 99]] as const) {
    const hf = await writeSyntheticV0(join(dir, `hf-${seed}`), dims, { seed });
    await convertV0({ ...hf, out: dirname(m.model), name: 'tiny', outtype: 'f16' });
  }
  await prepareDataset({ dataset: 'vqa-rad', src: FIX, out: data });
  const all = parseTestFile(JSON.parse(await readFile(join(data, 'test.json'), 'utf8')));
  entries = all.slice(0, QUESTIONS);
  await writeFile(subset, JSON.stringify(entries));
  const ref = start(['eval', 'answer', ...modelFlags(m1), '--question-file', subset, '--image-folder', join(data, 'images'), '--answers-file', join(dir, 'reference.jsonl'), '--temperature', '0', '--max-tokens', MAX_TOKENS]);
  const r = await exited(ref, 'the reference run', 300_000);
  if (r.code !== 0) throw new Error(`reference run failed: ${ref.stderr()}`);
  reference = await readLines(join(dir, 'reference.jsonl'));
  redisServer = new RedisServer(await freePort());
  await redisServer.start();
  // The test's own look into Redis: no command waits more than 10 s (while Redis restarts, for instance).
  client = new Redis({ host: '127.0.0.1', port: redisServer.port, password: PASSWORD, lazyConnect: true, maxRetriesPerRequest: null, commandTimeout: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
});

// ---------------------------------------------------------------- tests

t.test('queue URLs: run name, db, credentials from the URL or the environment, never shown', async (t) => {
  const a = parseQueueUrl('redis://user:s3cr%40t@host.example:6380/2/vqa-rad-7b', {});
  t.same(a.connection, { host: 'host.example', port: 6380, db: 2, username: 'user', password: 's3cr@t' });
  t.equal(a.run, 'vqa-rad-7b');
  t.equal(a.display, 'redis://user:***@host.example:6380/2/vqa-rad-7b');
  t.equal(a.mask('auth s3cr@t and s3cr%40t'), 'auth *** and ***');
  const b = parseQueueUrl('rediss://h/run', { LLAVA_MED_REDIS_PASSWORD: 'envpw', LLAVA_MED_REDIS_USERNAME: 'u' });
  t.same(b.connection, { host: 'h', port: 6379, db: 0, username: 'u', password: 'envpw', tls: {} });
  t.equal(b.display, 'rediss://h/run');
  t.equal(b.mask('x envpw y'), 'x *** y');
  t.equal(parseQueueUrl('redis://:only@h/r', { LLAVA_MED_REDIS_PASSWORD: 'other' }).connection.password, 'only', 'the URL wins');
  for (const bad of ['redis://:pw123@h:6379', 'redis://:pw123@h/x/y/z', 'http://:pw123@h/run', 'redis://:pw123@h/-bad', 'redis://:pw123@h/db/run', 'not a url pw123']) {
    const e = (() => {
      try {
        parseQueueUrl(bad, {});
      } catch (err) {
        return err as { code: string; message: string };
      }
      return undefined;
    })();
    t.equal(e?.code, 'ERR_INVALID_ARGUMENT', bad);
    t.notMatch(e?.message ?? '', /pw123/, `${bad}: the password is not in the message`);
  }
});

t.test('three workers, one SIGKILLed mid-job: the same answers file as one process, nothing twice; another model is refused', async (t) => {
  const run = 'kill';
  const url = `redis://:${PASSWORD}@127.0.0.1:${redisServer.port}/${run}`;
  const wurl = `redis://127.0.0.1:${redisServer.port}/${run}`; // the workers take the password from the environment
  const out = join(dir, 'queued.jsonl');
  const producer = start(producerArgs(url, subset, out));
  // A worker with other weights (same keys and shapes) is refused before it loads anything.
  await until('the run to start', async () => (await client.get(`llava-med:${run}:meta`)) !== null, 60_000, [producer]);
  const intruder = worker(wurl, m2);
  const ir = await exited(intruder, 'the intruder', 60_000);
  t.equal(ir.code, 1, 'the worker with another model exits with 1');
  t.match(intruder.stderr(), /ERR_EVAL: Refusing to join the run kill .*this worker's model \(or prompt variant\) is not the run's/);
  t.match(intruder.stderr(), /model fingerprint \(header \+ weight samples\)/);
  t.notMatch(intruder.stderr(), /loading the model/, 'refused before loading');
  // The run's model with another prompt (--variant) would mix two prompt formats in one answers file.
  const otherPrompt = worker(wurl, m1, ['--variant', 'v1.5']);
  t.equal((await exited(otherPrompt, 'the worker with --variant v1.5', 60_000)).code, 1, 'a worker with another --variant exits with 1');
  t.match(otherPrompt.stderr(), /- variant: v1\.5 in this worker \(--variant\), v0 in the run \(the GGUF's own: the producer gave no --variant\)/);
  t.notMatch(otherPrompt.stderr(), /loading the model/, 'refused before loading');

  // The victim starts first, the two others once it holds a job.
  const victim = worker(wurl);
  const workers = [victim];

  const heartbeat = async () => {
    for (const k of await client.keys(`llava-med:${run}:worker:*`)) {
      const v = await client.get(k);
      const b = v ? (JSON.parse(v) as { pid: number; job: string | null; jobs: number }) : undefined;
      if (b?.pid === victim.proc.pid) return { key: k, ...b };
    }
    return undefined;
  };
  // Freeze the victim (SIGSTOP) while it holds its first job — its heartbeat names the job and the job's
  // lock still exists — then start the two others; once all three have worked side by side, SIGKILL it.
  let killedJob = '';
  await until('the victim to hold a job', async () => {
    const b = await heartbeat();
    if (!b?.job) return false;
    victim.proc.kill('SIGSTOP');
    const again = await heartbeat();
    if (again?.job && (await client.exists(`bull:${run}:${again.job}:lock`))) {
      killedJob = again.job;
      return true;
    }
    victim.proc.kill('SIGCONT');
    return false;
  }, 60_000, [producer, victim]);
  workers.push(worker(wurl), worker(wurl));
  // (On an idle machine one of them may take every remaining job before the other has loaded.)
  await until('the two others to answer', () => producer.proc.exitCode !== null || workers.slice(1).every((w) => /: \d+ answered\n/.test(w.stderr())), 60_000, workers.slice(1));
  victim.proc.kill('SIGKILL');
  t.equal((await victim.exit).signal, 'SIGKILL');
  const pr = await exited(producer, 'the producer', 120_000, workers);
  t.equal(pr.code, 0, `the producer succeeds: ${producer.stderr().slice(-2000)}`);
  for (const w of workers.slice(1)) {
    const r = await exited(w, 'a worker', 30_000, [producer]);
    t.equal(r.code, 0, 'a surviving worker exits 0 when the run is complete');
    t.match(w.stderr(), /the run kill is complete/);
  }
  t.match(workers.slice(1).map((w) => w.stderr()).join(''), new RegExp(`job ${killedJob} stalled`), "a survivor took over the dead worker's job after the lock timeout");
  t.match(producer.stderr(), new RegExp(`answered ${QUESTIONS} \\(skipped 0 already answered\\)`));
  t.match(producer.stderr(), /\d+\/60 done · \d+ running · \d+ waiting · 0 failed · [1-3] workers? alive/, 'progress lines on stderr');

  sameAsReference(t, await readLines(out), reference);
  for (const r of [producer, ...workers, intruder, otherPrompt]) t.notMatch(r.stderr(), new RegExp(PASSWORD), 'the password is never printed');
  t.same(await client.keys(`llava-med:${run}:results`), [], "the run's answers are cleared from Redis");
  t.match(JSON.parse((await client.get(`llava-med:${run}:meta`))!), { state: 'done' });
});

t.test('a worker waiting for a run: one done at its first look is an earlier run (it waits on); one that starts and completes between two looks ends it', async (t) => {
  const done = await client.get('llava-med:kill:meta'); // the run above, left done
  t.ok(done, 'a done run to copy');
  await client.set('llava-med:stale:meta', done!);
  const stale = worker(`redis://127.0.0.1:${redisServer.port}/stale`);
  const late = worker(`redis://127.0.0.1:${redisServer.port}/late`);
  await until('both workers waiting', () => /waiting for a run named stale/.test(stale.stderr()) && /waiting for a run named late/.test(late.stderr()), 60_000, [stale, late]);
  // What a run that a producer started and closed between two of the worker's looks leaves: done, a new epoch.
  await client.set('llava-med:late:meta', JSON.stringify({ ...JSON.parse(done!), epoch: `another-${randomBytes(4).toString('hex')}` }));
  const r = await exited(late, 'the late worker', 30_000, [stale]);
  t.equal(r.code, 0, 'exits 0');
  t.match(late.stderr(), /the run late started and completed before this worker joined/);
  t.match(late.stderr(), /worker: done: 0 answered, 0 jobs/);
  await new Promise((res) => setTimeout(res, 3000));
  t.equal(stale.proc.exitCode, null, 'the worker that found the run already done is still waiting for it to start again');
  stale.proc.kill('SIGTERM');
  t.equal((await exited(stale, 'the stale worker', 30_000)).code, 130, 'and stops on SIGTERM (exit 130, as a stopped worker does)');
  await client.del('llava-med:stale:meta', 'llava-med:late:meta');
});

t.test('Redis killed and restarted (no persistence) mid-run: the producer queues what was lost again and finishes', async (t) => {
  const run = 'restart';
  const url = `redis://:${PASSWORD}@127.0.0.1:${redisServer.port}/${run}`;
  const out = join(dir, 'restart.jsonl');
  const producer = start(producerArgs(url, subset, out));
  const workers = [worker(`redis://127.0.0.1:${redisServer.port}/${run}`), worker(`redis://127.0.0.1:${redisServer.port}/${run}`)];
  await until('10 answers in Redis', async () => (await client.hlen(`llava-med:${run}:results`).catch(() => 0)) >= 10, 60_000, [producer, ...workers]);
  await redisServer.stop('SIGKILL');
  await new Promise((r) => setTimeout(r, 500));
  await redisServer.start();
  const pr = await exited(producer, 'the producer', 120_000, workers);
  t.equal(pr.code, 0, `the producer succeeds: ${producer.stderr().slice(-2000)}`);
  t.match(producer.stderr(), /lost the connection to Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/restart/);
  t.match(producer.stderr(), /lost the run's state \(restarted without persistence\?\); \d+ answers were already collected here, \d+ unanswered questions queued again/);
  for (const w of workers) t.equal((await exited(w, 'a worker', 30_000, [producer])).code, 0, 'the workers reconnect and finish');
  sameAsReference(t, await readLines(out), reference);
  for (const r of [producer, ...workers]) t.notMatch(r.stderr(), new RegExp(PASSWORD));
});

t.test('questions that fail every attempt are reported with their errors; the others are written', async (t) => {
  const run = 'fail';
  const images = join(data, 'images');
  // The worker reads its own copy of the images, where swapped.jpg is another picture than the producer's.
  const workerImages = join(dir, 'worker-images');
  const [a, b] = [...new Set(entries.map((e) => e.image!))];
  await writeFile(join(images, 'broken.jpg'), Buffer.from('not a jpeg at all'));
  await cp(join(images, a!), join(images, 'swapped.jpg'));
  await cp(images, workerImages, { recursive: true });
  await cp(join(images, b!), join(workerImages, 'swapped.jpg'));
  const four = [entries[0]!, { ...entries[1]!, id: 999001, image: 'broken.jpg' }, entries[2]!, { ...entries[3]!, id: 999002, image: 'swapped.jpg' }];
  const q = join(dir, 'fail.json');
  await writeFile(q, JSON.stringify(four));
  const out = join(dir, 'fail.jsonl');
  const producer = start(producerArgs(`redis://:${PASSWORD}@127.0.0.1:${redisServer.port}/${run}`, q, out, ['--attempts', '2']));
  const w = start(['eval', 'worker', ...modelFlags(m1), '--queue', `redis://127.0.0.1:${redisServer.port}/${run}`, '--image-folder', workerImages], { LLAVA_MED_REDIS_PASSWORD: PASSWORD });
  const pr = await exited(producer, 'the producer', 60_000, [w]);
  t.equal(pr.code, 1);
  t.match(producer.stderr(), /ERR_EVAL: 2 question\(s\) failed after 2 attempt\(s\) each; the 2 answered are in .*fail\.jsonl/);
  t.match(producer.stderr(), /- 999001 \(broken\.jpg\): ERR_IMAGE_\w+: /, 'the failed id with its error code');
  t.match(producer.stderr(), /- 999002 \(swapped\.jpg\): ERR_EVAL: The image .*swapped\.jpg on .* is not the producer's \(SHA-256 differs\)/, "a worker's other copy of an image is refused");
  t.match(w.stderr(), /broken\.jpg: attempt 2 of 2 failed: ERR_IMAGE_/);
  t.equal((await exited(w, 'the worker', 30_000, [producer])).code, 0);
  const lines = await readLines(out);
  t.same(lines.map((l) => l.question_id), [entries[0]!.id, entries[2]!.id]);
  t.same(lines.map((l) => l.text), [reference[0]!.text, reference[2]!.text]);
});

t.test('wrong credentials and an unreachable Redis are clear errors without the password', async (t) => {
  const wrong = start(producerArgs(`redis://:wrong-pw-123@127.0.0.1:${redisServer.port}/creds`, subset, join(dir, 'x.jsonl')));
  t.equal((await exited(wrong, 'the producer', 30_000)).code, 1);
  t.match(wrong.stderr(), /ERR_EVAL: Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/creds refused the credentials/);
  t.notMatch(wrong.stderr(), /wrong-pw-123/);
  const port = await freePort();
  const none = start(['eval', 'worker', ...modelFlags(m1), '--queue', `redis://:nobody-pw-9@127.0.0.1:${port}/x`, '--connect-timeout', '1']);
  t.equal((await exited(none, 'the worker', 30_000)).code, 1);
  t.match(none.stderr(), new RegExp(`ERR_EVAL: Cannot reach Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}/x within 1 s`));
  t.notMatch(none.stderr(), /nobody-pw-9/);
});

t.test('a worker stopped with Ctrl-C hands its job back at once (not after the lock timeout)', async (t) => {
  const run = 'stop';
  const out = join(dir, 'stop.jsonl');
  const q = join(dir, 'stop.json'); // the first 12 questions (5 images): enough to stop a worker between or in jobs
  await writeFile(q, JSON.stringify(entries.slice(0, 12)));
  // A lock timeout far above the run's length: a job left locked would show as "stalled" in the other worker.
  const producer = start(producerArgs(`redis://:${PASSWORD}@127.0.0.1:${redisServer.port}/${run}`, q, out, ['--lock-timeout', '600']));
  const a = worker(`redis://127.0.0.1:${redisServer.port}/${run}`);
  await until('the first worker to answer', () => /: \d+ answered\n/.test(a.stderr()), 60_000, [producer, a]);
  a.proc.kill('SIGINT');
  t.equal((await exited(a, 'the stopped worker', 30_000)).code, 130, 'exit 130');
  t.match(a.stderr(), /worker: stopped: \d+ answered/);
  const b = worker(`redis://127.0.0.1:${redisServer.port}/${run}`);
  t.equal((await exited(producer, 'the producer', 120_000, [b])).code, 0);
  t.equal((await exited(b, 'the second worker', 30_000)).code, 0);
  t.notMatch(b.stderr(), /stalled/, 'no job waited for its lock to expire');
  sameAsReference(t, await readLines(out), reference.slice(0, 12));
});

t.test('Redis gone for good: the producer and the worker stop with a clear error after --redis-timeout (1 s); the answers collected are kept', async (t) => {
  // A Redis of its own, killed for good (the others' keeps running).
  const gone = new RedisServer(await freePort());
  await gone.start();
  const run = 'gone';
  const out = join(dir, 'gone.jsonl');
  const producer = start(producerArgs(`redis://:${PASSWORD}@127.0.0.1:${gone.port}/${run}`, subset, out, ['--redis-timeout', '1']));
  const w = start(['eval', 'worker', ...modelFlags(m1), '--queue', `redis://127.0.0.1:${gone.port}/${run}`, '--redis-timeout', '1'], { LLAVA_MED_REDIS_PASSWORD: PASSWORD });
  try {
    // Mid-run for sure: the worker is frozen after its first job, until the producer says it has collected answers
    // (its progress lines on stderr); then Redis dies and the worker goes on.
    await until('the worker to answer', () => /: \d+ answered\n/.test(w.stderr()), 60_000, [producer, w]);
    w.proc.kill('SIGSTOP');
    await until('the producer to collect answers', () => /queue: [1-9]\d*\/60 done/.test(producer.stderr()), 60_000, [producer]);
  } finally {
    await gone.stop('SIGKILL');
    w.proc.kill('SIGCONT');
  }
  const pr = await exited(producer, 'the producer', 60_000, [w]);
  t.equal(pr.code, 1, 'the producer gives up');
  t.match(producer.stderr(), /lost the connection to Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/gone .*giving up after 1 s/);
  t.match(producer.stderr(), /ERR_EVAL: Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/gone has been unreachable for 1 s.* (\d+) of 60 answers were collected and are in .*gone\.jsonl with the 0 it had; run the same command again once Redis is back to resume/);
  const wr = await exited(w, 'the worker', 60_000);
  t.equal(wr.code, 1, 'the worker gives up');
  t.match(w.stderr(), /ERR_EVAL: Redis at redis:\/\/127\.0\.0\.1:\d+\/gone has been unreachable for 1 s.*: this worker stops/);
  // The answers collected: whole lines, in test.json order, each the single process's answer.
  const lines = await readLines(out);
  const collected = Number(/(\d+) of 60 answers were collected/.exec(producer.stderr())?.[1]);
  t.equal(lines.length, collected, `the ${collected} collected answers are in the file`);
  t.ok(collected >= 1);
  const refById = new Map(reference.map((l) => [l.question_id, l]));
  t.same(lines.map((l) => l.question_id), reference.map((l) => l.question_id).filter((id) => lines.some((l) => l.question_id === id)), 'in test.json order');
  t.same(lines.map((l) => [l.text, l.metadata]), lines.map((l) => [refById.get(l.question_id)!.text, refById.get(l.question_id)!.metadata]), 'the answers a single process gives');
  for (const r of [producer, w]) t.notMatch(r.stderr(), new RegExp(PASSWORD));
});

t.test("the producer's --variant is the run's: workers ask with it and record it, as a single process does", async (t) => {
  const questions = join(dir, 'variant.json');
  await writeFile(questions, JSON.stringify(entries.filter((e) => e.image === entries[0]!.image).slice(0, 2)));
  const single = join(dir, 'variant-single.jsonl');
  const ref = start(['eval', 'answer', ...modelFlags(m1), '--variant', 'v1.5', '--question-file', questions, '--image-folder', join(data, 'images'), '--answers-file', single, '--temperature', '0', '--max-tokens', MAX_TOKENS]);
  t.equal((await exited(ref, 'the single-process --variant v1.5 run')).code, 0, ref.stderr().slice(-1000));
  const want = await readLines(single);
  t.equal(want.length, 2);
  t.same(want.map((l) => (l.metadata.model as { variant?: string }).variant), ['v1.5', 'v1.5'], "the override is recorded (the model's own variant is v0)");
  const v0 = new Map(reference.map((l) => [l.question_id, l.text]));
  t.notSame(want.map((l) => l.text), want.map((l) => v0.get(l.question_id)), 'the v1.5 prompt gives other answers than the v0 reference (so the comparison below shows which prompt the worker used)');

  const url = `redis://:${PASSWORD}@127.0.0.1:${redisServer.port}/variant`;
  const out = join(dir, 'variant-queued.jsonl');
  const producer = start(producerArgs(url, questions, out, ['--variant', 'v1.5']));
  await until('the run to start', async () => (await client.get('llava-med:variant:meta')) !== null, 60_000, [producer]);
  const w = worker(url.replace(`:${PASSWORD}@`, '@')); // no --variant: it takes the run's
  t.equal((await exited(producer, 'the producer', 120_000, [w])).code, 0, producer.stderr().slice(-1000));
  t.equal((await exited(w, 'the worker', 30_000)).code, 0);
  sameAsReference(t, await readLines(out), want);
});

t.test('eval answer flags that the mode would ignore are usage errors that say what to do', async (t) => {
  const base = ['eval', 'answer', '-m', m1.model, '-p', m1.mmproj, '--question-file', subset, '--image-folder', join(data, 'images'), '--answers-file', join(dir, 'flags.jsonl')];
  const url = `redis://127.0.0.1:${redisServer.port}/flags`;
  for (const [extra, re] of [
    [['--queue', url, '--parallel', '2'], /--parallel: with --queue this process loads no model and answers nothing; the workers do: pass it to each `llava-med eval worker`/],
    [['--queue', url, '-t', '1', '--ctx', '2048'], /--threads, --ctx: with --queue .* pass them to each `llava-med eval worker`/],
    [['--queue', url, '--chunk-idx', '0'], /--chunk-idx: --queue shares the whole question file among the workers, so there are no chunks: drop it/],
    [['--lock-timeout', '5'], /--lock-timeout only applies to a queued run: add --queue redis:\/\/host:port\/<run-name>, or drop it/],
  ] as const) {
    const r = start([...base, ...extra]);
    t.equal((await exited(r, extra.join(' '), 30_000)).code, 2, `${extra.join(' ')}: exit code 2`);
    t.match(r.stderr(), re);
    t.match(r.stderr(), /\(add --help for usage\)/);
  }
  // A producer started by each task of an array job would start the same run once per task.
  for (const env of [{ SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '4' }, { JOB_COMPLETION_INDEX: '0' }, { LLAVA_MED_CHUNK_IDX: '1' }]) {
    const [name] = Object.keys(env);
    const r = start([...base, '--queue', url], env);
    t.equal((await exited(r, name!, 30_000)).code, 2, `${name} set with --queue: exit code 2`);
    t.match(r.stderr(), new RegExp(`${name}=\\d+: this process is one task of an array job, but --queue shares the whole question file among the workers: start the producer \\(eval answer --queue\\) once, outside the array`));
  }
  t.equal(await client.exists('llava-med:flags:meta'), 0, 'no run was started');
});
