/**
 * Continuous batching over one Context: the one owner of the context's sequences while jobs come
 * and go. Jobs wait in one FIFO; a job is admitted between two generation steps as soon as a
 * sequence is free — its prompt is built (an image encoded), loaded into the free sequence whose
 * cached prefix matches it best, and its first token sampled — and from the next step on it
 * advances together with the running jobs, one batched `Context.step` per token. A job whose
 * signal aborts (or whose `shouldStop` says so) leaves the batch at the next token boundary and its
 * sequence goes to the next waiting job; when every job of a running step is aborting, the step
 * itself is aborted inside the native call.
 *
 * Prefill is interleaved with generation, as llama-server does: each turn of the loop does one
 * piece of each loading job's prompt (an image, or a slice of at most batchSize text tokens:
 * Sequence.loadPieces, each piece its own decode), starts the newcomers that have a free sequence
 * (their prompt stage: the image encode), then runs one step of the running jobs. So a newcomer's
 * long prompt pauses the running answers for one piece at a time instead of for the whole prompt;
 * requests that arrive together load side by side and start generating in the same turn (one
 * batched step for all of them, as llama-server takes all its slots' pending prompts in one turn)
 * instead of the last one waiting for every prompt ahead of it; and since the pieces are the ones a
 * lone load decodes, the cells and answers are the same as without other requests. (llama-server puts its
 * prompt chunks into the same llama_decode batch as the running slots' tokens; with one KV buffer
 * per sequence, as both run here, llama.cpp splits such a batch into one micro-batch per run of
 * equal-length sequences anyway — llama_batch_allocr::split_equal — so a shared call would save no
 * compute, and it would change the newcomer's micro-batch shapes and so its rounding.)
 * A step feeds the running jobs in sequence-id order: split_equal also puts only consecutive
 * sequence ids into one micro-batch, and each micro-batch reads all the weights.
 *
 * Everything that touches the context runs inside the loop, one thing at a time: prompt loads,
 * steps, and exclusive operations (`run`: with no job active or loading, e.g. clearing the cache;
 * `withSequence`: between steps, on a free sequence, e.g. scoring). Nothing runs concurrently with
 * a step, so a newcomer's image encode does not compete with the running jobs for the CPU cores,
 * and the logits a load leaves are sampled before anything else decodes.
 *
 * A prefix another sequence holds is copied, not decoded again (prefixSource, at a job's first
 * piece): from the sequence holding the longest prefix of the job's prompt, when that saves more than
 * minCopyGain positions, or after waiting for a job ahead that is still decoding it (requests about
 * one image arriving together decode the image once).
 *
 * With one sequence this is a FIFO queue of whole calls, as before it existed.
 */
import { llavaError, throwIfAborted, type LlavaMedError } from '../errors.js';
import { sharedPositions, type Context, type LoadStats, type Sampler, type Sequence, type SequenceItem } from '../engine/index.js';
import { fromNative } from '../engine/lifecycle.js';
import { JobState, type GenerationResult } from './generate.js';

/** What a job's prompt stage returns. */
export interface ScheduledPrompt {
  /** The prompt: token ids and image embeddings, ending with a token. */
  items: readonly SequenceItem[];
  /**
   * Runs when the job ends, however it ends (inside the loop, before its sequence goes to another
   * job): e.g. dropping an image the job encoded for itself. `sequence` is undefined when the job
   * failed before it got one.
   */
  release?: (sequence: Sequence | undefined) => Promise<void>;
}

/** One generation request for {@link Scheduler.submit}. */
export interface ScheduledJob {
  /** Builds the prompt. Runs inside the loop (between steps): it may encode an image. */
  prompt: (signal: AbortSignal) => Promise<ScheduledPrompt>;
  /** Creates the job's sampler (the scheduler disposes it when the job ends). */
  sampler: () => Sampler;
  maxTokens: number;
  stop: readonly string[];
  /** Streams text as it becomes final. */
  onText?: (text: string) => void;
  /** Checked between tokens: true ends the job with stopReason 'aborted'. */
  shouldStop?: () => boolean;
  /**
   * Waiting: the job is rejected at once (ERR_ABORTED). While its prompt loads: rejected. While
   * generating: it ends at the next token with stopReason 'aborted' (resolved: the caller decides
   * whether that is an error).
   */
  signal?: AbortSignal;
}

/** A finished job: the generation result, the sequence it ran on and what its prompt load did. */
export interface ScheduledResult extends GenerationResult {
  seq: number;
  load: LoadStats;
}

