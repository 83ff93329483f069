/**
 * The addon loader (lib/engine/binding.ts): which CPU level of the prebuilt binaries a CPU can
 * run (from /proc/cpuinfo flags written out by hand here for real CPU generations), the
 * LLAVA_MED_CPU_LEVEL cap, the search order (explicit path, local build, prebuilt levels best
 * first), libc tags, and the error that lists every path tried. The real binaries are loaded in
 * test/install/packed-install.test.ts.
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { createRequire } from 'node:module';
import { addonCandidates, cpuFlags, cpuLevels, levelStatus, loadAddon } from '../../lib/engine/binding.js';
import { LlavaMedError } from '../../lib/errors.js';
import { REPO } from '../engine/util.js';

const levels = cpuLevels('x64', REPO);
const usable = (flags: Set<string> | undefined, cap?: string) => [...levelStatus(levels, flags, cap)].filter(([, why]) => why === undefined).map(([n]) => n);

// /proc/cpuinfo flags of real CPUs (the part that matters; from Linux on each machine).
const CORE2 = 'fpu sse sse2 ssse3 cx16 lahf_lm';
const NEHALEM = `${CORE2} sse4_1 sse4_2 popcnt`;
const HASWELL = `${NEHALEM} avx f16c fma avx2 bmi1 bmi2 movbe abm`; // abm: LZCNT
const SKYLAKEX = `${HASWELL} avx512f avx512dq avx512cd avx512bw avx512vl`;
// Linux spells VBMI without an underscore (avx512vbmi) but VBMI2 and VNNI with one.
const ICELAKE = `${SKYLAKEX} avx512ifma avx512vbmi avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq`;
const CANNONLAKE = `${SKYLAKEX} avx512ifma avx512vbmi`; // VBMI but no VNNI, no GFNI
const ZEN3 = `${HASWELL} sha_ni vaes vpclmulqdq`; // AVX2 but no AVX-512
const ZEN4 = `${ZEN3} avx512f avx512dq avx512ifma avx512cd avx512bw avx512vl avx512_bf16 avx512vbmi avx512_vbmi2 gfni avx512_vnni avx512_bitalg avx512_vpopcntdq`;
const set = (s: string) => new Set(s.split(' '));

t.test('levels: native/cpu-levels.json lists x64 levels best first, each needing at least what the next one needs', async (t) => {
  t.same(levels.map((l) => l.name), ['icelake', 'x86-64-v4', 'x86-64-v3', 'x86-64-v2']);
  for (let i = 0; i + 1 < levels.length; i++) {
    const missing = levels[i + 1]!.cpuFlags.filter((f) => !levels[i]!.cpuFlags.includes(f));
    t.same(missing, [], `${levels[i]!.name} needs everything ${levels[i + 1]!.name} needs`);
  }
  t.same(cpuLevels('arm64', REPO), [], 'arm64 has one portable binary, no levels');
});

t.test('each CPU generation runs exactly the levels its instructions allow', async (t) => {
  t.same(usable(set(ICELAKE)), ['icelake', 'x86-64-v4', 'x86-64-v3', 'x86-64-v2'], 'Ice Lake');
  t.same(usable(set(SKYLAKEX)), ['x86-64-v4', 'x86-64-v3', 'x86-64-v2'], 'Skylake-X: no VBMI/VNNI');
  t.same(usable(set(HASWELL)), ['x86-64-v3', 'x86-64-v2'], 'Haswell');
  t.same(usable(set(ZEN3)), ['x86-64-v3', 'x86-64-v2'], 'Zen 3');
  t.same(usable(set(ZEN4)), ['icelake', 'x86-64-v4', 'x86-64-v3', 'x86-64-v2'], 'Zen 4');
  t.same(usable(set(CANNONLAKE)), ['x86-64-v4', 'x86-64-v3', 'x86-64-v2'], 'Cannon Lake: VBMI without VNNI/GFNI');
  t.same(usable(set(NEHALEM)), ['x86-64-v2'], 'Nehalem');
  t.same(usable(set(CORE2)), [], 'Core 2: below the baseline');
  const why = levelStatus(levels, set(SKYLAKEX));
  t.equal(why.get('icelake'), 'this CPU lacks avx512vbmi, avx512_vnni, gfni, avx512_vbmi2, avx512_bitalg, avx512_vpopcntdq, avx512ifma, vaes, vpclmulqdq', 'the reason names the missing flags');
  t.equal(levelStatus(levels, set(CORE2)).get('x86-64-v2'), 'this CPU lacks sse4_2');
});

t.test("a level's extra compiler flags (cflags) each need their /proc/cpuinfo flag", async (t) => {
  // gcc option -> Linux flag name (they differ: lzcnt is reported as abm, bmi as bmi1).
  const cpuinfoName: Record<string, string> = {
    gfni: 'gfni', avx512vbmi2: 'avx512_vbmi2', avx512bitalg: 'avx512_bitalg', avx512vpopcntdq: 'avx512_vpopcntdq', avx512ifma: 'avx512ifma',
    vaes: 'vaes', vpclmulqdq: 'vpclmulqdq', bmi: 'bmi1', lzcnt: 'abm', popcnt: 'popcnt', movbe: 'movbe',
  };
  const all = JSON.parse(fs.readFileSync(path.join(REPO, 'native', 'cpu-levels.json'), 'utf8')).x64 as { name: string; cpuFlags: string[]; cflags?: string[] }[];
  let n = 0;
  for (const l of all) {
    for (const f of l.cflags ?? []) {
      const isa = f.replace(/^-m/, '');
      t.ok(cpuinfoName[isa], `${l.name}: ${f} is a known instruction-set flag`);
      t.ok(l.cpuFlags.includes(cpuinfoName[isa] ?? isa), `${l.name}: ${f} needs ${cpuinfoName[isa]} in cpuFlags`);
      n++;
    }
  }
  t.ok(n > 0, `${n} extra flags checked`);
});

t.test('LLAVA_MED_CPU_LEVEL caps the level; unknown CPU features allow only the baseline unless capped', async (t) => {
  t.same(usable(set(ICELAKE), 'x86-64-v2'), ['x86-64-v2']);
  t.same(usable(set(ICELAKE), 'x86-64-v3'), ['x86-64-v3', 'x86-64-v2']);
  t.equal(levelStatus(levels, set(ICELAKE), 'x86-64-v3').get('icelake'), 'above LLAVA_MED_CPU_LEVEL=x86-64-v3');
  t.same(usable(set(HASWELL), 'icelake'), ['x86-64-v3', 'x86-64-v2'], 'a cap never raises the level above the CPU');
  t.same(usable(undefined), ['x86-64-v2'], 'unknown features: baseline only');
  t.same(usable(undefined, 'x86-64-v3'), ['x86-64-v3', 'x86-64-v2'], 'unknown features: the user may name a level');
});

t.test('cpuFlags reads the flags line of /proc/cpuinfo', async (t) => {
  const text = `processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: ${HASWELL}\nbugs\t\t: spectre_v1\n\nprocessor\t: 1\nflags\t\t: ${HASWELL}\n`;
  t.same([...cpuFlags(text)!].sort(), HASWELL.split(' ').sort());
  t.equal(cpuFlags('processor : 0\n'), undefined, 'no flags line: unknown');
  if (process.platform === 'linux') {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'))!;
    t.ok(cpuFlags()!.has(line.split(/\s+/).at(-1)!), 'this machine: the flags of its first CPU');
  }
});

t.test('this machine: every level whose instructions the native build was compiled with is usable', async (t) => {
  // Independent of /proc/cpuinfo: ggml's -march=native build reports the features the compiler
  // found on this CPU (systemInfo). A level asking only for those must not be refused.
  const native = path.join(REPO, 'build', 'Release', 'llava_med.node');
  if (process.arch !== 'x64' || process.platform !== 'linux' || !fs.existsSync(native)) {
    t.comment('needs the x64 Linux native build');
    return;
  }
  // required directly: loadAddon() would cache it for the rest of this file
  const info = (createRequire(import.meta.url)(native) as { systemInfo(): string }).systemInfo();
  const has = new Set([...info.matchAll(/(\w+) = 1/g)].map((m) => m[1]));
  const all = JSON.parse(fs.readFileSync(path.join(REPO, 'native', 'cpu-levels.json'), 'utf8')).x64 as { name: string; ggml: string[] }[];
  const status = levelStatus(levels, cpuFlags());
  let checked = 0;
  for (const l of all) {
    const needs = l.ggml.filter((f) => f !== 'SSE42'); // not in ggml's report; every x86-64-v2 CPU has it
    if (!needs.every((f) => has.has(f))) continue;
    checked++;
    t.equal(status.get(l.name), undefined, `${l.name}: native build has ${needs.join(', ') || 'the baseline'} -> usable`);
  }
  t.ok(checked >= 1, `${checked} levels checked against: ${info.trim()}`);
});

t.test('this machine: the native build leaves AMX and AVX512-FP16 out (CMakeLists.txt LLAVA_MED_AMX, LLAVA_MED_AVX512FP16)', async (t) => {
  // On a CPU that has them, -march=native compiles ggml's AMX kernels (they killed the process with SIGILL
  // here) and half-precision accumulation into ggml_vec_dot_f16 (answers changed with --parallel). On a CPU
  // without them this cannot fail: the compiler has nothing to leave out.
  const native = path.join(REPO, 'build', 'Release', 'llava_med.node');
  if (process.arch !== 'x64' || process.platform !== 'linux' || !fs.existsSync(native)) {
    t.comment('needs the x64 Linux native build');
    return;
  }
  const cache = path.join(REPO, 'build', 'CMakeCache.txt');
  const kept = (opt: string) => fs.existsSync(cache) && new RegExp(`^${opt}:BOOL=ON$`, 'm').test(fs.readFileSync(cache, 'utf8'));
  const flags = cpuFlags();
  for (const f of ['amx_int8', 'avx512_fp16']) if (!flags?.has(f)) t.comment(`this CPU has no ${f}: its check holds trivially here`);
  const info = (createRequire(import.meta.url)(native) as { systemInfo(): string }).systemInfo();
  if (!kept('LLAVA_MED_AMX')) t.notMatch(info, /AMX_INT8 = 1/, `ggml reports no AMX: ${info.trim()}`);
  // The instructions themselves (ggml reports no FP16 feature): AMX tile loads and dot products, FP16 arithmetic.
  const dis = spawnSync('objdump', ['-d', '--no-show-raw-insn', native], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (dis.status !== 0) {
    t.fail(`objdump -d failed (${dis.error?.message ?? dis.stderr.slice(0, 200)}): it comes with binutils, which the native build needs`);
    return;
  }
  const count = (re: RegExp) => (dis.stdout.match(re) ?? []).length;
  if (!kept('LLAVA_MED_AMX')) t.equal(count(/\s(tileloadd|tileloaddt1|tdpb[a-z]+|tdpbf16ps)\s/g), 0, 'no AMX instructions');
  if (!kept('LLAVA_MED_AVX512FP16')) t.equal(count(/\sv(fn?m(add|sub)\d*|add|mul|sub|div)ph\s/g), 0, 'no FP16 arithmetic instructions');
});

/** A package folder with the given prebuilt files (empty: they fail to load) and local builds. */
function fakePackage(t: Test, prebuilt: string[], local: string[] = []): string {
  const root = t.testdir({ native: { 'cpu-levels.json': fs.readFileSync(path.join(REPO, 'native', 'cpu-levels.json'), 'utf8') } });
  const dir = path.join(root, 'prebuilds', 'linux-x64');
  fs.mkdirSync(dir, { recursive: true });
  for (const f of prebuilt) fs.writeFileSync(path.join(dir, f), '');
  for (const cfg of local) {
    fs.mkdirSync(path.join(root, 'build', cfg), { recursive: true });
    fs.writeFileSync(path.join(root, 'build', cfg, 'llava_med.node'), '');
  }
  return root;
}

