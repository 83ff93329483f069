/**
 * foldDelta: base + LLaVA-Med v0 delta → an HF folder, like the original apply_delta.py
 * (`delta.save_pretrained(target)`; `delta_tokenizer.save_pretrained(target)`): sharded safetensors in
 * F16 (the delta's dtype with foldArithmetic 'exact'), the delta's config and tokenizer files copied as they are.
 *
 * Memory: lib/formats' writeSafetensors takes the tensors of one file in memory, so tensors are folded
 * one by one and grouped into shards of at most `maxShardBytes` (as save_pretrained's max_shard_size);
 * peak memory is one shard plus one tensor, never the model.
 * Atomicity: everything is written into a hidden sibling folder that is renamed to `out` at the end.
 */
import { mkdir, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { sweepStaleTemps, tempPathFor } from '../formats/temp-files.js';
import { isLlavaMedError, llavaError, throwIfAborted } from '../errors.js';
import { MAX_TEXT_FILE_BYTES, readRegularFile } from '../formats/file-read.js';
import { writeSafetensors } from '../formats/safetensors.js';
import type { CheckpointReader, TensorData } from '../formats/tensor.js';
import { DTYPE_BYTES, numel, type DType } from '../formats/tensor.js';
import { checkFoldArithmetic, foldTensor, type FoldArithmetic } from './delta-fold.js';
import { openV0Checkpoints, readV0Configs } from './v0-pair.js';
import type { ProgressCallback } from './types.js';

/** Options of {@link foldDelta}. */
export interface FoldDeltaOptions {
  /** Original LLaMA-7B folder in HF format. */
  base: string;
  /** LLaVA-Med v0 delta folder. */
  delta: string;
  /** Output folder; must not exist yet (or be empty). */
  out: string;
  /** Largest safetensors shard written, in bytes (> 0). Default 2 GiB. */
  maxShardBytes?: number;
  /** 'fp16' (default): as apply_delta.py, fp16 operands and an fp16 sum, saved as F16. 'exact': the float32 sum, saved in the delta's dtype. */
  foldArithmetic?: FoldArithmetic;
  /** Called per tensor folded (phase 'fold'). */
  onProgress?: ProgressCallback;
  /** Aborts: the call rejects with `ERR_ABORTED` and the partial output is removed. */
  signal?: AbortSignal;
}

/** What {@link foldDelta} wrote. */
export interface FoldDeltaResult {
  /** The output folder. */
  out: string;
  /** Files written into it (shards, index, copied configs and tokenizer). */
  files: string[];
  /** Tensors written. */
  tensorCount: number;
}

const COPIED = ['config.json', 'generation_config.json', 'tokenizer.model', 'added_tokens.json', 'special_tokens_map.json', 'tokenizer_config.json'];

async function ensureEmptyTarget(out: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(out);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw llavaError('ERR_INVALID_ARGUMENT', `Cannot use ${out} as output: ${(e as Error).message}`, e);
  }
  if (entries.length > 0) throw llavaError('ERR_INVALID_ARGUMENT', `Output folder ${out} is not empty; refusing to overwrite it.`);
}

/**
 * Folds a LLaVA-Med v0 delta into LLaMA-7B and writes the result as a Hugging Face folder (sharded
 * safetensors plus the delta's config and tokenizer files), as the original apply_delta.py. Written into a
 * hidden sibling folder and renamed to `out` at the end, so `out` never holds a partial fold.
 *
 * @throws LlavaMedError `ERR_INVALID_ARGUMENT` (bad options, `out` not empty), `ERR_FILE_NOT_FOUND`,
 *   `ERR_WRONG_BASE` / `ERR_SHAPE_MISMATCH` / `ERR_MISSING_SHARD` (base and delta do not fit together),
 *   `ERR_FORMAT` / `ERR_UNSAFE_PICKLE` (unreadable or unsafe checkpoint), `ERR_ABORTED`.
 */
