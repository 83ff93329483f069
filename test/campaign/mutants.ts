/**
 * Seeded mutants of a valid GGUF file: mutant `i` of a base is always the same bytes. Strategies,
 * picked by the seed (1 to 3 applied in a row):
 *   - flip 1..8 bits in the header, or overwrite a header byte / a 4- or 8-byte integer there with
 *     a boundary value (0, 1, -1, 2^31, 2^32-1, 2^63, ...);
 *   - change one key's value (numbers to boundary values, NaN, inf; strings cut, emptied, grown or
 *     copied from a neighbour; arrays shortened, grown, an element duplicated or changed; the type);
 *   - change one tensor (a dimension, the type, the name, dropped, duplicated);
 *   - cut the file, or scribble over tensor data.
 * Document-level mutations keep the file parseable so they reach the value checks; byte-level
 * ones test the bounded reader.
 */
import { GgmlType as G, GgufValueType as V, type GgufScalar } from '../../lib/formats/gguf.js';
import { rng } from '../../lib/demo/rng.js';
import { byteSize, cloneDoc, encodeDoc, filler, headerLength, type GgufDoc } from './gguf-doc.js';

const INTS = [0, 1, 2, 3, 7, 8, 15, 16, 31, 32, 63, 64, 65, 127, 128, 255, 256, 512, 513, 1023, 4096, 65535, 65536, 2 ** 20, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1];
const FLOATS = [0, -0, 1, -1, 0.5, 1e-38, 1e-45, 1e38, 3.4e38, NaN, Infinity, -Infinity, 1e-6, -1e-6, 2 ** 24];
const TYPES = [G.F32, G.F16, G.BF16, G.Q8_0, G.Q4_0, G.Q4_1, G.Q5_0, G.Q5_1, G.Q2_K, G.Q4_K, G.Q6_K, G.Q8_K, G.Q8_1, G.I8, G.I16, G.I32, G.I64, G.F64, G.IQ4_NL, G.TQ2_0];
const VTYPES = [V.UINT8, V.INT8, V.UINT16, V.INT16, V.UINT32, V.INT32, V.FLOAT32, V.BOOL, V.STRING, V.UINT64, V.INT64, V.FLOAT64];

export interface MutantBase {
  doc: GgufDoc;
  bytes: Buffer;
  headerLen: number;
}

export function mutantBase(doc: GgufDoc): MutantBase {
  return { doc, bytes: encodeDoc(doc), headerLen: headerLength(doc) };
}

