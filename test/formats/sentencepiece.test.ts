import t from 'tap';
import { readFileSync, mkdtempSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseSentencePieceModel, readSentencePieceModel, writeSentencePieceModel, encodeSentencePieceModel, SentencePieceType,
} from '../../lib/formats/sentencepiece.js';

const fx = (n: string) => new URL(`../fixtures/formats/sp/${n}`, import.meta.url).pathname;
// Produced by scripts/fixtures/make-sp-fixture.py with the sentencepiece library itself.
const expected = JSON.parse(readFileSync(fx('expected.json'), 'utf8')) as {
  vocab_size: number; unk_id: number; bos_id: number; eos_id: number; pad_id: number; pieces: [string, number, number][];
};
const dir = mkdtempSync(join(tmpdir(), 'llava-sp-'));

t.test('parses a model trained by sentencepiece, matching what the library reports', async (t) => {
  const m = await readSentencePieceModel(fx('tokenizer.model'));
  t.equal(m.pieces.length, expected.vocab_size);
  let bad = 0;
  m.pieces.forEach((p, i) => {
    const [piece, score, type] = expected.pieces[i]!;
    if (p.piece !== piece || p.score !== score || p.type !== type) bad++;
  });
  t.equal(bad, 0, 'every piece, score and type matches');
  t.same(m.pieces[4], { piece: '<image>', score: 0, type: SentencePieceType.USER_DEFINED });
  t.equal(m.pieces.filter((p) => p.type === SentencePieceType.BYTE).length, 256, 'byte-fallback pieces');
  t.ok(m.pieces.some((p) => p.score < 0 && p.type === SentencePieceType.NORMAL), 'merged pieces have negative scores');
  t.equal(m.trainerSpec.modelType, 'bpe');
  t.equal(m.trainerSpec.vocabSize, 320);
  t.equal(m.trainerSpec.byteFallback, true);
  t.same([m.trainerSpec.unkId, m.trainerSpec.bosId, m.trainerSpec.eosId, m.trainerSpec.padId],
    [expected.unk_id, expected.bos_id, expected.eos_id, expected.pad_id]);
  t.equal(m.normalizerSpec.name, 'identity');
  t.equal(m.normalizerSpec.removeExtraWhitespaces, false);
  t.equal(m.normalizerSpec.addDummyPrefix, true);
});

t.test('writer round trip, defaults, negative pad id', async (t) => {
  const p = join(dir, 'tokenizer.model');
  await writeSentencePieceModel(p, {
    pieces: [{ piece: '<unk>', score: 0, type: 2 }, { piece: '<s>', score: 0, type: 3 }, { piece: '▁héllo', score: -1.5 }],
    trainerSpec: { modelType: 'bpe', unkId: 0, bosId: 1, eosId: 2, padId: -1, byteFallback: true },
    normalizerSpec: { name: 'identity', addDummyPrefix: false },
  });
  t.same(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  const m = await readSentencePieceModel(p);
  t.same(m.pieces, [{ piece: '<unk>', score: 0, type: 2 }, { piece: '<s>', score: 0, type: 3 }, { piece: '▁héllo', score: -1.5, type: 1 }]);
  t.same(m.trainerSpec, { modelType: 'bpe', vocabSize: 3, unkId: 0, bosId: 1, eosId: 2, padId: -1, byteFallback: true });
  t.same({ ...m.normalizerSpec }, { name: 'identity', addDummyPrefix: false, removeExtraWhitespaces: true, escapeWhitespaces: true });

  // Re-encoding the real model keeps every piece.
  const real = parseSentencePieceModel(readFileSync(fx('tokenizer.model')));
  const again = parseSentencePieceModel(encodeSentencePieceModel(real));
  t.same(again.pieces, real.pieces);
  t.same(again.trainerSpec, real.trainerSpec);

  // A model with only pieces gets the protobuf defaults.
  const bare = parseSentencePieceModel(Buffer.from([0x0a, 0x05, 0x0a, 0x03, 0x61, 0x62, 0x63]));
  t.same(bare.pieces, [{ piece: 'abc', score: 0, type: 1 }]);
  t.same(bare.trainerSpec, { modelType: 'unigram', unkId: 0, bosId: 1, eosId: 2, padId: -1, byteFallback: false });
  t.equal(bare.normalizerSpec.addDummyPrefix, true);

  t.throws(() => encodeSentencePieceModel({ pieces: [] }), { code: 'ERR_INVALID_ARGUMENT' });
  t.throws(() => encodeSentencePieceModel({ pieces: [{ piece: 'a', score: 0, type: 9 }] }), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('malformed input is ERR_FORMAT, never untyped', async (t) => {
  const real = readFileSync(fx('tokenizer.model'));
  const cases: [string, Buffer, RegExp][] = [
    ['empty', Buffer.alloc(0), /no pieces/],
    ['truncated', real.subarray(0, 100), /runs past the end|truncated/],
    ['huge length', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), /runs past the end/],
    ['endless varint', Buffer.from([0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), /longer than 10 bytes/],
    ['group wire type', Buffer.from([0x0b]), /wire type 3/],
    ['wrong wire type for pieces', Buffer.from([0x08, 0x01]), /pieces has wire type 0/],
    ['bad piece type', Buffer.from([0x0a, 0x02, 0x18, 0x09]), /unknown type 9/],
    ['field 0', Buffer.from([0x00]), /invalid field number 0/],
    ['text file', Buffer.from('this is not a model\n'), /./],
  ];
  for (const [what, b, re] of cases) t.throws(() => parseSentencePieceModel(b), { code: 'ERR_FORMAT', message: re }, what);
  let untyped = 0;
  for (let n = 0; n < real.length; n += 37) {
    try { parseSentencePieceModel(real.subarray(0, n)); } catch (e) { if ((e as { code?: string }).code !== 'ERR_FORMAT') untyped++; }
  }
  t.equal(untyped, 0, 'truncations only give ERR_FORMAT');
  await t.rejects(readSentencePieceModel(join(dir, 'missing.model')), { code: 'ERR_FILE_NOT_FOUND' });
  const big = join(dir, 'text.model');
  writeFileSync(big, 'hello');
  await t.rejects(readSentencePieceModel(big), { code: 'ERR_FORMAT' });
});
