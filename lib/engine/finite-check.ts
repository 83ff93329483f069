/**
 * Non-finite weights, detected at load where it is cheap: every small F32/F16 tensor of a GGUF
 * (norm weights, biases: a few hundred KB in a 7B model) is read and checked for NaN/±Inf before
 * llama.cpp loads the file. A NaN there makes every answer NaN (or garbage) without any error; large
 * matrices are not scanned at load (seconds for a 7B model) — convert refuses them at the source.
 */
import { llavaError } from '../errors.js';
import { openRegularFile } from '../formats/file-read.js';
import { GgmlType, type GgufHeader } from '../formats/gguf-types.js';

/** Tensors up to this size are scanned... */
export const FINITE_CHECK_MAX_TENSOR_BYTES = 64 << 10;
/** ...up to this many bytes per file in total. */
export const FINITE_CHECK_MAX_TOTAL_BYTES = 8 << 20;

/** Refuses (ERR_GGUF_CORRUPT, naming the tensor) a GGUF whose small F32/F16 tensors hold NaN or ±Inf. */
export async function checkSmallTensorsFinite(h: GgufHeader, what: string): Promise<void> {
  const picked = [];
  let total = 0;
  for (const t of h.tensors) {
    if ((t.type !== GgmlType.F32 && t.type !== GgmlType.F16) || t.byteSize > FINITE_CHECK_MAX_TENSOR_BYTES) continue;
    if (total + t.byteSize > FINITE_CHECK_MAX_TOTAL_BYTES) break;
    picked.push(t);
    total += t.byteSize;
  }
  if (picked.length === 0) return;
  const { fh } = await openRegularFile(h.path, { what: 'GGUF file', notRegularCode: 'ERR_NOT_GGUF' });
  try {
    // All reads at once (positioned reads on the pool), then the scans.
    const bufs = await Promise.all(picked.map(async (t) => {
      const buf = Buffer.allocUnsafeSlow(t.byteSize);
      return { buf, bytesRead: (await fh.read(buf, 0, t.byteSize, t.offset)).bytesRead };
    }));
    for (const [k, t] of picked.entries()) {
      const { buf, bytesRead } = bufs[k]!;
      if (bytesRead !== t.byteSize) throw llavaError('ERR_GGUF_CORRUPT', `${h.path}: tensor '${t.name}' is cut short (truncated file?).`);
      let bad = -1;
      if (t.type === GgmlType.F32) {
        const v = new Float32Array(buf.buffer, buf.byteOffset, t.byteSize >> 2);
        for (let i = 0; i < v.length; i++) if (v[i]! - v[i]! !== 0) { bad = i; break; }
      } else {
        const v = new Uint16Array(buf.buffer, buf.byteOffset, t.byteSize >> 1);
        for (let i = 0; i < v.length; i++) if ((v[i]! & 0x7c00) === 0x7c00) { bad = i; break; }
      }
      if (bad >= 0) {
        throw llavaError('ERR_GGUF_CORRUPT', `${what} ${h.path}: tensor '${t.name}' holds a non-finite value (NaN or infinity) at index ${bad}, which would make every answer NaN. The file is damaged or was converted from a damaged checkpoint; convert it again.`);
      }
    }
  } finally {
    await fh.close().catch(() => undefined);
  }
}
