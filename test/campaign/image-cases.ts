/**
 * Bad images for the campaign, all generated (nothing committed): valid tiny images in every format
 * sharp decodes, then cut, bit-flipped and with header fields overwritten; random bytes; odd raw pixel
 * objects (described here, built in the child because they cannot cross IPC); odd paths.
 * Each case asks one question through LlavaMed.ask with maxTokens 1.
 */
import { mkdirSync, writeFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { rng } from '../../lib/demo/rng.js';
import type { CampaignCase } from './run.js';

export interface ImageSpec {
  path?: string;
  file?: string;
  raw?: { width?: unknown; height?: unknown; channels?: unknown; data: string; len: number; omit?: string[]; throwing?: string[]; proxy?: boolean };
  value?: unknown;
}

function noise(w: number, h: number, c: number, seed: number): Buffer {
  const r = rng(seed);
  const b = Buffer.alloc(w * h * c);
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256);
  return b;
}

async function bases(): Promise<Record<string, Buffer>> {
  const img = () => sharp(noise(28, 20, 3, 5), { raw: { width: 28, height: 20, channels: 3 } });
  const rgba = () => sharp(noise(17, 23, 4, 6), { raw: { width: 17, height: 23, channels: 4 } });
  return {
    png: await img().png().toBuffer(),
    png16: await img().toColourspace('rgb16').png().toBuffer(),
    pngA: await rgba().png().toBuffer(),
    jpeg: await img().jpeg({ quality: 80 }).toBuffer(),
    jpegP: await img().jpeg({ progressive: true }).toBuffer(),
    webp: await img().webp().toBuffer(),
    gif: await rgba().gif().toBuffer(),
    tiff: await img().tiff().toBuffer(),
  };
}

