/**
 * LLaVA-Med's apply_delta.py, tensor by tensor (llava-med-reference §1):
 *  - a delta tensor absent from the base must be model.mm_projector.{weight,bias}: copied as stored
 *    (the projector was never made a delta);
 *  - equal shapes: base + delta;
 *  - model.embed_tokens.weight / lm_head.weight with more rows: base added to the top-left
 *    base_rows × base_cols block only; the extra rows (the added tokens) stay exactly as stored;
 *  - anything else is an error naming the tensor.
 * The whole plan is validated from the headers before a single tensor is read, so a bad pair fails
 * fast and before any output exists. One tensor at a time: peak memory is the base and delta copies of
 * the largest tensor (the embeddings), never the model.
 *
 * Arithmetic ('fp16', the default, or 'exact'): apply_delta.py loaded both models with
 * `torch_dtype=torch.float16` and added in place in fp16, so the weights LLaVA-Med ran are
 * fp16(fp16(base) + fp16(delta)), and the copied rows and projector are fp16 too. 'fp16' reproduces that
 * bit for bit (proved against a PyTorch fold in test/convert/fold-fp16.test.ts); 'exact' keeps the float32
 * sum of the stored values (up to one fp16 step away: a model the original never ran).
 */
import { llavaError } from '../errors.js';
import { roundToF16InPlace } from '../formats/half.js';
import type { CheckpointReader, TensorSource } from '../formats/tensor.js';

export type FoldKind = 'add' | 'add-top-left' | 'copy';

/** How base + delta is computed: as the original (fp16 operands, fp16 sum) or the exact float32 sum. */
export type FoldArithmetic = 'fp16' | 'exact';
/** The accepted {@link FoldArithmetic} values. */
export const FOLD_ARITHMETICS: readonly FoldArithmetic[] = ['fp16', 'exact'];
/** 'fp16': the weights the original ran. */
export const DEFAULT_FOLD_ARITHMETIC: FoldArithmetic = 'fp16';

export function checkFoldArithmetic(a: unknown): FoldArithmetic {
  if (a === undefined) return DEFAULT_FOLD_ARITHMETIC;
  if (!FOLD_ARITHMETICS.includes(a as FoldArithmetic)) {
    throw llavaError('ERR_INVALID_ARGUMENT', `foldArithmetic must be 'fp16' (as the original apply_delta.py) or 'exact', not ${JSON.stringify(a)}.`);
  }
  return a as FoldArithmetic;
}

export interface FoldEntry {
  name: string;
  shape: readonly number[];
  kind: FoldKind;
}

const PROJECTOR = ['model.mm_projector.weight', 'model.mm_projector.bias'];
const RESIZED = ['model.embed_tokens.weight', 'lm_head.weight'];

export function planFold(base: CheckpointReader, delta: CheckpointReader): FoldEntry[] {
  const plan: FoldEntry[] = [];
  for (const name of delta.names()) {
    const d = delta.get(name);
    if (!base.has(name)) {
      if (!PROJECTOR.includes(name)) {
        throw llavaError(
          'ERR_CONVERT',
          `Delta tensor ${name} (in ${d.file}) has no counterpart in the base and is not the mm_projector; ` +
            'apply_delta.py would refuse it too. Is the base the right model?',
        );
      }
      plan.push({ name, shape: d.shape, kind: 'copy' });
      continue;
    }
    const b = base.get(name);
    if (sameShape(b.shape, d.shape)) {
      plan.push({ name, shape: d.shape, kind: 'add' });
      continue;
    }
    const grows =
      RESIZED.includes(name) &&
      b.shape.length === 2 &&
      d.shape.length === 2 &&
      b.shape[0]! <= d.shape[0]! &&
      b.shape[1]! <= d.shape[1]!;
    if (!grows) {
      throw llavaError(
        'ERR_SHAPE_MISMATCH',
        `Tensor ${name}: base shape [${b.shape.join(', ')}] (${b.file}) does not fit delta shape [${d.shape.join(', ')}] (${d.file}).`,
      );
    }
    plan.push({ name, shape: d.shape, kind: 'add-top-left' });
  }
  const missing = PROJECTOR.filter((p) => !plan.some((e) => e.name === p && e.kind === 'copy'));
  if (missing.length > 0) {
    throw llavaError(
      'ERR_CONVERT',
      `The delta has no ${missing.join(' / ')}: it is not a LLaVA-Med v0 delta (or the download is incomplete). ` +
        `Files read: ${delta.files.join(', ')}.`,
    );
  }
  return plan;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The folded values of one planned tensor, float32, row-major in the delta's shape. */
export async function foldTensor(entry: FoldEntry, base: CheckpointReader, delta: CheckpointReader, arithmetic: FoldArithmetic = DEFAULT_FOLD_ARITHMETIC): Promise<Float32Array> {
  const fp16 = arithmetic === 'fp16';
  // from_pretrained(torch_dtype=float16): every operand is an fp16 value first (a no-op for F16 files)
  const d = await delta.get(entry.name).readF32();
  if (fp16) roundToF16InPlace(d);
  if (entry.kind === 'copy') return d;
  const bSrc: TensorSource = base.get(entry.name);
  const b = await bSrc.readF32();
  if (fp16) roundToF16InPlace(b);
  if (entry.kind === 'add') {
    for (let i = 0; i < d.length; i++) d[i] = d[i]! + b[i]!;
    // The float32 sum of two fp16 values rounds to the same fp16 as their exact sum (it needs at most
    // 24 significant bits whenever the result is not trivially the larger operand), so this is
    // PyTorch's fp16 add.
    return fp16 ? roundToF16InPlace(d) : d;
  }
  const [bRows, bCols] = bSrc.shape as [number, number];
  const dCols = entry.shape[1]!;
  for (let r = 0; r < bRows; r++) {
    const dOff = r * dCols;
    const bOff = r * bCols;
    for (let c = 0; c < bCols; c++) d[dOff + c] = d[dOff + c]! + b[bOff + c]!;
  }
  return fp16 ? roundToF16InPlace(d) : d;
}