const ALL = ['llava_med.x86-64-v2.glibc.node', 'llava_med.icelake.glibc.node', 'llava_med.x86-64-v3.glibc.node', 'llava_med.x86-64-v4.glibc.node', 'llava_med.x86-64-v3.musl.node', 'node.napi.glibc.node'];
const base = { platform: 'linux', arch: 'x64', libc: 'glibc' as const };
const rel = (root: string, cs: { path: string; skip?: string }[]) => cs.map((c) => `${path.relative(root, c.path)}${c.skip ? ` -- ${c.skip}` : ''}`);

t.test('search order: local build, then the prebuilt levels this CPU runs, best first', async (t) => {
  const root = fakePackage(t, ALL, ['Release']);
  const cs = addonCandidates(root, { ...base, env: {}, flags: set(SKYLAKEX) });
  t.same(rel(root, cs), [
    'build/Release/llava_med.node',
    'build/Debug/llava_med.node -- not built (run `npm run build:native`)',
    'prebuilds/linux-x64/llava_med.icelake.glibc.node -- this CPU lacks avx512vbmi, avx512_vnni, gfni, avx512_vbmi2, avx512_bitalg, avx512_vpopcntdq, avx512ifma, vaes, vpclmulqdq',
    'prebuilds/linux-x64/llava_med.x86-64-v4.glibc.node',
    'prebuilds/linux-x64/llava_med.x86-64-v3.glibc.node',
    'prebuilds/linux-x64/llava_med.x86-64-v3.musl.node -- built for another libc (want glibc)',
    'prebuilds/linux-x64/llava_med.x86-64-v2.glibc.node',
    'prebuilds/linux-x64/node.napi.glibc.node -- no CPU level among its tags (icelake, x86-64-v4, x86-64-v3, x86-64-v2): it may need instructions this CPU lacks',
  ]);
});

