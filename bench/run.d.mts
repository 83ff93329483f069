// Types of bench/run.mjs's exports for the tests (test/bench/).
export function report(data: Record<string, unknown>, cfg?: Record<string, unknown>): string;
export const LLAMA_NODE_VERSION: string;
