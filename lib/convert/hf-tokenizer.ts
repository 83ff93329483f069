/**
 * The tokenizer files of an HF LLaMA/Mistral folder: tokenizer.model (SentencePiece), added_tokens.json,
 * special_tokens_map.json, tokenizer_config.json; and the special-token resolution the original
 * transformers (4.28 slow LlamaTokenizer) performed.
 *
 * Why not config.json's bos/eos ids: the LLaVA-Med v0 delta's config.json carries stale decapoda-era ids
 * (bos 0, eos 1, pad -1). The tokenizer that trained and evaluated the model applied
 * special_tokens_map.json over tokenizer_config.json (`setattr` in `_from_pretrained`), so the BOS it
 * prepended is special_tokens_map's "</s>" (id 2). We resolve in that order and fall back to the
 * SentencePiece trainer spec only when neither file names the token.
 */
import { readRegularFile } from '../formats/file-read.js';
import { join } from 'node:path';
import { z } from 'zod';
import { isLlavaMedError, llavaError } from '../errors.js';
import { readOptionalJson } from './hf-config.js';
import { loadSentencePiece, type SpModel } from './sp-model.js';

/** Token types shared by SentencePiece's ModelProto and llama.cpp's llama_token_type. */
export const TokenType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

// A special token is a string or an AddedToken dict ({"__type": "AddedToken", "content": ...}).
const TokenRef = z.union([z.string(), z.looseObject({ content: z.string() }), z.null()]);
const SpecialMapSchema = z.looseObject({
  bos_token: TokenRef.optional(),
  eos_token: TokenRef.optional(),
  unk_token: TokenRef.optional(),
  pad_token: TokenRef.optional(),
});
const TokenizerConfigSchema = z.looseObject({
  bos_token: TokenRef.optional(),
  eos_token: TokenRef.optional(),
  unk_token: TokenRef.optional(),
  pad_token: TokenRef.optional(),
  add_bos_token: z.boolean().optional(),
  add_eos_token: z.boolean().optional(),
  model_max_length: z.number().optional(),
  added_tokens_decoder: z.record(z.string(), z.looseObject({ content: z.string(), special: z.boolean().optional() })).optional(),
});
const AddedTokensSchema = z.record(z.string(), z.number().int().nonnegative());

/** A special token's role. */
export type SpecialKind = 'bos' | 'eos' | 'unk' | 'pad';

export interface AddedToken {
  id: number;
  content: string;
  /** Marked special in tokenizer_config.json's added_tokens_decoder (absent: not stated). */
  special?: boolean;
}

export interface HfTokenizer {
  dir: string;
  sp: SpModel;
  /** Tokens beyond (or overriding) the SentencePiece pieces, by id. */
  added: AddedToken[];
  specialMap: Partial<Record<SpecialKind, string>>;
  configTokens: Partial<Record<SpecialKind, string>>;
  addBos: boolean;
  addEos: boolean;
  modelMaxLength?: number;
}

function tokenText(ref: z.infer<typeof TokenRef> | undefined): string | undefined {
  if (ref === undefined || ref === null) return undefined;
  const s = typeof ref === 'string' ? ref : ref.content;
  // LLaMA-1 conversions of the decapoda era wrote "" for every special token: treat as unset.
  return s === '' ? undefined : s;
}

