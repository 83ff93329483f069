/**
 * Streaming GGUF writer. Metadata and tensor infos are declared first, the header is written once, then
 * tensor bytes are appended one tensor at a time (each zero-padded to the alignment), so converting a
 * 13 GB model never holds more than one tensor (or one chunk of it) in memory. The file is written under
 * a temporary name and renamed only by finish(); abort() or any failure leaves nothing behind.
 */
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { sweepStaleTemps, tempPathFor } from './temp-files.js';
import { llavaError } from '../errors.js';
import {
  GgufValueType, GGUF_VERSION, GGUF_DEFAULT_ALIGNMENT, GGML_MAX_DIMS, GGML_MAX_NAME, GGUF_SCALAR_SIZE,
  alignUp, tensorByteSize, ggmlTypeName, ggufValueTypeName, isGgmlType,
  type GgmlType, type GgufScalar, type GgufValue,
} from './gguf-types.js';

export interface GgufWriterOptions {
  /** Data alignment (power of two). Written as general.alignment when not the default 32. */
  alignment?: number;
  /** Called after each tensor is written. */
  onTensor?: (p: GgufWriteProgress) => void;
}

export interface GgufWriteProgress {
  name: string;
  index: number;
  count: number;
  bytesWritten: number;
  totalBytes: number;
}

interface KvEntry { key: string; type: GgufValueType; elemType?: GgufValueType; value: GgufValue }
interface TensorEntry { name: string; type: GgmlType; ne: number[]; byteSize: number; offset: number }

function bad(msg: string): never {
  throw llavaError('ERR_INVALID_ARGUMENT', msg);
}

const INT_RANGES: Partial<Record<GgufValueType, [number, number]>> = {
  [GgufValueType.UINT8]: [0, 0xff], [GgufValueType.INT8]: [-0x80, 0x7f],
  [GgufValueType.UINT16]: [0, 0xffff], [GgufValueType.INT16]: [-0x8000, 0x7fff],
  [GgufValueType.UINT32]: [0, 0xffffffff], [GgufValueType.INT32]: [-0x80000000, 0x7fffffff],
};

