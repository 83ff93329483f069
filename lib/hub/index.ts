/** Hugging Face Hub downloads into the huggingface_hub (Python) cache: see client.ts and cache.ts. */
export {
  resolveRepo,
  downloadFiles,
  snapshotDownload,
  freeBytes,
  formatBytes,
  type HubOptions,
  type RepoFile,
  type RepoSnapshot,
  type DownloadProgress,
  type DownloadResult,
} from './client.js';
export { RepoCache, repoFolderName, checkRepoId, COMMIT_RE } from './cache.js';
export { hubSettings, hfHome, type HubSettings } from './env.js';
export type { RetryEvent, RetryPolicy } from './http.js';
