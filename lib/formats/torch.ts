/**
 * PyTorch zip checkpoints (torch.save since 1.6; HF pytorch_model*.bin). data.pkl is read with the
 * restricted unpickler and an allow-list of exactly what a state dict needs; tensor bytes stay in the
 * zip's storage entries and are read lazily, one tensor at a time, with positioned reads.
 * The writer produces the same layout torch.save does, so tests and fixtures need no Python.
 */
import type { FileHandle } from 'node:fs/promises';
import { openRegularFile } from './file-read.js';
import { llavaError } from '../errors.js';
import { DTYPE_BYTES, numel, type CheckpointReader, type DType, type TensorData, type TensorSource } from './tensor.js';
import { FilePool, MapCheckpoint, checkTensorList, encodeTensorData, readExact, toF32, writeFileAtomic } from './tensor-io.js';
import { PickleGlobalRef, SAFE_GLOBALS, unpickle, type PickleGlobal } from './unpickle.js';
import { MAX_INFLATED_BYTES, buildStoredZip, readZipDirectory, readZipEntry, zipEntryDataOffset, type ZipEntry } from './zip.js';

/** torch storage class names -> our dtypes. */
export const TORCH_STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  DoubleStorage: 'F64', FloatStorage: 'F32', HalfStorage: 'F16', BFloat16Storage: 'BF16', LongStorage: 'I64',
  IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL',
};
const STORAGE_NAMES: Record<DType, string> = Object.fromEntries(
  Object.entries(TORCH_STORAGE_DTYPES).map(([k, v]) => [v, k]),
) as Record<DType, string>;

/** A storage as named by a persistent id: ('storage', torch.XStorage, key, location, numel). */
export interface TorchStorageRef { readonly kind: 'storage'; dtype: DType; key: string; numel: number }

/** What _rebuild_tensor_v2 records: a view into a storage. */
export interface TorchTensorRef {
  readonly kind: 'tensor';
  storage: TorchStorageRef;
  storageOffset: number;
  size: number[];
  stride: number[];
}

function isTensorRef(v: unknown): v is TorchTensorRef {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'tensor';
}

/** A short rendering of an untrusted value for a message (never throws, never huge). */
function show(v: unknown): string {
  try {
    const s = JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x)) ?? String(v);
    return s.length > 200 ? `${s.slice(0, 200)}…` : s;
  } catch {
    return '(a value nested too deeply to print)';
  }
}

function intList(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || !v.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw llavaError('ERR_FORMAT', `The checkpoint's ${what} ${show(v)} is not a list of non-negative integers.`);
  }
  return v as number[];
}

function rebuildTensor(storage: unknown, offset: unknown, size: unknown, stride: unknown): TorchTensorRef {
  if (typeof storage !== 'object' || storage === null || (storage as { kind?: unknown }).kind !== 'storage') {
    throw llavaError('ERR_FORMAT', 'The checkpoint rebuilds a tensor from something that is not a storage.');
  }
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) throw llavaError('ERR_FORMAT', `The checkpoint has an invalid storage offset ${String(offset)}.`);
  const sz = intList(size, 'tensor size');
  const st = intList(stride, 'tensor stride');
  if (sz.length !== st.length) throw llavaError('ERR_FORMAT', 'The checkpoint has a tensor whose size and stride differ in length.');
  return { kind: 'tensor', storage: storage as TorchStorageRef, storageOffset: offset as number, size: sz, stride: st };
}

const tensorType: PickleGlobal = { value: 'tensor-type' };

