/**
 * HF tensor name -> GGUF tensor name, for the LLaMA/Mistral LLM (llama-cpp-notes §5.3, names from
 * src/llama-arch.cpp) and for the CLIP vision tower (clip-impl.h TN_* constants).
 *
 * A mapper returns a GGUF name, `null` for a tensor that is deliberately left out, and throws for a name
 * it does not know: silently dropping an unknown tensor would hide a wrong or newer checkpoint layout.
 */
import { llavaError } from '../errors.js';

const LLM_LAYER: Record<string, string> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};

/** Tensors in LLaVA checkpoints that are not part of the language model. */
export function isMultimodalTensor(name: string): boolean {
  return name.startsWith('model.mm_projector.') || name.startsWith('model.vision_tower.');
}

export function llmTensorName(hf: string): string | null {
  if (hf === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hf === 'model.norm.weight') return 'output_norm.weight';
  if (hf === 'lm_head.weight') return 'output.weight';
  // RoPE frequencies are recomputed by llama.cpp from rope.freq_base (old transformers saved them).
  if (hf.endsWith('.rotary_emb.inv_freq')) return null;
  if (isMultimodalTensor(hf)) return null;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf);
  if (m) {
    const mapped = LLM_LAYER[m[2]!];
    if (mapped) return `blk.${m[1]}.${mapped}`;
  }
  throw llavaError('ERR_CONVERT', `Unexpected tensor ${hf} in the language model checkpoint; refusing to guess its GGUF name.`);
}

const CLIP_LAYER: Record<string, string> = {
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.out_proj': 'attn_out',
  'layer_norm1': 'ln1',
  'layer_norm2': 'ln2',
  // Correct up/down naming (the legacy script swapped them; clip.cpp swaps legacy files back by shape).
  'mlp.fc1': 'ffn_up',
  'mlp.fc2': 'ffn_down',
};

export interface ClipNameResult {
  gguf: string;
  /** Encoder layer index, when the tensor belongs to one. */
  layer?: number;
}

/**
 * Maps a CLIP checkpoint name (`vision_model.*`; the `model.vision_tower.vision_tower.` prefix of
 * LLaVA checkpoints stripped by the caller) to the mmproj name, or null for tensors the LLaVA feature
 * path never uses: the text tower, logit_scale, both projections, position_ids, post_layernorm.
 */
export function clipTensorName(hf: string): ClipNameResult | null {
  if (
    hf.startsWith('text_model.') ||
    hf === 'logit_scale' ||
    hf.startsWith('visual_projection.') ||
    hf.startsWith('text_projection.') ||
    hf.endsWith('.position_ids') ||
    // hidden_states[-2] is taken before the final LayerNorm; clip.cpp would apply v.post_ln if present.
    hf.startsWith('vision_model.post_layernorm.')
  ) {
    return null;
  }
  switch (hf) {
    case 'vision_model.embeddings.class_embedding':
      return { gguf: 'v.class_embd' };
    case 'vision_model.embeddings.patch_embedding.weight':
      return { gguf: 'v.patch_embd.weight' };
    case 'vision_model.embeddings.position_embedding.weight':
      return { gguf: 'v.position_embd.weight' };
    case 'vision_model.pre_layrnorm.weight':
      return { gguf: 'v.pre_ln.weight' };
    case 'vision_model.pre_layrnorm.bias':
      return { gguf: 'v.pre_ln.bias' };
  }
  const m = /^vision_model\.encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hf);
  if (m) {
    const mapped = CLIP_LAYER[m[2]!];
    if (mapped) return { gguf: `v.blk.${m[1]}.${mapped}.${m[3]}`, layer: Number(m[1]) };
  }
  throw llavaError('ERR_CONVERT', `Unexpected tensor ${hf} in the CLIP checkpoint; is this an HF CLIP folder?`);
}