function parseOr<T>(schema: z.ZodType<T>, raw: unknown, path: string): T {
  const r = schema.safeParse(raw);
  if (!r.success) {
    throw llavaError('ERR_FORMAT', `${path}: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  return r.data;
}

export async function readHfTokenizer(dir: string): Promise<HfTokenizer> {
  const spPath = join(dir, 'tokenizer.model');
  let spBytes: Buffer;
  try {
    spBytes = await readRegularFile(spPath, { what: 'SentencePiece model', maxBytes: 256 << 20, tooLargeCode: 'ERR_FORMAT', notRegularCode: 'ERR_FORMAT' });
  } catch (e) {
    if (isLlavaMedError(e, 'ERR_FILE_NOT_FOUND')) throw llavaError('ERR_FILE_NOT_FOUND', `${spPath} is missing; the SentencePiece model is needed for the GGUF vocabulary.`, e);
    throw e;
  }
  const sp = loadSentencePiece(spBytes, spPath);

  const kinds: SpecialKind[] = ['bos', 'eos', 'unk', 'pad'];
  const specialMap: Partial<Record<SpecialKind, string>> = {};
  const stmPath = join(dir, 'special_tokens_map.json');
  const stmRaw = await readOptionalJson(stmPath);
  if (stmRaw !== undefined) {
    const stm = parseOr(SpecialMapSchema, stmRaw, stmPath);
    for (const k of kinds) {
      const v = tokenText(stm[`${k}_token`]);
      if (v !== undefined) specialMap[k] = v;
    }
  }

  const configTokens: Partial<Record<SpecialKind, string>> = {};
  const tcPath = join(dir, 'tokenizer_config.json');
  const tcRaw = await readOptionalJson(tcPath);
  const tc = tcRaw === undefined ? undefined : parseOr(TokenizerConfigSchema, tcRaw, tcPath);
  if (tc) {
    for (const k of kinds) {
      const v = tokenText(tc[`${k}_token`]);
      if (v !== undefined) configTokens[k] = v;
    }
  }

  const byId = new Map<number, AddedToken>();
  const atPath = join(dir, 'added_tokens.json');
  const atRaw = await readOptionalJson(atPath);
  if (atRaw !== undefined) {
    const at = parseOr(AddedTokensSchema, atRaw, atPath);
    for (const [content, id] of Object.entries(at)) byId.set(id, { id, content });
  }
  if (tc?.added_tokens_decoder) {
    for (const [idStr, t] of Object.entries(tc.added_tokens_decoder)) {
      const id = Number(idStr);
      if (!Number.isInteger(id) || id < 0) throw llavaError('ERR_FORMAT', `${tcPath}: added_tokens_decoder key ${idStr} is not a token id.`);
      byId.set(id, { id, content: t.content, ...(t.special !== undefined ? { special: t.special } : {}) });
    }
  }
  const added = [...byId.values()].sort((a, b) => a.id - b.id);

  return {
    dir,
    sp,
    added,
    specialMap,
    configTokens,
    // LlamaTokenizer's defaults: add_bos_token=True, add_eos_token=False.
    addBos: tc?.add_bos_token ?? true,
    addEos: tc?.add_eos_token ?? false,
    ...(tc?.model_max_length !== undefined ? { modelMaxLength: tc.model_max_length } : {}),
  };
}

/** Added tokens that lie past the SentencePiece vocabulary (those that grow the embedding matrix). */
export function extraTokens(tok: HfTokenizer): AddedToken[] {
  return tok.added.filter((a) => a.id >= tok.sp.pieces.length);
}

/** A special token as resolved from the tokenizer files. */
export interface ResolvedSpecial {
  /** Token id. */
  id: number;
  /** Token text, e.g. `</s>`. */
  text: string;
  /** The file that named it. */
  from: 'special_tokens_map.json' | 'tokenizer_config.json' | 'tokenizer.model';
}

/**
 * Resolves bos/eos/unk/pad ids: special_tokens_map.json, then tokenizer_config.json, then the
 * SentencePiece trainer spec. A token named by a file but absent from the vocabulary is an error (the
 * files disagree with the model; guessing would silently change every prompt).
 */
export function resolveSpecialTokens(tok: HfTokenizer): Partial<Record<SpecialKind, ResolvedSpecial>> {
  const ids = new Map<string, number>();
  tok.sp.pieces.forEach((p, i) => {
    if (!ids.has(p.piece)) ids.set(p.piece, i);
  });
  for (const a of tok.added) ids.set(a.content, a.id);

  const out: Partial<Record<SpecialKind, ResolvedSpecial>> = {};
  for (const kind of ['bos', 'eos', 'unk', 'pad'] as const) {
    const fromMap = tok.specialMap[kind];
    const fromCfg = tok.configTokens[kind];
    const text = fromMap ?? fromCfg;
    if (text !== undefined) {
      const id = ids.get(text);
      if (id === undefined) {
        throw llavaError(
          'ERR_CONVERT',
          `${tok.dir}: ${kind}_token ${JSON.stringify(text)} (from ${fromMap !== undefined ? 'special_tokens_map.json' : 'tokenizer_config.json'}) is not in the vocabulary.`,
        );
      }
      out[kind] = { id, text, from: fromMap !== undefined ? 'special_tokens_map.json' : 'tokenizer_config.json' };
      continue;
    }
    const specId = tok.sp.trainerIds[kind];
    if (specId !== undefined && specId >= 0 && specId < tok.sp.pieces.length) {
      out[kind] = { id: specId, text: tok.sp.pieces[specId]!.piece, from: 'tokenizer.model' };
    }
  }
  return out;
}
