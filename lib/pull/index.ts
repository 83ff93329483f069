/**
 * `llava-med/pull`: download the released LLaVA-Med weights from the Hugging Face Hub, convert,
 * quantize and register them under a name (`llava-med:v1.5-q4_k_m`) that `LlavaMed.load({ model })`
 * and the CLI understand; list and remove registered models.
 */
export { pull, checkLicenses, type PullOptions, type PullProgress, type PullResult } from './pull.js';
export { RECIPES, LICENSES, checkpointFiles, quantTag, type Recipe, type LicenseId } from './recipes.js';
export { listModels, findModel, resolveModel, removeModel, registerModel, isModelName, modelsDir, type RegisteredModel, type ModelManifest, type ModelSource } from './registry.js';
export { resolveRepo, downloadFiles, snapshotDownload, hubSettings, type HubOptions, type RepoFile, type RepoSnapshot, type DownloadProgress } from '../hub/index.js';
export type { DownloadResult, HubSettings, RetryPolicy, RetryEvent } from '../hub/index.js';
