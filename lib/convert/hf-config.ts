/**
 * config.json readers for the HF folders a conversion starts from: the LLaMA-1 base, the LLaVA-Med v0
 * delta (LlavaLlamaForCausalLM), the v1.5 checkpoint (LlavaMistralForCausalLM) and a CLIP model.
 *
 * The schemas are loose on purpose: real configs carry many fields we never read (segtok leftovers in
 * v1.5, training flags in v0), and rejecting them would reject genuine checkpoints. What we do read is
 * validated, so a typo'd or truncated config fails here with the file named, not deep in a conversion.
 */
import { MAX_TEXT_FILE_BYTES, readTextFile } from '../formats/file-read.js';
import { join } from 'node:path';
import { z } from 'zod';
import { isLlavaMedError, llavaError } from '../errors.js';

const posInt = z.number().int().positive();

/** LLaMA / Mistral / LLaVA(-Mistral) causal-LM config, as far as conversion needs it. */
export const LlmConfigSchema = z.looseObject({
  architectures: z.array(z.string()).optional(),
  model_type: z.string().optional(),
  _name_or_path: z.string().optional(),
  hidden_size: posInt,
  intermediate_size: posInt,
  num_hidden_layers: posInt,
  num_attention_heads: posInt,
  num_key_value_heads: posInt.optional(),
  rms_norm_eps: z.number().positive(),
  // LLaMA-1 HF conversions of the decapoda era say max_sequence_length; later ones max_position_embeddings.
  max_position_embeddings: posInt.optional(),
  max_sequence_length: posInt.optional(),
  rope_theta: z.number().positive().optional(),
  rope_scaling: z.unknown().optional(),
  vocab_size: posInt,
  // Stale in the v0 delta (bos 0, eos 1, pad -1): read for diagnostics only, never used as token ids.
  bos_token_id: z.number().int().nullable().optional(),
  eos_token_id: z.number().int().nullable().optional(),
  pad_token_id: z.number().int().nullable().optional(),
  tie_word_embeddings: z.boolean().optional(),
  torch_dtype: z.string().nullable().optional(),
  // LLaVA fields
  mm_vision_tower: z.string().optional(),
  mm_hidden_size: posInt.optional(),
  mm_vision_select_layer: z.number().int().optional(),
  mm_use_im_start_end: z.boolean().optional(),
  mm_projector_type: z.string().optional(),
  use_mm_proj: z.boolean().optional(),
});
export type LlmConfig = z.infer<typeof LlmConfigSchema>;

const ClipVisionConfigSchema = z.looseObject({
  model_type: z.string().optional(),
  hidden_size: posInt,
  intermediate_size: posInt,
  num_attention_heads: posInt,
  num_hidden_layers: posInt,
  image_size: posInt,
  patch_size: posInt,
  // HF CLIPVisionConfig defaults; openai/clip-vit-large-patch14 states both explicitly.
  layer_norm_eps: z.number().positive().default(1e-5),
  hidden_act: z.string().default('quick_gelu'),
  projection_dim: posInt.optional(),
  num_channels: posInt.default(3),
});
export type ClipVisionConfig = z.infer<typeof ClipVisionConfigSchema>;

const CropSize = z.union([posInt, z.looseObject({ height: posInt, width: posInt })]);
const PreprocessorSchema = z.looseObject({
  image_mean: z.array(z.number()).min(3).optional(),
  // CLIP divides by the std: zero or negative would give Inf/garbage pixels.
  image_std: z.array(z.number().positive()).min(3).optional(),
  crop_size: CropSize.optional(),
  size: z.union([posInt, z.looseObject({ shortest_edge: posInt.optional() })]).optional(),
});

/** OpenAI CLIP normalisation, the CLIPImageProcessor default, used when preprocessor_config.json is absent. */
export const OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

export interface ClipFolderConfig {
  vision: ClipVisionConfig;
  imageMean: number[];
  imageStd: number[];
  /** The configuration's own name, if any (provenance). */
  nameOrPath?: string;
}

async function readJsonFile(path: string, required: boolean): Promise<unknown> {
  let text: string;
  try {
    text = await readTextFile(path, { what: 'JSON file', maxBytes: MAX_TEXT_FILE_BYTES, tooLargeCode: 'ERR_FORMAT', notRegularCode: 'ERR_FORMAT' });
  } catch (e) {
    if (isLlavaMedError(e, 'ERR_FILE_NOT_FOUND') && !required) return undefined;
    if (isLlavaMedError(e, 'ERR_FILE_NOT_FOUND')) throw llavaError('ERR_FILE_NOT_FOUND', `${path} does not exist.`, e);
    throw e;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const nonFinite = /(?<![\w"])-?(NaN|Infinity)(?![\w"])/.exec(text);
    if (nonFinite) throw llavaError('ERR_FORMAT', `${path} holds ${nonFinite[0]} (Python's json writes it; JSON has no such value): a configuration value is not a finite number. Fix the file.`, e);
    throw llavaError('ERR_FORMAT', `${path} is not valid JSON: ${(e as Error).message}`, e);
  }
}

