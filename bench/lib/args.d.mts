// Types of bench/lib/args.mjs for the tests (test/bench/).
export const SKIPS: readonly string[];
export const FULL_RUNS: number;
export interface BenchArgs {
  runs: number; threads: number; maxTokens: number; questions: number; cliSample: number; settleMs: number;
  images: number; sequences: number; llamaNodeRuns: number; spin: string; convertLayers: number[];
  out: string; label?: string; rerender: boolean; roofline: boolean; full: boolean; profile: boolean; skip: Record<string, boolean>;
}
export function parseBenchArgs(argv: string[]): BenchArgs;
