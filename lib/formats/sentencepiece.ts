/**
 * SentencePiece tokenizer.model (protobuf ModelProto, sentencepiece_model.proto, proto2).
 * A hand-written protobuf reader: conversion needs only a dozen fields (pieces with score/type, a few
 * TrainerSpec ids, three NormalizerSpec flags), which does not justify a protobuf runtime plus a
 * generated schema. Unknown fields are skipped; every length is checked against the bytes left.
 * Field numbers were checked against the Debian python3-sentencepiece descriptor.
 */
import { readRegularFile } from './file-read.js';
import { llavaError } from '../errors.js';
import { writeFileAtomic } from './tensor-io.js';

/** ModelProto.SentencePiece.Type (= llama.cpp's llama_token_type values). */
export enum SentencePieceType { NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6 }

export type SentencePieceModelType = 'unigram' | 'bpe' | 'word' | 'char';
const MODEL_TYPES: Record<number, SentencePieceModelType> = { 1: 'unigram', 2: 'bpe', 3: 'word', 4: 'char' };
const MODEL_TYPE_IDS: Record<SentencePieceModelType, number> = { unigram: 1, bpe: 2, word: 3, char: 4 };

export interface SentencePiece {
  piece: string;
  score: number;
  type: SentencePieceType;
}

export interface SentencePieceTrainerSpec {
  modelType: SentencePieceModelType;
  vocabSize?: number;
  unkId: number;
  bosId: number;
  eosId: number;
  /** -1 = no padding token. */
  padId: number;
  byteFallback: boolean;
  unkPiece?: string;
  bosPiece?: string;
  eosPiece?: string;
  padPiece?: string;
}

export interface SentencePieceNormalizerSpec {
  name?: string;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
  precompiledCharsmap?: Buffer;
}

export interface SentencePieceModel {
  pieces: SentencePiece[];
  /** Protobuf defaults applied (unk 0, bos 1, eos 2, pad -1, unigram, no byte fallback). */
  trainerSpec: SentencePieceTrainerSpec;
  /** Protobuf defaults applied (add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces all true). */
  normalizerSpec: SentencePieceNormalizerSpec;
}

/** What the writer accepts: defaults fill anything omitted. */
export interface SentencePieceModelInput {
  pieces: readonly { piece: string; score: number; type?: SentencePieceType | number }[];
  trainerSpec?: Partial<Omit<SentencePieceTrainerSpec, 'modelType'>> & { modelType?: SentencePieceModelType | number };
  normalizerSpec?: Partial<SentencePieceNormalizerSpec>;
}

const MAX_MODEL_BYTES = 256 << 20;

// ---- protobuf wire format ----

class PbReader {
  pos: number;
  constructor(readonly buf: Buffer, start: number, readonly end: number, readonly what: string) { this.pos = start; }

  fail(msg: string): never {
    throw llavaError('ERR_FORMAT', `${this.what} is not a valid SentencePiece model: ${msg} (at byte ${this.pos}).`);
  }

  done(): boolean { return this.pos >= this.end; }

  /** Varint as bigint-free number pair: values above 2^53 only occur for negative int32 (10 bytes). */
  varint(): bigint {
    let v = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint');
      const b = this.buf[this.pos++]!;
      v |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) return v;
    }
    return this.fail('varint longer than 10 bytes');
  }

  int32(): number { return Number(BigInt.asIntN(32, this.varint())); }
  bool(): boolean { return this.varint() !== 0n; }

  float(): number {
    if (this.pos + 4 > this.end) this.fail('truncated float');
    const v = this.buf.readFloatLE(this.pos);
    this.pos += 4;
    return v;
  }

  bytes(): Buffer {
    const len = this.varint();
    if (len > BigInt(this.end - this.pos)) this.fail(`field of ${len} bytes runs past the end of its message`);
    const b = this.buf.subarray(this.pos, this.pos + Number(len));
    this.pos += Number(len);
    return b;
  }

  sub(): PbReader {
    const b = this.bytes();
    return new PbReader(this.buf, b.byteOffset - this.buf.byteOffset, b.byteOffset - this.buf.byteOffset + b.length, this.what);
  }

  tag(): [field: number, wire: number] {
    const t = this.varint();
    const field = Number(t >> 3n);
    if (field === 0 || field > 536870911) this.fail(`invalid field number ${field}`);
    return [field, Number(t & 7n)];
  }

  skip(wire: number): void {
    switch (wire) {
      case 0: this.varint(); break;
      case 1: if (this.pos + 8 > this.end) this.fail('truncated fixed64'); this.pos += 8; break;
      case 2: this.bytes(); break;
      case 5: if (this.pos + 4 > this.end) this.fail('truncated fixed32'); this.pos += 4; break;
      default: this.fail(`unsupported wire type ${wire}`);
    }
  }

  expect(wire: number, want: number, name: string): void {
    if (wire !== want) this.fail(`field ${name} has wire type ${wire}, expected ${want}`);
  }
}

