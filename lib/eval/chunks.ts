/**
 * split_list / get_chunk of llava/eval/model_vqa_med.py, for running the answer generation in
 * several processes: chunk_size = ceil(len / n), chunks = lst[i:i+chunk_size] for i in range(0, len, chunk_size).
 * Note this can yield FEWER than n chunks (9 items, n=4 → sizes 3,3,3): asking for chunk 3 then
 * fails in the original with IndexError, and here with ERR_INVALID_ARGUMENT.
 */
import { llavaError } from '../errors.js';

/**
 * Chunk `chunkIdx` (0-based) of `entries` split as the original's split_list / get_chunk.
 * @throws LlavaMedError `ERR_INVALID_ARGUMENT` when numChunks is not a positive integer or chunkIdx names no chunk.
 */
export function splitChunks<T>(entries: readonly T[], numChunks: number, chunkIdx: number): T[] {
  if (!Number.isInteger(numChunks) || numChunks < 1) {
    throw llavaError('ERR_INVALID_ARGUMENT', `numChunks must be a positive integer, got ${numChunks}.`);
  }
  if (!Number.isInteger(chunkIdx) || chunkIdx < 0) {
    throw llavaError('ERR_INVALID_ARGUMENT', `chunkIdx must be a non-negative integer, got ${chunkIdx}.`);
  }
  const size = Math.ceil(entries.length / numChunks);
  if (size === 0) {
    // range(0, 0, 0) raises "range() arg 3 must not be zero" in the original.
    throw llavaError('ERR_INVALID_ARGUMENT', 'Cannot split an empty question list into chunks.');
  }
  const count = Math.ceil(entries.length / size);
  if (chunkIdx >= count) {
    throw llavaError(
      'ERR_INVALID_ARGUMENT',
      `chunkIdx ${chunkIdx} does not exist: ${entries.length} questions split with chunk size ceil(${entries.length}/${numChunks}) = ${size} give only ${count} chunk(s).`,
    );
  }
  return entries.slice(chunkIdx * size, chunkIdx * size + size);
}
