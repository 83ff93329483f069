/**
 * DICOM RLE Lossless (PS3.5 Annex G). Our own decoder, because the only packaged one lives inside
 * @cornerstonejs/dicom-image-loader (a browser image loader with web-worker and DOM dependencies), and the
 * algorithm is a header plus PackBits: here every run is bounded by its segment and by the output size, so a
 * lying header or run cannot read or write out of bounds or loop.
 *
 * A frame is a 64-byte header (segment count, 15 offsets, little endian) and one PackBits segment per byte
 * plane: for each sample, its most significant byte first. The output is interleaved native samples in
 * little-endian byte order (the order the renderer reads native Pixel Data in).
 */
import { llavaError } from '../../errors.js';

function bad(msg: string): never {
  throw llavaError('ERR_IMAGE_DECODE', `Invalid DICOM RLE data: ${msg}`);
}

export function decodeRle(src: Uint8Array, rows: number, columns: number, samplesPerPixel: number, bitsAllocated: number): Uint8Array {
  const bytesPerSample = bitsAllocated / 8;
  const pixels = rows * columns;
  const segments = samplesPerPixel * bytesPerSample;
  if (src.length < 64) bad('the frame is shorter than its 64-byte header.');
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const n = view.getUint32(0, true);
  if (n !== segments) bad(`the header lists ${n} segments; ${samplesPerPixel} samples of ${bitsAllocated} bits need ${segments}.`);
  const offsets: number[] = [];
  for (let i = 0; i < n; i++) offsets.push(view.getUint32(4 + 4 * i, true));
  const out = new Uint8Array(pixels * segments);
  for (let s = 0; s < n; s++) {
    const start = offsets[s]!;
    const end = s + 1 < n ? offsets[s + 1]! : src.length;
    if (start < 64 || end > src.length || start > end) bad(`segment ${s + 1} lies outside the frame.`);
    // segment s: sample = floor(s / bytesPerSample), byte = most significant first
    const sample = Math.floor(s / bytesPerSample);
    const byte = bytesPerSample - 1 - (s % bytesPerSample);
    const stride = segments;
    let o = sample * bytesPerSample + byte;
    let written = 0;
    let i = start;
    while (written < pixels && i < end) {
      const h = src[i++]!;
      if (h < 128) {
        const count = h + 1;
        if (i + count > end) bad(`a literal run in segment ${s + 1} runs past the segment.`);
        const m = Math.min(count, pixels - written);
        for (let k = 0; k < m; k++, o += stride) out[o] = src[i + k]!;
        written += m;
        i += count;
      } else if (h > 128) {
        const count = 257 - h;
        if (i >= end) bad(`a repeat run in segment ${s + 1} has no byte to repeat.`);
        const v = src[i++]!;
        const m = Math.min(count, pixels - written);
        for (let k = 0; k < m; k++, o += stride) out[o] = v;
        written += m;
      }
      // h === 128: no-op
    }
    if (written < pixels) bad(`segment ${s + 1} decodes to ${written} bytes, ${pixels} expected (truncated).`);
  }
  return out;
}
