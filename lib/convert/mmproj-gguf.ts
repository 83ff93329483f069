/**
 * The mmproj GGUF clip.cpp loads: CLIP ViT tower + LLaVA projector (llama-cpp-notes §2, §2.6).
 *
 * Every key is written with exactly the GGUF type clip.cpp reads (checked against tools/mtmd/clip.cpp
 * get_u32/get_f32/get_bool/get_arr_f32/get_arr_int): a wrong type is a GGML_ASSERT that aborts the whole
 * Node process, not an exception.
 *
 * Layer handling: the features are hidden_states[-2] (input of the last encoder layer). clip.cpp's llava
 * graph runs layers [0, max_feature_layer) with max_feature_layer = feature_layer when given, else
 * n_layer-1 (one too few with the legacy converter's block_count = n-1). So we write block_count = n-1,
 * the tensors of layers 0..n-2 only, and feature_layer = [n-1]: exactly n-1 layers run. No v.post_ln.
 */
import { llavaError } from '../errors.js';
import { GgmlType, GgufValueType, GgufWriter } from '../formats/gguf.js';
import type { CheckpointReader } from '../formats/tensor.js';
import type { ClipFolderConfig } from './hf-config.js';
import { emitTensors, type EmitProgress, type PlannedTensor } from './emit.js';
import { identityStack, mirrorColumns } from './projector.js';
import { addProvenance, type Provenance } from './provenance.js';
import { clipTensorName } from './tensor-names.js';
import type { LazyTensor, LlavaMedVariant, OutType } from './types.js';

export type ProjectorSpec =
  | { kind: 'linear'; weight: LazyTensor; bias: LazyTensor }
  | { kind: 'mlp2x_gelu'; w0: LazyTensor; b0: LazyTensor; w2: LazyTensor; b2: LazyTensor };

export interface MmprojGgufOptions {
  path: string;
  clip: ClipFolderConfig;
  /** The CLIP checkpoint (names "vision_model.*"). */
  clipWeights: CheckpointReader;
  projector: ProjectorSpec;
  outtype: OutType;
  variant: LlavaMedVariant;
  provenance: Provenance;
  signal?: AbortSignal | undefined;
  onTensor?: ((p: EmitProgress) => void) | undefined;
  /** Write NaN/Inf weights instead of refusing them (emit.ts). */
  allowNonFinite?: boolean | undefined;
}

/** The projector (mmproj) GGUF a conversion wrote. */
export interface MmprojGgufResult {
  /** Its path. */
  path: string;
  /** Tensors written. */
  tensorCount: number;
  /** Image tokens per image: (image size / patch size)², 256 for v0, 576 for v1.5. */
  imageTokenCount: number;
  /** Width of the embeddings given to the LLM. */
  projectionDim: number;
}

function weightType(gguf: string, shape: readonly number[], outtype: OutType): GgmlType {
  // 1-D tensors (biases, norms, class_embd) and the position table are always F32 (as the reference
  // converter does); the q8_0 outtype applies to the LLM only: the mmproj stays F16, which keeps the
  // [I; -I] / [W | -W] projector exact and the vision error low.
  if (shape.length === 1 || gguf === 'v.position_embd.weight') return GgmlType.F32;
  return outtype === 'f32' ? GgmlType.F32 : GgmlType.F16;
}

function lazyOf(r: CheckpointReader, name: string): LazyTensor {
  const s = r.get(name);
  return { name, shape: s.shape, read: () => s.readF32() };
}

function expect(name: string, shape: readonly number[], want: readonly number[]): void {
  if (shape.length !== want.length || shape.some((d, i) => d !== want[i])) {
    throw llavaError('ERR_SHAPE_MISMATCH', `${name} has shape [${shape.join(', ')}], expected [${want.join(', ')}].`);
  }
}

const LAYER_LEAVES = [
  'attn_q.weight', 'attn_q.bias', 'attn_k.weight', 'attn_k.bias', 'attn_v.weight', 'attn_v.bias',
  'attn_out.weight', 'attn_out.bias', 'ln1.weight', 'ln1.bias', 'ln2.weight', 'ln2.bias',
  'ffn_up.weight', 'ffn_up.bias', 'ffn_down.weight', 'ffn_down.bias',
];

