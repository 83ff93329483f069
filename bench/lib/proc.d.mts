// Types of bench/lib/proc.mjs for the tests (test/bench/).
export interface Measured {
  code: number; signal: string | null; wallMs: number; peakRssMb: number; cpuS: number; stdout: string;
  lines: { t: number; stream: 'stdout' | 'stderr'; text: string }[];
}
export function measure(cmd: string, args: string[], o?: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; wrap?: string[] }): Promise<Measured>;
export function childEnv(threads: number, extra?: Record<string, string>, spin?: string | null): NodeJS.ProcessEnv;
export function setSpinCount(v: string | null): void;