type R = () => number;
const pick = <T>(r: R, a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
const int = (r: R, n: number) => Math.floor(r() * n);

function mutateValue(r: R, type: V, v: GgufScalar, neighbour: GgufScalar | undefined): GgufScalar {
  switch (type) {
    case V.STRING: {
      const s = String(v);
      switch (int(r, 6)) {
        case 0: return '';
        case 1: return s.slice(0, int(r, s.length + 1));
        case 2: return s + s;
        case 3: return neighbour !== undefined ? String(neighbour) : s.toUpperCase();
        case 4: { const i = int(r, Math.max(1, s.length)); return s.slice(0, i) + String.fromCharCode(int(r, 0x3000)) + s.slice(i + 1); }
        default: return 'x'.repeat(pick(r, [1, 255, 65536]));
      }
    }
    case V.FLOAT32:
    case V.FLOAT64:
      return r() < 0.7 ? pick(r, FLOATS) : Number(v) * pick(r, [2, 0.5, -1, 1e10]);
    case V.BOOL:
      return !v;
    case V.UINT64:
    case V.INT64:
      return BigInt(pick(r, INTS)) * (r() < 0.1 ? 2n ** 32n : 1n);
    default:
      return r() < 0.8 ? pick(r, INTS) : Number(v) + pick(r, [1, -1, 2]);
  }
}

function mutateDoc(r: R, d: GgufDoc): void {
  const which = int(r, 10);
  if (which < 6 && d.kvs.length > 0) {
    const kv = pick(r, d.kvs);
    const op = int(r, 10);
    if (op === 0) {
      // change the type, keep the value as far as it goes
      const t = pick(r, VTYPES);
      kv.type = t;
      kv.value = mutateValue(r, t, Array.isArray(kv.value) ? (kv.value[0] ?? 0) : kv.value, undefined);
      delete kv.elemType;
    } else if (op === 1) {
      d.kvs = d.kvs.filter((k) => k !== kv);
    } else if (Array.isArray(kv.value)) {
      const a = kv.value;
      const e = kv.elemType ?? V.UINT8;
      switch (int(r, 6)) {
        case 0: kv.value = a.slice(0, int(r, a.length + 1)); break;
        case 1: if (a.length) { const i = int(r, a.length), j = int(r, a.length); a[i] = a[j]!; } break; // duplicate (token texts!)
        case 2: if (a.length) { const i = int(r, a.length); a[i] = mutateValue(r, e, a[i]!, a[(i + 1) % a.length]); } break;
        case 3: a.push(...a.slice(0, 1 + int(r, 4))); break;
        case 4: kv.elemType = pick(r, VTYPES); kv.value = a.map((x) => mutateValue(r, kv.elemType!, x, undefined)).slice(0, 64); break;
        default: kv.value = [];
      }
    } else {
      kv.value = mutateValue(r, kv.type, kv.value, undefined);
    }
  } else if (d.tensors.length > 0) {
    const t = pick(r, d.tensors);
    switch (int(r, 7)) {
      case 0: { const i = int(r, t.ne.length); t.ne[i] = pick(r, [0, 1, t.ne[i]! + 1, t.ne[i]! - 1, t.ne[i]! * 2, 3]); t.data = filler(byteSize(t.type, t.ne), t.type, 0.01); break; }
      case 1: t.type = pick(r, TYPES); t.data = filler(byteSize(t.type, t.ne), t.type, 0.01); break;
      case 2: t.ne = t.ne.length > 1 ? [...t.ne].reverse() : [t.ne[0]!, 1]; break;
      case 3: d.tensors = d.tensors.filter((x) => x !== t); break;
      case 4: d.tensors.push({ ...t, ne: [...t.ne], name: pick(r, [t.name, t.name.replace(/\d+/, (m) => String(Number(m) + 1)), `${t.name}.x`, 'mm.1.weight', 'v.post_ln.weight']) }); break;
      case 5: t.name = t.name.replace(/\d+/, (m) => String(Number(m) + pick(r, [1, 10, 1000]))); break;
      default: t.data = filler(t.data.length, t.type === G.F32 ? G.F32 : G.F32, pick(r, [NaN, Infinity, 1e30, 0]));
    }
  }
}

function mutateBytes(r: R, b: Buffer, headerLen: number): Buffer {
  const op = int(r, 6);
  const at = () => int(r, Math.max(1, headerLen));
  switch (op) {
    case 0: { const n = 1 + int(r, 8); for (let k = 0; k < n; k++) { const i = at(); b[i]! ^= 1 << int(r, 8); } return b; }
    case 1: { b[at()] = pick(r, [0, 0xff, 0x7f, 0x80, 0x01]); return b; }
    case 2: { const i = Math.min(at(), b.length - 4); b.writeUInt32LE(pick(r, INTS) >>> 0, Math.max(0, i)); return b; }
    case 3: { const i = Math.min(at(), b.length - 8); b.writeBigUInt64LE(pick(r, [0n, 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 40n]), Math.max(0, i)); return b; }
    case 4: return b.subarray(0, int(r, b.length));
    default: { const n = 1 + int(r, 64); const i = headerLen + int(r, Math.max(1, b.length - headerLen - n)); for (let k = 0; k < n && i + k < b.length; k++) b[i + k] = int(r, 256); return b; }
  }
}

/** Mutant `index` of `base`: the same bytes for the same base and index, always. */
export function mutant(base: MutantBase, index: number): Buffer {
  const r = rng(0x9e3779b1 ^ Math.imul(index + 1, 2654435761));
  const steps = 1 + int(r, 3);
  let doc: GgufDoc | undefined;
  let bytes: Buffer | undefined;
  for (let s = 0; s < steps; s++) {
    if (bytes === undefined && r() < 0.65) {
      doc ??= cloneDoc(base.doc);
      mutateDoc(r, doc);
    } else {
      bytes ??= doc ? encodeDoc(doc) : Buffer.from(base.bytes);
      bytes = mutateBytes(r, bytes, doc ? headerLength(doc) : base.headerLen);
    }
  }
  return bytes ?? encodeDoc(doc!);
}