t.test('with LLAVA_MED_CPU_LEVEL the prebuilt binaries come before the local build', async (t) => {
  const root = fakePackage(t, ALL, ['Release']);
  const cs = addonCandidates(root, { ...base, env: { LLAVA_MED_CPU_LEVEL: 'x86-64-v2', LLAVA_MED_ADDON: '/nonexistent/x.node' }, flags: set(ICELAKE) });
  t.same(rel(root, cs).map((s) => s.replace(/^.*nonexistent/, '/nonexistent')), [
    '/nonexistent/x.node -- file not found',
    'prebuilds/linux-x64/llava_med.icelake.glibc.node -- above LLAVA_MED_CPU_LEVEL=x86-64-v2',
    'prebuilds/linux-x64/llava_med.x86-64-v4.glibc.node -- above LLAVA_MED_CPU_LEVEL=x86-64-v2',
    'prebuilds/linux-x64/llava_med.x86-64-v3.glibc.node -- above LLAVA_MED_CPU_LEVEL=x86-64-v2',
    'prebuilds/linux-x64/llava_med.x86-64-v3.musl.node -- built for another libc (want glibc)',
    'prebuilds/linux-x64/llava_med.x86-64-v2.glibc.node',
    'prebuilds/linux-x64/node.napi.glibc.node -- no CPU level among its tags (icelake, x86-64-v4, x86-64-v3, x86-64-v2): it may need instructions this CPU lacks',
    'build/Release/llava_med.node',
    'build/Debug/llava_med.node -- not built (run `npm run build:native`)',
  ]);
});

