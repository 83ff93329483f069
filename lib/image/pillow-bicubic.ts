/**
 * Pillow's `Image.resize(size, Image.BICUBIC)` for 8-bit RGB, reproduced bit for bit.
 *
 * Why not sharp: libvips' reduce/affine kernels use another fixed-point precision, other pixel-centre
 * conventions and (for 'cubic') a different filter, so the 224x224 CLIP input would drift from what
 * LLaVA-Med was trained and evaluated on. No npm package implements Pillow's ImagingResample exactly, and
 * the algorithm is small, so it lives here (Pillow src/libImaging/Resample.c, unchanged since Pillow 4.x):
 *
 *  - bicubic kernel with a = -0.5, support 2, widened by the downscale factor (antialiasing);
 *  - per output pixel, taps from int(center - support + 0.5) to int(center + support + 0.5), weights
 *    normalised to sum 1, then converted to fixed point with PRECISION_BITS = 32 - 8 - 2 = 22 bits;
 *  - horizontal pass first, rounded and clipped to uint8, then the vertical pass on that result;
 *  - a pass whose size does not change is skipped.
 *
 * Each output pixel depends only on its own row/column taps, so computing just a window of the output
 * (the center crop CLIPImageProcessor takes next) gives the same bytes as resizing fully and cropping.
 */

const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

interface Coeffs {
  /** Taps per output index (the stride of `k`). */
  ksize: number;
  /** First input index used by each output index. */
  first: Int32Array;
  /** Number of input indices used by each output index. */
  count: Int32Array;
  /** Fixed-point weights, `ksize` per output index. */
  k: Int32Array;
}

/** precompute_coeffs + normalize_coeffs_8bpc for output indices [start, start + n) of an inSize -> outSize axis. */
function coefficients(inSize: number, outSize: number, start: number, n: number): Coeffs {
  const support0 = 2.0;
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = support0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(n);
  const count = new Int32Array(n);
  const k = new Int32Array(n * ksize);
  const w = new Float64Array(ksize);
  const ss = 1.0 / filterscale;
  for (let i = 0; i < n; i++) {
    const xx = start + i;
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const v = bicubic((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x]! / ww : w[x]!;
      k[i * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    first[i] = xmin;
    count[i] = xmax;
  }
  return { ksize, first, count, k };
}

function clip8(ss: number): number {
  const v = Math.floor(ss / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

export interface Window {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Resize interleaved RGB `src` (srcW x srcH) to outW x outH with Pillow's BICUBIC, returning only the
 * `win` part of the result (default: all of it) as a new RGB buffer of win.width x win.height.
 */
export function pillowBicubicResize(
  src: Uint8Array,
  srcW: number,
  srcH: number,
  outW: number,
  outH: number,
  win: Window = { left: 0, top: 0, width: outW, height: outH },
): Buffer {
  const needH = outW !== srcW;
  const needV = outH !== srcH;
  const { left, top, width, height } = win;

  // Rows of the (horizontally resized) image the vertical pass reads.
  const vc = needV ? coefficients(srcH, outH, top, height) : undefined;
  let rowFirst: number;
  let rowEnd: number;
  if (vc) {
    rowFirst = vc.first[0]!;
    rowEnd = vc.first[height - 1]! + vc.count[height - 1]!;
  } else {
    rowFirst = top;
    rowEnd = top + height;
  }
  const rows = rowEnd - rowFirst;

  // Horizontal pass (or a plain column crop when the width does not change).
  const tmp = Buffer.allocUnsafe(width * rows * 3);
  if (needH) {
    const { ksize, first, count, k } = coefficients(srcW, outW, left, width);
    for (let y = 0; y < rows; y++) {
      const rowOff = (rowFirst + y) * srcW * 3;
      let o = y * width * 3;
      for (let x = 0; x < width; x++) {
        const xmin = first[x]!;
        const n = count[x]!;
        const kb = x * ksize;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        let p = rowOff + xmin * 3;
        for (let i = 0; i < n; i++) {
          const c = k[kb + i]!;
          s0 += src[p]! * c;
          s1 += src[p + 1]! * c;
          s2 += src[p + 2]! * c;
          p += 3;
        }
        tmp[o++] = clip8(s0);
        tmp[o++] = clip8(s1);
        tmp[o++] = clip8(s2);
      }
    }
  } else {
    for (let y = 0; y < rows; y++) {
      const from = ((rowFirst + y) * srcW + left) * 3;
      tmp.set(src.subarray(from, from + width * 3), y * width * 3);
    }
  }
  if (!vc) return tmp;

  // Vertical pass over the intermediate uint8 image.
  const out = Buffer.allocUnsafe(width * height * 3);
  const { ksize, first, count, k } = vc;
  const stride = width * 3;
  for (let y = 0; y < height; y++) {
    const ymin = first[y]! - rowFirst;
    const n = count[y]!;
    const kb = y * ksize;
    let o = y * stride;
    for (let x = 0; x < stride; x += 3) {
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      let p = ymin * stride + x;
      for (let i = 0; i < n; i++) {
        const c = k[kb + i]!;
        s0 += tmp[p]! * c;
        s1 += tmp[p + 1]! * c;
        s2 += tmp[p + 2]! * c;
        p += stride;
      }
      out[o++] = clip8(s0);
      out[o++] = clip8(s1);
      out[o++] = clip8(s2);
    }
  }
  return out;
}