interface Waiting {
  kind: 'job' | 'op';
  /** ops: 'idle' waits until no job is active; 'sequence' runs between steps on a free sequence. */
  mode?: 'idle' | 'sequence';
  signal?: AbortSignal;
  start(seq: Sequence | undefined): Promise<void>;
  cancel(e: LlavaMedError): void;
}

/** A job whose prompt is loading into its sequence, one piece per turn of the loop (several jobs may load side by side). */
interface Loading {
  job: ScheduledJob;
  prompt: ScheduledPrompt;
  seq: Sequence;
  /** The job's signal with close()'s. */
  signal: AbortSignal;
  /** Created at the job's first piece (after the copy of another sequence's prefix, if any). */
  pieces?: AsyncGenerator<void, LoadStats, void>;
  resolve(r: ScheduledResult): void;
  reject(e: unknown): void;
}

interface Active {
  state: JobState;
  seq: Sequence;
  sampler: Sampler;
  load: LoadStats;
  signal?: AbortSignal;
  release?: (sequence: Sequence | undefined) => Promise<void>;
  resolve(r: ScheduledResult): void;
  reject(e: unknown): void;
}

/** Counts what the loop did (tests and benchmarks). */
export interface SchedulerStats {
  /** Generation steps run. */
  steps: number;
  /** Rows (job tokens) those steps fed in all. */
  rows: number;
  /** Jobs admitted (prompt loaded) so far. */
  admitted: number;
  /** Prompt-load pieces run (Sequence.loadPieces). */
  pieces: number;
  /** Prefixes copied from another sequence into a job's sequence (instead of decoded). */
  copies: number;
  /** Turns a job waited for an earlier job to finish loading the prefix it then copies. */
  waits: number;
}

/**
 * A job copies another sequence's prefix only when that saves more than this many positions of
 * prefill over what its own sequence holds. A copy moves one sequence's whole KV buffer (llama.cpp
 * copies across buffers only whole), so it costs in proportion to the cells per sequence
 * (`capacity`): measured, process CPU time, one thread, a copy and the decode that applies it
 * against the same decode without (median of 7): the 7B-shaped bench model (4 layers, Q4_K_M, 2048
 * cells a sequence, 134 MB) 22.7 ms = 1.2 positions of text prefill; the 512-wide test model (4
 * layers, F16, 1024 cells) 1.6 ms = 2.3 positions. The threshold, capacity / 128 and at least 16,
 * is ~13x the 7B cost at any capacity and 7x the narrow model's, so a copy never costs more than it
 * saves; what it skips in practice is far above it (the v0 system prompt, ~40 positions; an image,
 * 256 or 576).
 */
export function minCopyGain(capacity: number): number {
  return Math.max(16, Math.ceil(capacity / 128));
}

export class Scheduler {
  readonly #ctx: Context;
  readonly #what: string;
  readonly #waiting: Waiting[] = [];
  readonly #active: Active[] = [];
  /** The jobs whose prompts are loading, in arrival order: each turn runs one piece of each, in this order. */
  readonly #loading: Loading[] = [];
  readonly #busy = new Set<number>();
  readonly #closer = new AbortController();
  #closed = false;
  #running = false;
  #loop: Promise<void> = Promise.resolve();
  readonly #stats: SchedulerStats = { steps: 0, rows: 0, admitted: 0, pieces: 0, copies: 0, waits: 0 };

