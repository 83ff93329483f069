/**
 * Conversion entry points: HF folders in, GGUF (or a folded HF folder) out.
 *   convertV0  – LLaMA-7B base + LLaVA-Med v0 delta + CLIP ViT-L/14 → <name>.gguf + mmproj-<name>.gguf
 *   convertV15 – LLaVA-Med v1.5 (Mistral) checkpoint + CLIP ViT-L/14-336 → the same pair
 *   foldDelta  – base + delta → an HF folder, like the original apply_delta.py
 * Everything is checked from headers and configs before the first byte is written; on any error or
 * abort the outputs written so far are removed, so the out folder never holds a partial conversion.
 */
import { mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { llavaError, throwIfAborted } from '../errors.js';
import { openHfCheckpoint } from '../formats/hf-checkpoint.js';
import type { CheckpointReader } from '../formats/tensor.js';
import { checkFoldArithmetic, foldTensor, type FoldArithmetic } from './delta-fold.js';
import { openV0Checkpoints, readV0Configs } from './v0-pair.js';
import { readClipConfig, readLlmConfig, type ClipFolderConfig, type LlmConfig } from './hf-config.js';
import { readHfTokenizer } from './hf-tokenizer.js';
import { writeLlmGguf, type LlmGgufResult } from './llm-gguf.js';
import { writeMmprojGguf, type MmprojGgufResult, type ProjectorSpec } from './mmproj-gguf.js';
import { defaultProvenance, type SourceOrigin, type SourceRef } from './provenance.js';
import type { ConvertPhase, LazyTensor, LlavaMedVariant, OutType, ProgressCallback, WarningCallback } from './types.js';

export type { ConvertProgress, ConvertPhase, OutType, ProgressCallback, WarningCallback, LlavaMedVariant, LazyTensor } from './types.js';
export { foldDelta, type FoldDeltaOptions, type FoldDeltaResult } from './fold-folder.js';
export { quantize, QUANT_TYPES, type QuantType, type QuantizeOptions } from './quantize.js';
export { FOLD_ARITHMETICS, DEFAULT_FOLD_ARITHMETIC, type FoldArithmetic } from './delta-fold.js';
export type { SourceOrigin } from './provenance.js';
export type { LlmGgufResult } from './llm-gguf.js';
export type { MmprojGgufResult } from './mmproj-gguf.js';
export type { SpecialKind, ResolvedSpecial } from './hf-tokenizer.js';

/** Options convertV0 and convertV15 share. Paths are local folders in the Hugging Face layout. */
export interface ConvertCommonOptions {
  /** CLIP folder (openai/clip-vit-large-patch14 for v0, -336 for v1.5). */
  vision: string;
  /** Output folder (created if missing). */
  out: string;
  /** File stem: writes `<name>.gguf` and `mmproj-<name>.gguf`. */
  name?: string;
  /** Weight type of the language model. Default 'f16' (the projector GGUF stays F16 for 'q8_0'). */
  outtype?: OutType;
  /** Called per tensor written, per phase. */
  onProgress?: ProgressCallback;
  /** Non-fatal notices (e.g. a tensor kept in F16). Default: dropped. */
  onWarning?: WarningCallback;
  /** Aborts the conversion: it rejects with `ERR_ABORTED` and removes the files written so far. */
  signal?: AbortSignal;
  /** Hub origin of each input folder (role: base, delta, model, vision), recorded in both GGUFs' provenance keys. */
  origins?: Partial<Record<string, SourceOrigin>>;
  /**
   * Write NaN/±Inf weights (and F16 overflows) instead of refusing them. Default false: such a tensor
   * is ERR_CONVERT naming it, since llama.cpp would answer NaN from it.
   */
  allowNonFinite?: boolean;
}

/** Options of {@link convertV0}. */
export interface ConvertV0Options extends ConvertCommonOptions {
  /** Original LLaMA-7B in HF format. */
  base: string;
  /** LLaVA-Med v0 delta folder (e.g. microsoft/llava-med-7b-delta). */
  delta: string;
  /**
   * 'fp16' (default): the weights the original ran — apply_delta.py's fp16(base) + fp16(delta) rounded to
   * fp16 (also the copied rows and the projector), whatever the output type. 'exact': the float32 sum
   * of the stored values.
   */
  foldArithmetic?: FoldArithmetic;
}

/** Options of {@link convertV15}. */
export interface ConvertV15Options extends ConvertCommonOptions {
  /** LLaVA-Med v1.5 folder (microsoft/llava-med-v1.5-mistral-7b). */
  model: string;
}

/** What a conversion wrote: the GGUF pair to pass to `LlavaMed.load`. */
export interface ConvertResult {
  /** Path of the language-model GGUF (`<out>/<name>.gguf`). */
  model: string;
  /** Path of the projector GGUF (`<out>/mmproj-<name>.gguf`). */
  mmproj: string;
  /** Which release was converted. */
  variant: LlavaMedVariant;
  /** Details of the language-model GGUF. */
  llm: LlmGgufResult;
  /** Details of the projector GGUF. */
  vision: MmprojGgufResult;
}

const OUTTYPES: readonly OutType[] = ['f32', 'f16', 'q8_0'];

function checkCommon(o: ConvertCommonOptions, defaultName: string): { name: string; outtype: OutType } {
  const name = o.name ?? defaultName;
  if (!/^[\w.+-]+$/.test(name)) throw llavaError('ERR_INVALID_ARGUMENT', `name ${JSON.stringify(name)} must be a plain file stem (letters, digits, . _ + -).`);
  const outtype = o.outtype ?? 'f16';
  if (!OUTTYPES.includes(outtype)) throw llavaError('ERR_INVALID_ARGUMENT', `outtype must be one of ${OUTTYPES.join(', ')}, got ${String(outtype)}.`);
  for (const k of ['vision', 'out'] as const) {
    if (typeof o[k] !== 'string' || o[k].length === 0) throw llavaError('ERR_INVALID_ARGUMENT', `${k} must be a folder path.`);
  }
  if (o.allowNonFinite !== undefined && typeof o.allowNonFinite !== 'boolean') throw llavaError('ERR_INVALID_ARGUMENT', `allowNonFinite must be a boolean, got ${typeof o.allowNonFinite}.`);
  return { name, outtype };
}

function lazy(r: CheckpointReader, name: string): LazyTensor {
  const s = r.get(name);
  return { name, shape: s.shape, read: () => s.readF32() };
}

function imageTokens(clip: ClipFolderConfig): number {
  const side = clip.vision.image_size / clip.vision.patch_size;
  return side * side;
}

/** Runs the two GGUF writers; removes whatever was completed if a later step fails. */
async function writePair(
  o: ConvertCommonOptions,
  paths: { model: string; mmproj: string },
  mmproj: (phase: (p: ConvertPhase) => Parameters<typeof writeMmprojGguf>[0]['onTensor']) => Promise<MmprojGgufResult>,
  llm: (phase: (p: ConvertPhase) => Parameters<typeof writeLlmGguf>[0]['onTensor']) => Promise<LlmGgufResult>,
): Promise<{ llm: LlmGgufResult; vision: MmprojGgufResult }> {
  const progress = (phase: ConvertPhase) =>
    o.onProgress ? (p: { tensor: string; tensorsDone: number; tensorsTotal: number; bytesDone: number; bytesTotal: number }) => o.onProgress!({ phase, ...p }) : undefined;
  const done: string[] = [];
  try {
    await mkdir(o.out, { recursive: true });
    const vision = await mmproj(progress);
    done.push(paths.mmproj);
    const l = await llm(progress);
    done.push(paths.model);
    throwIfAborted(o.signal, 'conversion');
    o.onProgress?.({ phase: 'done', tensorsDone: 0, tensorsTotal: 0, bytesDone: 0, bytesTotal: 0 });
    return { llm: l, vision };
  } catch (e) {
    for (const p of done) await unlink(p).catch(() => undefined);
    throw e;
  }
}

async function closeAll(readers: (CheckpointReader | undefined)[]): Promise<void> {
  for (const r of readers) await r?.close().catch(() => undefined);
}

function checkLlavaV0Delta(dir: string, c: LlmConfig): void {
  const isLlava = c.model_type === 'llava' || (c.architectures ?? []).some((a) => a === 'LlavaLlamaForCausalLM') || c.mm_vision_tower !== undefined;
  if (!isLlava) {
    throw llavaError('ERR_CONVERT', `${dir} is not a LLaVA-Med v0 delta: its config.json is not a LlavaLlamaForCausalLM (model_type ${JSON.stringify(c.model_type ?? null)}).`);
  }
  if (c.model_type === 'llava_mistral' || c.mm_projector_type !== undefined) {
    throw llavaError('ERR_CONVERT', `${dir} is a LLaVA-1.5-style checkpoint (mm_projector_type ${c.mm_projector_type}); use convertV15 for it.`);
  }
}

function checkClipWidth(clip: ClipFolderConfig, mmHidden: number | undefined, visionDir: string): void {
  if (mmHidden !== undefined && mmHidden !== clip.vision.hidden_size) {
    throw llavaError('ERR_CONVERT', `${visionDir}: CLIP width ${clip.vision.hidden_size} does not match the model's mm_hidden_size ${mmHidden}; wrong vision tower?`);
  }
}

/**
 * Converts LLaVA-Med v0: folds the delta into LLaMA-7B (as apply_delta.py) and writes `<name>.gguf`
 * (default name `llava-med-7b-v0`) and `mmproj-<name>.gguf` into `out`. Configs, tokenizers and tensor
 * headers of all three folders are checked before anything is written; on failure or abort the files
 * written so far are removed.
 *
 * @throws LlavaMedError `ERR_INVALID_ARGUMENT` (bad options), `ERR_FILE_NOT_FOUND` (missing folder or file),
 *   `ERR_CONVERT` (not a v0 delta, wrong vision tower, non-finite weights), `ERR_WRONG_BASE` /
 *   `ERR_SHAPE_MISMATCH` / `ERR_MISSING_SHARD` (base and delta do not fit together, incomplete download),
 *   `ERR_FORMAT` / `ERR_UNSAFE_PICKLE` (unreadable or unsafe checkpoint), `ERR_ABORTED`.
 */
export async function convertV0(o: ConvertV0Options): Promise<ConvertResult> {
  const { name, outtype } = checkCommon(o, 'llava-med-7b-v0');
  const arithmetic = checkFoldArithmetic(o.foldArithmetic);
  for (const k of ['base', 'delta'] as const) {
    if (typeof o[k] !== 'string' || o[k].length === 0) throw llavaError('ERR_INVALID_ARGUMENT', `${k} must be a folder path.`);
  }
  throwIfAborted(o.signal, 'conversion');
  o.onProgress?.({ phase: 'check', tensorsDone: 0, tensorsTotal: 0, bytesDone: 0, bytesTotal: 0 });
  const configs = await readV0Configs(o.base, o.delta);
  const { baseCfg, deltaCfg, tokenizer } = configs;
  checkLlavaV0Delta(o.delta, deltaCfg);
  const clip = await readClipConfig(o.vision);
  checkClipWidth(clip, deltaCfg.mm_hidden_size, o.vision);

  let base: CheckpointReader | undefined;
  let delta: CheckpointReader | undefined;
  let clipW: CheckpointReader | undefined;
  try {
    const { base: b, delta: d, plan } = await openV0Checkpoints(o.base, o.delta, configs);
    base = b;
    delta = d;
    const cw: CheckpointReader = (clipW = await openHfCheckpoint(o.vision));
    throwIfAborted(o.signal, 'conversion');
    const folded: LazyTensor[] = plan.map((e) => ({ name: e.name, shape: e.shape, read: () => foldTensor(e, b, d, arithmetic) }));
    const sources: SourceRef[] = [
      { role: 'base', dir: o.base, nameOrPath: baseCfg._name_or_path },
      { role: 'delta', dir: o.delta, nameOrPath: deltaCfg._name_or_path },
      { role: 'vision', dir: o.vision, nameOrPath: clip.nameOrPath },
    ].map((s) => ({ ...s, origin: o.origins?.[s.role] }));
    const paths = { model: join(o.out, `${name}.gguf`), mmproj: join(o.out, `mmproj-${name}.gguf`) };
    // The projector as the original ran it: the delta's copy, fp16 under the default arithmetic.
    const projEntry = (n: string) => plan.find((e) => e.name === n)!;
    const projLazy = (n: string): LazyTensor => ({ name: n, shape: d.get(n).shape, read: () => foldTensor(projEntry(n), b, d, arithmetic) });
    const projector: ProjectorSpec = { kind: 'linear', weight: projLazy('model.mm_projector.weight'), bias: projLazy('model.mm_projector.bias') };
    const r = await writePair(
      o,
      paths,
      (progress) =>
        writeMmprojGguf({
          path: paths.mmproj, clip, clipWeights: cw, projector, outtype, variant: 'v0',
          provenance: defaultProvenance('v0', `mmproj-${name}`, sources, 'mmproj'),
          signal: o.signal, onTensor: progress('mmproj'), allowNonFinite: o.allowNonFinite,
        }),
      (progress) =>
        writeLlmGguf({
          path: paths.model, config: deltaCfg, tokenizer, tensors: folded, outtype, variant: 'v0', foldArithmetic: arithmetic,
          imageTokenCount: imageTokens(clip),
          provenance: defaultProvenance('v0', name, sources, 'model'),
          signal: o.signal, onTensor: progress('llm'), allowNonFinite: o.allowNonFinite, onWarning: o.onWarning,
        }),
    );
    return { model: paths.model, mmproj: paths.mmproj, variant: 'v0', ...r };
  } finally {
    await closeAll([base, delta, clipW]);
  }
}

const V15_PROJECTOR = ['model.mm_projector.0.weight', 'model.mm_projector.0.bias', 'model.mm_projector.2.weight', 'model.mm_projector.2.bias'];

/**
 * Converts LLaVA-Med v1.5 (Mistral-7B, mlp2x_gelu projector): writes `<name>.gguf` (default name
 * `llava-med-v1.5-mistral-7b`) and `mmproj-<name>.gguf` into `out`, checking everything first and removing
 * partial outputs on failure or abort.
 *
 * @throws LlavaMedError `ERR_INVALID_ARGUMENT` (bad options), `ERR_FILE_NOT_FOUND`, `ERR_CONVERT` (not a v1.5
 *   checkpoint, unsupported projector, missing projector tensors, wrong vision tower, non-finite weights),
 *   `ERR_MISSING_SHARD` / `ERR_FORMAT` / `ERR_UNSAFE_PICKLE` (incomplete, unreadable or unsafe checkpoint), `ERR_ABORTED`.
 */
export async function convertV15(o: ConvertV15Options): Promise<ConvertResult> {
  const { name, outtype } = checkCommon(o, 'llava-med-v1.5-mistral-7b');
  if (typeof o.model !== 'string' || o.model.length === 0) throw llavaError('ERR_INVALID_ARGUMENT', 'model must be a folder path.');
  throwIfAborted(o.signal, 'conversion');
  o.onProgress?.({ phase: 'check', tensorsDone: 0, tensorsTotal: 0, bytesDone: 0, bytesTotal: 0 });
  const cfg = await readLlmConfig(o.model);
  const isV15 = cfg.model_type === 'llava_mistral' || (cfg.architectures ?? []).includes('LlavaMistralForCausalLM');
  if (!isV15) {
    throw llavaError(
      'ERR_CONVERT',
      `${o.model} is not a LLaVA-Med v1.5 checkpoint (model_type ${JSON.stringify(cfg.model_type ?? null)}; expected llava_mistral)` +
        (cfg.model_type === 'llava' ? '; a v0 delta goes through convertV0 with the LLaMA-7B base.' : '.'),
    );
  }
  if (cfg.mm_projector_type !== 'mlp2x_gelu') {
    throw llavaError('ERR_CONVERT', `${o.model}: mm_projector_type ${JSON.stringify(cfg.mm_projector_type ?? null)} is not supported (expected mlp2x_gelu).`);
  }
  const tokenizer = await readHfTokenizer(o.model);
  const clip = await readClipConfig(o.vision);
  checkClipWidth(clip, cfg.mm_hidden_size, o.vision);

  let model: CheckpointReader | undefined;
  let clipW: CheckpointReader | undefined;
  try {
    const m: CheckpointReader = (model = await openHfCheckpoint(o.model));
    const cw: CheckpointReader = (clipW = await openHfCheckpoint(o.vision));
    const missing = V15_PROJECTOR.filter((n) => !m.has(n));
    if (missing.length > 0) {
      throw llavaError('ERR_CONVERT', `${o.model} has no ${missing.join(', ')}: the projector is missing (incomplete download?).`);
    }
    const tensors: LazyTensor[] = m.names().map((n) => lazy(m, n));
    const sources: SourceRef[] = [
      { role: 'model', dir: o.model, nameOrPath: cfg._name_or_path },
      { role: 'vision', dir: o.vision, nameOrPath: clip.nameOrPath },
    ].map((s) => ({ ...s, origin: o.origins?.[s.role] }));
    const [w0, b0, w2, b2] = V15_PROJECTOR.map((n) => lazy(m, n)) as [LazyTensor, LazyTensor, LazyTensor, LazyTensor];
    const paths = { model: join(o.out, `${name}.gguf`), mmproj: join(o.out, `mmproj-${name}.gguf`) };
    const r = await writePair(
      o,
      paths,
      (progress) =>
        writeMmprojGguf({
          path: paths.mmproj, clip, clipWeights: cw, projector: { kind: 'mlp2x_gelu', w0, b0, w2, b2 }, outtype, variant: 'v1.5',
          provenance: defaultProvenance('v1.5', `mmproj-${name}`, sources, 'mmproj'),
          signal: o.signal, onTensor: progress('mmproj'), allowNonFinite: o.allowNonFinite,
        }),
      (progress) =>
        writeLlmGguf({
          path: paths.model, config: cfg, tokenizer, tensors, outtype, variant: 'v1.5',
          imageTokenCount: imageTokens(clip),
          provenance: defaultProvenance('v1.5', name, sources, 'model'),
          signal: o.signal, onTensor: progress('llm'), allowNonFinite: o.allowNonFinite, onWarning: o.onWarning,
        }),
    );
    return { model: paths.model, mmproj: paths.mmproj, variant: 'v1.5', ...r };
  } finally {
    await closeAll([model, clipW]);
  }
}
