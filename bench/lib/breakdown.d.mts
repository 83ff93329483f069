// Types of bench/lib/breakdown.mjs for the tests (test/bench/).
export interface Buffers { model: Record<string, number>; kv: number; output: number; lmCompute: number; clipModel: number; clipCompute: number }
export function parseBuffers(lines: string[]): Buffers;
export function rssComponents(row: Record<string, unknown>, base: number): Record<string, number> | null;
export function rssBreakdown(lm: Record<string, unknown>[], cli: Record<string, unknown>[], o?: { cliBaseMb?: number; fa?: Record<string, unknown>[]; title?: string }): string[];
export function readyTimeline(lm: Record<string, unknown>[], cli: Record<string, unknown>[]): string[];
export function cliEncodeWindows(lines: { text: string; mono: number }[]): [number, number][];
export function cliEncodeTimes(text: string): number[];
