/**
 * The generation loop, in TypeScript as node-llama-cpp does it: one native step per token
 * (decode the last token, sample the next) for one or many sequences at once, so abort, stop
 * strings and streaming are handled between tokens and the event loop never blocks.
 */
import { StringDecoder } from 'node:string_decoder';
import type { Context, SampledToken, Sampler } from '../engine/index.js';

/**
 * Why generation ended: 'eos' the model ended its answer, 'stop' a stop string was found, 'length' maxTokens
 * were generated, 'context' the sequence's context positions ran out, 'aborted' the signal fired with
 * `stopOnAbortSignal` (or a stream was left early).
 */
export type StopReason = 'eos' | 'stop' | 'length' | 'context' | 'aborted';

export interface GenerationJob {
  seq: number;
  sampler: Sampler;
  /** The first token, sampled from the logits the prompt decode left for this sequence. */
  first: SampledToken;
  maxTokens: number;
  /** Stop strings: output is cut before the first one found (as the original's `###`). */
  stop: readonly string[];
  /** Streams text as it becomes final (never a prefix of a stop string). */
  onText?: (text: string) => void;
  /** Checked between tokens: when true the job ends with stopReason 'aborted'. */
  shouldStop?: () => boolean;
}

export interface GenerationResult {
  /** Generated text, cut before the stop string, not trimmed. */
  text: string;
  /** Generated token ids (all of them, including those that formed a stop string). */
  tokens: number[];
  stopReason: StopReason;
  /** Wall time of the generation steps for this job. */
  ms: number;
}

/** @internal One job's progress through the loop: tokens, text, stop strings, streaming (also used by scheduler.ts). */
export class JobState {
  readonly tokens: number[] = [];
  private readonly decoder = new StringDecoder('utf8');
  private text = '';
  private emitted = 0;
  done?: StopReason;
  current: SampledToken;
  readonly started = performance.now();
  ms = 0;

  constructor(readonly job: GenerationJob) {
    this.current = job.first;
  }

  /** Takes the sampled token; returns true when this job should feed it and continue. */
  accept(ctx: Context): boolean {
    const t = this.current;
    if (this.job.shouldStop?.()) return this.finish('aborted');
    if (t.eog) return this.finish('eos');
    this.tokens.push(t.token);
    this.text += this.decoder.write(t.piece);
    for (const s of this.job.stop) {
      const i = s ? this.text.indexOf(s) : -1;
      if (i >= 0) {
        this.text = this.text.slice(0, i);
        return this.finish('stop');
      }
    }
    this.flush(false);
    if (this.tokens.length >= this.job.maxTokens) return this.finish('length');
    const seq = ctx.sequence(this.job.seq);
    if (seq.length + 1 > seq.capacity) return this.finish('context');
    return true;
  }

  private finish(reason: StopReason): false {
    if (reason !== 'stop') this.text += this.decoder.end();
    this.done = reason;
    this.flush(true);
    this.ms = performance.now() - this.started;
    return false;
  }

  // Emits what can no longer become part of a stop string.
  private flush(final: boolean): void {
    if (!this.job.onText) return;
    let safe = this.text.length;
    if (!final) {
      for (const s of this.job.stop) {
        for (let k = Math.min(s.length - 1, this.text.length); k > 0; k--) {
          if (this.text.endsWith(s.slice(0, k))) {
            safe = Math.min(safe, this.text.length - k);
            break;
          }
        }
      }
    }
    if (safe > this.emitted) {
      this.job.onText(this.text.slice(this.emitted, safe));
      this.emitted = safe;
    }
  }

  result(): GenerationResult {
    return { text: this.text, tokens: this.tokens, stopReason: this.done ?? 'length', ms: this.ms };
  }
}

/** Ends every active job with stopReason 'aborted' (its last accepted token stays its last). */
function endAborted(ctx: Context, active: readonly JobState[]): void {
  for (const s of active) {
    s.job.shouldStop = () => true;
    s.accept(ctx);
  }
}

/**
 * Runs jobs on distinct sequences of one context until each stops; all active sequences
 * advance together in one batched step per token.
 */
export async function generate(ctx: Context, jobs: readonly GenerationJob[], signal?: AbortSignal): Promise<GenerationResult[]> {
  const states = jobs.map((j) => new JobState(j));
  let active = states.filter((s) => s.accept(ctx));
  while (active.length > 0) {
    if (signal?.aborted) {
      endAborted(ctx, active);
      break;
    }
    let results: SampledToken[];
    try {
      results = await ctx.step(
        active.map((s) => ({ seq: s.job.seq, token: s.current.token, sampler: s.job.sampler })),
        { signal },
      );
    } catch (e) {
      // An abort inside the step: the sequences rolled the step back, so each job ends as if the
      // abort had come between tokens (callers decide whether that rejects).
      if (!signal?.aborted) throw e;
      endAborted(ctx, active);
      break;
    }
    active.forEach((s, i) => (s.current = results[i]));
    active = active.filter((s) => s.accept(ctx));
  }
  return states.map((s) => s.result());
}
