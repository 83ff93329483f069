/**
 * The Hugging Face settings huggingface_hub (Python) reads, read the same way, so a user's existing
 * setup (a mirror, a token, a cache on another disk, offline mode) works unchanged:
 *   HF_ENDPOINT                      Hub URL (mirrors), default https://huggingface.co
 *   HF_HOME                          default $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface
 *   HF_HUB_CACHE                     default $HF_HOME/hub (legacy: HUGGINGFACE_HUB_CACHE)
 *   HF_TOKEN                         else the token file: HF_TOKEN_PATH or $HF_HOME/token (legacy: HUGGING_FACE_HUB_TOKEN)
 *   HF_HUB_OFFLINE=1                 never touch the network; use the cache only
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where and how the Hub is reached, as {@link hubSettings} reads it from the environment. */
export interface HubSettings {
  /** Hub base URL without a trailing slash. */
  endpoint: string;
  /** Access token, if any (sent only to the endpoint's origin, never to a CDN it redirects to). */
  token?: string;
  /** The hub cache folder holding `models--org--name/{blobs,snapshots,refs}`. */
  cacheDir: string;
  /** Use only the cache, never the network (`HF_HUB_OFFLINE=1`). */
  offline: boolean;
}

const TRUE = new Set(['1', 'on', 'yes', 'true']);

export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
}

/**
 * The Hub settings the `huggingface_hub` Python library would use: `HF_ENDPOINT` (default https://huggingface.co),
 * `HF_TOKEN` or the token file under `HF_HOME`, `HF_HUB_CACHE` (default `$HF_HOME/hub`), `HF_HUB_OFFLINE`. Never throws.
 */
export function hubSettings(env: NodeJS.ProcessEnv = process.env): HubSettings {
  const home = hfHome(env);
  const cacheDir = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || join(home, 'hub');
  const endpoint = (env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
  let token = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined;
  if (!token) {
    try {
      token = readFileSync(env.HF_TOKEN_PATH || join(home, 'token'), 'utf8').trim() || undefined;
    } catch {
      token = undefined;
    }
  }
  return { endpoint, token, cacheDir, offline: TRUE.has((env.HF_HUB_OFFLINE ?? '').trim().toLowerCase()) };
}
