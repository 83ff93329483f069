/**
 * The plumbing every checkpoint reader and writer shares: a TensorSource backed by a byte range of a
 * file (positioned reads, nothing loaded until asked), dtype conversion to float32, encoding of
 * in-memory TensorData, and "write to a temp name, rename on success" for output files.
 * Byte order: every format here is little-endian and so is every platform Node ships for, so typed
 * array views are used directly.
 */
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { llavaError } from '../errors.js';
import { openRegularFile } from './file-read.js';
import { sweepStaleTemps, tempPathFor } from './temp-files.js';
import { bf16BufferToF32, f16BufferToF32, f32ToBf16Buffer, f32ToF16Buffer } from './half.js';
import { DTYPE_BYTES, numel, type CheckpointReader, type DType, type TensorData, type TensorSource } from './tensor.js';

/** Lazily opened read handles, one per file, closed together. */
export class FilePool {
  private readonly handles = new Map<string, Promise<FileHandle>>();
  private closed = false;

  get(path: string): Promise<FileHandle> {
    if (this.closed) throw llavaError('ERR_DISPOSED', `The checkpoint reader for ${path} was closed; open it again.`);
    let h = this.handles.get(path);
    if (!h) {
      h = openRegularFile(path, { what: 'Checkpoint file' }).then(({ fh }) => fh, (e: unknown) => {
        this.handles.delete(path);
        throw e;
      });
      this.handles.set(path, h);
    }
    return h;
  }

  async close(): Promise<void> {
    this.closed = true;
    const hs = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(hs.map((h) => h.then((fh) => fh.close()).catch(() => undefined)));
  }
}

/** Read exactly `length` bytes at `position` into a fresh, 8-byte aligned buffer. */
export async function readExact(fh: FileHandle, position: number, length: number, what: string): Promise<Buffer> {
  // allocUnsafeSlow: never from the shared pool, so typed-array views on it are aligned.
  const buf = Buffer.allocUnsafeSlow(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) throw llavaError('ERR_FORMAT', `${what}: the file ended after ${got} of ${length} bytes at offset ${position} (truncated?).`);
    got += bytesRead;
  }
  return buf;
}

/** Convert raw little-endian bytes of `dtype` to float32. */
export function toF32(dtype: DType, raw: Buffer, what: string): Float32Array {
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(raw.byteLength / 4);
      new Uint8Array(out.buffer).set(raw);
      return out;
    }
    case 'F16': return f16BufferToF32(raw);
    case 'BF16': return bf16BufferToF32(raw);
    case 'F64': {
      const src = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      return Float32Array.from(src);
    }
    default:
      throw llavaError('ERR_FORMAT', `${what} has dtype ${dtype}; only F32/F16/BF16/F64 tensors can be read as floats.`);
  }
}

/** A tensor stored as a contiguous byte range of a file. */
export class FileTensor implements TensorSource {
  readonly byteLength: number;
  constructor(
    readonly name: string,
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly file: string,
    private readonly offset: number,
    private readonly pool: FilePool,
  ) {
    this.byteLength = numel(shape) * DTYPE_BYTES[dtype];
  }

  async readRaw(): Promise<Buffer> {
    const fh = await this.pool.get(this.file);
    return readExact(fh, this.offset, this.byteLength, `tensor '${this.name}' in ${this.file}`);
  }

  async readF32(): Promise<Float32Array> {
    return toF32(this.dtype, await this.readRaw(), `tensor '${this.name}' in ${this.file}`);
  }
}

/** A CheckpointReader over a fixed map of tensors. */
export class MapCheckpoint implements CheckpointReader {
  constructor(
    readonly files: readonly string[],
    private readonly tensors: ReadonlyMap<string, TensorSource>,
    private readonly onClose: () => Promise<void>,
  ) {}