  /** @param what - how errors name the owner ("The LlavaMed instance has been disposed"). */
  constructor(ctx: Context, what = 'scheduler') {
    this.#ctx = ctx;
    this.#what = what;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Jobs generating now. */
  get activeJobs(): number {
    return this.#active.length;
  }

  /** Jobs and operations waiting to start. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Jobs whose prompt is loading now. */
  get loadingJobs(): number {
    return this.#loading.length;
  }

  /** Everything waiting or running. */
  get size(): number {
    const busy = this.#active.length + this.loadingJobs;
    return this.#waiting.length + busy + (this.#running && busy === 0 ? 1 : 0);
  }

  /** A copy of the loop's counters. */
  get stats(): SchedulerStats {
    return { ...this.#stats };
  }

  assertOpen(): void {
    if (this.#closed) throw this.disposedError();
  }

  disposedError(cause?: unknown): LlavaMedError {
    return llavaError('ERR_DISPOSED', `The ${this.#what} has been disposed; create a new one.`, cause);
  }

  /** Queues a generation job; resolves when it ends (see {@link ScheduledJob.signal}). */
  submit(job: ScheduledJob): Promise<ScheduledResult> {
    return this.enqueue<ScheduledResult>('job', undefined, job.signal, (seq, resolve, reject) => this.start(job, resolve, reject));
  }

  /** Runs `op` alone: after the calls queued before it, with no job generating or loading (FIFO with the jobs). */
  run<T>(op: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.enqueue<T>('op', 'idle', signal, (_seq, resolve, reject) => this.runOp(() => op(this.opSignal(signal)), signal, resolve, reject));
  }

  /** Runs `op` between two steps on a free sequence (the running jobs pause meanwhile). */
  withSequence<T>(op: (seq: Sequence, signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.enqueue<T>('op', 'sequence', signal, async (seq, resolve, reject) => {
      this.#busy.add(seq!.id);
      try {
        await this.runOp(() => op(seq!, this.opSignal(signal)), signal, resolve, reject);
      } finally {
        this.#busy.delete(seq!.id);
      }
    });
  }

  /**
   * Stops accepting work, rejects the waiting calls (ERR_DISPOSED), aborts the running step, load
   * or operation (their callers get ERR_DISPOSED) and resolves once the loop has let go of the context.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiting.splice(0)) w.cancel(this.disposedError());
    this.#closer.abort();
    await this.#loop;
  }

  // ---- queueing ------------------------------------------------------------------------------

  private enqueue<T>(
    kind: 'job' | 'op',
    mode: 'idle' | 'sequence' | undefined,
    signal: AbortSignal | undefined,
    start: (seq: Sequence | undefined, resolve: (v: T) => void, reject: (e: unknown) => void) => Promise<void>,
  ): Promise<T> {
    if (this.#closed) return Promise.reject(this.disposedError());
    if (signal?.aborted) return Promise.reject(this.abortedWaiting(signal));
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        const i = this.#waiting.indexOf(w);
        if (i < 0) return; // already started: the job's own signal handles it
        this.#waiting.splice(i, 1);
        reject(this.abortedWaiting(signal));
      };
      const w: Waiting = {
        kind,
        mode,
        signal,
        start: (seq) => {
          signal?.removeEventListener('abort', onAbort);
          return start(seq, resolve, reject);
        },
        cancel: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(w);
      this.kick();
    });
  }

  private opSignal(signal?: AbortSignal): AbortSignal {
    return signal ? AbortSignal.any([signal, this.#closer.signal]) : this.#closer.signal;
  }

  private async runOp<T>(op: () => Promise<T>, signal: AbortSignal | undefined, resolve: (v: T) => void, reject: (e: unknown) => void): Promise<void> {
    try {
      if (signal?.aborted) throw this.abortedWaiting(signal);
      resolve(await op());
    } catch (e) {
      reject(this.mapError(e, signal));
    }
  }

  private abortedWaiting(signal?: AbortSignal): LlavaMedError {
    return llavaError('ERR_ABORTED', `The call on the ${this.#what} was aborted before it started.`, signal?.reason);
  }

  // A call stopped by close() reports the dispose, not an abort its caller never asked for.
  private mapError(e: unknown, signal?: AbortSignal): LlavaMedError {
    const err = fromNative(e);
    if (this.#closer.signal.aborted && !signal?.aborted && (err.code === 'ERR_ABORTED' || err.code === 'ERR_DISPOSED')) return this.disposedError(err);
    return err;
  }

  // ---- the loop ------------------------------------------------------------------------------

  private kick(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.loop();
  }

  private async loop(): Promise<void> {
    // Starts in a microtask, never inside the caller's submit().
    await Promise.resolve();
    for (;;) {
      try {
        await this.endStopped();
        await this.admit();
        if (this.#active.length > 0) await this.step();
      } catch (e) {
        // Not reached in normal operation (each stage settles its own jobs); never leave callers hanging.
        for (const l of [...this.#loading]) await this.failLoad(l, e);
        for (const a of this.#active.splice(0)) await this.finish(a, e);
      }
      if (this.#active.length === 0 && this.#loading.length === 0 && (this.#waiting.length === 0 || this.#closed)) {
        this.#running = false; // synchronously with the check: a submit() after it starts a new loop
        return;
      }
    }
  }

  private free(): Sequence[] {
    const out: Sequence[] = [];
    for (let i = 0; i < this.#ctx.sequences; i++) if (!this.#busy.has(i)) out.push(this.#ctx.sequence(i));
    return out;
  }

  /**
   * The prefill work of one turn, so the running jobs get their next token between two pieces of
   * any one prompt: the next piece of every loading job (in arrival order, each its own decode),
   * then every call at the head of the queue that can start now (FIFO: none overtakes another) — a
   * job's prompt stage (its image encode; its pieces start next turn), or an operation. So requests
   * that arrive together load side by side and join the running batch in the same turn, as
   * llama-server takes the pending prompts of all its slots in one turn, instead of the last of
   * them waiting for every prompt ahead of it.
   */
  private async admit(): Promise<void> {
    for (const l of [...this.#loading]) await this.loadPiece(l);
    while (this.#waiting.length > 0 && !this.#closed) {
      const head = this.#waiting[0]!;
      let seq: Sequence | undefined;
      if (head.kind === 'op' && head.mode === 'idle') {
        if (this.#active.length > 0 || this.#loading.length > 0) return;
      } else {
        seq = this.free()[0];
        if (!seq) return;
      }
      this.#waiting.shift();
      await head.start(seq);
    }
  }

  /** A job's prompt stage: builds its prompt and gives it the free sequence where it gains most; its load starts at the next turn. */
  private async start(job: ScheduledJob, resolve: (r: ScheduledResult) => void, reject: (e: unknown) => void): Promise<void> {
    const signal = this.opSignal(job.signal);
    let prompt: ScheduledPrompt | undefined;
    let seq: Sequence | undefined;
    try {
      throwIfAborted(signal, 'call');
      prompt = await job.prompt(signal);
      throwIfAborted(signal, 'call');
      seq = this.pick(prompt.items);
      this.#busy.add(seq.id);
      this.#loading.push({ job, prompt, seq, signal, resolve, reject });
    } catch (e) {
      await prompt?.release?.(seq).catch(() => {});
      if (seq) this.#busy.delete(seq.id);
      reject(this.mapError(e, job.signal));
    }
  }

  /** The loading job's next piece; after the last one its first token is sampled and it joins the running jobs. */
  private async loadPiece(l: Loading): Promise<void> {
    let sampler: Sampler | undefined;
    try {
      throwIfAborted(l.signal, 'call');
      if (!l.pieces) {
        const from = this.prefixSource(l);
        if (from === 'wait') {
          this.#stats.waits++;
          return;
        }
        if (from) this.#stats.copies++;
        l.pieces = l.seq.loadPieces(l.prompt.items, l.signal, from);
      }
      this.#stats.pieces++;
      const r = await l.pieces.next();
      if (!r.done) return;
      this.#loading.splice(this.#loading.indexOf(l), 1);
      const job = l.job;
      sampler = job.sampler();
      // Sampled right away: the next load or step overwrites the logits this load left.
      const first = await this.#ctx.sample(sampler, { signal: l.signal });
      this.#stats.admitted++;
      const state = new JobState({
        seq: l.seq.id,
        sampler,
        first,
        maxTokens: job.maxTokens,
        stop: job.stop,
        onText: job.onText,
        shouldStop: () => job.shouldStop?.() === true || job.signal?.aborted === true || this.#closed,
      });
      const a: Active = { state, seq: l.seq, sampler, load: r.value, signal: job.signal, release: l.prompt.release, resolve: l.resolve, reject: l.reject };
      if (state.accept(this.#ctx)) this.#active.push(a);
      else await this.finish(a);
    } catch (e) {
      sampler?.dispose();
      await this.failLoad(l, e);
    }
  }

  private async failLoad(l: Loading, e: unknown): Promise<void> {
    const i = this.#loading.indexOf(l);
    if (i >= 0) this.#loading.splice(i, 1);
    await l.pieces?.return(undefined as never).catch(() => {});
    await l.prompt.release?.(l.seq).catch(() => {});
    this.#busy.delete(l.seq.id);
    l.reject(this.mapError(e, l.job.signal));
  }

  /**
   * The free sequence where `items` gain most: positions reused minus cached positions thrown away
   * (the lowest id among equals). So a conversation's next turn goes back to the sequence holding
   * its earlier turns, and a new conversation takes an empty sequence (or the one with least to lose)
   * rather than the one holding another conversation that merely shares the v0 system prompt. A
   * prefix another sequence holds counts as reused when copying it would pay (prefixSource), less
   * minCopyGain, so a sequence's own cells win over a copy of the same length.
   */
  private pick(items: readonly SequenceItem[]): Sequence {
    let held = 0;
    for (let i = 0; i < this.#ctx.sequences; i++) held = Math.max(held, this.#ctx.sequence(i).sharedPrefix(items));
    let best: Sequence | undefined;
    let bestGain = -Infinity;
    for (const s of this.free()) {
      const shared = s.sharedPrefix(items);
      const min = minCopyGain(s.capacity);
      const reused = held - shared > min ? held - min : shared;
      const gain = reused - (s.length - shared);
      if (gain > bestGain) {
        best = s;
        bestGain = gain;
      }
    }
    return best!;
  }

  /**
   * Where a loading job gets the prefix its sequence lacks, decided at its first piece: the other
   * sequence (free, generating or loading) holding the longest prefix of its prompt — by
   * Sequence.sharedPrefix, the rule a sequence's own reuse follows: whole items, never the last —
   * when that beats what its own sequence holds by more than minCopyGain; `'wait'` while a job ahead
   * of it in the loading order will hold a prefix longer by that much once its own load is done (it
   * loads one piece per turn and ran this turn's before this one: the job copies in the turn that
   * job holds it; only jobs ahead are waited for, so no two wait for each other); undefined: decode
   * it. So requests that arrive together about one image (v1.5: the image comes first) decode it
   * once, and a new conversation on a cold sequence gets the v0 system prompt from another one.
   */
  private prefixSource(l: Loading): Sequence | 'wait' | undefined {
    const items = l.prompt.items;
    const min = minCopyGain(l.seq.capacity);
    let best = l.seq.sharedPrefix(items);
    const own = best;
    let from: Sequence | undefined;
    for (let i = 0; i < this.#ctx.sequences; i++) {
      const s = this.#ctx.sequence(i);
      if (s === l.seq) continue;
      const shared = s.sharedPrefix(items);
      if (shared > best) {
        best = shared;
        from = s;
      }
    }
    for (const e of this.#loading) {
      if (e === l) break;
      if (sharedPositions(e.prompt.items, items) - best > min) return 'wait';
    }
    return from && best - own > min ? from : undefined;
  }

  /** Ends the jobs that were told to stop between tokens. */
  private async endStopped(): Promise<void> {
    for (const a of [...this.#active]) {
      if (a.state.job.shouldStop?.()) {
        a.state.accept(this.#ctx); // ends it as 'aborted', keeping the tokens it had
        await this.finish(a);
      }
    }
  }

  /** One batched step of every active job (in sequence-id order); the ones that end leave the batch. */
  private async step(): Promise<void> {
    const batch = [...this.#active].sort((a, b) => a.seq.id - b.seq.id);
    // Abort the native step only when no job in it wants the token (or on close).
    const ctl = new AbortController();
    const check = () => {
      if (this.#closer.signal.aborted || batch.every((a) => a.signal?.aborted)) ctl.abort();
    };
    const signals = [this.#closer.signal, ...batch.flatMap((a) => (a.signal ? [a.signal] : []))];
    for (const s of signals) s.addEventListener('abort', check);
    check();
    this.#stats.steps++;
    this.#stats.rows += batch.length;
    try {
      const r = await this.#ctx.step(
        batch.map((a) => ({ seq: a.seq.id, token: a.state.current.token, sampler: a.sampler })),
        { signal: ctl.signal },
      );
      batch.forEach((a, i) => (a.state.current = r[i]!));
      for (const a of batch) if (!a.state.accept(this.#ctx)) await this.finish(a);
    } catch (e) {
      // Aborted inside the native step (the sequences rolled it back): the jobs end as if the
      // abort had come between tokens. Any other failure fails the jobs of the step.
      const aborted = ctl.signal.aborted;
      for (const a of batch) {
        if (aborted) {
          a.state.job.shouldStop = () => true;
          a.state.accept(this.#ctx);
          await this.finish(a);
        } else await this.finish(a, e);
      }
    } finally {
      for (const s of signals) s.removeEventListener('abort', check);
    }
  }

  private async finish(a: Active, error?: unknown): Promise<void> {
    const i = this.#active.indexOf(a);
    if (i >= 0) this.#active.splice(i, 1);
    a.sampler.dispose();
    await a.release?.(a.seq).catch(() => {});
    this.#busy.delete(a.seq.id);
    if (error !== undefined) a.reject(this.mapError(error, a.signal));
    else if (this.#closer.signal.aborted) a.reject(this.disposedError());
    else a.resolve({ ...a.state.result(), seq: a.seq.id, load: a.load });
  }
}
