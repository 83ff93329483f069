// Types of scripts/build-native.mjs for the tests (test/install/).
export const GPUS: string[];
export class BuildSettingError extends Error {}
export function selectedGpu(argv?: string[], env?: NodeJS.ProcessEnv): string;
export function cpuLevels(arch?: string): { name: string; description: string; cpuFlags: string[]; ggml: string[] }[];
export function cmakeDefinitions(gpu: string, opts?: { portable?: boolean; level?: string; extra?: string }): string[];
export function buildEnv(env?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
export function parseProgress(line: string): { done?: number; total?: number; pct: number } | undefined;
export function ourMessages(output: string): string[];
