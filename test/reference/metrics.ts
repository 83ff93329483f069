// Error measures for the fidelity gate (engine output vs this reference).

/** Something that flattens to numbers: a vector, or rows of vectors (e.g. per-token embeddings). */
export type Numeric = ArrayLike<number> | ArrayLike<number>[];

function flatten(x: Numeric): Float64Array {
  if (x.length > 0 && typeof x[0] !== 'number') {
    const rows = x as ArrayLike<number>[];
    const n = rows.reduce((s, r) => s + r.length, 0);
    const out = new Float64Array(n);
    let k = 0;
    for (const r of rows) for (let i = 0; i < r.length; i++) out[k++] = r[i]!;
    return out;
  }
  return Float64Array.from(x as ArrayLike<number>);
}

export interface ErrorReport {
  /** ‖a − b‖₂ / ‖b‖₂ (b is the reference). */
  relError: number;
  /** max |a − b|. */
  maxAbsError: number;
  /** ‖b‖₂, so a tiny reference norm (which inflates relError) is visible. */
  refNorm: number;
}

/** Compare `a` (e.g. engine) against the reference `b`; shapes must agree in total size. */
export function compare(a: Numeric, b: Numeric): ErrorReport {
  const fa = flatten(a);
  const fb = flatten(b);
  if (fa.length !== fb.length) throw new Error(`compare: length ${fa.length} vs reference ${fb.length}`);
  let diff2 = 0;
  let ref2 = 0;
  let maxAbs = 0;
  let sawNaN = false;
  for (let i = 0; i < fa.length; i++) {
    const d = fa[i]! - fb[i]!;
    diff2 += d * d;
    ref2 += fb[i]! * fb[i]!;
    if (Number.isNaN(d)) sawNaN = true;
    else if (Math.abs(d) > maxAbs) maxAbs = Math.abs(d);
  }
  // A NaN anywhere must fail any threshold check, so report it rather than skipping it.
  if (sawNaN) return { relError: NaN, maxAbsError: NaN, refNorm: Math.sqrt(ref2) };
  const refNorm = Math.sqrt(ref2);
  // A zero reference: only an exact match counts as zero error.
  const relError = refNorm === 0 ? (diff2 === 0 ? 0 : Infinity) : Math.sqrt(diff2) / refNorm;
  return { relError, maxAbsError: maxAbs, refNorm };
}

/** ‖a − b‖₂ / ‖b‖₂ with b the reference. */
export function relError(a: Numeric, b: Numeric): number {
  return compare(a, b).relError;
}

/** max |a − b|. */
export function maxAbsError(a: Numeric, b: Numeric): number {
  return compare(a, b).maxAbsError;
}
