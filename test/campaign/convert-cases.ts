/**
 * Bad converter inputs: the tiny v1.5 checkpoint (test/helpers/tiny-hf.ts: sharded safetensors,
 * tokenizer.model, configs, a CLIP folder) and a copy stored as a PyTorch zip (pytorch_model.bin),
 * each case with one file corrupted: safetensors headers and data, zips and pickles (malicious ones
 * included), tokenizer.model, configs and indexes. Every case runs convertV15 into an empty folder.
 */
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rng } from '../../lib/demo/rng.js';
import { openHfCheckpoint } from '../../lib/formats/hf-checkpoint.js';
import { writeHfCheckpoint } from '../../lib/formats/hf-checkpoint.js';
import type { TensorData } from '../../lib/formats/tensor.js';
import { makeTinyV15 } from '../helpers/tiny-hf.js';
import type { CampaignCase } from './run.js';

type Mut = (b: Buffer) => Buffer;

/** A pickle protocol-2 stream that calls os.system (never to be executed). */
function evilPickle(module: string, name: string, arg: string): Buffer {
  const s = (x: string) => Buffer.concat([Buffer.from([0x58]), u32(Buffer.byteLength(x)), Buffer.from(x)]); // BINUNICODE
  return Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from(`c${module}\n${name}\n`), Buffer.from([0x28]), s(arg), Buffer.from([0x74, 0x52, 0x2e])]); // GLOBAL MARK str TUPLE REDUCE STOP
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

/** Replaces the bytes of one zip entry's name-matched payload (stored entries only) by `payload` of equal length, or appends garbage. */
function patchZipEntry(zip: Buffer, suffix: string, f: (data: Buffer) => void): Buffer {
  const out = Buffer.from(zip);
  let i = 0;
  while ((i = out.indexOf(Buffer.from([0x50, 0x4b, 0x03, 0x04]), i)) >= 0) {
    const nameLen = out.readUInt16LE(i + 26);
    const extraLen = out.readUInt16LE(i + 28);
    const size = out.readUInt32LE(i + 18);
    const name = out.toString('latin1', i + 30, i + 30 + nameLen);
    const start = i + 30 + nameLen + extraLen;
    if (name.endsWith(suffix)) {
      f(out.subarray(start, start + size));
      return out;
    }
    i = start;
  }
  return out;
}

