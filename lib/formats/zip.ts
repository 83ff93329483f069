/**
 * Just enough ZIP for PyTorch checkpoints: read the central directory (ZIP64 included, since model
 * shards exceed 4 GB) with bounded positioned reads, locate entry data for lazy reads, and write
 * STORED archives with entry data aligned to 64 bytes the way torch's PyTorchStreamWriter does.
 */
import { promisify } from 'node:util';
import { crc32, inflateRaw } from 'node:zlib';
import type { FileHandle } from 'node:fs/promises';
import { llavaError } from '../errors.js';
import { readExact } from './tensor-io.js';

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD_SIG = 0x06054b50;
const Z64_LOCATOR_SIG = 0x07064b50;
const Z64_EOCD_SIG = 0x06064b50;
const CDH_SIG = 0x02014b50;
const LFH_SIG = 0x04034b50;
const MAX_CD_BYTES = 256 << 20;
/**
 * Inflate limits (zip bombs): no entry is inflated in memory beyond 2 GiB whatever the caller allows,
 * nor beyond 200x its compressed size (deflate cannot exceed ~1032:1; real weights and pickles compress
 * far less than 200:1, while bombs are built of long runs that compress ~1000:1). Both are checked from
 * the declared sizes before inflating, and the inflater stops at the declared size, so an entry that
 * lies about its size fails without inflating more than it declared.
 */
export const MAX_INFLATED_BYTES = 2 ** 31;
export const MAX_INFLATE_RATIO = 200;
const inflateRawAsync = promisify(inflateRaw);

function bad(path: string, msg: string): never {
  throw llavaError('ERR_FORMAT', `${path} is not a readable ZIP archive: ${msg}`);
}

function safe(v: bigint, path: string, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) bad(path, `${what} ${v} is too large.`);
  return Number(v);
}

/** Read the central directory. Every offset and size is checked against the file size. */
export async function readZipDirectory(fh: FileHandle, fileSize: number, path: string): Promise<Map<string, ZipEntry>> {
  if (fileSize < 22) bad(path, `it is only ${fileSize} bytes long.`);
  const tailLen = Math.min(fileSize, 22 + 65535);
  const tail = await readExact(fh, fileSize - tailLen, tailLen, path);
  let e = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD_SIG) { e = i; break; }
  }
  if (e < 0) bad(path, 'no end-of-central-directory record (truncated, or not a ZIP file).');
  const eocdAbs = fileSize - tailLen + e;
  let count: number = tail.readUInt16LE(e + 10);
  let cdSize: number = tail.readUInt32LE(e + 12);
  let cdOffset: number = tail.readUInt32LE(e + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // ZIP64: the locator sits right before the classic record and points at the ZIP64 record.
    if (eocdAbs < 20) bad(path, 'ZIP64 locator missing.');
    const loc = await readExact(fh, eocdAbs - 20, 20, path);
    if (loc.readUInt32LE(0) !== Z64_LOCATOR_SIG) bad(path, 'ZIP64 locator missing.');
    const z64Off = safe(loc.readBigUInt64LE(8), path, 'ZIP64 record offset');
    if (z64Off + 56 > fileSize) bad(path, 'ZIP64 record is outside the file.');
    const z = await readExact(fh, z64Off, 56, path);
    if (z.readUInt32LE(0) !== Z64_EOCD_SIG) bad(path, 'bad ZIP64 end-of-central-directory record.');
    count = safe(z.readBigUInt64LE(32), path, 'entry count');
    cdSize = safe(z.readBigUInt64LE(40), path, 'central directory size');
    cdOffset = safe(z.readBigUInt64LE(48), path, 'central directory offset');
  }
  if (cdSize > MAX_CD_BYTES) bad(path, `central directory of ${cdSize} bytes exceeds the limit.`);
  if (cdOffset + cdSize > fileSize) bad(path, `central directory [${cdOffset}, ${cdOffset + cdSize}) is outside the file (${fileSize} bytes; truncated?).`);
  if (count * 46 > cdSize) bad(path, `${count} entries cannot fit in a ${cdSize}-byte central directory.`);
  const cd = await readExact(fh, cdOffset, cdSize, path);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CDH_SIG) bad(path, `central directory entry ${i} is damaged.`);
    const method = cd.readUInt16LE(p + 10);
    let csize: number = cd.readUInt32LE(p + 20);
    let usize: number = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    let lho: number = cd.readUInt32LE(p + 42);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length) bad(path, `central directory entry ${i} runs past its end.`);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
    // ZIP64 extended information: the 64-bit values appear only for fields that are 0xFFFFFFFF, in order.
    let x = p + 46 + nameLen;
    const xEnd = x + extraLen;
    while (x + 4 <= xEnd) {
      const id = cd.readUInt16LE(x);
      const len = cd.readUInt16LE(x + 2);
      if (x + 4 + len > xEnd) bad(path, `entry '${name}' has a damaged extra field.`);
      if (id === 0x0001) {
        let q = x + 4;
        const next = (what: string) => {
          if (q + 8 > x + 4 + len) bad(path, `entry '${name}' ZIP64 field lacks ${what}.`);
          const v = safe(cd.readBigUInt64LE(q), path, what); q += 8; return v;
        };
        if (usize === 0xffffffff) usize = next('size');
        if (csize === 0xffffffff) csize = next('compressed size');
        if (lho === 0xffffffff) lho = next('local header offset');
      }
      x += 4 + len;
    }
    if (lho + 30 + csize > fileSize) bad(path, `entry '${name}' data is outside the file (truncated?).`);
    if (method === 0 && csize !== usize) bad(path, `stored entry '${name}' declares ${usize} bytes but holds ${csize}.`);
    if (entries.has(name)) bad(path, `duplicate entry '${name}'.`);
    entries.set(name, { name, method, compressedSize: csize, size: usize, localHeaderOffset: lho });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** Absolute offset of an entry's data (after its local header), checked to lie inside the file. */