  names(): string[] { return [...this.tensors.keys()]; }
  has(name: string): boolean { return this.tensors.has(name); }
  get(name: string): TensorSource {
    const t = this.tensors.get(name);
    if (!t) throw llavaError('ERR_FORMAT', `Tensor '${name}' is not in ${this.files.join(', ')}. Check that this is the right checkpoint.`);
    return t;
  }
  close(): Promise<void> { return this.onClose(); }
}

/** The stored bytes of an in-memory tensor, validated against its dtype and shape. */
export function encodeTensorData(t: TensorData): Buffer {
  const n = numel(t.shape);
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw llavaError('ERR_INVALID_ARGUMENT', `Tensor '${t.name}': shape [${t.shape.join(', ')}] has an invalid dimension.`);
  }
  const want = n * DTYPE_BYTES[t.dtype];
  const data = typeof t.data === 'function' ? t.data() : t.data;
  let bytes: Buffer;
  if (data instanceof Uint8Array) {
    bytes = Buffer.isBuffer(data) ? data : Buffer.from((data as Uint8Array).buffer, (data as Uint8Array).byteOffset, (data as Uint8Array).byteLength);
  } else if (data instanceof Float32Array || data instanceof Float64Array) {
    if (data.length !== n) throw llavaError('ERR_INVALID_ARGUMENT', `Tensor '${t.name}': ${data.length} values for shape [${t.shape.join(', ')}] (${n} elements).`);
    const f32 = data instanceof Float32Array ? data : Float32Array.from(data);
    switch (t.dtype) {
      case 'F32': bytes = Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength); break;
      case 'F16': bytes = f32ToF16Buffer(f32); break;
      case 'BF16': bytes = f32ToBf16Buffer(f32); break;
      case 'F64': {
        const f64 = data instanceof Float64Array ? data : Float64Array.from(data);
        bytes = Buffer.from(f64.buffer, f64.byteOffset, f64.byteLength);
        break;
      }
      default: throw llavaError('ERR_INVALID_ARGUMENT', `Tensor '${t.name}': float values cannot be encoded as ${t.dtype}; pass raw bytes.`);
    }
  } else {
    throw llavaError('ERR_INVALID_ARGUMENT', `Tensor '${t.name}': data must be a Buffer, Float32Array or Float64Array.`);
  }
  if (bytes.byteLength !== want) {
    throw llavaError('ERR_INVALID_ARGUMENT', `Tensor '${t.name}': ${bytes.byteLength} bytes for ${t.dtype} [${t.shape.join(', ')}], expected ${want}.`);
  }
  return bytes;
}

export function checkTensorList(tensors: readonly TensorData[]): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (typeof t.name !== 'string' || t.name.length === 0) throw llavaError('ERR_INVALID_ARGUMENT', 'Every tensor needs a non-empty name.');
    if (seen.has(t.name)) throw llavaError('ERR_INVALID_ARGUMENT', `Tensor '${t.name}' appears twice.`);
    if (!(t.dtype in DTYPE_BYTES)) throw llavaError('ERR_INVALID_ARGUMENT', `Tensor '${t.name}': unknown dtype ${String(t.dtype)}.`);
    seen.add(t.name);
  }
}

/**
 * Write a file through `fill` under a temporary name next to `path`, then rename it into place.
 * On any failure the temporary file is removed and nothing partial remains.
 */
export async function writeFileAtomic(path: string, fill: (write: (b: Uint8Array) => Promise<void>) => Promise<void>): Promise<void> {
  await sweepStaleTemps(dirname(path));
  const tmp = tempPathFor(path);
  let fh: FileHandle;
  try {
    fh = await open(tmp, 'wx');
  } catch (e) {
    throw llavaError('ERR_INVALID_ARGUMENT', `Cannot create ${path}: ${(e as Error).message}. Check that the folder exists and is writable.`, e);
  }
  let pos = 0;
  const write = async (b: Uint8Array) => {
    let done = 0;
    while (done < b.byteLength) {
      const { bytesWritten } = await fh.write(b, done, b.byteLength - done, pos + done);
      done += bytesWritten;
    }
    pos += b.byteLength;
  };
  try {
    await fill(write);
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}
