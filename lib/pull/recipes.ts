/**
 * The released LLaVA-Med models as download recipes: which Hugging Face repositories, which files of
 * them the converter reads, and the terms a user accepts before the first download.
 */
import { llavaError } from '../errors.js';
import type { RepoFile } from '../hub/index.js';

/** A released model {@link pull} can fetch and convert. */
export interface Recipe {
  /** Its name, as `pull({ source })` takes it. */
  id: string;
  /** LLaVA-Med release. */
  variant: 'v0' | 'v1.5';
  /** One line for people. */
  description: string;
  /** v1.5: the full model; v0: the delta applied to the user's LLaMA-7B base. */
  model?: string;
  /** v0: the delta repository. */
  delta?: string;
  /** The CLIP vision tower repository. */
  vision: string;
  /** Licence ids the user must accept (LICENSES). */
  licenses: readonly LicenseId[];
}

/** Terms a recipe needs accepted: 'llava-med' (Microsoft's research-use terms), 'llama' (Meta's LLaMA licence, v0 only). */
export type LicenseId = 'llava-med' | 'llama';

/** The text shown for each {@link LicenseId} before the first download. */
export const LICENSES: Record<LicenseId, string> = {
  'llava-med':
    'LLaVA-Med (Microsoft) is released for RESEARCH USE ONLY: not for clinical care or any clinical decision ' +
    'making, and any deployed use, commercial or otherwise, is out of scope. The data are CC BY-NC 4.0. ' +
    'See https://github.com/microsoft/LLaVA-Med and the model cards.',
  llama:
    'The v0 models are deltas on Meta\'s LLaMA-7B (LLaMA 1), which is under Meta\'s LLaMA licence ' +
    '(non-commercial research use, by request to Meta). llava-med never downloads LLaMA for you: you name a ' +
    'copy you are entitled to use with --base.',
};

const CLIP_224 = 'openai/clip-vit-large-patch14';
const CLIP_336 = 'openai/clip-vit-large-patch14-336';

/** The released models by recipe id: `v1.5`, `v0`, `v0-vqarad`, `v0-pathvqa`. */
export const RECIPES: Record<string, Recipe> = {
  'v1.5': {
    id: 'v1.5',
    variant: 'v1.5',
    description: 'LLaVA-Med v1.5 (Mistral-7B-Instruct-v0.2 + CLIP ViT-L/14-336)',
    model: 'microsoft/llava-med-v1.5-mistral-7b',
    vision: CLIP_336,
    licenses: ['llava-med'],
  },
  v0: {
    id: 'v0',
    variant: 'v0',
    description: 'LLaVA-Med v0 (delta on LLaMA-7B + CLIP ViT-L/14)',
    delta: 'microsoft/llava-med-7b-delta',
    vision: CLIP_224,
    licenses: ['llava-med', 'llama'],
  },
  'v0-vqarad': {
    id: 'v0-vqarad',
    variant: 'v0',
    description: 'LLaVA-Med v0 fine-tuned on VQA-RAD (delta on LLaMA-7B + CLIP ViT-L/14)',
    delta: 'katielink/llava-med-7b-vqarad-delta',
    vision: CLIP_224,
    licenses: ['llava-med', 'llama'],
  },
  'v0-pathvqa': {
    id: 'v0-pathvqa',
    variant: 'v0',
    description: 'LLaVA-Med v0 fine-tuned on PathVQA (delta on LLaMA-7B + CLIP ViT-L/14)',
    delta: 'katielink/llava-med-7b-pathvqa-delta',
    vision: CLIP_224,
    licenses: ['llava-med', 'llama'],
  },
};

const META = /^(config|generation_config|preprocessor_config|tokenizer_config|special_tokens_map|added_tokens)\.json$|^tokenizer\.model$/;

/**
 * The files of an HF checkpoint repository the converter reads: configs, tokenizer, and one weight
 * format — safetensors when the repo has it, else pytorch_model*.bin — never both, and no
 * TensorFlow / Flax copies (the CLIP repos hold four formats of the same weights).
 */
export function checkpointFiles(repo: string, files: readonly RepoFile[]): RepoFile[] {
  const top = files.filter((f) => !f.path.includes('/'));
  const meta = top.filter((f) => META.test(f.path));
  const st = top.filter((f) => /^model(-\d+-of-\d+)?\.safetensors$|^model\.safetensors\.index\.json$/.test(f.path));
  const bin = top.filter((f) => /^pytorch_model(-\d+-of-\d+)?\.bin$|^pytorch_model\.bin\.index\.json$/.test(f.path));
  const weights = st.some((f) => f.path.endsWith('.safetensors')) ? st : bin;
  if (!weights.some((f) => /\.(safetensors|bin)$/.test(f.path))) {
    throw llavaError('ERR_HUB_NOT_FOUND', `${repo} holds no model.safetensors or pytorch_model.bin checkpoint (files: ${top.map((f) => f.path).slice(0, 8).join(', ')}); is it the right repository?`);
  }
  if (!meta.some((f) => f.path === 'config.json')) throw llavaError('ERR_HUB_NOT_FOUND', `${repo} has no config.json; is it a Hugging Face checkpoint?`);
  return [...meta, ...weights];
}

/** `*` and `?` globs (on the whole path) to a RegExp. */
export function globRegExp(pattern: string): RegExp {
  const esc = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${esc}$`, 'i');
}

/** A quantization tag found in a GGUF file name (Q4_K_M, Q8_0, F16, …), lower-cased. */
export function quantTag(file: string): string | undefined {
  const m = /(?:^|[-_.])((?:I?Q\d(?:_[A-Z0-9]+)*)|BF16|F16|F32)(?=[-_.]|\.gguf$)/i.exec(file.replace(/^.*\//, ''));
  return m?.[1].toLowerCase();
}