t.test('a level name that does not exist is a typed error naming the valid ones', async (t) => {
  const root = fakePackage(t, ALL);
  const e = (() => {
    try {
      addonCandidates(root, { ...base, env: { LLAVA_MED_CPU_LEVEL: 'avx9000' }, flags: set(ICELAKE) });
    } catch (e) {
      return e;
    }
  })();
  t.ok(e instanceof LlavaMedError);
  t.equal((e as LlavaMedError).code, 'ERR_INVALID_ARGUMENT');
  t.match((e as Error).message, /LLAVA_MED_CPU_LEVEL=avx9000 is not a CPU level of x64: use one of icelake, x86-64-v4, x86-64-v3, x86-64-v2/);
});

t.test('arm64: the one untagged portable binary is used', async (t) => {
  const root = t.testdir({ native: { 'cpu-levels.json': fs.readFileSync(path.join(REPO, 'native', 'cpu-levels.json'), 'utf8') }, prebuilds: { 'linux-arm64': { 'llava_med.glibc.node': '' } } });
  const cs = addonCandidates(root, { platform: 'linux', arch: 'arm64', libc: 'glibc', env: {}, flags: new Set() });
  t.same(rel(root, cs).slice(2), ['prebuilds/linux-arm64/llava_med.glibc.node']);
});

t.test('nothing loads: ERR_NATIVE_LOAD lists every path tried and why', async (t) => {
  const root = fakePackage(t, ['llava_med.icelake.glibc.node', 'llava_med.x86-64-v3.glibc.node']);
  const cs = addonCandidates(root, { ...base, env: {}, flags: set(HASWELL) });
  let e: unknown;
  try {
    loadAddon(cs);
  } catch (err) {
    e = err;
  }
  t.equal((e as LlavaMedError).code, 'ERR_NATIVE_LOAD');
  const msg = (e as Error).message;
  t.match(msg, `${path.join(root, 'build', 'Release', 'llava_med.node')}: not built`);
  t.match(msg, `${path.join(root, 'prebuilds', 'linux-x64', 'llava_med.icelake.glibc.node')}: this CPU lacks avx512f`);
  // the v3 file is tried: it is empty, so require() fails and its error is listed
  t.match(msg, new RegExp(`${path.join(root, 'prebuilds', 'linux-x64', 'llava_med.x86-64-v3.glibc.node').replace(/[.]/g, '\\.')}: .*(too short|invalid ELF|file)`, 'i'));
  t.match(msg, /npm rebuild llava-med/);
});
