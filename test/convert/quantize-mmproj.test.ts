// Quantizing a projector: the ViT's matrices become Q8_0, the v0 projector (mm.*, stored as
// [I;-I] / [W|-W] for the GELU identity) stays F16, and the quantized file encodes images close
// to the F16 one.
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quantize } from '../../lib/convert/quantize.js';
import { GgmlType, readGgufHeader } from '../../lib/formats/gguf.js';
import { Model, Projector } from '../../lib/engine/index.js';
import { compare } from '../reference/index.js';
import { noisePixels, tinyV0 } from '../helpers/tiny-llava.js';

t.test('mmproj Q8_0: ViT quantized, projector kept F16, embeddings close to F16', async (t) => {
  const v0 = await tinyV0();
  const dir = await mkdtemp(join(tmpdir(), 'llava-med-qmm-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const out = join(dir, 'mmproj-q8.gguf');
  const r = await quantize({ input: v0.mmproj, output: out, type: 'Q8_0' });
  t.same(r.keptF16, ['^mm\\.'], 'the projector pattern is kept in F16');
  const h = await readGgufHeader(out);
  for (const name of ['mm.0.weight', 'mm.2.weight']) t.equal(h.tensors.find((x) => x.name === name)?.type, GgmlType.F16, `${name} stays F16`);
  const q = h.tensors.filter((x) => x.name.startsWith('v.blk.') && x.type === GgmlType.Q8_0);
  t.ok(q.length > 0, `${q.length} ViT tensors are Q8_0`);

  const model = await Model.load(v0.model);
  t.teardown(() => model.dispose());
  const size = 28;
  const rgb = noisePixels(size, size, 7);
  const embed = async (path: string) => {
    const p = await Projector.load(model, path);
    try {
      const e = await p.encode(rgb, size, size);
      return e.toFloat32Array();
    } finally {
      await p.dispose();
    }
  };
  const ref = await embed(v0.mmproj);
  const got = await embed(out);
  const err = compare(Array.from(got), Array.from(ref)).relError;
  t.ok(err < 5e-2 && err > 0, `Q8_0 mmproj embeddings within 5e-2 of the original (${err.toExponential(2)})`);
});