/** Image cases, files written under `dir`. `withSpecialFiles` adds FIFO and device paths. */
export async function imageCases(dir: string, ctx: { model: string; mmproj: string }): Promise<{ cases: CampaignCase[]; special: CampaignCase[] }> {
  mkdirSync(dir, { recursive: true });
  const cases: CampaignCase[] = [];
  let n = 0;
  const fileCase = (group: string, name: string, bytes: Buffer) => {
    const file = join(dir, `img-${n++}.bin`);
    writeFileSync(file, bytes);
    // half as a path, half as a Buffer: both entry points
    const image: ImageSpec = n % 2 ? { path: file } : { file };
    cases.push({ group, name, kind: 'image', ...ctx, image });
  };
  const b = await bases();
  for (const [fmt, buf] of Object.entries(b)) {
    const r = rng(fmt.length * 7919 + buf.length);
    fileCase('image-valid', `${fmt} valid`, buf);
    for (let k = 0; k < 14; k++) {
      const at = k < 6 ? [0, 1, 4, 8, 16, 33][k]! : Math.floor(r() * buf.length);
      fileCase('image-truncated', `${fmt} cut to ${at} of ${buf.length} bytes`, buf.subarray(0, at));
    }
    for (let k = 0; k < 40; k++) {
      const m = Buffer.from(buf);
      const flips = 1 + Math.floor(r() * 6);
      const limit = k < 25 ? Math.min(m.length, 96) : m.length; // most in the header
      for (let f = 0; f < flips; f++) m[Math.floor(r() * limit)]! ^= 1 << Math.floor(r() * 8);
      fileCase('image-bitflip', `${fmt} ${flips} bit flips #${k}`, m);
    }
    for (let k = 0; k < 8; k++) {
      const m = Buffer.from(buf);
      const at = Math.floor(r() * Math.min(m.length - 4, 64));
      m.writeUInt32BE([0, 0xffffffff, 0x7fffffff, 0x10000, 1, 0x80000000, 65535, 3][k]!, at);
      fileCase('image-field', `${fmt} u32 ${k} at ${at}`, m);
    }
  }
  // PNG IHDR width/height (big-endian at 16/20) and JPEG SOF dimensions
  for (const [w, h] of [[0, 20], [28, 0], [0x7fffffff, 1], [1, 0x7fffffff], [100000, 100000], [0xffffffff, 0xffffffff], [65535, 65535], [1, 1]]) {
    const m = Buffer.from(b.png!);
    m.writeUInt32BE(w!, 16);
    m.writeUInt32BE(h!, 20);
    fileCase('image-dims', `png IHDR ${w}x${h}`, m);
  }
  const sof = b.jpeg!.indexOf(Buffer.from([0xff, 0xc0]));
  for (const [w, h] of [[0, 20], [28, 0], [65535, 65535], [1, 1]]) {
    const m = Buffer.from(b.jpeg!);
    if (sof > 0) {
      m.writeUInt16BE(h!, sof + 5);
      m.writeUInt16BE(w!, sof + 7);
    }
    fileCase('image-dims', `jpeg SOF ${w}x${h}`, m);
  }
  const r = rng(99);
  for (let k = 0; k < 30; k++) fileCase('image-random', `random ${k}`, noise(1 + Math.floor(r() * 4000), 1, 1, 1000 + k));
  for (const [name, text] of [
    ['svg huge', '<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"><rect width="1" height="1"/></svg>'],
    ['svg external href', '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10"><image xlink:href="file:///etc/passwd" width="10" height="10"/></svg>'],
    ['svg entity bomb', '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&d;&d;&d;</text></svg>'],
    ['text', 'hello, this is not an image'],
    ['html', '<html><body>x</body></html>'],
    ['json', '{"width":28,"height":28}'],
    ['pdf header', '%PDF-1.4\n%\xe2\xe3\n1 0 obj<<>>endobj'],
    ['gguf magic', 'GGUF\x03\x00\x00\x00'],
    ['DICM marker only', `${'\0'.repeat(128)}DICM`],
    ['DICM with garbage', `${'\0'.repeat(128)}DICM\x02\x00\x10\x00UI\x04\x00abcd`],
    ['zip magic', 'PK\x03\x04garbage'],
    ['png signature only', '\x89PNG\r\n\x1a\n'],
    ['jpeg SOI only', '\xff\xd8\xff'],
    ['gif header only', 'GIF89a'],
    ['riff webp header only', 'RIFF\x10\x00\x00\x00WEBPVP8 '],
    ['tiff header only', 'II*\x00\x08\x00\x00\x00'],
    ['bmp header', 'BM\x36\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00'],
    ['heif ftyp', '\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic'],
  ] as const) {
    fileCase('image-other-format', name, Buffer.from(text, 'latin1'));
  }
  fileCase('image-empty', 'empty buffer', Buffer.alloc(0));
  fileCase('image-empty', 'one zero byte', Buffer.alloc(1));

  // raw pixel objects
  const raw = (name: string, spec: NonNullable<ImageSpec['raw']>) => cases.push({ group: 'image-raw', name, kind: 'image', ...ctx, image: { raw: spec } });
  raw('raw 28x28x3 buffer (valid)', { width: 28, height: 28, channels: 3, data: 'buffer', len: 28 * 28 * 3 });
  for (const ch of [1, 2, 4]) raw(`raw channels ${ch} (valid)`, { width: 9, height: 7, channels: ch, data: 'uint8', len: 63 * ch });
  for (const ch of [0, 5, -1, 3.5, NaN, '3', null]) raw(`raw channels ${String(ch)}`, { width: 4, height: 4, channels: ch, data: 'buffer', len: 48 });
  for (const [w, h] of [[0, 4], [4, 0], [-4, 4], [4.5, 4], [NaN, 4], [Infinity, 4], [2 ** 31, 1], [1e6, 1e6], ['4', 4], [null, 4], [4, undefined]] as const) {
    raw(`raw ${String(w)}x${String(h)}`, { width: w, height: h, channels: 3, data: 'buffer', len: 48 });
  }
  for (const len of [0, 47, 49, 96, 1]) raw(`raw 4x4x3 with ${len} bytes`, { width: 4, height: 4, channels: 3, data: 'buffer', len });
  for (const kind of ['clamped', 'float32', 'uint16', 'array', 'string', 'null', 'none', 'detached']) raw(`raw data as ${kind}`, { width: 4, height: 4, channels: 3, data: kind, len: 48 });
  for (const k of ['width', 'height', 'channels', 'data']) raw(`raw without ${k}`, { width: 4, height: 4, channels: 3, data: 'buffer', len: 48, omit: [k] });
  for (const k of ['width', 'height', 'channels', 'data']) raw(`raw with a throwing ${k} getter`, { width: 4, height: 4, channels: 3, data: 'buffer', len: 48, throwing: [k] });
  raw('raw behind a throwing proxy', { width: 4, height: 4, channels: 3, data: 'buffer', len: 48, proxy: true });
  for (const [name, value] of [['null', null], ['number', 42], ['true', true], ['empty object', {}], ['empty string', ''], ['array', [1, 2, 3]], ['nested object', { data: { data: 1 } }]] as const) {
    cases.push({ group: 'image-value', name: `image ${name}`, kind: 'image', ...ctx, image: { value } });
  }

  // paths
  const pathCase = (name: string, path: string) => cases.push({ group: 'image-path', name, kind: 'image', ...ctx, image: { path } });
  pathCase('missing file', join(dir, 'nope.png'));
  pathCase('a directory', dir);
  pathCase('path with NUL', `${dir}/a\0b.png`);
  pathCase('very long path', join(dir, 'x'.repeat(5000)));
  pathCase('relative missing path', 'definitely-not-here.png');
  const loop = join(dir, 'loop.png');
  try {
    symlinkSync(loop, loop);
  } catch {
    // exists
  }
  pathCase('symlink loop', loop);
  const special: CampaignCase[] = [];
  // FIFO and devices: see campaign.test.ts (files-safety's fix)
  for (const [name, path] of [['/dev/zero', '/dev/zero'], ['/dev/urandom', '/dev/urandom'], ['/dev/null', '/dev/null']] as const) {
    special.push({ group: 'image-special', name, kind: 'image', ...ctx, image: { path }, timeoutMs: 20_000 });
  }
  return { cases, special };
}
