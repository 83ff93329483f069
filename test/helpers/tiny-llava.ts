/**
 * Tiny LLaVA-Med models for the LlavaMed / CLI tests, built through the real pipeline:
 *
 *  - v0: writeSyntheticV0 (random-weight HF base + delta + CLIP folders, the demo's generator) at tiny
 *    dims, then convertV0 with outtype f32;
 *  - v1.5: makeTinyV15 (test/helpers/tiny-hf.ts) then convertV15 with outtype f32.
 *
 * Both use a 28 px CLIP with patch 14, so an image is 4 tokens. Files are built once per machine and
 * cached in os.tmpdir() under a name keyed by a hash of this file and of the generator/converter
 * sources, so a changed converter never serves a stale model. Each build goes to a private staging
 * folder that is renamed into place, so concurrent test processes never see half-written files.
 *
 * The token ids come from the GGUF metadata the converter wrote, never from constants here.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { convertV0, convertV15 } from '../../lib/convert/index.js';
import { DEMO_DIMS, writeSyntheticV0, type SyntheticV0Dims } from '../../lib/demo/synthetic-v0.js';
import { GgufValueType, readGgufHeader } from '../../lib/formats/gguf.js';
import { makeTinyV15 } from './tiny-hf.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** v0 dims: LLM hidden 64, 2 layers, 4 heads; vocab 512 (+4 added); CLIP 32 wide, 28 px / 14 → 4 image tokens. */
export const TINY_V0_DIMS: SyntheticV0Dims = {
  hidden: 64, layers: 2, heads: 4, intermediate: 128, vocab: 512,
  clipHidden: 32, clipLayers: 2, clipHeads: 4, clipIntermediate: 64, imageSize: 28, patchSize: 14,
};

export interface TinyLlavaIds {
  /** tokenizer.ggml.bos_token_id */
  bos: number;
  /** tokenizer.ggml.eos_token_id */
  eos: number;
  /** llava_med.prompt_bos_token_id: the id the original prepended. */
  promptBos: number;
  /** llava_med.image_start_token_id / image_end_token_id (v0 only). */
  imStart?: number;
  imEnd?: number;
  nVocab: number;
}

export interface TinyLlava {
  variant: 'v0' | 'v1.5';
  dir: string;
  model: string;
  mmproj: string;
  ids: TinyLlavaIds;
  imageSize: number;
  imageTokens: number;
}

function sourcesHash(): string {
  const h = createHash('sha256');
  const files = [
    fileURLToPath(import.meta.url),
    join(REPO, 'test', 'helpers', 'tiny-hf.ts'),
    join(REPO, 'lib', 'demo', 'synthetic-v0.ts'),
    ...['convert', 'formats'].flatMap((sub) =>
      readdirSync(join(REPO, 'lib', sub))
        .filter((f) => f.endsWith('.ts'))
        .sort()
        .map((f) => join(REPO, 'lib', sub, f)),
    ),
  ];
  for (const f of files) h.update(f).update(readFileSync(f));
  return h.digest('hex').slice(0, 16);
}

const CACHE = join(tmpdir(), 'llava-med-tiny-llava');

async function readIds(model: string): Promise<TinyLlavaIds> {
  const h = await readGgufHeader(model);
  const u = (k: string): number | undefined => {
    const kv = h.kv.get(k);
    return kv === undefined ? undefined : Number(kv.value);
  };
  const tokens = h.kv.get('tokenizer.ggml.tokens');
  if (!tokens || tokens.type !== GgufValueType.ARRAY) throw new Error(`${model}: no tokenizer.ggml.tokens`);
  return {
    bos: u('tokenizer.ggml.bos_token_id')!,
    eos: u('tokenizer.ggml.eos_token_id')!,
    promptBos: u('llava_med.prompt_bos_token_id')!,
    imStart: u('llava_med.image_start_token_id'),
    imEnd: u('llava_med.image_end_token_id'),
    nVocab: (tokens.value as unknown[]).length,
  };
}

