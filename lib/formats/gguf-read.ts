/**
 * Bounded GGUF header reader. It reads the header with positioned reads (never the whole file) and checks
 * every count, length and offset against the file size and fixed caps before trusting it, so a hostile
 * or truncated file gives ERR_NOT_GGUF / ERR_GGUF_CORRUPT instead of a huge allocation, a hang, or a
 * native abort later (llama.cpp GGML_ASSERTs kill the process; see anchors.md B1/R12).
 * The rules mirror ggml/src/gguf.cpp (gguf_init_from_reader) and llama-model-loader's bounds check.
 */
import type { FileHandle } from 'node:fs/promises';
import { openRegularFile } from './file-read.js';
import { llavaError } from '../errors.js';
import {
  GgufValueType, GGUF_SCALAR_SIZE, GGUF_DEFAULT_ALIGNMENT, GGML_MAX_DIMS, GGML_MAX_NAME, GGML_TYPE_SIZES,
  alignUp, isGgmlType, ggmlTypeName, ggufValueTypeName,
  type GgmlType, type GgufCompactArray, type GgufHeader, type GgufKv, type GgufScalar, type GgufTensorInfo, type GgufValue,
} from './gguf-types.js';

/** Limits {@link readGgufHeader} enforces before allocating anything a file's header asks for; exceeding one is `ERR_GGUF_CORRUPT`. */
export interface ReadGgufOptions {
  /** Max key/value pairs (default 65536). */
  maxKv?: number;
  /** Max tensors (default 65536). */
  maxTensors?: number;
  /** Max bytes of one string value (default 16 MiB; chat templates are the largest real ones). */
  maxStringBytes?: number;
  /** Max elements of one array (default 2^24; real vocabularies hold at most a few 100k tokens). */
  maxArrayLength?: number;
  /** Max general.alignment (default 1 MiB). */
  maxAlignment?: number;
  /**
   * Keys whose ARRAY value is read into {@link GgufKv.compact} (the elements' bytes in one Buffer,
   * strings with their offsets) instead of one JS value per element; `value` still works, decoding
   * the array on first access. Same bounds and errors. The load path's header check reads the
   * vocabulary this way: 32k token strings, scores and types as JS values were ~100k short-lived
   * objects, 100 ms and a 13 MB larger V8 heap for one check.
   */
  compactArrays?: readonly string[];
}

const DEFAULTS: Required<ReadGgufOptions> = {
  maxKv: 65536, maxTensors: 65536, maxStringBytes: 16 << 20, maxArrayLength: 1 << 24, maxAlignment: 1 << 20, compactArrays: [],
};
const MAX_KEY_BYTES = 65535; // GGUF spec: keys are at most 2^16-1 bytes
const CHUNK = 1 << 20;

/**
 * A forward-only reader over a FileHandle that keeps one buffered window. `need(n)` proves the next n
 * bytes exist in the file before anything is read, so lengths taken from the file never drive an
 * allocation larger than the file itself.
 */
class Cursor {
  private buf = Buffer.alloc(0);
  private bufStart = 0; // file offset of buf[0]
  pos = 0;
  constructor(private readonly fh: FileHandle, readonly size: number, private readonly path: string) {}

  seek(p: number): void {
    this.pos = p;
    if (p < this.bufStart || p > this.bufStart + this.buf.length) {
      this.buf = Buffer.alloc(0);
      this.bufStart = p;
    }
  }

  remaining(): number {
    return this.size - this.pos;
  }

  corrupt(msg: string): never {
    throw llavaError('ERR_GGUF_CORRUPT', `${this.path}: ${msg} The file is damaged or truncated; download or convert it again.`);
  }

