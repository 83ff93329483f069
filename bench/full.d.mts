// Types of bench/full.mjs for the tests (test/bench/).
export interface FullConfig { key: string; tool: 'llava-med' | 'mtmd-cli'; size: '4L' | '32L'; mode: 'none' | 'mmap'; extra?: Record<string, unknown> }
export interface Summary { n: number; median: number; min: number; max: number }
export interface FullRow { loadAvg: number[]; [k: string]: number | number[] }
export interface PerfSymbols { totalSamples: number; symbols: Record<string, number> }
export const FULL_SECTION: string;
export const PERF_HZ: number;
export const PROFILED: string[];
export function perfSymbols(file: string): PerfSymbols | null;
export function profileTable(prof: Record<string, PerfSymbols>, o?: { top?: number }): string[];
export function fullConfigs(o?: { lmFlashAttn?: boolean }): FullConfig[][];
export function fullRounds(o: {
  runs: number; images: string[]; questions: string[]; lmFlashAttn?: boolean;
  run: (c: FullConfig, image: string, question: string, wrap: string[]) => Promise<Record<string, number>>;
  wrapFor?: (c: FullConfig, round: number) => string[];
  onRound?: (partial: { res: Record<string, FullRow[]>; load: Summary }, round: number) => Promise<void>;
  settle: () => Promise<void>; log: (m: string) => void;
}): Promise<{ res: Record<string, FullRow[]>; load: Summary }>;
export function fullReport(o: {
  M: Record<string, unknown>; F: { res: Record<string, unknown[]>; load: Summary }; build: Record<string, unknown> | null;
  threads: number; maxTokens: number; loadEnd?: number[]; perf?: Record<string, PerfSymbols> | null;
}): string;
export const ENCODE_IMAGES: number;
export function verdictCell(r: Summary, better: 'higher' | 'lower', target: number): { ok: boolean | null; cell: string };