/** Builds into a staging folder and renames it to `final` (a concurrent winner is fine: same content). */
async function buildOnce(final: string, build: (staging: string) => Promise<void>): Promise<void> {
  if (existsSync(join(final, 'done'))) return;
  await mkdir(CACHE, { recursive: true });
  const staging = `${final}.${process.pid}.${Date.now()}.tmp`;
  await rm(staging, { recursive: true, force: true });
  try {
    await build(staging);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(staging, 'done'), 'ok\n');
    try {
      await rename(staging, final);
    } catch {
      // Another process finished first (or a stale incomplete folder is in the way).
      if (!existsSync(join(final, 'done'))) {
        await rm(final, { recursive: true, force: true });
        await rename(staging, final);
      }
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

let v0Promise: Promise<TinyLlava> | undefined;
let v15Promise: Promise<TinyLlava> | undefined;

/** The tiny v0 model + mmproj (f32), built once per machine through writeSyntheticV0 + convertV0. */
export function tinyV0(): Promise<TinyLlava> {
  v0Promise ??= (async () => {
    const dir = join(CACHE, `v0-${sourcesHash()}`);
    await buildOnce(dir, async (staging) => {
      const src = await writeSyntheticV0(join(staging, 'hf'), TINY_V0_DIMS, { seed: 77 });
      await convertV0({ base: src.base, delta: src.delta, vision: src.vision, out: join(staging, 'gguf'), name: 'tiny-v0', outtype: 'f32' });
      await rm(join(staging, 'hf'), { recursive: true, force: true });
    });
    const model = join(dir, 'gguf', 'tiny-v0.gguf');
    return {
      variant: 'v0' as const, dir, model, mmproj: join(dir, 'gguf', 'mmproj-tiny-v0.gguf'),
      ids: await readIds(model), imageSize: TINY_V0_DIMS.imageSize, imageTokens: (TINY_V0_DIMS.imageSize / TINY_V0_DIMS.patchSize) ** 2,
    };
  })();
  return v0Promise;
}

let demoPromise: Promise<{ model: string; mmproj: string }> | undefined;

/**
 * The demo model (lib/demo: DEMO_DIMS, the real 224 px CLIP geometry, f16), built once per machine.
 * For tests where buffer sizes matter (memory), which the tiny models are too small to show.
 */
export function demoV0(): Promise<{ model: string; mmproj: string }> {
  demoPromise ??= (async () => {
    const dir = join(CACHE, `demo-${sourcesHash()}`);
    await buildOnce(dir, async (staging) => {
      const src = await writeSyntheticV0(join(staging, 'hf'), DEMO_DIMS);
      await convertV0({ base: src.base, delta: src.delta, vision: src.vision, out: join(staging, 'gguf'), name: 'demo', outtype: 'f16' });
      await rm(join(staging, 'hf'), { recursive: true, force: true });
    });
    return { model: join(dir, 'gguf', 'demo.gguf'), mmproj: join(dir, 'gguf', 'mmproj-demo.gguf') };
  })();
  return demoPromise;
}

/** The tiny v1.5 model + mmproj (f32), built once per machine through makeTinyV15 + convertV15. */
export function tinyV15(): Promise<TinyLlava> {
  v15Promise ??= (async () => {
    const dir = join(CACHE, `v15-${sourcesHash()}`);
    await buildOnce(dir, async (staging) => {
      const tiny = await makeTinyV15({ dir: join(staging, 'hf'), seed: 21 });
      await convertV15({ ...tiny.dirs, out: join(staging, 'gguf'), name: 'tiny-v15', outtype: 'f32' });
      await rm(join(staging, 'hf'), { recursive: true, force: true });
    });
    const model = join(dir, 'gguf', 'tiny-v15.gguf');
    return { variant: 'v1.5' as const, dir, model, mmproj: join(dir, 'gguf', 'mmproj-tiny-v15.gguf'), ids: await readIds(model), imageSize: 28, imageTokens: 4 };
  })();
  return v15Promise;
}

/** Seeded pseudo-random RGB pixels (row-major, 3 channels). */
export function noisePixels(width: number, height: number, seed: number, channels: 1 | 3 | 4 = 3): Buffer {
  let a = seed >>> 0;
  const out = Buffer.alloc(width * height * channels);
  for (let i = 0; i < out.length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

/** A lossless PNG of seeded noise: its decoded pixels are exactly noisePixels(w, h, seed, channels). */
export async function noisePng(width: number, height: number, seed: number, channels: 1 | 3 | 4 = 3): Promise<Buffer> {
  const img = sharp(noisePixels(width, height, seed, channels), { raw: { width, height, channels } });
  // Without b-w, sharp writes 1-channel raw input as an RGB PNG.
  return (channels === 1 ? img.toColourspace('b-w') : img).png().toBuffer();
}
