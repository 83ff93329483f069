/** lib/formats/temp-files.ts: the sweep removes only our temporaries, only of dead owners, only regular files. */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pidAlive, sweepStaleTemps, tempOwner, tempPathFor } from '../../lib/formats/temp-files.js';

t.test('names carry the owner pid', async (t) => {
  const p = tempPathFor('/x/y/model.gguf', 4242);
  t.match(basename(p), /^\.model\.gguf\.llava-med-4242-[0-9a-f]{12}\.tmp$/);
  t.equal(tempOwner(p), 4242);
  t.equal(tempOwner(tempPathFor('/x/a.gguf')), process.pid, 'default owner: this process');
  for (const n of ['.model.gguf.a1b2c3d4e5f6.tmp', 'model.gguf.llava-med-12-a1b2c3d4e5f6.tmp', '.m.llava-med-12-a1b2c3.tmp', '.m.llava-med-x-a1b2c3d4e5f6.tmp', '.m.llava-med-12-a1b2c3d4e5f6.tmp.bak']) {
    t.equal(tempOwner(n), undefined, `not ours: ${n}`);
  }
});

t.test('sweep: dead owners only, our pattern only, regular files only', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'llava-tmp-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // exited: its pid is free (reuse within the test is vanishingly unlikely)
  t.notOk(pidAlive(dead), 'an exited child is not alive');
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  t.teardown(() => live.kill('SIGKILL'));
  t.ok(pidAlive(live.pid!), 'a running child is alive');
  t.ok(pidAlive(1), 'pid 1 is alive (EPERM counts as alive)');

  const deadTemp = tempPathFor(join(dir, 'a.gguf'), dead);
  const liveTemp = tempPathFor(join(dir, 'b.gguf'), live.pid!);
  const ownTemp = tempPathFor(join(dir, 'c.gguf'));
  const other = join(dir, '.d.gguf.a1b2c3d4e5f6.tmp'); // someone else's naming (and our pre-pid one): unknown owner, kept
  const deadDir = tempPathFor(join(dir, 'e'), dead); // a folder with our pattern: never removed
  const target = join(dir, 'precious.bin');
  const deadLink = tempPathFor(join(dir, 'f.gguf'), dead); // a symlink with our pattern: never followed or removed
  for (const f of [deadTemp, liveTemp, ownTemp, other, target]) await writeFile(f, 'x');
  await mkdir(deadDir);
  await symlink(target, deadLink);

  const removed = await sweepStaleTemps(dir);
  t.same(removed, [deadTemp], 'only the dead owner\'s temporary is removed');
  const left = (await readdir(dir)).sort();
  t.same(left, [liveTemp, ownTemp, other, deadDir, target, deadLink].map((p) => basename(p)).sort(), 'everything else is kept');
  t.equal(await readFile(target, 'utf8'), 'x', 'the symlink target is untouched');
  t.same(await sweepStaleTemps(join(dir, 'missing')), [], 'a missing folder is not an error');
});

t.test('sweep: partial folders (foldDelta) of dead owners are removed with their contents, nothing else', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'llava-tmp-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const deadPartial = tempPathFor(join(dir, 'folded'), dead, 'partial');
  const ownPartial = tempPathFor(join(dir, 'folded2'), process.pid, 'partial');
  const deadFileNamedPartial = tempPathFor(join(dir, 'f'), dead, 'partial'); // a file with a folder's name: kept
  const outside = join(dir, 'outside');
  const deadLinkPartial = tempPathFor(join(dir, 'g'), dead, 'partial'); // a symlink to a folder: kept, not followed
  await mkdir(join(deadPartial, 'sub'), { recursive: true });
  await writeFile(join(deadPartial, 'sub', 'model.safetensors'), 'x');
  await mkdir(ownPartial);
  await writeFile(deadFileNamedPartial, 'x');
  await mkdir(outside);
  await writeFile(join(outside, 'keep'), 'x');
  await symlink(outside, deadLinkPartial);
  t.same(await sweepStaleTemps(dir), [deadPartial], 'only the dead owner\'s partial folder');
  t.same((await readdir(dir)).sort(), [ownPartial, deadFileNamedPartial, outside, deadLinkPartial].map((p) => basename(p)).sort(), 'the rest is kept');
  t.equal(await readFile(join(outside, 'keep'), 'utf8'), 'x', 'the symlinked folder is untouched');
});
