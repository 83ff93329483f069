/**
 * The glslc cache of the Vulkan build (scripts/glslc-cache.sh.in, configured by CMakeLists.txt):
 * against glslc itself on a copy of two ggml-vulkan shader sources — a repeat compile is served
 * from the cache byte for byte and still writes its depfile; a changed define, a changed included
 * file or another glslc version misses; a failed compile passes glslc's status and message through
 * and stores nothing; output to stdout (ggml's feature probes) is never cached.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { which } from '../../scripts/preflight.mjs';
import { REPO } from '../engine/util.js';

const glslc = which('glslc');
if (!glslc) {
  t.fail('glslc is not installed (Debian: apt-get install glslc); the Vulkan build needs it');
} else {
  const SHADERS = path.join(REPO, 'deps', 'llama.cpp', 'ggml', 'src', 'ggml-vulkan', 'vulkan-shaders');
  const dir = t.testdir({ src: {}, out: {}, cache: {}, bin: {} });
  for (const f of fs.readdirSync(SHADERS).filter((f) => f === 'add.comp' || f.endsWith('.glsl'))) fs.copyFileSync(path.join(SHADERS, f), path.join(dir, 'src', f));
  const wrapper = (real: string, name: string) => {
    const p = path.join(dir, 'bin', name);
    fs.writeFileSync(p, fs.readFileSync(path.join(REPO, 'scripts', 'glslc-cache.sh.in'), 'utf8').replace('@LLAVA_MED_REAL_GLSLC@', real), { mode: 0o755 });
    return p;
  };
  const cached = wrapper(glslc, 'glslc');
  const env = { ...process.env, LLAVA_MED_GLSLC_CACHE: path.join(dir, 'cache') };
  const defs = ['-DA_TYPE=float', '-DB_TYPE=float', '-DD_TYPE=float', '-DFLOAT_TYPE=float'];
  const src = path.join(dir, 'src', 'add.comp');
  const compile = (bin: string, out: string, extra: string[] = defs, dep?: string) =>
    spawnSync(bin, ['-fshader-stage=compute', '--target-env=vulkan1.2', src, '-o', path.join(dir, 'out', out), '-O', ...(dep ? ['-MD', '-MF', path.join(dir, 'out', dep)] : []), ...extra], { env, encoding: 'utf8' });
  const read = (f: string) => fs.readFileSync(path.join(dir, 'out', f));
  const entries = () => fs.readdirSync(path.join(dir, 'cache'), { recursive: true }).filter((f) => String(f).endsWith('.spv')).length;

  t.test('a repeat compile comes from the cache, identical to glslc, with its depfile', async (t) => {
    const direct = compile(glslc, 'direct.spv');
    t.equal(direct.status, 0, direct.stderr);
    const first = compile(cached, 'first.spv', defs, 'first.d');
    t.equal(first.status, 0, first.stderr);
    t.equal(first.stderr, '', 'nothing on stderr (ggml treats any output as a failure)');
    t.equal(entries(), 1, 'one entry stored');
    t.same(read('first.spv'), read('direct.spv'), 'a miss gives what glslc gives');
    const second = compile(cached, 'second.spv', defs, 'second.d');
    t.equal(second.status, 0);
    t.equal(entries(), 1, 'served from the cache: nothing new stored');
    t.same(read('second.spv'), read('direct.spv'), 'a hit gives the same bytes');
    const dep = read('second.d').toString();
    t.match(dep, new RegExp(`^${path.join(dir, 'out', 'second.spv')}: ${src} `), 'the depfile names the output and the source');
    t.match(dep, /types\.glsl/, 'and the includes');
  });

  t.test('a changed define, included file or glslc version misses', async (t) => {
    const before = entries();
    t.equal(compile(cached, 'f16.spv', [...defs, '-DLLAVA_MED_UNUSED=1']).status, 0);
    t.equal(entries(), before + 1, 'another define: a new entry');
    fs.appendFileSync(path.join(dir, 'src', 'utils.glsl'), '\n// changed\n');
    t.equal(compile(cached, 'changed.spv').status, 0);
    t.equal(entries(), before + 2, 'an included file changed: a new entry');
    const fake = path.join(dir, 'bin', 'glslc-other');
    fs.writeFileSync(fake, `#!/bin/sh\nif [ "$1" = --version ]; then echo "shaderc 9999"; exit 0; fi\nexec ${glslc} "$@"\n`, { mode: 0o755 });
    t.equal(compile(wrapper(fake, 'glslc-wrap-other'), 'other.spv').status, 0);
    t.equal(entries(), before + 3, 'another glslc version: a new entry');
  });

  t.test("a failed compile passes glslc's status and message through and stores nothing", async (t) => {
    const before = entries();
    const bad = compile(cached, 'bad.spv', [...defs.slice(0, 3), '-DFLOAT_TYPE=float16_t']);
    t.not(bad.status, 0, 'non-zero status');
    t.match(bad.stderr, /error/, "glslc's message");
    t.equal(entries(), before, 'nothing stored');
    t.notOk(fs.existsSync(path.join(dir, 'out', 'bad.spv')), 'no output file');
  });

  t.test('output to stdout is never cached', async (t) => {
    const before = entries();
    const r = spawnSync(cached, ['-fshader-stage=compute', '--target-env=vulkan1.2', src, '-o', '-', ...defs], { env, encoding: 'buffer' });
    t.equal(r.status, 0);
    t.ok(r.stdout.length > 100 && r.stdout.readUInt32LE(0) === 0x07230203, 'SPIR-V on stdout (magic number)');
    t.equal(entries(), before);
  });
}
