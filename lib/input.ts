/**
 * Reading caller-supplied objects safely. An options object or a raw-pixel object may carry getters
 * (or be a Proxy) that throw; without care such an error surfaces from deep inside a queued native
 * call as ERR_NATIVE. Every public entry point instead reads the object once, here, and a throwing
 * read becomes ERR_INVALID_ARGUMENT naming what was being read.
 */
import { isLlavaMedError, llavaError } from './errors.js';

/** Runs `read` (property reads of a caller's object); anything it throws becomes ERR_INVALID_ARGUMENT. */
export function readArg<T>(read: () => T, what: string): T {
  try {
    return read();
  } catch (e) {
    if (isLlavaMedError(e)) throw e;
    throw llavaError('ERR_INVALID_ARGUMENT', `Reading ${what} threw (${e instanceof Error ? e.message : String(e)}); pass an object of plain values.`, e);
  }
}

/**
 * A plain copy of an options object: each own getter runs exactly once, here. `undefined` gives `{}`;
 * anything but an object is ERR_INVALID_ARGUMENT.
 */
export function plainOptions<T extends object>(opts: T | undefined, what: string): T {
  if (opts === undefined) return {} as T;
  if (opts === null || typeof opts !== 'object') throw llavaError('ERR_INVALID_ARGUMENT', `${what} must be an object, got ${opts === null ? 'null' : typeof opts}.`);
  return readArg(() => ({ ...opts }), what);
}
