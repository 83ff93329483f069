/**
 * The README's JavaScript blocks are valid as written in a plain .mjs file on the Node that runs the
 * tests (no `await using`, no TypeScript syntax), and every name they import from the package exists
 * in that subpath's exports — so a user who copies a block gets no SyntaxError and no undefined import.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { REPO } from '../helpers/tiny-llava.js';
import { ensureDist } from '../cli/util.js';

ensureDist();
const dir = mkdtempSync(join(tmpdir(), 'llava-med-readme-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/^```(?:js|javascript|mjs)\n([\s\S]*?)^```/gm)].map((m) => m[1]!);

t.ok(blocks.length >= 2, `the README has JavaScript blocks (${blocks.length})`);

blocks.forEach((code, i) => {
  t.test(`README block ${i + 1}: ${code.split('\n')[0]!.slice(0, 60)}`, async (t) => {
    const file = join(dir, `block-${i + 1}.mjs`);
    writeFileSync(file, code);
    const r = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8' });
    t.equal(r.status, 0, `node ${process.version} --check: ${r.stderr.trim().split('\n').slice(0, 5).join(' | ')}`);
    for (const m of code.matchAll(/import\s*\{([^}]*)\}\s*from\s*'(llava-med(?:\/[\w-]+)?)'/g)) {
      const names = m[1]!.split(',').map((s) => s.trim().split(/\s+as\s+/)[0]!).filter(Boolean);
      const mod = (await import(m[2]!)) as Record<string, unknown>;
      for (const n of names) t.ok(n in mod, `'${m[2]}' exports ${n}`);
    }
  });
});
