// Fold the LLaVA-Med v0 delta into LLaMA-7B and write GGUF + mmproj, then quantize to Q4_K_M.
//   node examples/convert.mjs [base delta vision outDir]
// Without folders it writes small random-weight checkpoints in the real Hugging Face layouts.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { convertV0, quantize } from 'llava-med/convert';
import { describeGguf } from 'llava-med/gguf';
import { DEMO_DIMS, writeSyntheticV0 } from 'llava-med/demo';

let [base, delta, vision, out] = process.argv.slice(2);
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'llava-med-convert-'));
try {
  if (!base) ({ base, delta, vision } = await writeSyntheticV0(path.join(work, 'hf'), DEMO_DIMS));
  out ??= path.join(work, 'gguf');
  const r = await convertV0({ base, delta, vision, out, name: 'llava-med-7b-v0', outtype: 'f16' });
  const q4 = await quantize({ input: r.model, output: path.join(out, 'llava-med-7b-v0.Q4_K_M.gguf'), type: 'Q4_K_M' });
  const info = await describeGguf(q4.output);
  console.log(JSON.stringify({ model: path.basename(q4.output), mmproj: path.basename(r.mmproj), fileType: info.fileType, kind: info.kind }));
} finally {
  await fs.rm(work, { recursive: true, force: true });
}
