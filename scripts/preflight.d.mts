// Types of scripts/preflight.mjs for the tests (test/install/).
export function which(cmd: string, env?: NodeJS.ProcessEnv): string | undefined;
export function cudaRoot(env?: NodeJS.ProcessEnv): string | undefined;
export function preflight(gpu?: string, env?: NodeJS.ProcessEnv, opts?: { llamaReady?: boolean }): string[];