/** Reads a JSON file, or undefined when it does not exist. */
export function readOptionalJson(path: string): Promise<unknown> {
  return readJsonFile(path, false);
}

function zodMessage(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

export async function readLlmConfig(dir: string): Promise<LlmConfig> {
  const path = join(dir, 'config.json');
  const raw = await readJsonFile(path, true);
  const parsed = LlmConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw llavaError('ERR_FORMAT', `${path} is not a LLaMA-style model config: ${zodMessage(parsed.error)}`);
  }
  const c = parsed.data;
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) {
    // No LLaVA-Med release uses RoPE scaling; silently ignoring it would give a wrong model.
    throw llavaError('ERR_CONVERT', `${path} sets rope_scaling, which this converter does not support.`);
  }
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw llavaError('ERR_FORMAT', `${path}: hidden_size ${c.hidden_size} is not a multiple of num_attention_heads ${c.num_attention_heads}.`);
  }
  const kv = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % kv !== 0) {
    throw llavaError('ERR_FORMAT', `${path}: num_attention_heads ${c.num_attention_heads} is not a multiple of num_key_value_heads ${kv}.`);
  }
  return c;
}

/** Context length as the model was trained: max_position_embeddings, else max_sequence_length, else 2048 (LLaMA-1). */
export function contextLength(c: LlmConfig): number {
  return c.max_position_embeddings ?? c.max_sequence_length ?? 2048;
}

export function headCountKv(c: LlmConfig): number {
  return c.num_key_value_heads ?? c.num_attention_heads;
}

/**
 * Reads a CLIP folder (openai/clip-vit-large-patch14 layout: config.json with vision_config, or a bare
 * CLIPVisionConfig) and its preprocessor_config.json. Anything else (SigLIP, BiomedCLIP's open_clip
 * layout, a LLaMA folder passed by mistake) is refused here, because the mmproj graph is CLIP-specific.
 */
export async function readClipConfig(dir: string): Promise<ClipFolderConfig> {
  const path = join(dir, 'config.json');
  const raw = await readJsonFile(path, true);
  if (typeof raw !== 'object' || raw === null) throw llavaError('ERR_FORMAT', `${path} is not a JSON object.`);
  const obj = raw as Record<string, unknown>;
  const modelType = typeof obj.model_type === 'string' ? obj.model_type : undefined;
  let visionRaw: unknown;
  if (modelType === 'clip' && typeof obj.vision_config === 'object' && obj.vision_config !== null) {
    visionRaw = obj.vision_config;
  } else if (modelType === 'clip_vision_model') {
    visionRaw = obj;
  } else {
    throw llavaError(
      'ERR_CONVERT',
      `${dir} is not a CLIP model folder (config.json model_type is ${JSON.stringify(modelType ?? null)}; ` +
        `expected "clip" with a vision_config, e.g. openai/clip-vit-large-patch14` +
        `${modelType === 'llama' || modelType === 'llava' ? '; this looks like a language model folder' : ''}).`,
    );
  }
  const parsed = ClipVisionConfigSchema.safeParse(visionRaw);
  if (!parsed.success) {
    throw llavaError('ERR_FORMAT', `${path}: vision_config is incomplete: ${zodMessage(parsed.error)}`);
  }
  const vision = parsed.data;
  if (vision.hidden_act !== 'quick_gelu' && vision.hidden_act !== 'gelu') {
    // clip.cpp only knows quick_gelu (default), gelu and silu; LLaVA's tower is quick_gelu.
    throw llavaError('ERR_CONVERT', `${path}: hidden_act ${vision.hidden_act} is not supported (expected quick_gelu).`);
  }
  if (vision.image_size % vision.patch_size !== 0) {
    throw llavaError('ERR_FORMAT', `${path}: image_size ${vision.image_size} is not a multiple of patch_size ${vision.patch_size}.`);
  }
  const preRaw = await readJsonFile(join(dir, 'preprocessor_config.json'), false);
  let imageMean: number[] = [...OPENAI_CLIP_MEAN];
  let imageStd: number[] = [...OPENAI_CLIP_STD];
  if (preRaw !== undefined) {
    const pre = PreprocessorSchema.safeParse(preRaw);
    if (!pre.success) {
      throw llavaError('ERR_FORMAT', `${join(dir, 'preprocessor_config.json')}: ${zodMessage(pre.error)}`);
    }
    if (pre.data.image_mean) imageMean = pre.data.image_mean.slice(0, 3);
    if (pre.data.image_std) imageStd = pre.data.image_std.slice(0, 3);
    const crop = pre.data.crop_size;
    const cropPx = crop === undefined ? undefined : typeof crop === 'number' ? crop : crop.height;
    if (cropPx !== undefined && cropPx !== vision.image_size) {
      throw llavaError('ERR_FORMAT', `${dir}: preprocessor crop_size ${cropPx} disagrees with vision image_size ${vision.image_size}.`);
    }
  }
  const nameOrPath = typeof obj._name_or_path === 'string' ? obj._name_or_path : undefined;
  return { vision, imageMean, imageStd, ...(nameOrPath ? { nameOrPath } : {}) };
}
