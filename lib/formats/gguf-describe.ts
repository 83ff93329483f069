/** What a GGUF holds, read from its header only (no tensor data, no native code): the `llava-med info` summary. */
import { readGgufHeader, ggmlTypeName, GgufValueType, type GgufHeader } from './gguf.js';

const FILE_TYPES: Record<number, string> = { 0: 'F32', 1: 'F16', 7: 'Q8_0', 15: 'Q4_K_M', 17: 'Q5_K_M', 32: 'BF16' };

function str(h: GgufHeader, k: string): string | undefined {
  const kv = h.kv.get(k);
  return kv && kv.type !== GgufValueType.ARRAY ? String(kv.value) : undefined;
}

/** A numeric key as a number (JSON output keeps one type per field); absent or non-numeric → undefined. */
function num(h: GgufHeader, k: string): number | undefined {
  const v = h.kv.get(k)?.value;
  return typeof v === 'number' || typeof v === 'bigint' ? Number(v) : undefined;
}

/** Fields every summary has. */
interface GgufSummaryBase {
  /** The path that was read. */
  file: string;
  /** `general.architecture` ('llama', 'clip', …), or 'unknown'. */
  architecture: string;
  /** `general.name`, when the file has one. */
  name?: string;
  /** `llava_med.variant` ('v0' or 'v1.5'), or a note that another converter wrote the file. */
  variant: string;
  /** File size in bytes. */
  fileSize: number;
  /** Number of tensors. */
  tensors: number;
  /** Total element count of all tensors. */
  parameters: number;
  /** llama.cpp's file type name (F16, Q4_K_M, …), when `general.file_type` is set. */
  fileType?: string;
  /** How many tensors there are of each ggml type. */
  tensorTypes: Record<string, number>;
}

/** Summary of a projector (mmproj) GGUF. */
export interface MmprojSummary extends GgufSummaryBase {
  /** Discriminant: this file is a vision encoder + projector. */
  kind: 'projector (mmproj)';
  /** `clip.projector_type` (llama.cpp's name for the projector, e.g. `mlp`). */
  projectorType?: string;
  /** `llava_med.projector` (e.g. mlp2x_gelu), written by llava-med's converter. */
  projector?: string;
  /** Encoder input side in pixels. */
  imageSize?: number;
  /** Vision-transformer patch side in pixels. */
  patchSize?: number;
  /** Number of vision-transformer blocks. */
  visionLayers?: number;
  /** Vision-transformer hidden width. */
  visionWidth?: number;
  /** Width of the embeddings the projector hands to the language model. */
  outputWidth?: number;
}

/** Summary of a language-model GGUF. */
export interface LanguageModelSummary extends GgufSummaryBase {
  /** Discriminant: this file is the language model. */
  kind: 'language model';
  /** Number of transformer blocks (`<arch>.block_count`). */
  layers?: number;
  /** Hidden width (`<arch>.embedding_length`). */
  embeddingLength?: number;
  /** Attention heads. */
  heads?: number;
  /** Key/value heads (fewer than `heads` under grouped-query attention). */
  kvHeads?: number;
  /** Trained context length in tokens. */
  contextLength?: number;
  /** Number of tokens in the vocabulary. */
  vocabSize?: number;
  /** Beginning-of-sequence token id. */
  bos?: number;
  /** End-of-sequence token id. */
  eos?: number;
  /** The token id LLaVA-Med v0 put first in every prompt (`</s>`), when recorded. */
  promptBos?: number;
  /** `general.license`, when recorded. */
  license?: string;
}

/** What {@link describeGguf} returns; `kind` tells the two apart. */
export type GgufSummary = MmprojSummary | LanguageModelSummary;

/**
 * Summarizes a GGUF from its header (bounded reads; tensor data is not read, no native code runs).
 * Rejects with `ERR_FILE_NOT_FOUND`, `ERR_NOT_GGUF` (not a GGUF file) or `ERR_GGUF_CORRUPT`
 * (damaged or truncated header).
 */
export async function describeGguf(file: string): Promise<GgufSummary> {
  const h = await readGgufHeader(file);
  const arch = str(h, 'general.architecture') ?? 'unknown';
  const types = new Map<string, number>();
  let params = 0;
  for (const t of h.tensors) {
    types.set(ggmlTypeName(t.type), (types.get(ggmlTypeName(t.type)) ?? 0) + 1);
    params += t.shape.reduce((a, b) => a * b, 1);
  }
  const ft = h.kv.get('general.file_type');
  // `kind` sits here so the printed order stays file, architecture, kind, …; each branch sets its literal.
  const base: GgufSummaryBase & { kind: string } = {
    file,
    architecture: arch,
    kind: '',
    name: str(h, 'general.name'),
    variant: str(h, 'llava_med.variant') ?? 'unknown (not converted by llava-med)',
    fileSize: h.fileSize,
    tensors: h.tensors.length,
    parameters: params,
    fileType: ft ? (FILE_TYPES[Number(ft.value)] ?? `type ${String(ft.value)}`) : undefined,
    tensorTypes: Object.fromEntries(types),
  };
  if (arch === 'clip') {
    return {
      ...base,
      kind: 'projector (mmproj)',
      projectorType: str(h, 'clip.projector_type'),
      projector: str(h, 'llava_med.projector'),
      imageSize: num(h, 'clip.vision.image_size'),
      patchSize: num(h, 'clip.vision.patch_size'),
      visionLayers: num(h, 'clip.vision.block_count'),
      visionWidth: num(h, 'clip.vision.embedding_length'),
      outputWidth: h.tensors.find((t) => t.name === 'mm.2.weight')?.shape[1],
    };
  }
  return {
    ...base,
    kind: 'language model',
      layers: num(h, `${arch}.block_count`),
      embeddingLength: num(h, `${arch}.embedding_length`),
      heads: num(h, `${arch}.attention.head_count`),
      kvHeads: num(h, `${arch}.attention.head_count_kv`),
      contextLength: num(h, `${arch}.context_length`),
      vocabSize: (h.kv.get('tokenizer.ggml.tokens')?.value as unknown[] | undefined)?.length,
      bos: num(h, 'tokenizer.ggml.bos_token_id'),
      eos: num(h, 'tokenizer.ggml.eos_token_id'),
      promptBos: num(h, 'llava_med.prompt_bos_token_id'),
      license: str(h, 'general.license'),
  };
}