export async function foldDelta(o: FoldDeltaOptions): Promise<FoldDeltaResult> {
  const maxShard = o.maxShardBytes ?? 2 * 1024 ** 3;
  if (!(maxShard > 0)) throw llavaError('ERR_INVALID_ARGUMENT', 'maxShardBytes must be positive.');
  const arithmetic = checkFoldArithmetic(o.foldArithmetic);
  const outDtype = (stored: DType): DType => (arithmetic === 'fp16' ? 'F16' : stored);
  throwIfAborted(o.signal, 'delta fold');
  o.onProgress?.({ phase: 'check', tensorsDone: 0, tensorsTotal: 0, bytesDone: 0, bytesTotal: 0 });
  await ensureEmptyTarget(o.out);
  const configs = await readV0Configs(o.base, o.delta);

  let base: CheckpointReader | undefined;
  let delta: CheckpointReader | undefined;
  // Partial folders of killed runs next to the output go first; ours carries this pid (temp-files.ts).
  await sweepStaleTemps(dirname(resolve(o.out)));
  const tmp = tempPathFor(resolve(o.out), process.pid, 'partial');
  try {
    const { base: b, delta: d, plan } = await openV0Checkpoints(o.base, o.delta, configs);
    base = b;
    delta = d;

    // Group into shards by stored size, in delta order.
    const shards: (typeof plan)[] = [];
    let cur: typeof plan = [];
    let curBytes = 0;
    let bytesTotal = 0;
    for (const e of plan) {
      const n = numel(e.shape) * DTYPE_BYTES[outDtype(d.get(e.name).dtype)];
      bytesTotal += n;
      if (cur.length > 0 && curBytes + n > maxShard) {
        shards.push(cur);
        cur = [];
        curBytes = 0;
      }
      cur.push(e);
      curBytes += n;
    }
    if (cur.length > 0) shards.push(cur);

    await mkdir(tmp, { recursive: true });
    const files: string[] = [];
    const weightMap: Record<string, string> = {};
    let done = 0;
    let bytesDone = 0;
    for (let si = 0; si < shards.length; si++) {
      const file = shards.length === 1 ? 'model.safetensors' : `model-${String(si + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
      const data: TensorData[] = [];
      for (const e of shards[si]!) {
        throwIfAborted(o.signal, 'delta fold');
        const src = d.get(e.name);
        const dtype = outDtype(src.dtype);
        const values = e.kind === 'copy' && dtype === src.dtype ? await src.readRaw() : await foldTensor(e, b, d, arithmetic);
        // apply_delta saved the fp16 model (save_pretrained of the fp16-loaded delta); 'exact' keeps the delta's dtype.
        data.push({ name: e.name, dtype, shape: e.shape, data: values });
        weightMap[e.name] = file;
        done++;
        bytesDone += numel(e.shape) * DTYPE_BYTES[dtype];
        o.onProgress?.({ phase: 'fold', tensor: e.name, tensorsDone: done, tensorsTotal: plan.length, bytesDone, bytesTotal });
      }
      await writeSafetensors(join(tmp, file), data, { format: 'pt' });
      files.push(file);
    }
    if (shards.length > 1) {
      await writeFile(join(tmp, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: bytesTotal }, weight_map: weightMap }, null, 2) + '\n');
      files.push('model.safetensors.index.json');
    }
    for (const f of COPIED) {
      try {
        // Read through the regular-file guard (a FIFO named like a tokenizer file must not block the pool).
        await writeFile(join(tmp, f), await readRegularFile(join(o.delta, f), { what: 'Tokenizer/config file', maxBytes: MAX_TEXT_FILE_BYTES, tooLargeCode: 'ERR_FORMAT', signal: o.signal }));
        files.push(f);
      } catch (e) {
        if (!isLlavaMedError(e, 'ERR_FILE_NOT_FOUND')) throw e;
      }
    }
    throwIfAborted(o.signal, 'delta fold');
    await rmdir(o.out).catch(() => undefined);
    await rename(tmp, o.out);
    o.onProgress?.({ phase: 'done', tensorsDone: plan.length, tensorsTotal: plan.length, bytesDone, bytesTotal });
    return { out: o.out, files, tensorCount: plan.length };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    await base?.close().catch(() => undefined);
    await delta?.close().catch(() => undefined);
  }
}