/** The allow-list for state dicts: containers plus the tensor/parameter rebuild functions and storage types. */
export const TORCH_GLOBALS: Readonly<Record<string, PickleGlobal>> = {
  ...SAFE_GLOBALS,
  'torch._utils._rebuild_tensor_v2': { call: (s, o, size, stride) => rebuildTensor(s, o, size, stride) },
  'torch._utils._rebuild_tensor': { call: (s, o, size, stride) => rebuildTensor(s, o, size, stride) },
  'torch._utils._rebuild_parameter': { call: (data) => data },
  'torch._utils._rebuild_parameter_with_state': { call: (data) => data },
  'torch._tensor._rebuild_from_type_v2': {
    call: (fn, _type, args) => {
      if (!(fn instanceof PickleGlobalRef) || !fn.spec.call || !Array.isArray(args)) {
        throw llavaError('ERR_FORMAT', 'The checkpoint uses _rebuild_from_type_v2 in an unexpected way.');
      }
      return fn.spec.call(...args);
    },
  },
  'torch.Tensor': tensorType,
  'torch.nn.parameter.Parameter': tensorType,
  ...Object.fromEntries(Object.entries(TORCH_STORAGE_DTYPES).map(([name, dtype]) => [`torch.${name}`, { value: dtype }])),
};

function storageFromPid(pid: unknown): TorchStorageRef {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
    throw llavaError('ERR_FORMAT', 'The checkpoint has a persistent id that is not a storage reference.');
  }
  const [, type, key, , n] = pid as unknown[];
  if (!(type instanceof PickleGlobalRef) || typeof type.spec.value !== 'string' || !(type.spec.value in DTYPE_BYTES)) {
    throw llavaError('ERR_FORMAT', `The checkpoint has a storage of unsupported type ${type instanceof PickleGlobalRef ? type.name : String(type)}.`);
  }
  if (typeof key !== 'string' || !/^[\w.-]{1,64}$/.test(key)) throw llavaError('ERR_FORMAT', `The checkpoint has an invalid storage key ${String(key)}.`);
  if (!Number.isSafeInteger(n) || (n as number) < 0) throw llavaError('ERR_FORMAT', `The checkpoint has an invalid storage size ${String(n)}.`);
  return { kind: 'storage', dtype: type.spec.value as DType, key, numel: n as number };
}

function isContiguous(size: number[], stride: number[]): boolean {
  let expected = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    if (size[i] === 0) return true;
    if (size[i] !== 1 && stride[i] !== expected) return false;
    expected *= size[i]!;
  }
  return true;
}

/** data.pkl of a 7B state dict is well under 1 MiB; 64 MiB leaves room for any state dict. */
export const MAX_PICKLE_BYTES = 64 << 20;

export interface TorchCheckpointReader extends CheckpointReader {
  /** The unpickled data.pkl object (tensors appear as TorchTensorRef). */
  readonly root: unknown;
}

class TorchTensor implements TensorSource {
  readonly byteLength: number;
  constructor(
    readonly name: string,
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly file: string,
    private readonly ref: TorchTensorRef,
    private readonly locate: (key: string) => Promise<{ fh: FileHandle; entry: ZipEntry; dataStart: number }>,
    private readonly fileSize: number,
  ) {
    this.byteLength = numel(shape) * DTYPE_BYTES[dtype];
  }

  async readRaw(): Promise<Buffer> {
    const what = `tensor '${this.name}' in ${this.file}`;
    if (!isContiguous(this.ref.size, this.ref.stride)) {
      throw llavaError('ERR_FORMAT', `${what} is not contiguous (size [${this.ref.size.join(', ')}], stride [${this.ref.stride.join(', ')}]). Re-save the checkpoint with tensor.contiguous() or as safetensors.`);
    }
    const { fh, entry, dataStart } = await this.locate(this.ref.storage.key);
    const begin = this.ref.storageOffset * DTYPE_BYTES[this.dtype];
    if (begin + this.byteLength > entry.size) {
      throw llavaError('ERR_FORMAT', `${what} reads bytes [${begin}, ${begin + this.byteLength}) of a ${entry.size}-byte storage.`);
    }
    if (entry.method === 0) return readExact(fh, dataStart + begin, this.byteLength, what);
    // A re-compressed archive: inflate the storage (bounded by its declared size) and slice.
    const all = await readZipEntry(fh, this.fileSize, entry, this.file, MAX_INFLATED_BYTES);
    return Buffer.from(all.subarray(begin, begin + this.byteLength));
  }