  async need(n: number, what: string): Promise<void> {
    if (n > this.remaining()) {
      this.corrupt(`${what} needs ${n} bytes at offset ${this.pos} but the file ends at ${this.size} (truncated?).`);
    }
    const have = this.bufStart + this.buf.length - this.pos;
    if (have >= n) return;
    const len = Math.min(Math.max(n, CHUNK), this.remaining());
    const next = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const { bytesRead } = await this.fh.read(next, got, len - got, this.pos + got);
      if (bytesRead === 0) this.corrupt(`${what}: unexpected end of file at offset ${this.pos + got}.`);
      got += bytesRead;
    }
    this.buf = next;
    this.bufStart = this.pos;
  }

  private at(n: number): number {
    const o = this.pos - this.bufStart;
    this.pos += n;
    return o;
  }

  async u32(what: string): Promise<number> { await this.need(4, what); return this.buf.readUInt32LE(this.at(4)); }
  async i32(what: string): Promise<number> { await this.need(4, what); return this.buf.readInt32LE(this.at(4)); }
  async u64(what: string): Promise<bigint> { await this.need(8, what); return this.buf.readBigUInt64LE(this.at(8)); }
  async i64(what: string): Promise<bigint> { await this.need(8, what); return this.buf.readBigInt64LE(this.at(8)); }

  async bytes(n: number, what: string): Promise<Buffer> {
    await this.need(n, what);
    const o = this.at(n);
    return this.buf.subarray(o, o + n);
  }

  /** Length-prefixed string; the length is checked against the cap and the bytes left before reading. */
  async string(max: number, what: string): Promise<string> {
    const n = await this.stringLength(max, what);
    return (await this.bytes(n, what)).toString('utf8');
  }

  /** The length prefix of a string, checked against the cap and the bytes left (consumed). */
  async stringLength(max: number, what: string): Promise<number> {
    const len = await this.u64(`length of ${what}`);
    if (len > BigInt(max)) this.corrupt(`${what} claims ${len} bytes, more than the limit of ${max}.`);
    if (len > BigInt(this.remaining())) this.corrupt(`${what} claims ${len} bytes but only ${this.remaining()} remain in the file.`);
    return Number(len);
  }

  /**
   * stringLength() without an await when the 8 length bytes are buffered (the same checks and
   * messages); undefined, nothing consumed, when they are not or the length needs the BigInt path.
   */
  stringLengthIfBuffered(max: number): number | undefined {
    if (this.bufStart + this.buf.length - this.pos < 8) return undefined;
    const o = this.pos - this.bufStart;
    const n = this.buf.readUInt32LE(o);
    if (this.buf.readUInt32LE(o + 4) !== 0 || n > max || n > this.remaining() - 8) return undefined;
    this.pos += 8;
    return n;
  }

  /** Copies the next n bytes to dst[at..] (need(n) proves they are in the file), consuming them. */
  async copyTo(dst: Buffer, at: number, n: number, what: string): Promise<void> {
    await this.need(n, what);
    this.copyIfBuffered(dst, at, n);
  }

  /** copyTo() without an await when the n bytes are buffered; false, nothing consumed, when they are not. */
  copyIfBuffered(dst: Buffer, at: number, n: number): boolean {
    if (this.bufStart + this.buf.length - this.pos < n) return false;
    const o = this.pos - this.bufStart;
    // Buffer#copy makes a view object per call: for a token's few bytes a loop allocates nothing.
    if (n <= 64) for (let k = 0; k < n; k++) dst[at + k] = this.buf[o + k]!;
    else this.buf.copy(dst, at, o, o + n);
    this.pos += n;
    return true;
  }

  /**
   * The same as string() when the whole string is already in the buffered window, without an
   * await per element (a 32k-token vocabulary is 32k strings); undefined (nothing consumed)
   * when it is not, so the caller falls back to string().
   */
  stringIfBuffered(max: number, what: string): string | undefined {
    const have = this.bufStart + this.buf.length - this.pos;
    if (have < 8) return undefined;
    const o = this.pos - this.bufStart;
    // The length as two 32-bit halves: no BigInt per string (three per token made the vocabulary's
    // parse allocation-bound). A length of 4 GiB or more, or over either bound, takes the
    // BigInt path for the exact message.
    const n = this.buf.readUInt32LE(o);
    if (this.buf.readUInt32LE(o + 4) !== 0 || n > max || n > this.remaining() - 8) {
      const len = this.buf.readBigUInt64LE(o);
      if (len > BigInt(max)) this.corrupt(`${what} claims ${len} bytes, more than the limit of ${max}.`);
      if (len > BigInt(this.remaining() - 8)) this.corrupt(`${what} claims ${len} bytes but only ${this.remaining() - 8} remain in the file.`);
      return undefined; // 4 GiB or more under a raised limit: string() reads it
    }
    if (have < 8 + n) return undefined;
    this.pos += 8 + n;
    return this.buf.toString('utf8', o + 8, o + 8 + n);
  }

  /** Reads one scalar of a fixed-size type from the buffered window (need() must have been called). */
  scalar(type: GgufValueType): GgufScalar {
    return scalarAt(this.buf, this.at(GGUF_SCALAR_SIZE[type]!), type);
  }
}

