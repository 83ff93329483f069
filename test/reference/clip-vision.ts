// CLIPVisionTransformer forward as in transformers' modeling_clip.py (4.28–4.36),
// float64, batch of one. Weight names are the HF ones under `vision_model.`.

import {
  activation,
  add,
  getTensor,
  layerNorm,
  linear,
  linearRows,
  mapArray,
  softmax,
  type Weights,
} from './tensor-ops.js';

/** The CLIPVisionConfig fields the forward needs (HF names). */
export interface ClipVisionConfig {
  hidden_size: number;
  intermediate_size: number;
  num_attention_heads: number;
  num_hidden_layers: number;
  image_size: number;
  patch_size: number;
  /** Default 3. */
  num_channels?: number;
  /** Default 1e-5 (CLIP's value). */
  layer_norm_eps?: number;
  /** Default 'quick_gelu' (openai CLIP). */
  hidden_act?: string;
}

export interface ClipVisionOptions {
  /**
   * Name prefix of the tower's tensors. 'vision_model.' for a CLIPVisionModel checkpoint;
   * e.g. 'model.vision_tower.vision_tower.vision_model.' inside a LLaVA-1.5 checkpoint.
   */
  prefix?: string;
}

export interface ClipVisionOutput {
  /**
   * HF `hidden_states`: [0] = pre_layrnorm(embeddings), then one entry per encoder layer
   * (the layer's output). Each entry is n_positions rows (CLS first) of hidden_size.
   * So hidden_states[-2] (= at(-2)) is the input of the last layer.
   */
  hiddenStates: Float64Array[][];
  /** Output of the last layer (before post_layernorm), = hiddenStates.at(-1). */
  lastHiddenState: Float64Array[];
}

/**
 * Run the vision tower on one normalized image, pixelValues laid out [C, H, W] (as
 * CLIPImageProcessor's pixel_values[0]), H = W = image_size.
 */
export function clipVisionForward(
  weights: Weights,
  cfg: ClipVisionConfig,
  pixelValues: Float64Array,
  opts: ClipVisionOptions = {},
): ClipVisionOutput {
  const p = opts.prefix ?? 'vision_model.';
  const D = cfg.hidden_size;
  const C = cfg.num_channels ?? 3;
  const S = cfg.image_size;
  const P = cfg.patch_size;
  const eps = cfg.layer_norm_eps ?? 1e-5;
  if (pixelValues.length !== C * S * S) {
    throw new Error(`reference: pixelValues has ${pixelValues.length} values, expected ${C}x${S}x${S}`);
  }
  const grid = Math.floor(S / P);
  const nPos = grid * grid + 1;

  // Conv2d(stride = kernel = patch, no bias) is a Linear over each patch flattened in
  // (c, ky, kx) order, which is exactly the row-major layout of the [D, C, P, P] weight.
  const convW = getTensor(weights, `${p}embeddings.patch_embedding.weight`, [D, C, P, P]);
  const convAsLinear = { shape: [D, C * P * P], data: convW.data };
  const cls = getTensor(weights, `${p}embeddings.class_embedding`, [D]).data;
  const posEmb = getTensor(weights, `${p}embeddings.position_embedding.weight`, [nPos, D]).data;

  // CLS first, then patches in row-major grid order (flatten(2).transpose(1, 2)).
  const embeds: Float64Array[] = [Float64Array.from(cls)];
  const patch = new Float64Array(C * P * P);
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      let k = 0;
      for (let c = 0; c < C; c++) {
        for (let ky = 0; ky < P; ky++) {
          const row = c * S * S + (gy * P + ky) * S + gx * P;
          for (let kx = 0; kx < P; kx++) patch[k++] = pixelValues[row + kx]!;
        }
      }
      embeds.push(linear(patch, convAsLinear));
    }
  }
  for (let i = 0; i < nPos; i++) {
    const e = embeds[i]!;
    for (let d = 0; d < D; d++) e[d]! += posEmb[i * D + d]!;
  }

  const preW = getTensor(weights, `${p}pre_layrnorm.weight`, [D]);
  const preB = getTensor(weights, `${p}pre_layrnorm.bias`, [D]);
  let h = embeds.map((e) => layerNorm(e, preW, preB, eps));
  const hiddenStates: Float64Array[][] = [h];
  const act = activation(cfg.hidden_act ?? 'quick_gelu');

  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const lp = `${p}encoder.layers.${l}.`;
    const w = (n: string) => getTensor(weights, lp + n);
    const x1 = h.map((r) => layerNorm(r, w('layer_norm1.weight'), w('layer_norm1.bias'), eps));
    const attn = selfAttention(
      cfg.num_attention_heads,
      linearRows(x1, w('self_attn.q_proj.weight'), w('self_attn.q_proj.bias')),
      linearRows(x1, w('self_attn.k_proj.weight'), w('self_attn.k_proj.bias')),
      linearRows(x1, w('self_attn.v_proj.weight'), w('self_attn.v_proj.bias')),
    );
    const attnOut = linearRows(attn, w('self_attn.out_proj.weight'), w('self_attn.out_proj.bias'));
    h = h.map((r, i) => add(r, attnOut[i]!));
    const mlpOut = h.map((r) => {
      const x2 = layerNorm(r, w('layer_norm2.weight'), w('layer_norm2.bias'), eps);
      const mid = mapArray(linear(x2, w('mlp.fc1.weight'), w('mlp.fc1.bias')), act);
      return linear(mid, w('mlp.fc2.weight'), w('mlp.fc2.bias'));
    });
    h = h.map((r, i) => add(r, mlpOut[i]!));
    hiddenStates.push(h);
  }
  return { hiddenStates, lastHiddenState: h };
}

