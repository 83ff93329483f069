/** What test/install/vulkan-child.mjs reports of one greedy run, and how two runs are compared. */
export interface GreedyRun {
  addon: { path: string; level?: string } | undefined;
  devices: { name: string; type: string; description: string }[];
  gpuLayers: number;
  offloaded: boolean;
  tokens: number[];
  /** log softmax of the logits at each generated position, the whole vocabulary. */
  logprobs: number[][];
  embedding: number[];
  /** ggml / llama.cpp / clip log lines about devices and offloading. */
  where: string[];
}

/**
 * Tolerances of the Vulkan path (lavapipe) against the CPU build on the demo model, from measured
 * differences (docs/build.md "Vulkan"): max |Δ log p| over the whole vocabulary 2.15e-3 ('max'),
 * 2.04e-3 (2 layers); image embedding max |Δ| / max |x| 6.05e-3. Tolerances 4.6× and 3.3× those.
 */
export const VULKAN_LOGPROB_TOL = 0.01;
export const VULKAN_EMBD_TOL = 0.02;

export function compareRuns(ref: GreedyRun, got: GreedyRun): { positions: number; maxLogprobDiff: number; maxChosenDiff: number; maxEmbdDiff: number; minMargin: number } {
  const positions = Math.min(ref.logprobs.length, got.logprobs.length);
  let maxLogprobDiff = 0;
  let maxChosenDiff = 0;
  let minMargin = Infinity;
  for (let i = 0; i < positions; i++) {
    const a = ref.logprobs[i]!;
    const b = got.logprobs[i]!;
    if (a.length !== b.length) throw new Error(`vocabulary sizes differ at position ${i}: ${a.length} vs ${b.length}`);
    for (let k = 0; k < a.length; k++) maxLogprobDiff = Math.max(maxLogprobDiff, Math.abs(a[k]! - b[k]!));
    const tok = ref.tokens[i]!;
    maxChosenDiff = Math.max(maxChosenDiff, Math.abs(a[tok]! - b[tok]!));
    const sorted = [...a].sort((x, y) => y - x);
    minMargin = Math.min(minMargin, sorted[0]! - sorted[1]!);
  }
  const scale = ref.embedding.reduce((m, x) => Math.max(m, Math.abs(x)), 0) || 1;
  let maxEmbdDiff = 0;
  if (ref.embedding.length !== got.embedding.length) maxEmbdDiff = Infinity;
  else for (let i = 0; i < ref.embedding.length; i++) maxEmbdDiff = Math.max(maxEmbdDiff, Math.abs(ref.embedding[i]! - got.embedding[i]!) / scale);
  return { positions, maxLogprobDiff, maxChosenDiff, maxEmbdDiff, minMargin };
}
