/**
 * Python `str` behaviours the original metric code relies on, reproduced exactly.
 * JavaScript's `\s`, `trim()` and `split(/\s+/)` use a different whitespace set than Python's
 * `str.split()`/`str.strip()` (e.g. Python treats \x1c-\x1f and \x85 as whitespace, JS treats
 * \ufeff as whitespace), and a metric must see the same tokens the Python code saw.
 */

/** Characters for which Python's `str.isspace()` is true (what `split()`/`strip()` cut on). */
const PY_WS = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const SPLIT_RE = new RegExp(`[${PY_WS}]+`, 'u');
const STRIP_RE = new RegExp(`^[${PY_WS}]+|[${PY_WS}]+$`, 'gu');

/** Python `s.split()` with no argument: runs of whitespace separate, no empty strings. */
export function pySplit(s: string): string[] {
  return s.split(SPLIT_RE).filter((w) => w.length > 0);
}

/** Python `s.strip()` with no argument. */
export function pyStrip(s: string): string {
  return s.replace(STRIP_RE, '');
}

/**
 * Python `s.lower()`. Both languages apply Unicode full lowercase mapping (with final sigma);
 * kept as a named function so the one place to adjust is obvious if a difference turns up.
 */
export function pyLower(s: string): string {
  return s.toLowerCase();
}

/**
 * Python `sum(list)`: left-to-right addition starting from int 0. Python < 3.12 (the original ran
 * 3.10) adds plainly; 3.12+ uses compensated summation, which we deliberately do NOT copy.
 */
export function pySum(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}

/**
 * Python `math.fsum`: the correctly rounded sum (Shewchuk's algorithm, as CPython's msum).
 * nltk's BLEU adds its weighted log precisions with fsum, so a naive sum could differ in the last bit.
 */
export function fsum(xs: readonly number[]): number {
  const partials: number[] = [];
  for (let x of xs) {
    let i = 0;
    for (let y of partials) {
      if (Math.abs(x) < Math.abs(y)) [x, y] = [y, x];
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) partials[i++] = lo;
      x = hi;
    }
    partials.length = i;
    partials.push(x);
  }
  // Round-half-even correction of the top partials, as CPython does.
  let n = partials.length;
  if (n === 0) return 0;
  let hi = partials[--n]!;
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = partials[--n]!;
    hi = x + y;
    const yr = hi - x;
    lo = y - yr;
    if (lo !== 0) break;
  }
  if (n > 0 && ((lo < 0 && partials[n - 1]! < 0) || (lo > 0 && partials[n - 1]! > 0))) {
    const y = lo * 2;
    const x = hi + y;
    const yr = x - hi;
    if (y === yr) hi = x;
  }
  return hi;
}

/**
 * Python `format(x, '.{digits}f')`: exact decimal value of the double, ties to even.
 * JS `toFixed` rounds exact ties up, so 0.125 would print "0.13" where Python prints "0.12".
 */
export function pyFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : x < 0 ? '-inf' : 'nan';
  const neg = x < 0 || Object.is(x, -0);
  const exact = Math.abs(x).toFixed(100); // exact expansion: every double in range has < 100 fraction digits that matter here
  const [intPart, frac] = exact.split('.') as [string, string];
  const keep = frac.slice(0, digits);
  const rest = frac.slice(digits);
  let digitsStr = intPart + keep;
  const first = rest.charAt(0);
  const tail = rest.slice(1);
  let roundUp = false;
  if (first > '5') roundUp = true;
  else if (first === '5') {
    if (/[1-9]/.test(tail)) roundUp = true;
    else roundUp = Number(digitsStr.charAt(digitsStr.length - 1)) % 2 === 1; // exact tie: to even
  }
  if (roundUp) {
    const arr = digitsStr.split('');
    let i = arr.length - 1;
    for (; i >= 0; i--) {
      if (arr[i] === '9') arr[i] = '0';
      else {
        arr[i] = String(Number(arr[i]) + 1);
        break;
      }
    }
    digitsStr = (i < 0 ? '1' : '') + arr.join('');
  }
  const ip = digitsStr.slice(0, digitsStr.length - digits) || '0';
  const fp = digitsStr.slice(digitsStr.length - digits);
  return (neg ? '-' : '') + ip + (digits > 0 ? '.' + fp : '');
}