  async readF32(): Promise<Float32Array> {
    return toF32(this.dtype, await this.readRaw(), `tensor '${this.name}' in ${this.file}`);
  }
}

/** Open a torch.save zip checkpoint. Top-level string keys whose values are tensors become tensors. */
export async function openTorchZip(path: string): Promise<TorchCheckpointReader> {
  const { fh, size } = await openRegularFile(path, { what: 'PyTorch checkpoint' });
  const pool = new FilePool();
  try {
    const magic = await readExact(fh, 0, Math.min(4, size), path);
    if (magic[0] === 0x80 || (size > 262 && (await readExact(fh, 257, 5, path)).toString('latin1') === 'ustar')) {
      throw llavaError('ERR_FORMAT', `${path} uses the legacy (pre-1.6, non-zip) PyTorch format, which llava-med does not read. Re-save it with a recent PyTorch: torch.save(torch.load(path), path) or save it as safetensors.`);
    }
    if (magic.length < 4 || magic.readUInt32LE(0) !== 0x04034b50) {
      throw llavaError('ERR_FORMAT', `${path} is not a PyTorch checkpoint (no ZIP signature at the start).`);
    }
    const entries = await readZipDirectory(fh, size, path);
    const pkls = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pkls.length !== 1) throw llavaError('ERR_FORMAT', `${path} has ${pkls.length} data.pkl records; expected exactly one (is it a torch.save checkpoint?).`);
    const prefix = pkls[0]!.slice(0, -'data.pkl'.length);
    const byteorder = entries.get(`${prefix}byteorder`);
    if (byteorder && (await readZipEntry(fh, size, byteorder, path, 16)).toString('latin1').trim() !== 'little') {
      throw llavaError('ERR_FORMAT', `${path} was saved on a big-endian machine; re-save it on a little-endian one.`);
    }
    const pkl = await readZipEntry(fh, size, entries.get(pkls[0]!)!, path, MAX_PICKLE_BYTES);
    const root = unpickle(pkl, { globals: TORCH_GLOBALS, persistentLoad: storageFromPid, source: `${path} (data.pkl)` });

    const located = new Map<string, Promise<{ fh: FileHandle; entry: ZipEntry; dataStart: number }>>();
    const locate = (key: string) => {
      let p = located.get(key);
      if (!p) {
        p = (async () => {
          const entry = entries.get(`${prefix}data/${key}`);
          if (!entry) throw llavaError('ERR_FORMAT', `${path} refers to storage '${key}' but has no ${prefix}data/${key} record (damaged archive).`);
          const h = await pool.get(path);
          return { fh: h, entry, dataStart: await zipEntryDataOffset(h, size, entry, path) };
        })();
        located.set(key, p);
      }
      return p;
    };

    const tensors = new Map<string, TensorSource>();
    if (root instanceof Map) {
      for (const [k, v] of root) {
        if (typeof k !== 'string' || !isTensorRef(v)) continue;
        const storageEntry = entries.get(`${prefix}data/${v.storage.key}`);
        if (!storageEntry) throw llavaError('ERR_FORMAT', `${path}: tensor '${k}' uses storage '${v.storage.key}', which is missing from the archive.`);
        if (storageEntry.size < v.storage.numel * DTYPE_BYTES[v.storage.dtype]) {
          throw llavaError('ERR_FORMAT', `${path}: storage '${v.storage.key}' holds ${storageEntry.size} bytes, less than the ${v.storage.numel} ${v.storage.dtype} elements it declares.`);
        }
        // The view must lie inside its storage, checked here, before anything is allocated for it.
        const end = v.storageOffset + numel(v.size);
        if (numel(v.size) > 0 && end > v.storage.numel) {
          throw llavaError('ERR_FORMAT', `${path}: tensor '${k}' [${v.size.join(', ')}] at offset ${v.storageOffset} needs ${end} elements of storage '${v.storage.key}', which has ${v.storage.numel}.`);
        }
        tensors.set(k, new TorchTensor(k, v.storage.dtype, v.size, path, v, locate, size));
      }
    }
    return Object.assign(new MapCheckpoint([path], tensors, () => pool.close()), { root });
  } catch (e) {
    await pool.close();
    throw e;
  } finally {
    await fh.close();
  }
}