export async function zipEntryDataOffset(fh: FileHandle, fileSize: number, entry: ZipEntry, path: string): Promise<number> {
  const h = await readExact(fh, entry.localHeaderOffset, 30, path);
  if (h.readUInt32LE(0) !== LFH_SIG) bad(path, `local header of '${entry.name}' is damaged.`);
  const start = entry.localHeaderOffset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
  if (start + entry.compressedSize > fileSize) bad(path, `data of '${entry.name}' is outside the file (truncated?).`);
  return start;
}

/**
 * Read a whole entry (stored or deflated), refusing entries larger than `maxBytes` (and than
 * MAX_INFLATED_BYTES) or compressed more than MAX_INFLATE_RATIO:1 before reading a byte of them.
 * Inflating runs on the libuv pool, not the event loop.
 */
export async function readZipEntry(fh: FileHandle, fileSize: number, entry: ZipEntry, path: string, maxBytes: number): Promise<Buffer> {
  const limit = Math.min(maxBytes, MAX_INFLATED_BYTES);
  if (entry.size > limit || entry.compressedSize > limit) bad(path, `entry '${entry.name}' is ${entry.size} bytes, over the ${limit}-byte limit.`);
  if (entry.method === 8 && entry.size > Math.max(entry.compressedSize, 1) * MAX_INFLATE_RATIO) {
    bad(path, `entry '${entry.name}' would inflate ${entry.compressedSize} bytes to ${entry.size} (over ${MAX_INFLATE_RATIO}:1): a zip bomb, not a checkpoint.`);
  }
  const start = await zipEntryDataOffset(fh, fileSize, entry, path);
  const raw = await readExact(fh, start, entry.compressedSize, path);
  if (entry.method === 0) return raw;
  if (entry.method === 8) {
    try {
      const out = await inflateRawAsync(raw, { maxOutputLength: Math.max(entry.size, 1) });
      if (out.length !== entry.size) bad(path, `entry '${entry.name}' inflates to ${out.length} bytes, expected ${entry.size}.`);
      return out;
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_FORMAT') throw e;
      bad(path, `entry '${entry.name}' does not inflate (${(e as Error).message}).`);
    }
  }
  bad(path, `entry '${entry.name}' uses compression method ${entry.method}; only stored and deflate are supported. Re-save with torch.save.`);
}

/**
 * Serialise a STORED zip. Entry data is aligned to `align` bytes with a padding extra field (torch
 * uses id "FB" and 64-byte alignment so storages can be mmapped). No ZIP64: archives must stay < 4 GB.
 */
export function buildStoredZip(files: { name: string; data: Uint8Array }[], align = 64): Buffer[] {
  const out: Buffer[] = [];
  const central: Buffer[] = [];
  let off = 0;
  for (const f of files) {
    const name = Buffer.from(f.name, 'utf8');
    const crc = crc32(f.data);
    let extraLen = 0;
    const base = off + 30 + name.length;
    if (base % align !== 0) {
      extraLen = align - (base % align);
      if (extraLen < 4) extraLen += align;
    }
    if (off + 30 + name.length + extraLen + f.data.byteLength > 0xffffffff) {
      throw llavaError('ERR_INVALID_ARGUMENT', 'The archive would exceed 4 GB; write a sharded checkpoint or use safetensors.');
    }
    const lfh = Buffer.alloc(30 + name.length + extraLen);
    lfh.writeUInt32LE(LFH_SIG, 0);
    lfh.writeUInt16LE(20, 4); // version needed
    lfh.writeUInt16LE(0, 6); // flags
    lfh.writeUInt16LE(0, 8); // stored
    lfh.writeUInt32LE(0, 10); // time/date
    lfh.writeUInt32LE(crc, 14);
    lfh.writeUInt32LE(f.data.byteLength, 18);
    lfh.writeUInt32LE(f.data.byteLength, 22);
    lfh.writeUInt16LE(name.length, 26);
    lfh.writeUInt16LE(extraLen, 28);
    name.copy(lfh, 30);
    if (extraLen) {
      lfh.writeUInt16LE(0x4246, 30 + name.length); // "FB"
      lfh.writeUInt16LE(extraLen - 4, 32 + name.length);
      lfh.fill(0x5a, 34 + name.length); // torch pads with 'Z'
    }
    const cdh = Buffer.alloc(46 + name.length);
    cdh.writeUInt32LE(CDH_SIG, 0);
    cdh.writeUInt16LE(20, 4); // version made by
    cdh.writeUInt16LE(20, 6); // version needed
    cdh.writeUInt32LE(crc, 16);
    cdh.writeUInt32LE(f.data.byteLength, 20);
    cdh.writeUInt32LE(f.data.byteLength, 24);
    cdh.writeUInt16LE(name.length, 28);
    cdh.writeUInt32LE(off, 42);
    name.copy(cdh, 46);
    central.push(cdh);
    out.push(lfh, Buffer.from(f.data.buffer, f.data.byteOffset, f.data.byteLength));
    off += lfh.length + f.data.byteLength;
  }
  const cdSize = central.reduce((n, b) => n + b.length, 0);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(EOCD_SIG, 0);
  eocd.writeUInt16LE(files.length, 8);
  eocd.writeUInt16LE(files.length, 10);
  eocd.writeUInt32LE(cdSize, 12);
  eocd.writeUInt32LE(off, 16);
  return [...out, ...central, eocd];
}
