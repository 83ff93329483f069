/**
 * Runs campaign cases in a small pool of child processes (child.mjs) and classifies each one:
 *   typed    – rejected with a LlavaMedError carrying a known code (the required outcome for bad input)
 *   success  – accepted (fine for inputs that are odd but usable)
 *   untyped  – rejected with anything else
 *   crash    – the child died while running the case (signal or exit)
 *   hang     – no answer within the case's time limit (the child is killed)
 * A child that crashed or hung is replaced and the pool goes on with the next case.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { childEnv, REPO } from '../engine/util.js';

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url));

export interface CampaignCase {
  group: string;
  name: string;
  kind: 'model' | 'mmproj' | 'pair' | 'pair-model' | 'image' | 'convert';
  /** Per-case limit; default RunOptions.timeoutMs. */
  timeoutMs?: number;
  [k: string]: unknown;
}

export type Outcome = 'typed' | 'success' | 'untyped' | 'crash' | 'hang';

export interface CaseResult {
  c: CampaignCase;
  outcome: Outcome;
  code?: string;
  message?: string;
  leftovers?: string[];
}

export interface RunOptions {
  workers?: number;
  timeoutMs?: number;
}

interface Worker {
  proc: ChildProcess;
  stderr: string;
  ready: Promise<void>;
}

function spawnWorker(): Worker {
  const env = childEnv({ LLAVA_MED_DIST: join(REPO, 'dist') });
  const proc = fork(CHILD, [], { env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'advanced' });
  const w: Worker = { proc, stderr: '', ready: Promise.resolve() };
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    w.stderr = (w.stderr + d).slice(-2000);
  });
  w.ready = new Promise((resolve, reject) => {
    const onMsg = (m: { ready?: boolean }) => {
      if (m?.ready) {
        proc.off('message', onMsg);
        resolve();
      }
    };
    proc.on('message', onMsg);
    proc.once('exit', (code, signal) => reject(new Error(`campaign child exited before it was ready (${code ?? signal}): ${w.stderr}`)));
  });
  return w;
}

function runOne(w: Worker, c: CampaignCase, id: number, timeoutMs: number): Promise<CaseResult & { dead: boolean }> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (r: CaseResult, dead: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      w.proc.off('message', onMsg);
      w.proc.off('exit', onExit);
      resolve({ ...r, dead });
    };
    const onMsg = (m: { id?: number; outcome?: Outcome; code?: string; message?: string; leftovers?: string[] }) => {
      if (m?.id === id) finish({ c, outcome: m.outcome!, code: m.code, message: m.message, leftovers: m.leftovers }, false);
    };
    const onExit = (code: number | null, signal: string | null) => {
      // give stderr a moment to drain so the report shows why it died
      setTimeout(() => finish({ c, outcome: 'crash', message: `exit ${code ?? ''}${signal ?? ''}: ${w.stderr.slice(-600)}` }, true), 50);
    };
    const timer = setTimeout(() => {
      w.proc.kill('SIGKILL');
      finish({ c, outcome: 'hang', message: `no answer in ${timeoutMs} ms` }, true);
    }, c.timeoutMs ?? timeoutMs);
    w.proc.on('message', onMsg);
    w.proc.once('exit', onExit);
    w.proc.send({ ...c, id });
  });
}

export async function runCases(cases: readonly CampaignCase[], opts: RunOptions = {}): Promise<CaseResult[]> {
  const results: CaseResult[] = new Array(cases.length);
  let next = 0;
  const lane = async () => {
    let w = spawnWorker();
    try {
      for (;;) {
        const i = next++;
        if (i >= cases.length) break;
        await w.ready;
        const r = await runOne(w, cases[i]!, i, opts.timeoutMs ?? 60_000);
        const { dead, ...res } = r;
        results[i] = res;
        if (dead) w = spawnWorker();
      }
    } finally {
      if (w.proc.exitCode === null && w.proc.signalCode === null) {
        w.proc.send('exit');
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            w.proc.kill('SIGKILL');
            resolve();
          }, 5000);
          w.proc.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    }
  };
  await Promise.all(Array.from({ length: opts.workers ?? 2 }, lane));
  return results;
}

/** Counts by outcome, overall and per group. */
export function tally(results: readonly CaseResult[]): { total: Record<Outcome, number>; byGroup: Map<string, Record<Outcome, number>> } {
  const empty = (): Record<Outcome, number> => ({ typed: 0, success: 0, untyped: 0, crash: 0, hang: 0 });
  const total = empty();
  const byGroup = new Map<string, Record<Outcome, number>>();
  for (const r of results) {
    total[r.outcome]++;
    if (!byGroup.has(r.c.group)) byGroup.set(r.c.group, empty());
    byGroup.get(r.c.group)![r.outcome]++;
  }
  return { total, byGroup };
}
