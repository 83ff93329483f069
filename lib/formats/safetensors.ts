/**
 * safetensors: u64 header length | JSON header | data. The reader parses only the header (bounded like
 * the Rust reference: header ≤ 100 MB and inside the file, every tensor's byte range inside the data
 * section, contiguous and exactly numel × dtype size) and reads tensors lazily with positioned reads.
 * The writer pads the header with spaces to a multiple of 8, as the Rust implementation does.
 */
import { openRegularFile } from './file-read.js';
import { llavaError } from '../errors.js';
import { DTYPE_BYTES, numel, type CheckpointReader, type DType, type TensorData, type TensorSource } from './tensor.js';
import { FilePool, FileTensor, MapCheckpoint, checkTensorList, encodeTensorData, readExact, writeFileAtomic } from './tensor-io.js';

/** safetensors' own limit (MAX_HEADER_SIZE in the Rust crate). */
const MAX_HEADER_BYTES = 100_000_000;
const DTYPES = new Set<string>(Object.keys(DTYPE_BYTES));

export interface SafetensorsReader extends CheckpointReader {
  /** The `__metadata__` string map (empty when absent). */
  readonly metadata: Readonly<Record<string, string>>;
}

function corrupt(path: string, msg: string): never {
  throw llavaError('ERR_FORMAT', `${path} is not a valid safetensors file: ${msg}`);
}

export async function openSafetensors(path: string): Promise<SafetensorsReader> {
  const { fh, size: fileSize } = await openRegularFile(path, { what: 'safetensors file' });
  let header: unknown;
  let dataStart: number;
  try {
    if (fileSize < 8) corrupt(path, `it is only ${fileSize} bytes long.`);
    const len = (await readExact(fh, 0, 8, path)).readBigUInt64LE(0);
    if (len > BigInt(MAX_HEADER_BYTES)) corrupt(path, `the header claims ${len} bytes (limit ${MAX_HEADER_BYTES}).`);
    if (len > BigInt(fileSize - 8)) corrupt(path, `the header claims ${len} bytes but the file has ${fileSize - 8} after the length (truncated?).`);
    const n = Number(len);
    dataStart = 8 + n;
    const text = (await readExact(fh, 8, n, path)).toString('utf8');
    if (!text.startsWith('{')) corrupt(path, 'the header is not a JSON object.');
    try {
      header = JSON.parse(text);
    } catch (e) {
      corrupt(path, `the header is not valid JSON (${(e as Error).message}).`);
    }
  } finally {
    await fh.close();
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) corrupt(path, 'the header is not a JSON object.');

  const dataLen = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) corrupt(path, '__metadata__ must be an object of strings.');
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== 'string') corrupt(path, `__metadata__.${k} is not a string.`);
        metadata[k] = s;
      }
      continue;
    }
    if (typeof v !== 'object' || v === null) corrupt(path, `entry '${name}' is not an object.`);
    const { dtype, shape, data_offsets: offs } = v as Record<string, unknown>;
    if (typeof dtype !== 'string') corrupt(path, `tensor '${name}' has no dtype.`);
    if (!DTYPES.has(dtype)) {
      throw llavaError('ERR_FORMAT', `${path}: tensor '${name}' has dtype ${dtype}, which llava-med does not read (supported: ${[...DTYPES].join(', ')}).`);
    }
    if (!Array.isArray(shape) || shape.length > 8 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      corrupt(path, `tensor '${name}' has an invalid shape ${JSON.stringify(shape)}.`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      corrupt(path, `tensor '${name}' has invalid data_offsets ${JSON.stringify(offs)}.`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end || end > dataLen) {
      corrupt(path, `tensor '${name}' bytes [${begin}, ${end}) are outside the data section (${dataLen} bytes; truncated?).`);
    }
    const want = numel(shape as number[]) * DTYPE_BYTES[dtype as DType];
    if (end - begin !== want) corrupt(path, `tensor '${name}' (${dtype} [${(shape as number[]).join(', ')}]) needs ${want} bytes but its offsets span ${end - begin}.`);
    entries.push({ name, dtype: dtype as DType, shape: shape as number[], begin, end });
  }
  // As in the Rust reader: tensors must tile the data section without gaps or overlaps.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of sorted) {
    if (e.begin !== at) corrupt(path, `tensor '${e.name}' starts at ${e.begin}, expected ${at} (overlapping or gapped offsets).`);
    at = e.end;
  }
  if (at !== dataLen) corrupt(path, `the tensors cover ${at} bytes but the data section is ${dataLen} bytes.`);

  const pool = new FilePool();
  const map = new Map<string, TensorSource>();
  for (const e of entries) map.set(e.name, new FileTensor(e.name, e.dtype, e.shape, path, dataStart + e.begin, pool));
  return Object.assign(new MapCheckpoint([path], map, () => pool.close()), { metadata });
}

/** Write tensors as one safetensors file (temp name + rename). Tensors are stored in the given order. */
export async function writeSafetensors(path: string, tensors: readonly TensorData[], metadata?: Record<string, string>): Promise<void> {
  checkTensorList(tensors);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw llavaError('ERR_INVALID_ARGUMENT', `safetensors metadata '${k}' must be a string.`);
    }
    header.__metadata__ = metadata;
  }
  let off = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__') throw llavaError('ERR_INVALID_ARGUMENT', "A tensor cannot be named '__metadata__'.");
    const n = numel(t.shape) * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [off, off + n] };
    off += n;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  await writeFileAtomic(path, async (write) => {
    await write(len);
    await write(json);
    // Encode one tensor at a time so only one converted copy exists at once.
    for (const t of tensors) await write(encodeTensorData(t));
  });
}
