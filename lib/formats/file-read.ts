/**
 * Every file llava-med opens by path goes through here: it must be a regular file, opened without
 * blocking, read with a size limit and abortably.
 *
 * Why: `open()` of a FIFO without a writer blocks until one appears, and it blocks on a libuv pool
 * thread, so one such path stalls every fs call of the host (all four pool threads end up waiting).
 * `/dev/zero` and `/dev/urandom` never end, so reading them "whole" grows memory until the process dies.
 * So: stat first (a FIFO or device is refused without opening it), open with O_NONBLOCK (if the path is
 * swapped for a FIFO after the stat, the open still returns at once), fstat the open descriptor (what
 * we read is what we checked), check the size against the limit, then read in chunks, checking the
 * abort signal between chunks and stopping at the size fstat reported.
 */
import { constants, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { llavaError, throwIfAborted, type ErrorCode } from '../errors.js';

export interface RegularFileOptions {
  /** What the file is, for messages ("Image file", "config.json"). */
  what?: string;
  /** Largest accepted size in bytes (default: no limit). */
  maxBytes?: number;
  /** Code for a file over maxBytes (default ERR_INVALID_ARGUMENT). */
  tooLargeCode?: ErrorCode;
  /** Code for a path that is not a regular file (default ERR_INVALID_ARGUMENT). */
  notRegularCode?: ErrorCode;
  signal?: AbortSignal;
}

const CHUNK = 4 << 20;

/** "a FIFO (named pipe)", "a directory", ... for a stat that is not a regular file. */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

function checkStat(path: string, st: Stats, o: RegularFileOptions): void {
  const what = o.what ?? 'File';
  if (!st.isFile()) {
    throw llavaError(o.notRegularCode ?? 'ERR_INVALID_ARGUMENT', `${what} ${path} is ${fileKind(st)}, not a regular file; pass the path of a file.`);
  }
  if (o.maxBytes !== undefined && st.size > o.maxBytes) {
    throw llavaError(o.tooLargeCode ?? 'ERR_INVALID_ARGUMENT', `${what} ${path} is ${st.size} bytes, over the limit of ${o.maxBytes} bytes.`);
  }
}

function openError(path: string, e: unknown, o: RegularFileOptions): never {
  const code = (e as NodeJS.ErrnoException).code;
  const what = o.what ?? 'File';
  if (code === 'ENOENT' || code === 'ENOTDIR') throw llavaError('ERR_FILE_NOT_FOUND', `${what} not found: ${path}. Check the path.`, e);
  if (code === 'EACCES' || code === 'EPERM') throw llavaError('ERR_INVALID_ARGUMENT', `${what} ${path} is not readable (permission denied).`, e);
  throw llavaError('ERR_INVALID_ARGUMENT', `Cannot open ${what.toLowerCase()} ${path} (${code ?? (e as Error).message}).`, e);
}

/**
 * Open a regular file for reading without ever blocking on a FIFO or device. The caller closes the
 * handle. Returns the size fstat saw.
 */
export async function openRegularFile(path: string, o: RegularFileOptions = {}): Promise<{ fh: FileHandle; size: number }> {
  if (typeof path !== 'string' || path.length === 0) throw llavaError('ERR_INVALID_ARGUMENT', `${o.what ?? 'File'} path must be a non-empty string.`);
  throwIfAborted(o.signal, `read of ${path}`);
  let st: Stats;
  try {
    st = await stat(path);
  } catch (e) {
    openError(path, e, o);
  }
  checkStat(path, st, o);
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    openError(path, e, o);
  }
  try {
    const st2 = await fh.stat();
    checkStat(path, st2, o);
    return { fh, size: st2.size };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}

/** Read a whole regular file (size-limited, abortable between 4 MiB chunks). */
export async function readRegularFile(path: string, o: RegularFileOptions = {}): Promise<Buffer> {
  const { fh, size } = await openRegularFile(path, o);
  try {
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      throwIfAborted(o.signal, `read of ${path}`);
      const { bytesRead } = await fh.read(buf, got, Math.min(CHUNK, size - got), got);
      if (bytesRead === 0) break; // shrank while reading: return what is there
      got += bytesRead;
    }
    return got === size ? buf : buf.subarray(0, got);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** readRegularFile decoded as UTF-8. */
export async function readTextFile(path: string, o: RegularFileOptions = {}): Promise<string> {
  return (await readRegularFile(path, o)).toString('utf8');
}

/** JSON and text files the library reads (configs, tokenizer files, question files): 256 MiB. */
export const MAX_TEXT_FILE_BYTES = 256 << 20;

/** Dataset files of the evaluation (question lists, pickles, answers): 2 GiB. */
export const MAX_DATA_FILE_BYTES = 2 ** 31;
