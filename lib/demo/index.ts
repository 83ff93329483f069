/**
 * `llava-med demo`: the embedded default. Builds once (cached) a small LLaVA-Med v0 model from
 * random weights with our own converter — the same delta fold and GGUF writers a user runs on
 * the real release — then asks it about the bundled synthetic radiograph.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertV0 } from '../convert/index.js';
import { LlavaMed } from '../llava-med.js';
import { RESEARCH_USE_NOTICE } from '../notice.js';
import { DEMO_DIMS, writeSyntheticV0 } from './synthetic-v0.js';

/** The bundled synthetic chest radiograph (assets/sample-xray.png) the demo asks about. */
export const DEMO_IMAGE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'assets', 'sample-xray.png');
/** The question the demo asks. */
export const DEMO_QUESTION = 'Is there evidence of a pneumothorax in this chest X-ray?';
const DEMO_VERSION = 'demo-v1';

/** Where the demo model is cached: `$XDG_CACHE_HOME/llava-med/<version>`, else `~/.cache/llava-med/<version>`. */
export function defaultDemoCache(): string {
  const base = process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache');
  return path.join(base, 'llava-med', DEMO_VERSION);
}

/** The demo model's files, as {@link ensureDemoModel} returns them (pass them to `LlavaMed.load`). */
export interface DemoModel {
  /** Language-model GGUF path. */
  model: string;
  /** Projector GGUF path. */
  mmproj: string;
  /** True when this call built the model, false when it was already cached. */
  built: boolean;
}

/** Returns the cached demo model, building it first if needed (atomically: a half-built cache is never used). */
export async function ensureDemoModel(cacheDir = defaultDemoCache(), onStep?: (msg: string) => void): Promise<DemoModel> {
  const model = path.join(cacheDir, 'llava-med-demo.gguf');
  const mmproj = path.join(cacheDir, 'mmproj-llava-med-demo.gguf');
  const ok = await Promise.all([fs.stat(model), fs.stat(mmproj)]).then(() => true, () => false);
  if (ok) return { model, mmproj, built: false };
  await fs.mkdir(path.dirname(cacheDir), { recursive: true });
  const work = await fs.mkdtemp(`${cacheDir}.build-`);
  try {
    onStep?.('writing random-weight Hugging Face checkpoints (base, delta, CLIP)');
    const src = await writeSyntheticV0(path.join(work, 'hf'), DEMO_DIMS);
    onStep?.('folding the delta and converting to GGUF');
    const out = path.join(work, 'gguf');
    await convertV0({ base: src.base, delta: src.delta, vision: src.vision, out, name: 'llava-med-demo', outtype: 'f16' });
    await fs.rm(cacheDir, { recursive: true, force: true });
    await fs.rename(out, cacheDir);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  return { model, mmproj, built: true };
}

/** Where {@link runDemo} writes: anything with a `write(string)` method, such as `process.stdout`. */
export interface Writable {
  /** Writes one piece of text. */
  write(s: string): unknown;
}

/**
 * What `llava-med demo` does: ensures the demo model (see {@link ensureDemoModel}), asks {@link DEMO_QUESTION}
 * about {@link DEMO_IMAGE} (48 tokens, seed 42) and writes the answer and timings to `o.out`, the
 * research-use notice and progress to `o.err`. Rejects with the errors of {@link ensureDemoModel} and
 * `LlavaMed.load` (e.g. `ERR_NATIVE_LOAD` when the addon is missing).
 *
 * @param o - `cacheDir` (default {@link defaultDemoCache}), `threads` (default: available cores), the two
 *   outputs, and `progress` (accepted for the CLI; unused).
 */
export async function runDemo(o: { cacheDir?: string; threads?: number; out: Writable; err: Writable; progress?: unknown }): Promise<void> {
  o.err.write(`${RESEARCH_USE_NOTICE}\n\n`);
  const t0 = performance.now();
  const demo = await ensureDemoModel(o.cacheDir ?? defaultDemoCache(), (m) => o.err.write(`demo: ${m}\n`));
  o.err.write(`demo: model ${demo.built ? 'built' : 'cached'} at ${path.dirname(demo.model)} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  await using med = await LlavaMed.load({ model: demo.model, mmproj: demo.mmproj, threads: o.threads });
  o.out.write(`Image:    ${DEMO_IMAGE}\nQuestion: ${DEMO_QUESTION}\nAnswer:   `);
  const a = await med.ask(DEMO_IMAGE, DEMO_QUESTION, { maxTokens: 48, seed: 42 });
  o.out.write(`${a.text}\n\n`);
  o.out.write('NOTE: the demo model has RANDOM weights, so its answer is meaningless text. It shows that the whole\n' +
    'pipeline runs (conversion, preprocessing, prompt, image encoding, generation); convert the real LLaVA-Med\n' +
    'weights with `llava-med convert` for real answers.\n\n');
  const t = a.timings;
  o.out.write(`Timings: image encode ${t.imageEncodeMs.toFixed(0)} ms, image prefill ${t.imageTokens} tokens in ${t.imageDecodeMs.toFixed(0)} ms, ` +
    `prompt ${t.promptTokens} tokens in ${t.promptMs.toFixed(0)} ms, generated ${t.generatedTokens} tokens in ${t.generateMs.toFixed(0)} ms ` +
    `(${((t.generatedTokens * 1000) / Math.max(1, t.generateMs)).toFixed(1)} tok/s), stop: ${a.stopReason}\n`);
}

/** Random-weight LLaVA-Med v0 checkpoints in the real Hugging Face layouts (base, delta, CLIP), to try conversion on. */
export { writeSyntheticV0, DEMO_DIMS, type SyntheticV0Dims, type SyntheticV0Paths } from './synthetic-v0.js';
