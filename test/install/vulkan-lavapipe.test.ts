/**
 * The Vulkan build's GPU code path, on a software Vulkan driver (Mesa's lavapipe, "llvmpipe" in
 * `vulkaninfo`): the Vulkan addon (`npm run build:vulkan` → build-vulkan/Release) with the model's
 * layers on the Vulkan device (gpuLayers 'max' and a partial count) and the vision encoder on it
 * (useGpu), against the CPU build (build/Release) on the same demo model (real 224 px CLIP
 * geometry: 256 image tokens, f16 weights), image and prompt, each run in its own process:
 *  - the same greedy tokens;
 *  - full-vocabulary log-probabilities at every generated position within VULKAN_LOGPROB_TOL;
 *  - the image embedding within VULKAN_EMBD_TOL (relative to its largest value);
 *  - ggml's own log lines say the layers and the vision encoder ran on the Vulkan device.
 * And the Vulkan addon on a machine without any Vulkan device (the loader pointed at a driver
 * list that does not exist): ggml lists only the CPU, 'max' offloads nothing, the answer is the CPU
 * build's, and the process does not crash.
 * Skipped only when build-vulkan/Release/llava_med.node is absent (it takes a long shader compile:
 * docs/build.md); with the build present and no Vulkan device the test fails and says what to install.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { demoV0 } from '../helpers/tiny-llava.js';
import { testImage } from '../helpers/tiny-gguf.js';
import { ADDON_PATH, REPO, childEnv, compiledEngine } from '../engine/util.js';
import { VULKAN_EMBD_TOL, VULKAN_LOGPROB_TOL, compareRuns, type GreedyRun } from './vulkan-compare.js';

const VULKAN_ADDON = path.join(REPO, 'build-vulkan', 'Release', 'llava_med.node');
const CHILD = fileURLToPath(new URL('./vulkan-child.mjs', import.meta.url));

if (!fs.existsSync(VULKAN_ADDON)) {
  t.comment(`skipped: ${path.relative(REPO, VULKAN_ADDON)} is not built (npm run build:vulkan; docs/build.md "Vulkan")`);
  t.end();
} else {
  const demo = await demoV0();
  const IMAGE_SIZE = 224;
  const dir = t.testdir({});
  const imageFile = path.join(dir, 'image.rgb');
  fs.writeFileSync(imageFile, testImage(IMAGE_SIZE, IMAGE_SIZE, 11));
  const engine = compiledEngine();

  const run = (addon: string, opts: { gpuLayers: number | 'max' | 'auto'; useGpu: boolean }, extraEnv: Record<string, string> = {}): GreedyRun => {
    const jobFile = path.join(dir, `job-${Math.random().toString(36).slice(2)}.json`);
    fs.writeFileSync(jobFile, JSON.stringify({
      model: demo.model, mmproj: demo.mmproj, image: imageFile, imageSize: IMAGE_SIZE, ...opts,
      prefix: [2, 319, 1356, 1546], suffix: [871, 13, 1148, 1001, 901], nGen: 24, ctx: 1024,
    }));
    const r = spawnSync(process.execPath, [CHILD, engine, jobFile], { env: childEnv({ LLAVA_MED_ADDON: addon, ...extraEnv }), encoding: 'utf8', maxBuffer: 256 << 20, timeout: 300_000 });
    if (r.status !== 0) throw new Error(`child (${path.relative(REPO, addon)}, ${JSON.stringify(opts)}) exited ${r.status} ${r.signal ?? ''}\n${(r.stderr ?? '').slice(-3000)}`);
    return JSON.parse(r.stdout) as GreedyRun;
  };

  const cpu = run(ADDON_PATH, { gpuLayers: 0, useGpu: false });
  // ggml-vulkan leaves out devices of type CPU (lavapipe is one) unless they are named.
  const LAVAPIPE = { GGML_VK_VISIBLE_DEVICES: '0' };

  for (const gpuLayers of ['max', 2] as const) {
    t.test(`gpuLayers ${gpuLayers} + the vision encoder on Vulkan: same greedy tokens as the CPU build, log-probabilities within ${VULKAN_LOGPROB_TOL}`, async (t) => {
      const vk = run(VULKAN_ADDON, { gpuLayers, useGpu: true }, LAVAPIPE);
      const gpus = vk.devices.filter((d) => d.type === 'gpu' || d.type === 'igpu');
      t.ok(gpus.length >= 1 && gpus[0]!.name.startsWith('Vulkan'), `a Vulkan device (devices: ${vk.devices.map((d) => `${d.name} ${d.type} "${d.description}"`).join(', ')}); without one install mesa-vulkan-drivers (lavapipe): vulkaninfo --summary should list llvmpipe`);
      t.equal(vk.offloaded, true, 'Model.offloaded');
      t.equal(vk.gpuLayers, gpuLayers === 'max' ? -1 : gpuLayers, 'Model.gpuLayers');
      // ggml's own account of where things ran.
      const want = gpuLayers === 'max' ? /offloaded 5\/5 layers to GPU/ : /offloaded 2\/5 layers to GPU/;
      t.ok(vk.where.some((l) => want.test(l)), `llama.cpp: ${want} (${vk.where.filter((l) => /offload/.test(l)).join(' | ')})`);
      t.ok(vk.where.some((l) => /CLIP using Vulkan/i.test(l)), `clip: the vision encoder on the Vulkan device (${vk.where.filter((l) => /CLIP/i.test(l)).join(' | ')})`);
      const c = compareRuns(cpu, vk);
      t.same(vk.tokens, cpu.tokens, 'the same greedy tokens');
      t.ok(c.maxLogprobDiff <= VULKAN_LOGPROB_TOL, `max |Δ log p| over the whole vocabulary at ${c.positions} positions: ${c.maxLogprobDiff.toExponential(3)} (tolerance ${VULKAN_LOGPROB_TOL})`);
      t.ok(c.maxEmbdDiff <= VULKAN_EMBD_TOL, `image embedding: max |Δ| / max |x| = ${c.maxEmbdDiff.toExponential(3)} (tolerance ${VULKAN_EMBD_TOL})`);
      t.comment(`gpuLayers ${gpuLayers}: max |Δ log p| ${c.maxLogprobDiff.toExponential(3)}, on the chosen tokens ${c.maxChosenDiff.toExponential(3)}; embedding ${c.maxEmbdDiff.toExponential(3)}; smallest margin ${c.minMargin.toFixed(4)}`);
    });
  }

  t.test('the Vulkan build without any Vulkan device: CPU only, no crash, the CPU answer', async (t) => {
    // The Vulkan loader reads its driver list from these (older and newer names); a file that
    // does not exist leaves it with no driver at all, as on a machine without a GPU driver.
    const none = run(VULKAN_ADDON, { gpuLayers: 'max', useGpu: true }, { VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' });
    t.same(none.devices.map((d) => d.type), ['cpu'], 'ggml lists only the CPU');
    t.equal(none.offloaded, false, "'max' offloads nothing");
    t.same(none.tokens, cpu.tokens, "the CPU build's greedy tokens");
    const c = compareRuns(cpu, none);
    t.ok(c.maxLogprobDiff <= 1e-6, `the CPU build's log-probabilities (max |Δ| ${c.maxLogprobDiff.toExponential(3)}): the same ggml-cpu code`);
  });
}