/** One scalar of a fixed-size type at buf[o]. */
function scalarAt(buf: Buffer, o: number, type: GgufValueType): GgufScalar {
  switch (type) {
    case GgufValueType.UINT8: return buf.readUInt8(o);
    case GgufValueType.INT8: return buf.readInt8(o);
    case GgufValueType.UINT16: return buf.readUInt16LE(o);
    case GgufValueType.INT16: return buf.readInt16LE(o);
    case GgufValueType.UINT32: return buf.readUInt32LE(o);
    case GgufValueType.INT32: return buf.readInt32LE(o);
    case GgufValueType.FLOAT32: return buf.readFloatLE(o);
    case GgufValueType.BOOL: return buf.readUInt8(o) !== 0;
    case GgufValueType.UINT64: return buf.readBigUInt64LE(o);
    case GgufValueType.INT64: return buf.readBigInt64LE(o);
    case GgufValueType.FLOAT64: return buf.readDoubleLE(o);
    default: throw new Error(`unreachable: scalar(${type})`);
  }
}

/** The JS values of a compact array (what readKv returns without compactArrays). */
function decodeCompact(elemType: GgufValueType, a: GgufCompactArray): GgufScalar[] {
  const out: GgufScalar[] = new Array(a.length);
  if (a.offsets) {
    for (let i = 0; i < a.length; i++) out[i] = a.data.toString('utf8', a.offsets[i], a.offsets[i + 1]);
  } else {
    const size = GGUF_SCALAR_SIZE[elemType]!;
    for (let i = 0; i < a.length; i++) out[i] = scalarAt(a.data, i * size, elemType);
  }
  return out;
}

/** A compact ARRAY entry whose `value` decodes on first access. */
function compactKv(elemType: GgufValueType, compact: GgufCompactArray): GgufKv {
  let decoded: GgufScalar[] | undefined;
  return {
    type: GgufValueType.ARRAY,
    elemType,
    compact,
    get value() {
      return (decoded ??= decodeCompact(elemType, compact));
    },
  };
}

/**
 * `count` strings into one Buffer and count + 1 offsets, with string()'s checks per element. The
 * buffer grows by doubling, never past the bytes the file has left (each string was proven to be
 * in the file before it is copied), and is trimmed to what the strings hold.
 */
async function readCompactStrings(c: Cursor, count: number, key: string, max: number): Promise<GgufCompactArray> {
  const offsets = new Float64Array(count + 1);
  const bound = c.remaining();
  let data = Buffer.allocUnsafe(Math.min(bound, 1 << 16));
  let used = 0;
  const what = (i: number) => `element ${i} of '${key}'`; // only built for a message or a slow path
  for (let i = 0; i < count; i++) {
    const n = c.stringLengthIfBuffered(max) ?? (await c.stringLength(max, what(i)));
    if (used + n > data.length) {
      const next = Buffer.allocUnsafe(Math.min(bound, Math.max(used + n, 2 * data.length)));
      data.copy(next, 0, 0, used);
      data = next;
    }
    if (!c.copyIfBuffered(data, used, n)) await c.copyTo(data, used, n, what(i));
    offsets[i] = used;
    used += n;
  }
  offsets[count] = used;
  return { length: count, data: used < data.length ? Buffer.from(data.subarray(0, used)) : data, offsets };
}

function describeMagic(b: Buffer, first: Buffer): string {
  // Name the formats people most often pass by mistake, so the message says what to do instead.
  if (b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04) return 'bytes 50 4b 03 04: a ZIP archive, e.g. a PyTorch .bin/.pt checkpoint; convert it first';
  if (b[0] === 0x80 && b[1]! >= 2 && b[1]! <= 5) return `bytes ${b.toString('hex').replace(/(..)/g, '$1 ').trim()}: a Python pickle, e.g. a legacy PyTorch checkpoint; convert it first`;
  if (first.length >= 10 && first.readBigUInt64LE(0) < 100_000_000n && first[8] === 0x7b && (first[9] === 0x22 || first[9] === 0x20)) return 'a safetensors header; convert it first';
  const printable = [...b].every((c) => c >= 0x20 && c < 0x7f);
  return printable ? JSON.stringify(b.toString('latin1')) : `bytes ${b.toString('hex').replace(/(..)/g, '$1 ').trim()}`;
}

