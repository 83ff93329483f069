/** `llava-med info FILE.gguf`: what a GGUF holds, from its header only. */
import { readGgufHeader, ggmlTypeName, GgufValueType, type GgufHeader } from '../formats/gguf.js';

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

export async function describeGguf(file: string): Promise<Record<string, unknown>> {
  const h = await readGgufHeader(file);
  const arch = str(h, 'general.architecture') ?? 'unknown';
  const types = new Map<string, number>();
  let params = 0;
  for (const t of h.tensors) {
    types.set(ggmlTypeName(t.type), (types.get(ggmlTypeName(t.type)) ?? 0) + 1);
    params += t.shape.reduce((a, b) => a * b, 1);
  }
  const ft = h.kv.get('general.file_type');
  const info: Record<string, unknown> = {
    file,
    architecture: arch,
    kind: arch === 'clip' ? 'projector (mmproj)' : 'language model',
    name: str(h, 'general.name'),
    variant: str(h, 'llava_med.variant') ?? 'unknown (not converted by llava-med)',
    fileSize: h.fileSize,
    tensors: h.tensors.length,
    parameters: params,
    fileType: ft ? (FILE_TYPES[Number(ft.value)] ?? `type ${String(ft.value)}`) : undefined,
    tensorTypes: Object.fromEntries(types),
  };
  if (arch === 'clip') {
    Object.assign(info, {
      projectorType: str(h, 'clip.projector_type'),
      projector: str(h, 'llava_med.projector'),
      imageSize: num(h, 'clip.vision.image_size'),
      patchSize: num(h, 'clip.vision.patch_size'),
      visionLayers: num(h, 'clip.vision.block_count'),
      visionWidth: num(h, 'clip.vision.embedding_length'),
      outputWidth: h.tensors.find((t) => t.name === 'mm.2.weight')?.shape[1],
    });
  } else {
    Object.assign(info, {
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
    });
  }
  return info;
}
