// Types of bench/quant.mjs's exports for the tests (test/bench/).
export interface Matrix { name: string; type: string; ne0: number; params: number }
export const MAIN_TYPE: Record<string, string>;
export function typeShares(matrices: Matrix[]): string;
export function fallbacks(quant: string, matrices: Matrix[], blockSize: (type: string) => number): string;
export function quantReport(data: Record<string, unknown>): string;