async function readValue(c: Cursor, type: GgufValueType, key: string, o: Required<ReadGgufOptions>): Promise<GgufScalar> {
  if (type === GgufValueType.STRING) return c.string(o.maxStringBytes, `string value of '${key}'`);
  const size = GGUF_SCALAR_SIZE[type]!;
  await c.need(size, `value of '${key}'`);
  return c.scalar(type);
}

async function readKv(c: Cursor, key: string, o: Required<ReadGgufOptions>, compact: boolean): Promise<GgufKv> {
  const type = await c.i32(`type of '${key}'`);
  if (!(type in GgufValueType)) c.corrupt(`key '${key}' has invalid value type ${type}.`);
  if (type !== GgufValueType.ARRAY) return { type, value: await readValue(c, type, key, o) };

  const elemType = await c.i32(`array element type of '${key}'`);
  if (elemType === GgufValueType.ARRAY) c.corrupt(`key '${key}' is a nested array, which GGUF does not allow.`);
  if (!(elemType in GgufValueType)) c.corrupt(`array '${key}' has invalid element type ${elemType}.`);
  const n = await c.u64(`length of array '${key}'`);
  if (n > BigInt(o.maxArrayLength)) c.corrupt(`array '${key}' claims ${n} elements, more than the limit of ${o.maxArrayLength}.`);
  // Every element takes at least its fixed size (8 bytes of length for strings): bound n by the bytes left.
  const minElem = elemType === GgufValueType.STRING ? 8 : GGUF_SCALAR_SIZE[elemType as GgufValueType]!;
  if (n * BigInt(minElem) > BigInt(c.remaining())) {
    c.corrupt(`array '${key}' claims ${n} elements of ${ggufValueTypeName(elemType)} but only ${c.remaining()} bytes remain in the file.`);
  }
  const count = Number(n);
  if (compact) {
    if (elemType === GgufValueType.STRING) return compactKv(elemType, await readCompactStrings(c, count, key, o.maxStringBytes));
    const data = Buffer.allocUnsafe(count * minElem);
    await c.copyTo(data, 0, count * minElem, `array '${key}'`);
    return compactKv(elemType, { length: count, data });
  }
  const values: GgufScalar[] = new Array(count);
  if (elemType === GgufValueType.STRING) {
    for (let i = 0; i < count; i++) {
      values[i] = c.stringIfBuffered(o.maxStringBytes, `element ${i} of '${key}'`) ?? (await c.string(o.maxStringBytes, `element ${i} of '${key}'`));
    }
  } else {
    // Fixed-size elements: one bounds check for the whole array (already proven to fit in the file).
    await c.need(count * minElem, `array '${key}'`);
    for (let i = 0; i < count; i++) values[i] = c.scalar(elemType);
  }
  return { type: GgufValueType.ARRAY, elemType, value: values };
}

/**
 * Read and validate a GGUF file's header, KV pairs and tensor table. Tensor data is not read, only
 * proven to lie inside the file.
 *
 * @param path - The GGUF file.
 * @param opts - Reader limits; every field has a default.
 * @throws LlavaMedError `ERR_FILE_NOT_FOUND` when the file is missing, `ERR_NOT_GGUF` when it is not a
 *   regular file or lacks the GGUF magic, `ERR_GGUF_CORRUPT` when the header is truncated, damaged,
 *   big-endian, version 1, or exceeds a limit in `opts`.
 */
export async function readGgufHeader(path: string, opts: ReadGgufOptions = {}): Promise<GgufHeader> {
  const o = { ...DEFAULTS, ...opts };
  const { fh, size } = await openRegularFile(path, { what: 'GGUF file', notRegularCode: 'ERR_NOT_GGUF' });
  try {
    return await parse(new Cursor(fh, size, path), path, o);
  } finally {
    await fh.close();
  }
}

