/**
 * Finds and loads llava_med.node. Order: an explicit LLAVA_MED_ADDON path; a prebuilt binary
 * in the prebuildify layout (prebuilds/<platform>-<arch>/*.node); the local cmake-js build
 * (build/Release, build/Debug). When none loads, the error lists every path tried and why.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { llavaError } from '../errors.js';
import type { NativeAddon } from './native-types.js';

const require = createRequire(import.meta.url);

/** The package root: lib/engine/binding.ts compiles to dist/engine/binding.js. */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Candidate {
  path: string;
  /** Why it is not usable before even trying (missing, wrong CPU); undefined = try it. */
  skip?: string;
}

function libc(): 'glibc' | 'musl' | undefined {
  if (process.platform !== 'linux') return undefined;
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** Portable x86-64 prebuilds assume AVX2/FMA/F16C (docs/build.md); check before loading. */
export function cpuSupportsPortableBaseline(): boolean | undefined {
  if (process.arch !== 'x64' || process.platform !== 'linux') return undefined;
  try {
    const flags = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1].split(/\s+/) ?? [];
    return ['avx2', 'fma', 'f16c'].every((f) => flags.includes(f));
  } catch {
    return undefined;
  }
}

export function addonCandidates(root = packageRoot, env = process.env): Candidate[] {
  const out: Candidate[] = [];
  if (env.LLAVA_MED_ADDON) {
    out.push({ path: path.resolve(env.LLAVA_MED_ADDON), skip: fs.existsSync(env.LLAVA_MED_ADDON) ? undefined : 'file not found' });
  }
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (fs.existsSync(dir)) {
    const wantLibc = libc();
    const cpuOk = cpuSupportsPortableBaseline();
    for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.node')).sort()) {
      const tags = f.split('.');
      let skip: string | undefined;
      if (wantLibc && (tags.includes('glibc') || tags.includes('musl')) && !tags.includes(wantLibc)) skip = `built for another libc (want ${wantLibc})`;
      else if (cpuOk === false && !tags.includes('generic')) skip = 'this CPU lacks AVX2/FMA/F16C, which the prebuilt binary needs';
      out.push({ path: path.join(dir, f), skip });
    }
  } else {
    out.push({ path: dir, skip: 'no prebuilt binaries for this platform' });
  }
  for (const cfg of ['Release', 'Debug']) {
    const p = path.join(root, 'build', cfg, 'llava_med.node');
    out.push({ path: p, skip: fs.existsSync(p) ? undefined : 'not built (run `npm run build:native`)' });
  }
  return out;
}

let cached: NativeAddon | undefined;

export function loadAddon(candidates: Candidate[] = addonCandidates()): NativeAddon {
  if (cached) return cached;
  const tried: string[] = [];
  for (const c of candidates) {
    if (c.skip) {
      tried.push(`  ${c.path}: ${c.skip}`);
      continue;
    }
    try {
      cached = require(c.path) as NativeAddon;
      return cached;
    } catch (e) {
      tried.push(`  ${c.path}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw llavaError(
    'ERR_NATIVE_LOAD',
    `llava-med could not load its native addon on ${process.platform}-${process.arch} (Node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'}). Tried:\n${tried.join('\n')}\n` +
      'Build it from source with `npm rebuild llava-med` (needs cmake and a C++17 compiler), or set LLAVA_MED_ADDON to a built llava_med.node.',
  );
}
