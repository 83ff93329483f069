/**
 * The CLI where the native addon cannot load (an install without a build or prebuilt binary): the
 * commands that need it say so in one typed line — including quantize, whose work runs in a child
 * process — and nothing is written; the commands that don't need it still work.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { tinyV0 } from '../helpers/tiny-llava.js';
import { REPO } from '../helpers/tiny-llava.js';
import { cleanEnv, ensureDist } from './util.js';

ensureDist();
const pkg = mkdtempSync(join(tmpdir(), 'llava-med-no-addon-'));
t.teardown(() => rmSync(pkg, { recursive: true, force: true }));
// The package without build/ or prebuilds/.
cpSync(join(REPO, 'dist'), join(pkg, 'dist'), { recursive: true });
cpSync(join(REPO, 'package.json'), join(pkg, 'package.json'));
symlinkSync(join(REPO, 'node_modules'), join(pkg, 'node_modules'));
const tiny = await tinyV0();

// Nor an addon named by the environment (a developer's LLAVA_MED_ADDON would be loaded instead).
const env = cleanEnv();
delete env.LLAVA_MED_ADDON;
function cli(args: string[]) {
  return spawnSync(process.execPath, [join(pkg, 'dist', 'cli', 'main.js'), ...args], { cwd: pkg, encoding: 'utf8', env, timeout: 120_000 });
}

t.test('quantize reports the addon error itself, not the child\'s stack', async (t) => {
  const out = join(pkg, 'q.gguf');
  const r = cli(['quantize', tiny.model, out, '--type', 'Q8_0', '-q']);
  t.equal(r.status, 1);
  t.match(r.stderr, /^llava-med: ERR_NATIVE_LOAD: llava-med could not load its native addon/);
  t.notMatch(r.stderr, /ERR_QUANTIZE|^\s+at /m, 'one typed error, no wrapped stack trace');
  t.notOk(existsSync(out), 'no output');
});

t.test('ask says the same; info needs no addon', async (t) => {
  const a = cli(['ask', '-m', tiny.model, '-p', tiny.mmproj, '-i', join(REPO, 'assets', 'sample-xray.png'), 'What?', '-q']);
  t.equal(a.status, 1);
  t.match(a.stderr, /^llava-med: ERR_NATIVE_LOAD: /);
  t.notMatch(a.stderr, /^\s+at /m);
  const i = cli(['info', tiny.model, '--json']);
  t.equal(i.status, 0);
  t.equal((JSON.parse(i.stdout) as { kind: string }).kind, 'language model');
});