async function parse(c: Cursor, path: string, o: Required<ReadGgufOptions>): Promise<GgufHeader> {
  const first = Buffer.from(await c.bytes(Math.min(10, c.size), 'magic'));
  c.seek(0);
  const head = first.subarray(0, 4);
  await c.bytes(head.length, 'magic');
  if (head.length < 4 || head.toString('latin1') !== 'GGUF') {
    throw llavaError('ERR_NOT_GGUF', `${path} is not a GGUF file (starts with ${head.length ? describeMagic(head, first) : 'nothing: it is empty'}; expected "GGUF"). Pass a .gguf model produced by llama.cpp or llava-med convert.`);
  }
  const version = await c.u32('version');
  if ((version & 0xffff) === 0 && version !== 0) {
    c.corrupt(`GGUF version ${version} is implausible; the file is probably big-endian, which is not supported.`);
  }
  if (version === 1) c.corrupt('GGUF version 1 is no longer supported by llama.cpp; reconvert the model.');
  if (version !== 2 && version !== 3) c.corrupt(`unsupported GGUF version ${version} (supported: 2, 3).`);

  const nTensors = await c.i64('tensor count');
  const nKv = await c.i64('key/value count');
  if (nTensors < 0n || nTensors > BigInt(o.maxTensors)) c.corrupt(`tensor count ${nTensors} is outside [0, ${o.maxTensors}].`);
  if (nKv < 0n || nKv > BigInt(o.maxKv)) c.corrupt(`key/value count ${nKv} is outside [0, ${o.maxKv}].`);
  // Minimum encoded sizes (KV: key len 8 + 1 byte + type 4 + 1 byte value; tensor info: name len 8 + n_dims 4 + type 4 + offset 8).
  if (nKv * 14n + nTensors * 24n > BigInt(c.remaining())) {
    c.corrupt(`header claims ${nKv} key/value pairs and ${nTensors} tensors, which cannot fit in the ${c.remaining()} bytes left.`);
  }

  const kv = new Map<string, GgufKv>();
  for (let i = 0; i < Number(nKv); i++) {
    const key = await c.string(MAX_KEY_BYTES, `key ${i}`);
    if (key.length === 0) c.corrupt(`key ${i} is empty.`);
    if (kv.has(key)) c.corrupt(`duplicate key '${key}'.`);
    kv.set(key, await readKv(c, key, o, o.compactArrays.includes(key)));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = kv.get('general.alignment');
  if (al) {
    if (al.type !== GgufValueType.UINT32) c.corrupt(`general.alignment must be UINT32 but is ${ggufValueTypeName(al.type)}.`);
    const a = al.value as number;
    if (a === 0 || (a & (a - 1)) !== 0 || a > o.maxAlignment) c.corrupt(`general.alignment ${a} is not a power of two in [1, ${o.maxAlignment}].`);
    alignment = a;
  }

  const infos: { name: string; type: GgmlType; shape: number[]; rel: bigint; byteSize: bigint }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < Number(nTensors); i++) {
    const name = await c.string(GGML_MAX_NAME - 1, `name of tensor ${i}`);
    if (Buffer.byteLength(name) >= GGML_MAX_NAME) c.corrupt(`tensor ${i} name is ${Buffer.byteLength(name)} bytes; the limit is ${GGML_MAX_NAME - 1}.`);
    if (names.has(name)) c.corrupt(`duplicate tensor name '${name}'.`);
    names.add(name);
    const nDims = await c.u32(`n_dims of '${name}'`);
    if (nDims > GGML_MAX_DIMS) c.corrupt(`tensor '${name}' has ${nDims} dimensions; ggml allows at most ${GGML_MAX_DIMS}.`);
    const shape: number[] = [];
    let nel = 1n;
    for (let j = 0; j < nDims; j++) {
      const d = await c.i64(`ne[${j}] of '${name}'`);
      if (d < 0n) c.corrupt(`tensor '${name}' dimension ${j} is negative (${d}).`);
      nel *= d;
      shape.push(Number(d));
    }
    if (nel >= 2n ** 63n) c.corrupt(`tensor '${name}' shape [${shape.join(', ')}] overflows int64.`);
    const type = await c.i32(`type of '${name}'`);
    if (!isGgmlType(type)) c.corrupt(`tensor '${name}' has unknown ggml type ${type}.`);
    const [blck, tsize] = GGML_TYPE_SIZES[type];
    const ne0 = nDims > 0 ? BigInt(shape[0]!) : 1n;
    if (ne0 % BigInt(blck) !== 0n) {
      c.corrupt(`tensor '${name}' of type ${ggmlTypeName(type)} has ${ne0} elements per row, not a multiple of the block size ${blck}.`);
    }
    const byteSize = (nel / BigInt(blck)) * BigInt(tsize);
    const rel = await c.u64(`offset of '${name}'`);
    infos.push({ name, type, shape: nDims > 0 ? shape : [1], rel, byteSize });
  }

  // ggml: the data section starts at the next alignment boundary (only when there are tensors).
  const dataOffset = infos.length > 0 ? alignUp(c.pos, alignment) : c.pos;
  if (dataOffset > c.size) c.corrupt(`the data section would start at ${dataOffset}, past the end of the file (${c.size} bytes; truncated?).`);

  const tensors: GgufTensorInfo[] = [];
  let expected = 0n;
  const fileSize = BigInt(c.size);
  for (const t of infos) {
    if (t.rel % BigInt(alignment) !== 0n) c.corrupt(`tensor '${t.name}' offset ${t.rel} is not a multiple of the alignment ${alignment}.`);
    if (t.rel !== expected) c.corrupt(`tensor '${t.name}' has offset ${t.rel}, expected ${expected} (tensors must be stored in order, each padded to ${alignment}).`);
    const start = BigInt(dataOffset) + t.rel;
    if (start + t.byteSize > fileSize) {
      c.corrupt(`tensor '${t.name}' data [${start}, ${start + t.byteSize}) is outside the file (${c.size} bytes; truncated?).`);
    }
    tensors.push({ name: t.name, type: t.type, shape: t.shape, offset: Number(start), byteSize: Number(t.byteSize) });
    expected += (t.byteSize + BigInt(alignment) - 1n) / BigInt(alignment) * BigInt(alignment);
  }
  return { path, version, alignment, kv, tensors, dataOffset, fileSize: c.size };
}