function parsePiece(r: PbReader): SentencePiece {
  const p: SentencePiece = { piece: '', score: 0, type: SentencePieceType.NORMAL };
  while (!r.done()) {
    const [f, w] = r.tag();
    if (f === 1) { r.expect(w, 2, 'piece'); p.piece = r.bytes().toString('utf8'); }
    else if (f === 2) { r.expect(w, 5, 'score'); p.score = r.float(); }
    else if (f === 3) {
      r.expect(w, 0, 'type');
      const t = r.int32();
      if (t < 1 || t > 6) r.fail(`piece '${p.piece}' has unknown type ${t}`);
      p.type = t;
    } else r.skip(w);
  }
  return p;
}

function parseTrainer(r: PbReader): SentencePieceTrainerSpec {
  const s: SentencePieceTrainerSpec = { modelType: 'unigram', unkId: 0, bosId: 1, eosId: 2, padId: -1, byteFallback: false };
  while (!r.done()) {
    const [f, w] = r.tag();
    switch (f) {
      case 3: { r.expect(w, 0, 'model_type'); const t = r.int32(); const m = MODEL_TYPES[t]; if (!m) r.fail(`unknown model_type ${t}`); s.modelType = m; break; }
      case 4: r.expect(w, 0, 'vocab_size'); s.vocabSize = r.int32(); break;
      case 35: r.expect(w, 0, 'byte_fallback'); s.byteFallback = r.bool(); break;
      case 40: r.expect(w, 0, 'unk_id'); s.unkId = r.int32(); break;
      case 41: r.expect(w, 0, 'bos_id'); s.bosId = r.int32(); break;
      case 42: r.expect(w, 0, 'eos_id'); s.eosId = r.int32(); break;
      case 43: r.expect(w, 0, 'pad_id'); s.padId = r.int32(); break;
      case 45: r.expect(w, 2, 'unk_piece'); s.unkPiece = r.bytes().toString('utf8'); break;
      case 46: r.expect(w, 2, 'bos_piece'); s.bosPiece = r.bytes().toString('utf8'); break;
      case 47: r.expect(w, 2, 'eos_piece'); s.eosPiece = r.bytes().toString('utf8'); break;
      case 48: r.expect(w, 2, 'pad_piece'); s.padPiece = r.bytes().toString('utf8'); break;
      default: r.skip(w);
    }
  }
  return s;
}

function parseNormalizer(r: PbReader): SentencePieceNormalizerSpec {
  const s: SentencePieceNormalizerSpec = { addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true };
  while (!r.done()) {
    const [f, w] = r.tag();
    switch (f) {
      case 1: r.expect(w, 2, 'name'); s.name = r.bytes().toString('utf8'); break;
      case 2: r.expect(w, 2, 'precompiled_charsmap'); s.precompiledCharsmap = Buffer.from(r.bytes()); break;
      case 3: r.expect(w, 0, 'add_dummy_prefix'); s.addDummyPrefix = r.bool(); break;
      case 4: r.expect(w, 0, 'remove_extra_whitespaces'); s.removeExtraWhitespaces = r.bool(); break;
      case 5: r.expect(w, 0, 'escape_whitespaces'); s.escapeWhitespaces = r.bool(); break;
      default: r.skip(w);
    }
  }
  return s;
}

/** Parse tokenizer.model bytes. Throws ERR_FORMAT on anything malformed. */
export function parseSentencePieceModel(bytes: Uint8Array, source = 'tokenizer.model'): SentencePieceModel {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new PbReader(buf, 0, buf.length, source);
  const m: SentencePieceModel = {
    pieces: [],
    trainerSpec: parseTrainer(new PbReader(Buffer.alloc(0), 0, 0, source)),
    normalizerSpec: parseNormalizer(new PbReader(Buffer.alloc(0), 0, 0, source)),
  };
  while (!r.done()) {
    const [f, w] = r.tag();
    if (f === 1) { r.expect(w, 2, 'pieces'); m.pieces.push(parsePiece(r.sub())); }
    else if (f === 2) { r.expect(w, 2, 'trainer_spec'); m.trainerSpec = parseTrainer(r.sub()); }
    else if (f === 3) { r.expect(w, 2, 'normalizer_spec'); m.normalizerSpec = parseNormalizer(r.sub()); }
    else r.skip(w);
  }
  if (m.pieces.length === 0) r.fail('it has no pieces');
  return m;
}