export async function convertCases(dir: string): Promise<CampaignCase[]> {
  const base = join(dir, 'base');
  rmSync(dir, { recursive: true, force: true });
  const tiny = await makeTinyV15({ dir: base, seed: 21 });
  // the same checkpoint as one PyTorch zip
  const bin = join(dir, 'base-bin');
  mkdirSync(bin, { recursive: true });
  const reader = await openHfCheckpoint(tiny.dirs.model);
  const tensors: TensorData[] = [];
  for (const name of reader.names()) {
    const s = reader.get(name);
    tensors.push({ name, dtype: s.dtype, shape: s.shape, data: await s.readRaw() });
  }
  await reader.close();
  for (const f of readdirSync(tiny.dirs.model)) if (!f.includes('safetensors')) cpSync(join(tiny.dirs.model, f), join(bin, f));
  await writeHfCheckpoint(bin, tensors, { format: 'bin' });

  const cases: CampaignCase[] = [];
  let n = 0;
  const mk = (group: string, name: string, src: 'st' | 'bin', file: string, mut: Mut | null, extra?: (modelDir: string) => void) => {
    const root = join(dir, `case-${n++}`);
    const model = join(root, 'model');
    const vision = join(root, 'vision');
    cpSync(src === 'st' ? tiny.dirs.model : bin, model, { recursive: true });
    cpSync(tiny.dirs.vision, vision, { recursive: true });
    const target = join(root, file);
    if (mut) writeFileSync(target, mut(readFileSync(target)));
    extra?.(model);
    cases.push({ group, name, kind: 'convert', variant: 'v1.5', dirs: { model, vision }, out: join(root, 'out') });
  };
  const shard = 'model/model-00001-of-00002.safetensors';
  const r = rng(4242);
  const flips = (count: number, limit?: number): Mut => (b) => {
    const m = Buffer.from(b);
    for (let k = 0; k < count; k++) m[Math.floor(r() * Math.min(limit ?? m.length, m.length))]! ^= 1 << Math.floor(r() * 8);
    return m;
  };
  const cut = (frac: number): Mut => (b) => b.subarray(0, Math.floor(b.length * frac));
  const header = (f: (json: Record<string, { dtype?: string; shape?: number[]; data_offsets?: number[] }>) => unknown): Mut => (b) => {
    const len = Number(b.readBigUInt64LE(0));
    const json = JSON.parse(b.toString('utf8', 8, 8 + len));
    const out = f(json) ?? json;
    const h = Buffer.from(typeof out === 'string' ? out : JSON.stringify(out));
    const pre = Buffer.alloc(8);
    pre.writeBigUInt64LE(BigInt(h.length));
    return Buffer.concat([pre, h, b.subarray(8 + len)]);
  };
  const first = (j: Record<string, unknown>) => Object.keys(j).find((k) => k !== '__metadata__')!;

  mk('convert-valid', 'the unmodified checkpoint', 'st', shard, null);
  mk('convert-valid', 'the unmodified checkpoint as pytorch_model.bin', 'bin', 'model/pytorch_model.bin', null);
  // safetensors
  for (const v of [0n, 1n, 7n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 32n]) mk('convert-safetensors', `header length ${v}`, 'st', shard, (b) => { const m = Buffer.from(b); m.writeBigUInt64LE(v, 0); return m; });
  for (const [name, f] of [
    ['header not JSON', () => '{not json'],
    ['header a JSON array', () => '[]'],
    ['header JSON null', () => 'null'],
    ['header empty object', () => '{}'],
    ['dtype F8_E4M3', (j: Record<string, { dtype?: string }>) => { j[first(j)]!.dtype = 'F8_E4M3'; }],
    ['dtype unknown', (j: Record<string, { dtype?: string }>) => { j[first(j)]!.dtype = 'Q'; }],
    ['dtype a number', (j: Record<string, { dtype?: unknown }>) => { j[first(j)]!.dtype = 7; }],
    ['offsets reversed', (j: Record<string, { data_offsets?: number[] }>) => { j[first(j)]!.data_offsets!.reverse(); }],
    ['offsets past the end', (j: Record<string, { data_offsets?: number[] }>) => { j[first(j)]!.data_offsets = [0, 2 ** 40]; }],
    ['offsets 2^53', (j: Record<string, { data_offsets?: number[] }>) => { j[first(j)]!.data_offsets = [2 ** 53, 2 ** 53 + 4]; }],
    ['offsets negative', (j: Record<string, { data_offsets?: number[] }>) => { j[first(j)]!.data_offsets = [-8, 0]; }],
    ['offsets missing', (j: Record<string, { data_offsets?: number[] }>) => { delete j[first(j)]!.data_offsets; }],
    ['offsets of strings', (j: Record<string, { data_offsets?: unknown }>) => { j[first(j)]!.data_offsets = ['0', '4']; }],
    ['shape negative', (j: Record<string, { shape?: number[] }>) => { j[first(j)]!.shape = [-1, 64]; }],
    ['shape disagrees with offsets', (j: Record<string, { shape?: number[] }>) => { j[first(j)]!.shape = [3, 3]; }],
    ['shape huge', (j: Record<string, { shape?: number[] }>) => { j[first(j)]!.shape = [2 ** 31, 2 ** 31]; }],
    ['shape of floats', (j: Record<string, { shape?: number[] }>) => { j[first(j)]!.shape = [1.5, 2]; }],
    ['shape with 9 dimensions', (j: Record<string, { shape?: number[] }>) => { j[first(j)]!.shape = [1, 1, 1, 1, 1, 1, 1, 1, 64]; }],
    ['two tensors overlapping', (j: Record<string, { data_offsets?: number[] }>) => { const ks = Object.keys(j).filter((k) => k !== '__metadata__'); j[ks[1]!]!.data_offsets = [...j[ks[0]!]!.data_offsets!]; }],
    ['__metadata__ with a number', (j: Record<string, unknown>) => { j.__metadata__ = { format: 5 }; }],
    ['__metadata__ a string', (j: Record<string, unknown>) => { j.__metadata__ = 'x'; }],
    ['a tensor entry that is a string', (j: Record<string, unknown>) => { j[first(j)] = 'x'; }],
    ['a tensor renamed', (j: Record<string, unknown>) => { const k = first(j); j[`${k}.renamed`] = j[k]; delete j[k]; }],
    ['header of 10 MB of spaces', () => `{}${' '.repeat(10 << 20)}`],
  ] as const) {
    mk('convert-safetensors', name, 'st', shard, header(f as (j: Record<string, { dtype?: string; shape?: number[]; data_offsets?: number[] }>) => unknown));
  }
  for (let k = 0; k < 30; k++) mk('convert-safetensors', `header bit flips #${k}`, 'st', shard, flips(1 + (k % 5), 600));
  for (let k = 0; k < 6; k++) mk('convert-safetensors', `data bit flips #${k}`, 'st', shard, flips(8));
  for (const f of [0, 0.001, 0.01, 0.3, 0.7, 0.999]) mk('convert-safetensors', `shard cut at ${f * 100}%`, 'st', shard, cut(f));
  for (const f of [0, 0.5, 0.99]) mk('convert-safetensors', `CLIP weights cut at ${f * 100}%`, 'st', 'vision/model.safetensors', cut(f));
  for (let k = 0; k < 8; k++) mk('convert-safetensors', `CLIP header bit flips #${k}`, 'st', 'vision/model.safetensors', flips(2, 400));
  mk('convert-safetensors', 'shard is a directory', 'st', shard, null, (m) => { rmSync(join(m, 'model-00001-of-00002.safetensors')); mkdirSync(join(m, 'model-00001-of-00002.safetensors')); });
  mk('convert-safetensors', 'shard missing', 'st', shard, null, (m) => rmSync(join(m, 'model-00001-of-00002.safetensors')));
  // index
  const index = 'model/model.safetensors.index.json';
  for (const [name, text] of [['not JSON', '{'], ['empty', ''], ['no weight_map', '{}'], ['weight_map an array', '{"weight_map":[]}'], ['weight_map of numbers', '{"weight_map":{"a":1}}']] as const) {
    mk('convert-index', `index ${name}`, 'st', index, () => Buffer.from(text));
  }
  mk('convert-index', 'index points outside the folder', 'st', index, (b) => Buffer.from(b.toString().replace(/model-00001-of-00002\.safetensors/g, '../../../../etc/passwd')));
  mk('convert-index', 'index points to a missing shard', 'st', index, (b) => Buffer.from(b.toString().replace(/model-00002-of-00002/g, 'model-00009-of-00002')));
  mk('convert-index', 'index lists a tensor no shard has', 'st', index, (b) => { const j = JSON.parse(b.toString()); j.weight_map['model.extra.weight'] = 'model-00001-of-00002.safetensors'; return Buffer.from(JSON.stringify(j)); });
  // zip / pickle
  const binFile = 'model/pytorch_model.bin';
  for (const f of [0, 0.01, 0.2, 0.5, 0.9, 0.999]) mk('convert-zip', `zip cut at ${f * 100}%`, 'bin', binFile, cut(f));
  for (let k = 0; k < 24; k++) mk('convert-zip', `zip bit flips #${k}`, 'bin', binFile, k < 12 ? flips(1 + (k % 4), 200) : (b) => flips(1 + (k % 4))(b));
  mk('convert-zip', 'zip end record removed', 'bin', binFile, (b) => b.subarray(0, b.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]))));
  mk('convert-zip', 'zip central directory offset 2^32-1', 'bin', binFile, (b) => { const m = Buffer.from(b); const e = m.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06])); m.writeUInt32LE(0xffffffff, e + 16); return m; });
  mk('convert-zip', 'zip entry count 65535', 'bin', binFile, (b) => { const m = Buffer.from(b); const e = m.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06])); m.writeUInt16LE(0xffff, e + 8); m.writeUInt16LE(0xffff, e + 10); return m; });
  mk('convert-zip', 'zip entry compression method 99', 'bin', binFile, (b) => { const m = Buffer.from(b); let i = -1; while ((i = m.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), i + 1)) >= 0) m.writeUInt16LE(99, i + 10); return m; });
  mk('convert-zip', 'zip declared sizes 4 GiB', 'bin', binFile, (b) => { const m = Buffer.from(b); let i = -1; while ((i = m.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), i + 1)) >= 0) { m.writeUInt32LE(0xfffffff0, i + 20); m.writeUInt32LE(0xfffffff0, i + 24); } return m; });
  mk('convert-zip', 'not a zip at all', 'bin', binFile, () => Buffer.from('this is not a zip file'));
  mk('convert-zip', 'a bare pickle instead of a zip (legacy format)', 'bin', binFile, () => evilPickle('collections', 'OrderedDict', 'x'));
  const pkl = (name: string, p: Buffer) => mk('convert-pickle', name, 'bin', binFile, (b) => patchZipEntry(b, 'data.pkl', (d) => { d.fill(0x2e); p.copy(d, 0, 0, Math.min(p.length, d.length)); }));
  pkl('data.pkl calls os.system', evilPickle('os', 'system', 'touch /tmp/llava-med-pwned'));
  pkl('data.pkl calls posix.system', evilPickle('posix', 'system', 'touch /tmp/llava-med-pwned'));
  pkl('data.pkl calls builtins.eval', evilPickle('builtins', 'eval', '1+1'));
  pkl('data.pkl calls builtins.exec', evilPickle('builtins', 'exec', 'print(1)'));
  pkl('data.pkl calls subprocess.Popen', evilPickle('subprocess', 'Popen', 'ls'));
  pkl('data.pkl imports importlib', evilPickle('importlib', 'import_module', 'os'));
  pkl('data.pkl calls torch.load', evilPickle('torch', 'load', 'x'));
  pkl('data.pkl calls getattr', evilPickle('builtins', 'getattr', 'x'));
  pkl('data.pkl is empty', Buffer.alloc(0));
  pkl('data.pkl has only STOP', Buffer.from([0x2e]));
  pkl('data.pkl protocol 99', Buffer.from([0x80, 99, 0x2e]));
  pkl('data.pkl unknown opcode', Buffer.from([0x80, 0x02, 0xff, 0x2e]));
  pkl('data.pkl pops an empty stack', Buffer.from([0x80, 0x02, 0x30, 0x2e]));
  pkl('data.pkl reads memo 1000', Buffer.from([0x80, 0x02, 0x6a, 0xe8, 0x03, 0x00, 0x00, 0x2e]));
  pkl('data.pkl string of length 2^31', Buffer.from([0x80, 0x02, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x2e]));
  pkl('data.pkl deep MARK nesting', Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.alloc(5000, 0x28), Buffer.from([0x2e])]));
  pkl('data.pkl deep list nesting', Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.alloc(5000, 0x5d), Buffer.from([0x2e])]));
  for (let k = 0; k < 16; k++) mk('convert-pickle', `data.pkl bit flips #${k}`, 'bin', binFile, (b) => patchZipEntry(b, 'data.pkl', (d) => { for (let f = 0; f < 1 + (k % 3); f++) d[Math.floor(r() * d.length)]! ^= 1 << Math.floor(r() * 8); }));
  // tokenizer.model
  const tok = 'model/tokenizer.model';
  mk('convert-tokenizer', 'tokenizer.model empty', 'st', tok, () => Buffer.alloc(0));
  mk('convert-tokenizer', 'tokenizer.model random bytes', 'st', tok, () => Buffer.from(Array.from({ length: 300 }, () => Math.floor(r() * 256))));
  mk('convert-tokenizer', 'tokenizer.model is a text file', 'st', tok, () => Buffer.from('<unk>\n<s>\n</s>\n'));
  mk('convert-tokenizer', 'tokenizer.model missing', 'st', tok, null, (m) => rmSync(join(m, 'tokenizer.model')));
  for (const f of [0.01, 0.1, 0.5, 0.9, 0.999]) mk('convert-tokenizer', `tokenizer.model cut at ${f * 100}%`, 'st', tok, cut(f));
  for (let k = 0; k < 20; k++) mk('convert-tokenizer', `tokenizer.model bit flips #${k}`, 'st', tok, flips(1 + (k % 4)));
  mk('convert-tokenizer', 'tokenizer.model varint length 2^63', 'st', tok, (b) => { const m = Buffer.from(b); m[1] = 0xff; return Buffer.concat([m.subarray(0, 1), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), m.subarray(2)]); });
  // configs
  const cfg = (name: string, f: (j: Record<string, unknown>) => void, file = 'model/config.json') =>
    mk('convert-config', name, 'st', file, (b) => { const j = JSON.parse(b.toString()); f(j); return Buffer.from(JSON.stringify(j)); });
  for (const [k, vals] of [
    ['num_hidden_layers', [0, -1, 1e9, '2', 2.5, null]], ['hidden_size', [0, 63, -64, 1e9]], ['num_attention_heads', [0, 3, 1e9]], ['num_key_value_heads', [0, 3, 8]],
    ['vocab_size', [0, 1, 1e9]], ['intermediate_size', [0, -1]], ['rms_norm_eps', [-1, 'x', 0]], ['rope_theta', [0, -1]], ['max_position_embeddings', [0, -5]],
    ['mm_hidden_size', [0, 31]], ['mm_projector_type', ['linear', 'mlp9x_gelu', 'identity']], ['model_type', ['llama', 'bert']], ['mm_vision_select_layer', [-100, 50, 0]],
  ] as const) {
    for (const v of vals) cfg(`config ${k} = ${JSON.stringify(v)}`, (j) => { j[k] = v; });
  }
  for (const k of ['hidden_size', 'num_hidden_layers', 'vocab_size', 'num_attention_heads']) cfg(`config without ${k}`, (j) => { delete j[k]; });
  mk('convert-config', 'config.json not JSON', 'st', 'model/config.json', () => Buffer.from('{"hidden_size": '));
  mk('convert-config', 'config.json an array', 'st', 'model/config.json', () => Buffer.from('[1,2]'));
  mk('convert-config', 'config.json 20 MB', 'st', 'model/config.json', () => Buffer.from(`{"x":"${'a'.repeat(20 << 20)}"}`));
  for (const [k, vals] of [['image_size', [0, 27, -1, 1e6]], ['patch_size', [0, 5, 1e6]], ['hidden_size', [0, 33]], ['num_hidden_layers', [0, 1000]], ['num_attention_heads', [0, 5]]] as const) {
    for (const v of vals) {
      cfg(`CLIP config ${k} = ${v}`, (j) => { const vc = (j.vision_config ?? j) as Record<string, unknown>; vc[k] = v; }, 'vision/config.json');
    }
  }
  mk('convert-config', 'tokenizer_config.json not JSON', 'st', 'model/tokenizer_config.json', () => Buffer.from('{'));
  mk('convert-config', 'special_tokens_map.json bos an object without content', 'st', 'model/special_tokens_map.json', () => Buffer.from('{"bos_token":{"x":1}}'));
  mk('convert-config', 'special_tokens_map.json eos unknown text', 'st', 'model/special_tokens_map.json', () => Buffer.from('{"bos_token":"<s>","eos_token":"<nope>"}'));
  return cases;
}