/** Appends little-endian encodings to a growing list of chunks (header serialisation). */
class Enc {
  chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void { this.chunks.push(b); this.length += b.length; }
  u32(v: number): void { const b = Buffer.allocUnsafe(4); b.writeUInt32LE(v); this.push(b); }
  i32(v: number): void { const b = Buffer.allocUnsafe(4); b.writeInt32LE(v); this.push(b); }
  u64(v: number | bigint): void { const b = Buffer.allocUnsafe(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  i64(v: number | bigint): void { const b = Buffer.allocUnsafe(8); b.writeBigInt64LE(BigInt(v)); this.push(b); }
  str(s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
  scalar(type: GgufValueType, v: GgufScalar): void {
    if (type === GgufValueType.STRING) return this.str(v as string);
    const b = Buffer.allocUnsafe(GGUF_SCALAR_SIZE[type]!);
    switch (type) {
      case GgufValueType.UINT8: b.writeUInt8(v as number); break;
      case GgufValueType.INT8: b.writeInt8(v as number); break;
      case GgufValueType.UINT16: b.writeUInt16LE(v as number); break;
      case GgufValueType.INT16: b.writeInt16LE(v as number); break;
      case GgufValueType.UINT32: b.writeUInt32LE(v as number); break;
      case GgufValueType.INT32: b.writeInt32LE(v as number); break;
      case GgufValueType.FLOAT32: b.writeFloatLE(v as number); break;
      case GgufValueType.BOOL: b.writeUInt8(v ? 1 : 0); break;
      case GgufValueType.UINT64: b.writeBigUInt64LE(BigInt(v as number | bigint)); break;
      case GgufValueType.INT64: b.writeBigInt64LE(BigInt(v as number | bigint)); break;
      case GgufValueType.FLOAT64: b.writeDoubleLE(v as number); break;
      default: bad(`cannot encode GGUF type ${type}`);
    }
    this.push(b);
  }
}

function checkScalar(key: string, type: GgufValueType, v: unknown): GgufScalar {
  const where = `GGUF key '${key}' (${ggufValueTypeName(type)})`;
  switch (type) {
    case GgufValueType.STRING:
      if (typeof v !== 'string') bad(`${where}: expected a string, got ${typeof v}.`);
      return v;
    case GgufValueType.BOOL:
      if (typeof v !== 'boolean') bad(`${where}: expected a boolean, got ${typeof v}.`);
      return v;
    case GgufValueType.FLOAT32:
    case GgufValueType.FLOAT64:
      if (typeof v !== 'number') bad(`${where}: expected a number, got ${typeof v}.`);
      return v;
    case GgufValueType.UINT64:
    case GgufValueType.INT64: {
      if (typeof v !== 'bigint' && !(typeof v === 'number' && Number.isSafeInteger(v))) bad(`${where}: expected a bigint or safe integer, got ${String(v)}.`);
      const b = BigInt(v);
      const [lo, hi] = type === GgufValueType.UINT64 ? [0n, 2n ** 64n - 1n] : [-(2n ** 63n), 2n ** 63n - 1n];
      if (b < lo || b > hi) bad(`${where}: ${b} is out of range.`);
      return v;
    }
    default: {
      const range = INT_RANGES[type];
      if (!range) bad(`${where}: unsupported value type ${type}.`);
      if (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1]) bad(`${where}: ${String(v)} is not an integer in [${range[0]}, ${range[1]}].`);
      return v;
    }
  }
}

export class GgufWriter {
  private readonly kvs = new Map<string, KvEntry>();
  private readonly tensors: TensorEntry[] = [];
  private alignment: number;
  private dataSize = 0;
  private state: 'declaring' | 'writing' | 'done' = 'declaring';
  private next = 0;
  private written = 0;
  private pos = 0;

  private constructor(
    readonly path: string,
    private readonly tmpPath: string,
    private fh: FileHandle | undefined,
    private readonly opts: GgufWriterOptions,
  ) {
    this.alignment = GGUF_DEFAULT_ALIGNMENT;
    if (opts.alignment !== undefined && opts.alignment !== GGUF_DEFAULT_ALIGNMENT) this.addU32('general.alignment', opts.alignment);
  }

  /** Opens `<dir>/.<name>.llava-med-<pid>-<random>.tmp` next to outPath (temp-files.ts); finish() renames it to outPath. */
  static async create(outPath: string, opts: GgufWriterOptions = {}): Promise<GgufWriter> {
    if (opts.alignment !== undefined) checkAlignment(opts.alignment);
    // Temporaries of killed runs into this folder go first (only those whose owner pid is dead).
    await sweepStaleTemps(dirname(outPath));
    const tmp = tempPathFor(outPath);
    let fh: FileHandle;
    try {
      fh = await open(tmp, 'wx');
    } catch (e) {
      throw llavaError('ERR_INVALID_ARGUMENT', `Cannot create ${outPath}: ${(e as Error).message}. Check that the folder exists and is writable.`, e);
    }
    return new GgufWriter(outPath, tmp, fh, opts);
  }

  private declaring(what: string): void {
    if (this.state !== 'declaring') bad(`GgufWriter: ${what} must come before writeHeader().`);
  }

  addKv(key: string, type: GgufValueType, value: GgufValue, elemType?: GgufValueType): this {
    this.declaring(`addKv('${key}')`);
    if (typeof key !== 'string' || key.length === 0 || Buffer.byteLength(key) > 65535) bad(`GGUF key must be a non-empty string of at most 65535 bytes, got ${JSON.stringify(key)}.`);
    if (this.kvs.has(key)) bad(`GGUF key '${key}' was already added.`);
    if (type === GgufValueType.ARRAY) {
      if (elemType === undefined || elemType === GgufValueType.ARRAY || !(elemType in GgufValueType)) bad(`GGUF array '${key}' needs a scalar element type (nested arrays are not allowed).`);
      if (!Array.isArray(value)) bad(`GGUF array '${key}': value must be an array.`);
      const vals = value.map((v) => checkScalar(key, elemType, v));
      this.kvs.set(key, { key, type, elemType, value: vals });
      return this;
    }
    if (!(type in GgufValueType)) bad(`GGUF key '${key}': unknown value type ${type}.`);
    const v = checkScalar(key, type, value);
    if (key === 'general.alignment') {
      if (type !== GgufValueType.UINT32) bad('general.alignment must be UINT32 (llama.cpp rejects any other type).');
      checkAlignment(v as number);
      this.alignment = v as number;
    }
    this.kvs.set(key, { key, type, value: v });
    return this;
  }

  addString(key: string, v: string): this { return this.addKv(key, GgufValueType.STRING, v); }
  addU8(key: string, v: number): this { return this.addKv(key, GgufValueType.UINT8, v); }
  addI8(key: string, v: number): this { return this.addKv(key, GgufValueType.INT8, v); }
  addU16(key: string, v: number): this { return this.addKv(key, GgufValueType.UINT16, v); }
  addI16(key: string, v: number): this { return this.addKv(key, GgufValueType.INT16, v); }
  addU32(key: string, v: number): this { return this.addKv(key, GgufValueType.UINT32, v); }
  addI32(key: string, v: number): this { return this.addKv(key, GgufValueType.INT32, v); }
  addU64(key: string, v: number | bigint): this { return this.addKv(key, GgufValueType.UINT64, v); }
  addI64(key: string, v: number | bigint): this { return this.addKv(key, GgufValueType.INT64, v); }
  addF32(key: string, v: number): this { return this.addKv(key, GgufValueType.FLOAT32, v); }
  addF64(key: string, v: number): this { return this.addKv(key, GgufValueType.FLOAT64, v); }
  addBool(key: string, v: boolean): this { return this.addKv(key, GgufValueType.BOOL, v); }
  addArray(key: string, elemType: GgufValueType, values: readonly GgufScalar[]): this {
    return this.addKv(key, GgufValueType.ARRAY, [...values], elemType);
  }

  /** Declare a tensor; `ne` is in ggml order (ne[0] fastest = the reverse of the PyTorch shape). */
  addTensorInfo(name: string, type: GgmlType, ne: readonly number[]): this {
    this.declaring(`addTensorInfo('${name}')`);
    if (typeof name !== 'string' || Buffer.byteLength(name) >= GGML_MAX_NAME) bad(`Tensor name ${JSON.stringify(name)} must be a string shorter than ${GGML_MAX_NAME} bytes (ggml's GGML_MAX_NAME).`);
    if (this.tensors.some((t) => t.name === name)) bad(`Tensor '${name}' was already declared.`);
    if (!isGgmlType(type)) bad(`Tensor '${name}': unknown ggml type ${type}.`);
    if (ne.length < 1 || ne.length > GGML_MAX_DIMS) bad(`Tensor '${name}': ${ne.length} dimensions; ggml needs 1 to ${GGML_MAX_DIMS}.`);
    const byteSize = tensorByteSize(type, ne);
    this.tensors.push({ name, type, ne: [...ne], byteSize, offset: this.dataSize });
    this.dataSize += alignUp(byteSize, this.alignment);
    return this;
  }

  /** Total bytes of tensor data (with padding) that will follow the header. */
  get totalTensorBytes(): number {
    return this.dataSize;
  }

  async writeHeader(): Promise<void> {
    this.declaring('writeHeader()');
    // Offsets were computed with the alignment known at declaration time; recompute in case
    // general.alignment was added after some tensors.
    let off = 0;
    for (const t of this.tensors) { t.offset = off; off += alignUp(t.byteSize, this.alignment); }
    this.dataSize = off;

    const e = new Enc();
    e.push(Buffer.from('GGUF', 'latin1'));
    e.u32(GGUF_VERSION);
    e.i64(this.tensors.length);
    e.i64(this.kvs.size);
    for (const kv of this.kvs.values()) {
      e.str(kv.key);
      e.i32(kv.type);
      if (kv.type === GgufValueType.ARRAY) {
        const vals = kv.value as GgufScalar[];
        e.i32(kv.elemType!);
        e.u64(vals.length);
        for (const v of vals) e.scalar(kv.elemType!, v);
      } else {
        e.scalar(kv.type, kv.value as GgufScalar);
      }
    }
    for (const t of this.tensors) {
      e.str(t.name);
      e.u32(t.ne.length);
      for (const d of t.ne) e.i64(d);
      e.i32(t.type);
      e.u64(t.offset);
    }
    const pad = alignUp(e.length, this.alignment) - e.length;
    if (pad) e.push(Buffer.alloc(pad));
    this.state = 'writing';
    await this.write(Buffer.concat(e.chunks, e.length));
  }

  private async write(b: Uint8Array): Promise<void> {
    const fh = this.fh;
    if (!fh) bad('GgufWriter: the file is already closed.');
    try {
      let done = 0;
      while (done < b.byteLength) {
        const { bytesWritten } = await fh.write(b, done, b.byteLength - done, this.pos + done);
        done += bytesWritten;
      }
      this.pos += b.byteLength;
    } catch (err) {
      await this.abort();
      throw llavaError('ERR_CONVERT', `Writing ${this.path} failed: ${(err as Error).message} (disk full?). Nothing was left behind.`, err);
    }
  }

  /**
   * Write the next declared tensor's bytes: a Buffer, or an (async) iterable of chunks so a large tensor
   * can be produced piecewise. The total must equal the declared size exactly.
   */
  async writeTensor(name: string, data: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void> {
    if (this.state !== 'writing') bad(`GgufWriter: writeTensor('${name}') needs writeHeader() first${this.state === 'done' ? ' (the writer is finished)' : ''}.`);
    const t = this.tensors[this.next];
    if (!t) bad(`GgufWriter: tensor '${name}' was not declared (all ${this.tensors.length} declared tensors are written).`);
    if (t.name !== name) bad(`GgufWriter: expected tensor '${t.name}' next (declaration order), got '${name}'.`);
    let n = 0;
    const tooBig = (): never => bad(`Tensor '${name}' (${ggmlTypeName(t.type)} [${t.ne.join(', ')}]) must be ${t.byteSize} bytes but more was given.`);
    if (data instanceof Uint8Array) {
      if (data.byteLength !== t.byteSize) bad(`Tensor '${name}' (${ggmlTypeName(t.type)} [${t.ne.join(', ')}]) must be ${t.byteSize} bytes, got ${data.byteLength}.`);
      await this.write(data);
      n = data.byteLength;
    } else {
      for await (const chunk of data as AsyncIterable<Uint8Array>) {
        if (n + chunk.byteLength > t.byteSize) { await this.abort(); tooBig(); }
        await this.write(chunk);
        n += chunk.byteLength;
      }
      if (n !== t.byteSize) { await this.abort(); bad(`Tensor '${name}' must be ${t.byteSize} bytes, got ${n}.`); }
    }
    const pad = alignUp(n, this.alignment) - n;
    if (pad) await this.write(Buffer.alloc(pad));
    this.next++;
    this.written += n + pad;
    this.opts.onTensor?.({ name, index: this.next - 1, count: this.tensors.length, bytesWritten: this.written, totalBytes: this.dataSize });
  }

  /** fsync, close and rename into place. */
  async finish(): Promise<void> {
    if (this.state === 'declaring') await this.writeHeader();
    if (this.state !== 'writing') bad('GgufWriter: finish() called twice or after abort().');
    if (this.next !== this.tensors.length) {
      const missing = this.tensors[this.next]!.name;
      await this.abort();
      bad(`GgufWriter: ${this.tensors.length - this.next} declared tensors were never written (first: '${missing}'); the file was discarded.`);
    }
    const fh = this.fh!;
    try {
      await fh.sync();
      await fh.close();
      this.fh = undefined;
      await rename(this.tmpPath, this.path);
      this.state = 'done';
    } catch (err) {
      await this.abort();
      throw llavaError('ERR_CONVERT', `Finishing ${this.path} failed: ${(err as Error).message}.`, err);
    }
  }

  /** Close and delete the temporary file. Safe to call more than once. */
  async abort(): Promise<void> {
    this.state = 'done';
    const fh = this.fh;
    this.fh = undefined;
    if (fh) await fh.close().catch(() => undefined);
    await unlink(this.tmpPath).catch(() => undefined);
  }
}

function checkAlignment(a: number): void {
  if (!Number.isInteger(a) || a < 1 || a > 0xffffffff || (a & (a - 1)) !== 0) bad(`GGUF alignment must be a power of two, got ${a}.`);
}
