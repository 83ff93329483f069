// Types of bench/lib/bandwidth.mjs for the tests (test/bench/).
export function bandwidthTool(root: string): string;
