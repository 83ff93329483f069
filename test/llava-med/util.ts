/** Shared helpers for the LlavaMed tests (not a test file: tap only runs *.test.ts). */
import type { Test } from 'tap';
import { LlavaMedError } from '../../lib/errors.js';
import { LlavaMed, type LlavaMedOptions, engineOf } from '../../lib/llava-med.js';
import type { ImageEmbedding } from '../../lib/engine/index.js';
import { tinyV0, tinyV15, type TinyLlava } from '../helpers/tiny-llava.js';

export { tinyV0, tinyV15, noisePng, noisePixels, type TinyLlava } from '../helpers/tiny-llava.js';

/** Loads a tiny model on one thread (the test machines are shared). */
export async function loadTiny(which: 'v0' | 'v1.5' | TinyLlava, opts: Partial<LlavaMedOptions> = {}): Promise<{ med: LlavaMed; tiny: TinyLlava }> {
  const tiny = typeof which === 'string' ? await (which === 'v0' ? tinyV0() : tinyV15()) : which;
  const med = await LlavaMed.load({ model: tiny.model, mmproj: tiny.mmproj, threads: 1, contextSize: 1024, ...opts });
  return { med, tiny };
}

/** What a promise rejected with (undefined when it resolved). */
export async function rejection(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e;
  }
  return undefined;
}

/** Asserts `p` rejects with a LlavaMedError carrying `code`. */
export async function rejectsCode(t: Test, p: Promise<unknown> | (() => unknown), code: string, what: string): Promise<LlavaMedError | undefined> {
  const e = await rejection(p);
  t.ok(e instanceof LlavaMedError, `${what}: rejects with a LlavaMedError (got ${e === undefined ? 'success' : String(e)})`);
  t.equal((e as { code?: string } | undefined)?.code, code, `${what}: ${code}`);
  return e instanceof LlavaMedError ? e : undefined;
}

/** What the engine was fed: text-token runs and image embeddings in order, per sequence. */
export type Fed = { seq: number; tokens?: number[]; image?: ImageEmbedding; logits?: string }[];

/**
 * Records every Sequence.decode / decodeImage and Context.step call LlavaMed makes (the real
 * methods still run), and counts Projector.encode calls. Returns a stop() that restores them.
 */
export function spyEngine(med: LlavaMed): { fed: Fed; steps: number[][]; encodes: () => number; stop: () => void } {
  const { context: ctx, projector: proj } = engineOf(med);
  const fed: Fed = [];
  const steps: number[][] = [];
  let encodes = 0;
  const restore: (() => void)[] = [];
  for (let i = 0; i < ctx.sequences; i++) {
    const s = ctx.sequence(i);
    const decode = s.decode;
    const decodeImage = s.decodeImage;
    s.decode = function (this: typeof s, tokens, opts = {}) {
      fed.push({ seq: s.id, tokens: Array.from(tokens), logits: opts.logits ?? 'last' });
      return decode.call(this, tokens, opts);
    };
    s.decodeImage = function (this: typeof s, image, opts = {}) {
      fed.push({ seq: s.id, image });
      return decodeImage.call(this, image, opts);
    };
    restore.push(() => {
      s.decode = decode;
      s.decodeImage = decodeImage;
    });
  }
  const step = ctx.step;
  const encode = proj.encode;
  ctx.step = function (this: typeof ctx, entries, opts = {}) {
    steps.push(entries.map((e) => e.seq));
    return step.call(this, entries, opts);
  };
  proj.encode = function (this: typeof proj, ...args: Parameters<typeof encode>) {
    encodes++;
    return encode.apply(this, args);
  };
  return {
    fed,
    steps,
    encodes: () => encodes,
    stop: () => {
      for (const r of restore) r();
      ctx.step = step;
      proj.encode = encode;
    },
  };
}

/** The sequence `seq` received, flattened: token ids, and 'IMG' for each image embedding. */
export function flatten(fed: Fed, seq = 0): (number | 'IMG')[] {
  return fed.filter((f) => f.seq === seq).flatMap((f): (number | 'IMG')[] => (f.image ? ['IMG'] : f.tokens!));
}