// ---- typed accessors: a missing key or a wrong type is a corrupt file for the caller's purpose ----

function getKv(h: GgufHeader, key: string): GgufKv {
  const e = h.kv.get(key);
  if (!e) throw llavaError('ERR_GGUF_CORRUPT', `${h.path}: required key '${key}' is missing. The file was not made for this use or is damaged.`);
  return e;
}

function wrongType(h: GgufHeader, key: string, want: string, e: GgufKv): never {
  const got = e.type === GgufValueType.ARRAY ? `ARRAY of ${ggufValueTypeName(e.elemType!)}` : ggufValueTypeName(e.type);
  throw llavaError('ERR_GGUF_CORRUPT', `${h.path}: key '${key}' must be ${want} but is ${got}.`);
}

/** Whether the header has metadata key `key`. */
export function ggufHas(h: GgufHeader, key: string): boolean {
  return h.kv.has(key);
}

/**
 * The STRING value of `key`.
 * @throws LlavaMedError `ERR_GGUF_CORRUPT` when the key is missing or not a STRING.
 */
export function ggufString(h: GgufHeader, key: string): string {
  const e = getKv(h, key);
  if (e.type !== GgufValueType.STRING) wrongType(h, key, 'STRING', e);
  return e.value as string;
}

const NUMERIC = new Set([
  GgufValueType.UINT8, GgufValueType.INT8, GgufValueType.UINT16, GgufValueType.INT16, GgufValueType.UINT32,
  GgufValueType.INT32, GgufValueType.FLOAT32, GgufValueType.UINT64, GgufValueType.INT64, GgufValueType.FLOAT64,
]);

function toNumber(h: GgufHeader, key: string, v: GgufScalar): number {
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw llavaError('ERR_GGUF_CORRUPT', `${h.path}: key '${key}' value ${v} is too large to use as a number.`);
    }
    return Number(v);
  }
  return v as number;
}

/**
 * Any numeric type as a JS number (64-bit values must be safe integers). `types` restricts the accepted types.
 * @throws LlavaMedError `ERR_GGUF_CORRUPT` when the key is missing, of another type, or a 64-bit value beyond 2^53.
 */
