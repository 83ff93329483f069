import t, { type Test } from 'tap';
import { readFileSync, mkdtempSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTorchZip, writeTorchZip } from '../../lib/formats/torch.js';
import { unpickle, pickleToPlain, SAFE_GLOBALS } from '../../lib/formats/unpickle.js';
import { deflateRawSync, crc32 } from 'node:zlib';

const fx = (name: string) => new URL(`../fixtures/formats/torch/${name}`, import.meta.url).pathname;
// Values torch itself reported, written by scripts/fixtures/make-torch-fixtures.py.
const expected = JSON.parse(readFileSync(fx('expected.json'), 'utf8')) as Record<string, Record<string, { dtype: string; shape: number[]; values: number[] }>>;
const DT: Record<string, string> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16', float64: 'F64', int64: 'I64', bool: 'BOOL' };
const dir = mkdtempSync(join(tmpdir(), 'llava-torch-'));

async function checkAgainstTorch(t: Test, file: string) {
  const r = await openTorchZip(fx(file));
  const want = expected[file]!;
  t.same(r.names().sort(), Object.keys(want).sort(), `${file}: tensor names`);
  for (const [name, e] of Object.entries(want)) {
    const s = r.get(name);
    t.equal(s.dtype, DT[e.dtype], `${file}:${name} dtype`);
    t.same(s.shape, e.shape, `${file}:${name} shape`);
    if (['F32', 'F16', 'BF16', 'F64'].includes(s.dtype)) {
      // float32 of what torch reports in float64 (exact for F32/F16/BF16; rounded once for F64)
      t.same([...(await s.readF32())], e.values.map(Math.fround), `${file}:${name} values`);
    } else if (s.dtype === 'I64') {
      const raw = await s.readRaw();
      t.same(Array.from({ length: raw.length / 8 }, (_, i) => Number(raw.readBigInt64LE(8 * i))), e.values, `${file}:${name} values`);
    } else {
      t.same([...(await s.readRaw())], e.values, `${file}:${name} values`);
    }
  }
  await r.close();
}

t.test('reads genuine torch.save state dicts with the values torch reports', async (t) => {
  await checkAgainstTorch(t, 'state.pt');
  await checkAgainstTorch(t, 'linear.pt');
  await checkAgainstTorch(t, 'shared.pt');
  const r = await openTorchZip(fx('shared.pt'));
  t.equal(r.get('a').byteLength, 12);
  t.same([...(await r.get('a').readF32())], [2, 3, 4], 'storage offset 2 honoured');
  t.same([...(await r.get('b').readF32())], [5, 6, 7, 8, 9], 'storage offset 5 honoured');
  await r.close();
});

t.test('non-contiguous views and missing tensors are ERR_FORMAT', async (t) => {
  const r = await openTorchZip(fx('noncontig.pt'));
  t.same(r.get('t').shape, [5, 2]);
  await t.rejects(r.get('t').readRaw(), { code: 'ERR_FORMAT', message: /not contiguous.*stride \[1, 5\]/ });
  t.throws(() => r.get('nope'), { code: 'ERR_FORMAT' });
  await r.close();
});

t.test('a malicious pickle (os.system) is refused, naming the global, and runs nothing', async (t) => {
  await t.rejects(openTorchZip(fx('evil.pt')), { code: 'ERR_UNSAFE_PICKLE', message: /'posix\.system'/ });
});

t.test('the legacy non-zip format asks to re-save', async (t) => {
  await t.rejects(openTorchZip(fx('legacy.pt')), { code: 'ERR_FORMAT', message: /legacy.*Re-save/ });
  const p = join(dir, 'text.bin');
  writeFileSync(p, 'just text');
  await t.rejects(openTorchZip(p), { code: 'ERR_FORMAT', message: /not a PyTorch checkpoint/ });
  await t.rejects(openTorchZip(join(dir, 'missing.bin')), { code: 'ERR_FILE_NOT_FOUND' });
});