export async function writeMmprojGguf(o: MmprojGgufOptions): Promise<MmprojGgufResult> {
  const v = o.clip.vision;
  const d = v.hidden_size;
  const nLayers = v.num_hidden_layers;
  if (nLayers < 2) throw llavaError('ERR_CONVERT', `The CLIP tower has ${nLayers} layer(s); hidden_states[-2] needs at least 2.`);
  const keptLayers = nLayers - 1;
  const side = v.image_size / v.patch_size;
  const nPatches = side * side;

  // Vision tensors: map, drop what the feature path never uses, keep layers 0..n-2.
  const vision: { gguf: string; src: LazyTensor }[] = [];
  for (const name of o.clipWeights.names()) {
    const m = clipTensorName(name);
    if (m === null) continue;
    if (m.layer !== undefined && m.layer >= keptLayers) {
      if (m.layer >= nLayers) throw llavaError('ERR_CONVERT', `${name} is beyond num_hidden_layers = ${nLayers}.`);
      continue;
    }
    vision.push({ gguf: m.gguf, src: lazyOf(o.clipWeights, name) });
  }
  const byName = new Map(vision.map((t) => [t.gguf, t]));
  const need = (n: string, shape: readonly number[]): void => {
    const t = byName.get(n);
    if (!t) throw llavaError('ERR_CONVERT', `The CLIP checkpoint (${o.clipWeights.files.join(', ')}) lacks the tensor for ${n}.`);
    expect(t.src.name, t.src.shape, shape);
  };
  need('v.class_embd', [d]);
  need('v.patch_embd.weight', [d, v.num_channels, v.patch_size, v.patch_size]);
  need('v.position_embd.weight', [nPatches + 1, d]);
  need('v.pre_ln.weight', [d]);
  need('v.pre_ln.bias', [d]);
  for (let il = 0; il < keptLayers; il++) {
    for (const leaf of LAYER_LEAVES) {
      const n = `v.blk.${il}.${leaf}`;
      const shape =
        leaf.startsWith('attn_') && leaf.endsWith('.weight') ? [d, d]
        : leaf === 'ffn_up.weight' ? [v.intermediate_size, d]
        : leaf === 'ffn_down.weight' ? [d, v.intermediate_size]
        : leaf === 'ffn_up.bias' ? [v.intermediate_size]
        : [d];
      need(n, shape);
    }
  }
  if (vision.length !== 5 + keptLayers * LAYER_LEAVES.length) {
    throw llavaError('ERR_CONVERT', `Unexpected extra tensors in the CLIP checkpoint (${vision.length} mapped).`);
  }
  const order = (n: string): [number, number, string] => {
    const m = /^v\.blk\.(\d+)\.(.+)$/.exec(n);
    return m ? [1, Number(m[1]), m[2]!] : [0, 0, n];
  };
  vision.sort((a, b) => {
    const ka = order(a.gguf);
    const kb = order(b.gguf);
    return ka[0] - kb[0] || ka[1] - kb[1] || (ka[2] < kb[2] ? -1 : ka[2] > kb[2] ? 1 : 0);
  });

  // Projector tensors.
  const proj: { name: string; shape: number[]; produce: () => Promise<Float32Array> }[] = [];
  let nEmbdText: number;
  if (o.projector.kind === 'linear') {
    const { weight, bias } = o.projector;
    if (weight.shape.length !== 2 || weight.shape[1] !== d) {
      throw llavaError('ERR_SHAPE_MISMATCH', `${weight.name} has shape [${weight.shape.join(', ')}]; expected [n_embd_text, ${d}] for CLIP width ${d}.`);
    }
    const out = weight.shape[0]!;
    expect(bias.name, bias.shape, [out]);
    nEmbdText = out;
    proj.push(
      { name: 'mm.0.weight', shape: [2 * d, d], produce: async () => identityStack(d) },
      { name: 'mm.0.bias', shape: [2 * d], produce: async () => new Float32Array(2 * d) },
      { name: 'mm.2.weight', shape: [out, 2 * d], produce: async () => mirrorColumns(await weight.read(), out, d) },
      { name: 'mm.2.bias', shape: [out], produce: () => bias.read() },
    );
  } else {
    const { w0, b0, w2, b2 } = o.projector;
    if (w0.shape.length !== 2 || w0.shape[1] !== d) {
      throw llavaError('ERR_SHAPE_MISMATCH', `${w0.name} has shape [${w0.shape.join(', ')}]; expected [hidden, ${d}] for CLIP width ${d}.`);
    }
    const mid = w0.shape[0]!;
    expect(b0.name, b0.shape, [mid]);
    if (w2.shape.length !== 2 || w2.shape[1] !== mid) {
      throw llavaError('ERR_SHAPE_MISMATCH', `${w2.name} has shape [${w2.shape.join(', ')}]; expected [n_embd_text, ${mid}].`);
    }
    nEmbdText = w2.shape[0]!;
    expect(b2.name, b2.shape, [nEmbdText]);
    proj.push(
      { name: 'mm.0.weight', shape: [...w0.shape], produce: () => w0.read() },
      { name: 'mm.0.bias', shape: [...b0.shape], produce: () => b0.read() },
      { name: 'mm.2.weight', shape: [...w2.shape], produce: () => w2.read() },
      { name: 'mm.2.bias', shape: [...b2.shape], produce: () => b2.read() },
    );
  }

  const plan: PlannedTensor[] = [
    ...vision.map((t) => ({ name: t.gguf, type: weightType(t.gguf, t.src.shape, o.outtype), shape: t.src.shape, produce: () => t.src.read() })),
    ...proj.map((p) => ({ name: p.name, type: weightType(p.name, p.shape, o.outtype), shape: p.shape, produce: p.produce })),
  ];

  const w = await GgufWriter.create(o.path);
  try {
    w.addString('general.architecture', 'clip');
    w.addString('general.type', 'mmproj');
    addProvenance(w, o.provenance);
    w.addU32('general.file_type', o.outtype === 'f32' ? 0 : 1);
    w.addU32('general.quantization_version', 2);
    w.addBool('clip.has_vision_encoder', true);
    w.addString('clip.projector_type', 'mlp');
    w.addBool('clip.use_gelu', v.hidden_act === 'gelu');
    w.addU32('clip.vision.image_size', v.image_size);
    w.addU32('clip.vision.patch_size', v.patch_size);
    w.addU32('clip.vision.embedding_length', d);
    w.addU32('clip.vision.feed_forward_length', v.intermediate_size);
    // Unused by the mlp graph but required by the loader; the modern converter writes n_embd_text.
    w.addU32('clip.vision.projection_dim', nEmbdText);
    w.addU32('clip.vision.attention.head_count', v.num_attention_heads);
    w.addF32('clip.vision.attention.layer_norm_epsilon', v.layer_norm_eps);
    w.addU32('clip.vision.block_count', keptLayers);
    w.addArray('clip.vision.feature_layer', GgufValueType.INT32, [keptLayers]);
    w.addArray('clip.vision.image_mean', GgufValueType.FLOAT32, o.clip.imageMean);
    w.addArray('clip.vision.image_std', GgufValueType.FLOAT32, o.clip.imageStd);
    w.addString('llava_med.variant', o.variant);
    w.addString('llava_med.projector', o.projector.kind);
    w.addU32('llava_med.image_token_count', nPatches);
    w.addU32('llava_med.clip_num_hidden_layers', nLayers);
  } catch (e) {
    await w.abort();
    throw e;
  }
  await emitTensors(w, plan, { signal: o.signal, onTensor: o.onTensor, what: 'mmproj conversion', allowNonFinite: o.allowNonFinite });
  return { path: o.path, tensorCount: plan.length, imageTokenCount: nPatches, projectionDim: nEmbdText };
}
