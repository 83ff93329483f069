/**
 * Queue addresses: `redis://[user[:password]@]host[:port][/db]/<run>` (`rediss://` for TLS). Credentials come
 * from the URL or from `LLAVA_MED_REDIS_USERNAME` / `LLAVA_MED_REDIS_PASSWORD` (the URL wins), and are never
 * printed: every message built here shows {@link QueueAddress.display}, where the password is `***`, and
 * errors from the Redis client pass through {@link QueueAddress.mask}.
 */
import { llavaError } from '../../errors.js';

/** A parsed queue address (see {@link parseQueueUrl}). */
export interface QueueAddress {
  /** The run's name: the BullMQ queue name and the prefix of the run's own keys. */
  run: string;
  /** ioredis connection options (host, port, db, username, password, tls). */
  connection: {
    /** Host name or address. */
    host: string;
    /** TCP port. */
    port: number;
    /** Database index. */
    db: number;
    /** ACL user name, when given. */
    username?: string;
    /** Password, when given. */
    password?: string;
    /** TLS options (`rediss://`). */
    tls?: Record<string, never>;
  };
  /** The address with the password replaced by `***`: the only form that is ever printed. */
  display: string;
  /** Replaces the password (and its URL-encoded form) in any text by `***`. */
  mask(text: string): string;
}

const RUN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * Parses a queue URL. The run name is the last path segment and is required (`redis://host:6379/vqa-rad-7b`,
 * or with a database index `redis://host:6379/2/vqa-rad-7b`).
 *
 * @throws LlavaMedError `ERR_INVALID_ARGUMENT` (not a redis URL, no run name, bad db or port); the message
 *   never contains the password.
 */
export function parseQueueUrl(url: string, env: NodeJS.ProcessEnv = process.env): QueueAddress {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // The URL itself may hold a password: never echo it.
    throw llavaError('ERR_INVALID_ARGUMENT', 'The queue address is not a URL: expected redis://[user[:password]@]host[:port][/db]/<run-name>.');
  }
  const secrets: string[] = [];
  if (u.password) secrets.push(u.password, safeDecode(u.password));
  const envPassword = env.LLAVA_MED_REDIS_PASSWORD;
  if (envPassword) secrets.push(envPassword);
  const mask = (text: string): string => {
    let out = text;
    for (const s of secrets) if (s) out = out.split(s).join('***');
    return out;
  };
  const shown = new URL(u.href);
  if (shown.password) shown.password = '***';
  const display = shown.href;
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw llavaError('ERR_INVALID_ARGUMENT', `The queue address ${display} is not a redis:// or rediss:// URL.`);
  }
  const parts = u.pathname.split('/').filter(Boolean).map(safeDecode);
  if (parts.length < 1 || parts.length > 2) {
    throw llavaError('ERR_INVALID_ARGUMENT', `The queue address ${display} needs a run name as its path: redis://host:port/<run-name> or redis://host:port/<db>/<run-name>.`);
  }
  const run = parts[parts.length - 1]!;
  if (!RUN.test(run)) {
    throw llavaError('ERR_INVALID_ARGUMENT', `The run name ${JSON.stringify(run)} in ${display} must be 1–100 letters, digits, '.', '_' or '-', starting with a letter or digit.`);
  }
  let db = 0;
  if (parts.length === 2) {
    db = Number(parts[0]);
    if (!/^\d+$/.test(parts[0]!) || db > 65535) throw llavaError('ERR_INVALID_ARGUMENT', `The database index ${JSON.stringify(parts[0])} in ${display} must be a non-negative integer.`);
  }
  const port = u.port === '' ? 6379 : Number(u.port);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw llavaError('ERR_INVALID_ARGUMENT', `The queue address ${display} has no host.`);
  const connection: QueueAddress['connection'] = { host, port, db };
  const username = u.username ? safeDecode(u.username) : env.LLAVA_MED_REDIS_USERNAME || undefined;
  const password = u.password ? safeDecode(u.password) : envPassword || undefined;
  if (username) connection.username = username;
  if (password) connection.password = password;
  if (u.protocol === 'rediss:') connection.tls = {};
  return { run, connection, display, mask };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