t.test('writeTorchZip output reads back (and has the torch.save layout)', async (t) => {
  const p = join(dir, 'w.bin');
  const vals = new Float32Array([1.5, -2, 0.25, 8]);
  const ids = Buffer.alloc(24); [0, 1, 2].forEach((v, i) => ids.writeBigInt64LE(BigInt(v), 8 * i));
  await writeTorchZip(p, [
    { name: 'a.weight', dtype: 'F32', shape: [2, 2], data: vals },
    { name: 'b', dtype: 'F16', shape: [4], data: vals },
    { name: 'c', dtype: 'BF16', shape: [4, 1], data: vals },
    { name: 'ids', dtype: 'I64', shape: [1, 3], data: ids },
    { name: 'big', dtype: 'F32', shape: [300], data: new Float32Array(300).map((_, i) => i) },
  ]);
  t.same(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  const r = await openTorchZip(p);
  t.same(r.names(), ['a.weight', 'b', 'c', 'ids', 'big']);
  t.same([...(await r.get('a.weight').readF32())], [...vals]);
  t.same([...(await r.get('b').readF32())], [...vals]);
  t.same([...(await r.get('c').readF32())], [...vals]);
  t.ok((await r.get('ids').readRaw()).equals(ids));
  t.equal((await r.get('big').readF32())[299], 299);
  await r.close();
  const raw = readFileSync(p);
  t.equal(raw.readUInt32LE(0), 0x04034b50);
  t.ok(raw.includes(Buffer.from('archive/version')));
  await t.rejects(writeTorchZip(join(dir, 'bad.bin'), [{ name: 'x', dtype: 'F32', shape: [2], data: new Float32Array(3) }]), { code: 'ERR_INVALID_ARGUMENT' });
  t.notOk(existsSync(join(dir, 'bad.bin')));
});

t.test('damaged archives are typed errors', async (t) => {
  const good = readFileSync(fx('state.pt'));
  for (const n of [10, 100, good.length - 30, good.length - 1]) {
    const p = join(dir, `cut${n}.pt`);
    writeFileSync(p, good.subarray(0, n));
    await t.rejects(openTorchZip(p), { code: 'ERR_FORMAT' }, `truncated at ${n}`);
  }
  // a storage record missing from the archive
  const p = join(dir, 'nostorage.bin');
  await writeTorchZip(p, [{ name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) }]);
  const buf = readFileSync(p);
  buf.write('archive/data/9', buf.indexOf('archive/data/0'), 'latin1'); // rename in the local header
  const cdAt = buf.lastIndexOf('archive/data/0');
  buf.write('archive/data/9', cdAt, 'latin1'); // and in the central directory
  writeFileSync(p, buf);
  await t.rejects(openTorchZip(p), { code: 'ERR_FORMAT', message: /storage '0'/ });
});

t.test('deflated data.pkl (a re-zipped checkpoint) is supported', async (t) => {
  // Build a zip by hand with a deflated data.pkl to exercise inflate.
  // data.pkl = PROTO 2, EMPTY_DICT, STOP, stored with deflate
  const data = Buffer.from([0x80, 0x02, 0x7d, 0x2e]);
  const def = deflateRawSync(data);
  const name = Buffer.from('archive/data.pkl');
  const lfh = Buffer.alloc(30); lfh.writeUInt32LE(0x04034b50, 0); lfh.writeUInt16LE(20, 4); lfh.writeUInt16LE(8, 8);
  lfh.writeUInt32LE(crc32(data), 14); lfh.writeUInt32LE(def.length, 18); lfh.writeUInt32LE(data.length, 22); lfh.writeUInt16LE(name.length, 26);
  const cdh = Buffer.alloc(46); cdh.writeUInt32LE(0x02014b50, 0); cdh.writeUInt16LE(8, 10);
  cdh.writeUInt32LE(crc32(data), 16); cdh.writeUInt32LE(def.length, 20); cdh.writeUInt32LE(data.length, 24); cdh.writeUInt16LE(name.length, 28);
  const body = Buffer.concat([lfh, name, def]);
  const eocd = Buffer.alloc(22); eocd.writeUInt32LE(0x06054b50, 0); eocd.writeUInt16LE(1, 8); eocd.writeUInt16LE(1, 10);
  eocd.writeUInt32LE(46 + name.length, 12); eocd.writeUInt32LE(body.length, 16);
  const p = join(dir, 'deflated.bin');
  writeFileSync(p, Buffer.concat([body, cdh, name, eocd]));
  const r = await openTorchZip(p);
  t.same(r.names(), [], 'empty dict read from a deflated data.pkl');
  t.ok(r.root instanceof Map);
  await r.close();
});

// ---- the unpickler on its own ----

function pk(...parts: (number[] | string | Buffer)[]): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p as number[]))));
}
const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const ustr = (s: string) => { const b = Buffer.from(s); return Buffer.concat([Buffer.from([0x58]), u32(b.length), b]); };

