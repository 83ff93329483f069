/**
 * Checks GGUF files in TypeScript before llama.cpp sees them: a GGML_ASSERT or a null pointer in
 * llama.cpp / clip.cpp takes the whole Node process down, so every key, array and tensor they
 * assert on, divide by, index with or dereference is validated first (gguf-check-llama.ts for the
 * language model, gguf-check-clip.ts for the projector, the sources behind them in gguf-keys.ts),
 * along with the pairing of model and projector.
 */
import fs from 'node:fs/promises';
import { llavaError } from '../errors.js';
import { readGgufHeader } from '../formats/gguf-read.js';
import { GgufValueType as T, type GgufHeader } from '../formats/gguf-types.js';
import { checkClipHeader } from './gguf-check-clip.js';
import { checkLlamaHeader } from './gguf-check-llama.js';

async function openHeader(path: string, what: string): Promise<GgufHeader> {
  if (typeof path !== 'string' || path.length === 0) {
    throw llavaError('ERR_INVALID_ARGUMENT', `${what} must be a path to a .gguf file.`);
  }
  let st;
  try {
    st = await fs.stat(path);
  } catch {
    throw llavaError('ERR_FILE_NOT_FOUND', `${what} file ${path} does not exist.`);
  }
  if (!st.isFile()) throw llavaError('ERR_INVALID_ARGUMENT', `${what} ${path} is not a file.`);
  return readGgufHeader(path, { compactArrays: VOCAB_ARRAYS });
}

/**
 * The vocabulary's arrays are read compact (one buffer each, not a JS value per token): the checks
 * need only their types, lengths and the token texts' bytes, and 32k tokens as JS strings and
 * numbers made the header check the largest allocation of a load (100 ms, V8's heap 13 MB larger).
 */
const VOCAB_ARRAYS = ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type', 'tokenizer.ggml.merges'];

function arch(h: GgufHeader): string {
  const kv = h.kv.get('general.architecture');
  if (!kv || kv.type !== T.STRING) {
    throw llavaError('ERR_GGUF_CORRUPT', `${h.path} has no general.architecture string; it is not a llama.cpp model file.`);
  }
  return kv.value as string;
}

export interface ModelFileInfo {
  header: GgufHeader;
  architecture: string;
  nEmbd: number;
  variant?: string;
}

/**
 * Checks a language-model GGUF: readable, not an mmproj, and nothing in it that llama.cpp would
 * crash on (gguf-check-llama.ts). `vocabOnly` checks the vocabulary only, as llama.cpp then reads.
 */
export async function checkModelFile(path: string, opts: { vocabOnly?: boolean } = {}): Promise<ModelFileInfo> {
  const h = await openHeader(path, 'model');
  const a = arch(h);
  if (a === 'clip') {
    throw llavaError('ERR_INVALID_ARGUMENT', `${path} is a projector (mmproj) file; pass it as \`mmproj\` and the language model as \`model\`.`);
  }
  const { nEmbd } = checkLlamaHeader(h, opts);
  const v = h.kv.get('llava_med.variant');
  return { header: h, architecture: a, nEmbd, variant: v?.type === T.STRING ? (v.value as string) : undefined };
}

export interface ProjectorFileInfo {
  header: GgufHeader;
  projectorType: string;
  imageSize: number;
  patchSize: number;
  /** Width of the projector's output, which must equal the model's embedding width. */
  nEmbdOut: number;
  variant?: string;
}

/** Checks an mmproj GGUF so that clip.cpp can never abort or crash the process on it (gguf-check-clip.ts). */
export async function checkProjectorFile(path: string): Promise<ProjectorFileInfo> {
  const h = await openHeader(path, 'mmproj');
  const a = arch(h);
  if (a !== 'clip') {
    throw llavaError('ERR_INVALID_ARGUMENT', `${path} has architecture '${a}', not 'clip': it is not a projector (mmproj) file.`);
  }
  const c = checkClipHeader(h);
  const v = h.kv.get('llava_med.variant');
  return { header: h, ...c, variant: v?.type === T.STRING ? (v.value as string) : undefined };
}

/** Refuses a projector that does not fit the model, before anything runs. */
export function checkPairing(model: ModelFileInfo, proj: ProjectorFileInfo): void {
  if (model.nEmbd !== proj.nEmbdOut) {
    throw llavaError(
      'ERR_MMPROJ_MISMATCH',
      `The projector ${proj.header.path} outputs ${proj.nEmbdOut}-wide embeddings but the model ${model.header.path} expects ${model.nEmbd}: they belong to different models.`,
    );
  }
  if (model.variant && proj.variant && model.variant !== proj.variant) {
    throw llavaError(
      'ERR_MMPROJ_MISMATCH',
      `The model is LLaVA-Med ${model.variant} but the projector is for ${proj.variant}; use the mmproj converted with this model.`,
    );
  }
}