/** Read and parse a tokenizer.model file (bounded to 256 MiB). */
export async function readSentencePieceModel(path: string): Promise<SentencePieceModel> {
  const bytes = await readRegularFile(path, { what: 'SentencePiece model', maxBytes: MAX_MODEL_BYTES, tooLargeCode: 'ERR_FORMAT' });
  return parseSentencePieceModel(bytes, path);
}

// ---- writer ----

class PbWriter {
  parts: Buffer[] = [];
  varint(v: bigint | number): void {
    let x = BigInt.asUintN(64, BigInt(v)); // negative int32 -> 10-byte two's complement, as protobuf does
    const out: number[] = [];
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) b |= 0x80;
      out.push(b);
    } while (x !== 0n);
    this.parts.push(Buffer.from(out));
  }
  tag(field: number, wire: number): void { this.varint((field << 3) | wire); }
  int(field: number, v: number): void { this.tag(field, 0); this.varint(v); }
  bool(field: number, v: boolean): void { this.int(field, v ? 1 : 0); }
  float(field: number, v: number): void { this.tag(field, 5); const b = Buffer.alloc(4); b.writeFloatLE(v); this.parts.push(b); }
  bytes(field: number, b: Uint8Array): void { this.tag(field, 2); this.varint(b.byteLength); this.parts.push(Buffer.from(b)); }
  str(field: number, s: string): void { this.bytes(field, Buffer.from(s, 'utf8')); }
  done(): Buffer { return Buffer.concat(this.parts); }
}

/** Serialise a model to tokenizer.model bytes (only the fields this module knows). */
export function encodeSentencePieceModel(m: SentencePieceModelInput): Buffer {
  if (!m.pieces?.length) throw llavaError('ERR_INVALID_ARGUMENT', 'A SentencePiece model needs at least one piece.');
  const w = new PbWriter();
  for (const p of m.pieces) {
    if (typeof p.piece !== 'string' || typeof p.score !== 'number') throw llavaError('ERR_INVALID_ARGUMENT', `Invalid SentencePiece piece ${JSON.stringify(p)}.`);
    const pw = new PbWriter();
    pw.str(1, p.piece);
    pw.float(2, p.score);
    const type = p.type ?? SentencePieceType.NORMAL;
    if (!Number.isInteger(type) || type < 1 || type > 6) throw llavaError('ERR_INVALID_ARGUMENT', `Piece '${p.piece}' has invalid type ${type}.`);
    if (type !== SentencePieceType.NORMAL) pw.int(3, type);
    w.bytes(1, pw.done());
  }
  const ts = m.trainerSpec ?? {};
  const tw = new PbWriter();
  const mt = typeof ts.modelType === 'string' ? MODEL_TYPE_IDS[ts.modelType] : ts.modelType ?? 1;
  if (!mt || !MODEL_TYPES[mt]) throw llavaError('ERR_INVALID_ARGUMENT', `Unknown SentencePiece model type ${String(ts.modelType)}.`);
  tw.int(3, mt);
  tw.int(4, ts.vocabSize ?? m.pieces.length);
  tw.bool(35, ts.byteFallback ?? false);
  tw.int(40, ts.unkId ?? 0);
  tw.int(41, ts.bosId ?? 1);
  tw.int(42, ts.eosId ?? 2);
  tw.int(43, ts.padId ?? -1);
  if (ts.unkPiece !== undefined) tw.str(45, ts.unkPiece);
  if (ts.bosPiece !== undefined) tw.str(46, ts.bosPiece);
  if (ts.eosPiece !== undefined) tw.str(47, ts.eosPiece);
  if (ts.padPiece !== undefined) tw.str(48, ts.padPiece);
  w.bytes(2, tw.done());
  const ns = m.normalizerSpec ?? {};
  const nw = new PbWriter();
  if (ns.name !== undefined) nw.str(1, ns.name);
  if (ns.precompiledCharsmap !== undefined) nw.bytes(2, ns.precompiledCharsmap);
  nw.bool(3, ns.addDummyPrefix ?? true);
  nw.bool(4, ns.removeExtraWhitespaces ?? true);
  nw.bool(5, ns.escapeWhitespaces ?? true);
  w.bytes(3, nw.done());
  return w.done();
}

/** Write a tokenizer.model file (temp name + rename). */
export async function writeSentencePieceModel(path: string, m: SentencePieceModelInput): Promise<void> {
  const bytes = encodeSentencePieceModel(m);
  await writeFileAtomic(path, (write) => write(bytes));
}