t.test('unpickle: builtin data (PathVQA-style question files) with the default allow-list', async (t) => {
  // [{'q': 'is this normal?', 'id': 7, 'score': 0.5, 'ok': True, 'none': None, 'big': 2**70, 'neg': -3}]
  const b = pk([0x80, 0x02, 0x5d, 0x71, 0x00, 0x7d, 0x71, 0x01, 0x28],
    ustr('q'), ustr('is this normal?'), ustr('id'), [0x4b, 7], ustr('score'), [0x47], Buffer.from([0x3f, 0xe0, 0, 0, 0, 0, 0, 0]),
    ustr('ok'), [0x88], ustr('none'), [0x4e], ustr('big'), [0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0x40], ustr('neg'), [0x4a], Buffer.from([0xfd, 0xff, 0xff, 0xff]),
    ustr('t'), [0x4b, 1, 0x4d, 0x00, 0x01, 0x86], [0x75, 0x61, 0x68, 0x01, 0x61, 0x2e]);
  const v = unpickle(b) as unknown[];
  t.equal(v.length, 2, 'APPEND of a memoised dict twice via BINGET');
  t.equal(v[0], v[1], 'memo returns the same object');
  t.same(pickleToPlain(v[0]), { q: 'is this normal?', id: 7, score: 0.5, ok: true, none: null, big: 2n ** 70n, neg: -3, t: [1, 256] });
});

t.test('unpickle: refusals and malformed input', async (t) => {
  // GLOBAL os.system + REDUCE
  const evil = pk([0x80, 0x02], 'cos\nsystem\n', [0x58], u32(2), 'ls', [0x85, 0x52, 0x2e]);
  t.throws(() => unpickle(evil), { code: 'ERR_UNSAFE_PICKLE', message: /'os\.system'/ });
  // STACK_GLOBAL builtins.eval
  const evil2 = pk([0x80, 0x04], [0x8c, 8], 'builtins', [0x8c, 4], 'eval', [0x93, 0x2e]);
  t.throws(() => unpickle(evil2), { code: 'ERR_UNSAFE_PICKLE', message: /'builtins\.eval'/ });
  t.throws(() => unpickle(pk([0x80, 0x02], '(', 'i__main__\nX\n', '.')), { code: 'ERR_UNSAFE_PICKLE', message: /INST/ });
  t.throws(() => unpickle(pk([0x80, 0x02, 0x29, 0x51, 0x2e])), { code: 'ERR_FORMAT', message: /persistent/ });
  // collections.OrderedDict is allowed by default
  t.ok(unpickle(pk([0x80, 0x02], 'ccollections\nOrderedDict\n', [0x29, 0x52, 0x2e])) instanceof Map);
  t.ok('collections.OrderedDict' in SAFE_GLOBALS);
  // torch globals are NOT in the default list
  t.throws(() => unpickle(pk([0x80, 0x02], 'ctorch._utils\n_rebuild_tensor_v2\n.')), { code: 'ERR_UNSAFE_PICKLE' });
  const malformed: [string, Buffer, RegExp][] = [
    ['empty', Buffer.alloc(0), /empty/],
    ['no STOP', pk([0x80, 0x02, 0x4e]), /needs 1 more bytes/],
    ['huge BINUNICODE', pk([0x80, 0x02, 0x58], u32(0xffffffff)), /remain/],
    ['huge BINUNICODE8', pk([0x80, 0x04, 0x8d], Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x40])), /exceeds/],
    ['stack underflow', pk([0x80, 0x02, 0x2e]), /underflow/],
    ['bad memo', pk([0x80, 0x02, 0x68, 0x05, 0x2e]), /memo key 5/],
    ['unknown opcode', pk([0x80, 0x02, 0xff]), /opcode 0xff/],
    ['protocol 9', pk([0x80, 0x09]), /protocol 9/],
    ['setitem on list', pk([0x80, 0x02, 0x5d, 0x4e, 0x4e, 0x73, 0x2e]), /not a dict/],
    ['TUPLE without MARK', pk([0x80, 0x02, 0x74]), /MARK/],
    ['giant LONG4', pk([0x80, 0x02, 0x8b], u32(1 << 30)), /unreasonably/],
  ];
  for (const [what, b, re] of malformed) t.throws(() => unpickle(b), { code: 'ERR_FORMAT', message: re }, what);
  // random garbage never escapes as an untyped error
  let seed = 7;
  let untyped = 0;
  for (let i = 0; i < 2000; i++) {
    const n = 1 + (i % 40);
    const b = Buffer.alloc(n);
    for (let j = 0; j < n; j++) { seed = (seed * 1103515245 + 12345) & 0x7fffffff; b[j] = seed & 0xff; }
    b[0] = 0x80; b[1] = 2;
    try { unpickle(b); } catch (e) {
      const c = (e as { code?: string }).code;
      if (c !== 'ERR_FORMAT' && c !== 'ERR_UNSAFE_PICKLE') untyped++;
    }
  }
  t.equal(untyped, 0, 'no untyped errors from 2000 random pickles');
});
