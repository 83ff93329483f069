/**
 * Finds and loads llava_med.node. Order:
 *   1. LLAVA_MED_ADDON, an explicit path;
 *   2. the local cmake-js build (build/Release, build/Debug): it exists only when this machine
 *      built one on purpose (a GPU backend, LLAVA_MED_FROM_SOURCE, no usable prebuilt binary, a
 *      checkout), and it is tuned for this CPU;
 *   3. the prebuilt binaries (prebuildify layout, prebuilds/<platform>-<arch>/llava_med[.<level>][.<libc>].node):
 *      on x64 one per CPU level of native/cpu-levels.json, best first; a level whose instructions
 *      this CPU lacks is never loaded (it would die of SIGILL at the first kernel, not at load).
 * LLAVA_MED_CPU_LEVEL=<level> caps the level (and puts the prebuilt binaries before the local
 * build). When nothing loads, the error lists every path tried and why.
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
  /** The CPU level of a prebuilt binary (native/cpu-levels.json). */
  level?: string;
  /** Why it is not usable before even trying (missing, wrong CPU, wrong libc); undefined = try it. */
  skip?: string;
}

export interface CpuLevel {
  name: string;
  description: string;
  /** /proc/cpuinfo flags the level needs. */
  cpuFlags: string[];
}

function libc(): 'glibc' | 'musl' | undefined {
  if (process.platform !== 'linux') return undefined;
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** The CPU levels of prebuilt binaries for `arch`, best first (native/cpu-levels.json). */
export function cpuLevels(arch: string = process.arch, root = packageRoot): CpuLevel[] {
  try {
    const all = JSON.parse(fs.readFileSync(path.join(root, 'native', 'cpu-levels.json'), 'utf8')) as Record<string, unknown>;
    return (all[arch] as CpuLevel[] | undefined) ?? [];
  } catch {
    return [];
  }
}

/** The CPU's feature flags from /proc/cpuinfo `flags` (Linux); undefined where unknown. */
export function cpuFlags(cpuinfo?: string): Set<string> | undefined {
  let text = cpuinfo;
  if (text === undefined) {
    if (process.platform !== 'linux') return undefined;
    try {
      text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return undefined;
    }
  }
  const line = text.match(/^flags\s*:(.*)$/m)?.[1];
  return line === undefined ? undefined : new Set(line.trim().split(/\s+/));
}

/**
 * Which levels `flags` can run at or below `cap`: name -> why not (undefined = usable), in the
 * order of `levels` (best first). Pure: the loader and the tests use it.
 */
export function levelStatus(levels: CpuLevel[], flags: Set<string> | undefined, cap?: string): Map<string, string | undefined> {
  const status = new Map<string, string | undefined>();
  const capAt = cap === undefined ? 0 : levels.findIndex((l) => l.name === cap);
  levels.forEach((l, i) => {
    if (i < capAt) status.set(l.name, `above LLAVA_MED_CPU_LEVEL=${cap}`);
    else if (flags === undefined) {
      // No way to ask the CPU here: only the baseline, unless the user named a level.
      const ok = cap !== undefined || i === levels.length - 1;
      status.set(l.name, ok ? undefined : `CPU features unknown on ${process.platform} (set LLAVA_MED_CPU_LEVEL to allow a level above the baseline)`);
    } else {
      const missing = l.cpuFlags.filter((f) => !flags.has(f));
      status.set(l.name, missing.length ? `this CPU lacks ${missing.join(', ')}` : undefined);
    }
  });
  return status;
}

export interface CandidateOptions {
  env?: NodeJS.ProcessEnv;
  flags?: Set<string> | undefined;
  libc?: 'glibc' | 'musl' | undefined;
  platform?: string;
  arch?: string;
}

export function addonCandidates(root = packageRoot, opts: CandidateOptions = {}): Candidate[] {
  const env = opts.env ?? process.env;
  const platform = opts.platform ?? process.platform;
  const arch = opts.arch ?? process.arch;
  const wantLibc = 'libc' in opts ? opts.libc : libc();
  const levels = cpuLevels(arch, root);
  const cap = env.LLAVA_MED_CPU_LEVEL || undefined;
  if (cap !== undefined && !levels.some((l) => l.name === cap)) {
    throw llavaError(
      'ERR_INVALID_ARGUMENT',
      `LLAVA_MED_CPU_LEVEL=${cap} is not a CPU level of ${arch}: use one of ${levels.map((l) => l.name).join(', ') || '(none: this architecture has one prebuilt binary)'} or unset it.`,
    );
  }

  const out: Candidate[] = [];
  if (env.LLAVA_MED_ADDON) {
    out.push({ path: path.resolve(env.LLAVA_MED_ADDON), skip: fs.existsSync(env.LLAVA_MED_ADDON) ? undefined : 'file not found' });
  }
  const local: Candidate[] = ['Release', 'Debug'].map((cfg) => {
    const p = path.join(root, 'build', cfg, 'llava_med.node');
    return { path: p, skip: fs.existsSync(p) ? undefined : 'not built (run `npm run build:native`)' };
  });
  if (cap === undefined) out.push(...local);

  const dir = path.join(root, 'prebuilds', `${platform}-${arch}`);
  if (fs.existsSync(dir)) {
    const status = levelStatus(levels, 'flags' in opts ? opts.flags : cpuFlags(), cap);
    const rank = (c: Candidate) => (c.level === undefined ? levels.length : levels.findIndex((l) => l.name === c.level));
    const found: Candidate[] = [];
    for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.node'))) {
      const tags = f.split('.').slice(1, -1);
      const c: Candidate = { path: path.join(dir, f), level: tags.find((t) => levels.some((l) => l.name === t)) };
      if (wantLibc && (tags.includes('glibc') || tags.includes('musl')) && !tags.includes(wantLibc)) c.skip = `built for another libc (want ${wantLibc})`;
      else if (c.level !== undefined) c.skip = status.get(c.level);
      else if (c.level === undefined && levels.length) c.skip = `no CPU level among its tags (${levels.map((l) => l.name).join(', ')}): it may need instructions this CPU lacks`;
      found.push(c);
    }
    found.sort((a, b) => rank(a) - rank(b) || a.path.localeCompare(b.path));
    out.push(...found);
    if (!found.length) out.push({ path: dir, skip: 'no prebuilt binaries in it' });
  } else {
    out.push({ path: dir, skip: 'no prebuilt binaries for this platform' });
  }
  if (cap !== undefined) out.push(...local);
  return out;
}

let cached: NativeAddon | undefined;
let loaded: Candidate | undefined;

/** The binary loadAddon() loaded (path and, for a prebuilt one, its CPU level); undefined before. */
export function loadedAddon(): Readonly<Candidate> | undefined {
  return loaded;
}

export function loadAddon(candidates?: Candidate[]): NativeAddon {
  if (cached) return cached;
  const list = candidates ?? addonCandidates();
  const tried: string[] = [];
  for (const c of list) {
    if (c.skip) {
      tried.push(`  ${c.path}: ${c.skip}`);
      continue;
    }
    try {
      cached = require(c.path) as NativeAddon;
      loaded = { path: c.path, level: c.level };
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