export function ggufNumber(h: GgufHeader, key: string, types?: readonly GgufValueType[]): number {
  const e = getKv(h, key);
  const ok = types ? types.includes(e.type) : NUMERIC.has(e.type);
  if (!ok) wrongType(h, key, types ? types.map(ggufValueTypeName).join(' or ') : 'a number', e);
  return toNumber(h, key, e.value as GgufScalar);
}

/** The value only if it is exactly UINT32 (what ggml's gguf_get_val_u32 asserts). */
export function ggufU32(h: GgufHeader, key: string): number {
  return ggufNumber(h, key, [GgufValueType.UINT32]);
}

/**
 * The BOOL value of `key`.
 * @throws LlavaMedError `ERR_GGUF_CORRUPT` when the key is missing or not a BOOL.
 */
export function ggufBool(h: GgufHeader, key: string): boolean {
  const e = getKv(h, key);
  if (e.type !== GgufValueType.BOOL) wrongType(h, key, 'BOOL', e);
  return e.value as boolean;
}

/**
 * An array, optionally of one element type; values as stored (64-bit ints as BigInt).
 * @throws LlavaMedError `ERR_GGUF_CORRUPT` when the key is missing, not an ARRAY, or of another element type.
 */
export function ggufArray(h: GgufHeader, key: string, elemType?: GgufValueType): GgufScalar[] {
  const e = getKv(h, key);
  if (e.type !== GgufValueType.ARRAY || (elemType !== undefined && e.elemType !== elemType)) {
    wrongType(h, key, elemType === undefined ? 'an ARRAY' : `ARRAY of ${ggufValueTypeName(elemType)}`, e);
  }
  return e.value as GgufScalar[];
}

/**
 * An ARRAY of STRING (e.g. `tokenizer.ggml.tokens`).
 * @throws LlavaMedError `ERR_GGUF_CORRUPT` when the key is missing or not an array of strings.
 */
export function ggufStringArray(h: GgufHeader, key: string): string[] {
  return ggufArray(h, key, GgufValueType.STRING) as string[];
}

/**
 * A numeric array as numbers (any numeric element type unless `elemType` is given).
 * @throws LlavaMedError `ERR_GGUF_CORRUPT` when the key is missing, not a numeric ARRAY, or holds a 64-bit value beyond 2^53.
 */
export function ggufNumberArray(h: GgufHeader, key: string, elemType?: GgufValueType): number[] {
  const e = getKv(h, key);
  if (e.type !== GgufValueType.ARRAY || (elemType !== undefined ? e.elemType !== elemType : !NUMERIC.has(e.elemType!))) {
    wrongType(h, key, elemType === undefined ? 'a numeric ARRAY' : `ARRAY of ${ggufValueTypeName(elemType)}`, e);
  }
  return (e.value as GgufScalar[]).map((v) => toNumber(h, key, v));
}

/** The raw value with no type check, or undefined when absent. */
export function ggufValue(h: GgufHeader, key: string): GgufValue | undefined {
  return h.kv.get(key)?.value;
}

/**
 * The tensor-table row named `name`.
 * @throws LlavaMedError `ERR_GGUF_CORRUPT` when the file has no such tensor.
 */
export function ggufTensor(h: GgufHeader, name: string): GgufTensorInfo {
  const t = h.tensors.find((x) => x.name === name);
  if (!t) throw llavaError('ERR_GGUF_CORRUPT', `${h.path}: tensor '${name}' is missing.`);
  return t;
}

/**
 * Read one tensor's bytes, as stored (positioned read; only that tensor is loaded).
 * @throws LlavaMedError `ERR_GGUF_CORRUPT` when the tensor is missing or the file shrank since the header was read;
 *   `ERR_FILE_NOT_FOUND` when the file is gone.
 */
export async function readGgufTensorData(h: GgufHeader, name: string): Promise<Buffer> {
  const t = ggufTensor(h, name);
  const { fh } = await openRegularFile(h.path, { what: 'GGUF file', notRegularCode: 'ERR_NOT_GGUF' });
  try {
    const buf = Buffer.allocUnsafe(t.byteSize);
    let got = 0;
    while (got < t.byteSize) {
      const { bytesRead } = await fh.read(buf, got, t.byteSize - got, t.offset + got);
      if (bytesRead === 0) throw llavaError('ERR_GGUF_CORRUPT', `${h.path}: file shrank while reading tensor '${name}'.`);
      got += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}