// ---- writer: the byte layout of torch.save(OrderedDict) with pickle protocol 2 ----

class PickleWriter {
  private parts: Buffer[] = [];
  op(...bytes: number[]) { this.parts.push(Buffer.from(bytes)); }
  global(module: string, name: string) { this.parts.push(Buffer.from(`c${module}\n${name}\n`, 'latin1')); }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    const h = Buffer.alloc(5);
    h[0] = 0x58; // BINUNICODE
    h.writeUInt32LE(b.length, 1);
    this.parts.push(h, b);
  }
  int(n: number) {
    if (n >= 0 && n < 256) return this.op(0x4b, n); // BININT1
    if (n >= -0x80000000 && n <= 0x7fffffff) { const b = Buffer.alloc(5); b[0] = 0x4a; b.writeInt32LE(n, 1); return this.parts.push(b); }
    // LONG1 with 8 bytes of two's complement
    const b = Buffer.alloc(10); b[0] = 0x8a; b[1] = 8; b.writeBigInt64LE(BigInt(n), 2); this.parts.push(b);
  }
  done() { return Buffer.concat(this.parts); }
}

function stateDictPickle(tensors: readonly TensorData[]): Buffer {
  const p = new PickleWriter();
  p.op(0x80, 2); // PROTO 2
  p.global('collections', 'OrderedDict');
  p.op(0x29, 0x52); // EMPTY_TUPLE REDUCE
  p.op(0x28); // MARK
  tensors.forEach((t, i) => {
    p.str(t.name);
    p.global('torch._utils', '_rebuild_tensor_v2');
    p.op(0x28); // MARK (args)
    p.op(0x28); // MARK (persistent id)
    p.str('storage');
    p.global('torch', STORAGE_NAMES[t.dtype]);
    p.str(String(i));
    p.str('cpu');
    p.int(numel(t.shape));
    p.op(0x74, 0x51); // TUPLE BINPERSID
    p.int(0); // storage offset
    p.op(0x28); for (const d of t.shape) p.int(d); p.op(0x74); // size
    const stride: number[] = [];
    let s = 1;
    for (let d = t.shape.length - 1; d >= 0; d--) { stride[d] = s; s *= t.shape[d]!; }
    p.op(0x28); for (const d of stride) p.int(d); p.op(0x74); // stride
    p.op(0x89); // requires_grad False
    p.global('collections', 'OrderedDict');
    p.op(0x29, 0x52); // backward hooks: OrderedDict()
    p.op(0x74, 0x52); // TUPLE REDUCE
  });
  p.op(0x75, 0x2e); // SETITEMS STOP
  return p.done();
}

/** Write tensors as a torch.save-compatible zip checkpoint (an OrderedDict state dict), < 4 GB. */
export async function writeTorchZip(path: string, tensors: readonly TensorData[]): Promise<void> {
  checkTensorList(tensors);
  const files = [{ name: 'archive/data.pkl', data: stateDictPickle(tensors) as Uint8Array }, { name: 'archive/byteorder', data: Buffer.from('little') }];
  tensors.forEach((t, i) => files.push({ name: `archive/data/${i}`, data: encodeTensorData(t) }));
  files.push({ name: 'archive/version', data: Buffer.from('3\n') });
  await writeFileAtomic(path, async (write) => {
    for (const b of buildStoredZip(files)) await write(b);
  });
}