/** Unmasked multi-head attention, scale head_dim^-0.5 (CLIPAttention); returns the pre-out_proj context. */
function selfAttention(
  nHeads: number,
  q: Float64Array[],
  k: Float64Array[],
  v: Float64Array[],
): Float64Array[] {
  const n = q.length;
  const D = q[0]!.length;
  const hd = D / nHeads;
  if (!Number.isInteger(hd)) throw new Error(`reference: hidden ${D} not divisible by ${nHeads} heads`);
  const scale = hd ** -0.5;
  const out = Array.from({ length: n }, () => new Float64Array(D));
  const scores = new Float64Array(n);
  for (let hIdx = 0; hIdx < nHeads; hIdx++) {
    const o = hIdx * hd;
    for (let i = 0; i < n; i++) {
      const qi = q[i]!;
      for (let j = 0; j < n; j++) {
        const kj = k[j]!;
        let s = 0;
        for (let d = 0; d < hd; d++) s += qi[o + d]! * kj[o + d]!;
        scores[j] = s * scale;
      }
      const pr = softmax(scores);
      const oi = out[i]!;
      for (let j = 0; j < n; j++) {
        const vj = v[j]!;
        const pj = pr[j]!;
        for (let d = 0; d < hd; d++) oi[o + d]! += pj * vj[o + d]!;
      }
    }
  }
  return out;
}

/**
 * LLaVA's image features: hidden_states[selectLayer] with the CLS row dropped
 * (mm_vision_select_feature 'patch') → n_patches rows of hidden_size.
 */
export function imageFeatures(
  weights: Weights,
  cfg: ClipVisionConfig,
  pixelValues: Float64Array,
  selectLayer = -2,
  opts: ClipVisionOptions = {},
): Float64Array[] {
  const { hiddenStates } = clipVisionForward(weights, cfg, pixelValues, opts);
  const hs = hiddenStates.at(selectLayer);
  if (!hs) throw new Error(`reference: select layer ${selectLayer} out of range (${hiddenStates.length} states)`);
  return hs.slice(1);
}
