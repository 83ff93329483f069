/**
 * The part of a SentencePiece model conversion needs (pieces with scores/types, the trainer's special
 * ids), adapted from lib/formats/sentencepiece so the rest of lib/convert does not depend on the
 * parser's exact shape.
 */
import { llavaError } from '../errors.js';
import { parseSentencePieceModel } from '../formats/sentencepiece.js';

export interface SpPiece {
  piece: string;
  score: number;
  /** ModelProto.SentencePiece.Type = llama_token_type (NORMAL 1 … BYTE 6). */
  type: number;
}

export interface SpModel {
  pieces: SpPiece[];
  /** TrainerSpec ids; SentencePiece defaults unk 0, bos 1, eos 2, pad -1. */
  trainerIds: { unk?: number; bos?: number; eos?: number; pad?: number };
}

export function loadSentencePiece(bytes: Uint8Array, path: string): SpModel {
  let m: ReturnType<typeof parseSentencePieceModel>;
  try {
    m = parseSentencePieceModel(bytes);
  } catch (e) {
    throw llavaError('ERR_FORMAT', `${path} is not a SentencePiece model: ${(e as Error).message}`, e);
  }
  if (m.pieces.length === 0) throw llavaError('ERR_FORMAT', `${path} has no pieces.`);
  const ts = m.trainerSpec ?? {};
  return {
    pieces: m.pieces.map((p) => ({ piece: p.piece, score: p.score, type: p.type ?? 1 })),
    trainerIds: {
      unk: ts.unkId ?? 0,
      bos: ts.bosId ?? 1,
      eos: ts.eosId ?? 2,
      pad: ts.padId ?? -1,
    },
  };
}
