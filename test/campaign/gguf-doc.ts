/**
 * A GGUF file as an editable document, and an encoder that writes whatever the document says
 * (wrong types, duplicate keys, shapes that do not match the data): the campaign needs files no
 * well-behaved writer would produce. Modelled on ggml/src/gguf.cpp's layout.
 */
import { readFileSync } from 'node:fs';
import { GGML_TYPE_SIZES, GgmlType, GgufValueType as V, readGgufHeader, type GgufScalar } from '../../lib/formats/gguf.js';

export interface DocKv {
  key: string;
  type: V;
  elemType?: V;
  value: GgufScalar | GgufScalar[];
}

export interface DocTensor {
  name: string;
  type: GgmlType;
  ne: number[];
  data: Buffer;
}

export interface GgufDoc {
  version: number;
  alignment: number;
  kvs: DocKv[];
  tensors: DocTensor[];
}

export async function readDoc(path: string): Promise<GgufDoc> {
  const h = await readGgufHeader(path);
  const file = readFileSync(path);
  return {
    version: h.version,
    alignment: h.alignment,
    kvs: [...h.kv].map(([key, kv]) => ({ key, type: kv.type, elemType: kv.elemType, value: Array.isArray(kv.value) ? [...kv.value] : kv.value })),
    tensors: h.tensors.map((t) => ({ name: t.name, type: t.type, ne: [...t.shape], data: Buffer.from(file.subarray(t.offset, t.offset + t.byteSize)) })),
  };
}

export function cloneDoc(d: GgufDoc): GgufDoc {
  return {
    version: d.version,
    alignment: d.alignment,
    kvs: d.kvs.map((k) => ({ ...k, value: Array.isArray(k.value) ? [...k.value] : k.value })),
    tensors: d.tensors.map((t) => ({ ...t, ne: [...t.ne] })), // data buffers are shared; edits replace them
  };
}

// ---- edits ----------------------------------------------------------------------------------------

export function getKv(d: GgufDoc, key: string): DocKv | undefined {
  return d.kvs.find((k) => k.key === key);
}

/** Sets (or adds) a key with a type and value. */
export function setKv(d: GgufDoc, key: string, type: V, value: GgufScalar | GgufScalar[], elemType?: V): void {
  const kv = getKv(d, key);
  if (kv) Object.assign(kv, { type, value, elemType });
  else d.kvs.push({ key, type, value, elemType });
}

export function delKv(d: GgufDoc, key: string): void {
  d.kvs = d.kvs.filter((k) => k.key !== key);
}

export function getTensor(d: GgufDoc, name: string): DocTensor {
  const t = d.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name}`);
  return t;
}

export function delTensor(d: GgufDoc, name: string): void {
  d.tensors = d.tensors.filter((t) => t.name !== name);
}

/** Byte size of a tensor of `type` and shape `ne` (for the types the campaign uses). */
export function byteSize(type: GgmlType, ne: number[]): number {
  const [blk, sz] = GGML_TYPE_SIZES[type] ?? [1, 4];
  const n = ne.reduce((a, b) => a * b, 1);
  return Math.ceil(n / blk) * sz;
}

/** Replaces a tensor's shape and/or type and gives it data of the right size (seeded noise). */
export function reshapeTensor(d: GgufDoc, name: string, ne: number[], type?: GgmlType, fill = 0.01): void {
  const t = getTensor(d, name);
  t.ne = ne;
  if (type !== undefined) t.type = type;
  t.data = filler(byteSize(t.type, ne), t.type, fill);
}

export function filler(bytes: number, type: GgmlType, value: number): Buffer {
  const b = Buffer.alloc(bytes);
  if (type === GgmlType.F32) for (let i = 0; i + 4 <= bytes; i += 4) b.writeFloatLE(value, i);
  return b;
}

/** Adds a tensor (zero data unless given). */
export function addTensor(d: GgufDoc, name: string, type: GgmlType, ne: number[], data?: Buffer): void {
  d.tensors.push({ name, type, ne, data: data ?? filler(byteSize(type, ne), type, 0.01) });
}

// ---- encoding -------------------------------------------------------------------------------------

class Out {
  chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v | 0);
    this.push(b);
  }
  u64(v: number | bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)));
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  scalar(type: V, v: GgufScalar): void {
    const num = typeof v === 'bigint' ? Number(v) : typeof v === 'boolean' ? (v ? 1 : 0) : typeof v === 'number' ? v : Number(v) || 0;
    const b = Buffer.alloc(8);
    switch (type) {
      case V.UINT8: b.writeUInt8(num & 0xff); return this.push(b.subarray(0, 1));
      case V.INT8: b.writeInt8(((num & 0xff) << 24) >> 24); return this.push(b.subarray(0, 1));
      case V.UINT16: b.writeUInt16LE(num & 0xffff); return this.push(b.subarray(0, 2));
      case V.INT16: b.writeInt16LE(((num & 0xffff) << 16) >> 16); return this.push(b.subarray(0, 2));
      case V.UINT32: b.writeUInt32LE(num >>> 0); return this.push(b.subarray(0, 4));
      case V.INT32: b.writeInt32LE(num | 0); return this.push(b.subarray(0, 4));
      case V.FLOAT32: b.writeFloatLE(num); return this.push(b.subarray(0, 4));
      case V.BOOL: b.writeUInt8(num ? 1 : 0); return this.push(b.subarray(0, 1));
      case V.UINT64: b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(typeof v === 'bigint' ? v : Math.trunc(num)))); return this.push(b);
      case V.INT64: b.writeBigInt64LE(BigInt.asIntN(64, BigInt(typeof v === 'bigint' ? v : Math.trunc(num)))); return this.push(b);
      case V.FLOAT64: b.writeDoubleLE(num); return this.push(b);
      case V.STRING: return this.str(String(v));
      default: return this.u32(num); // an invalid type id: write something
    }
  }
}

/** The file bytes for a document: header, padding, tensor data at aligned offsets. */
export function encodeDoc(d: GgufDoc): Buffer {
  const o = new Out();
  o.push(Buffer.from('GGUF', 'latin1'));
  o.u32(d.version);
  o.u64(d.tensors.length);
  o.u64(d.kvs.length);
  for (const kv of d.kvs) {
    o.str(kv.key);
    o.i32(kv.type);
    if (kv.type === V.ARRAY) {
      const vals = Array.isArray(kv.value) ? kv.value : [kv.value];
      o.i32(kv.elemType ?? V.UINT8);
      o.u64(vals.length);
      for (const v of vals) o.scalar(kv.elemType ?? V.UINT8, v);
    } else {
      o.scalar(kv.type, Array.isArray(kv.value) ? (kv.value[0] ?? 0) : kv.value);
    }
  }
  const align = d.alignment > 0 ? d.alignment : 32;
  const up = (n: number) => Math.ceil(n / align) * align;
  let off = 0;
  for (const t of d.tensors) {
    o.str(t.name);
    o.u32(t.ne.length);
    for (const n of t.ne) o.u64(n);
    o.i32(t.type);
    o.u64(off);
    off += up(t.data.length);
  }
  o.push(Buffer.alloc(up(o.length) - o.length));
  for (const t of d.tensors) {
    o.push(t.data);
    o.push(Buffer.alloc(up(t.data.length) - t.data.length));
  }
  return Buffer.concat(o.chunks, o.length);
}

/** Offset where the tensor data starts in an encoded document (the end of the header + padding). */
export function headerLength(d: GgufDoc): number {
  const full = encodeDoc({ ...d, tensors: d.tensors.map((t) => ({ ...t, data: Buffer.alloc(0) })) });
  return full.length;
}
