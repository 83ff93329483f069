/**
 * The lowest Node versions package.json's `engines.node` claims, and binaries of them to run consumers on.
 * Binaries come from the npm registry (the `node-<platform>-<arch>` packages that the `node` package
 * installs, which repackage nodejs.org's builds), fetched with `npm pack` once into a cache folder.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './tiny-llava.js';

/**
 * The lowest version of each `||` alternative of a range in the forms package.json uses
 * (`^X.Y.Z`, `>=X.Y.Z`, `~X.Y.Z`, `X.Y.Z`); anything else throws, so a new form cannot go untested.
 */
export function lowestVersions(range: string): string[] {
  return range.split('||').map((alt) => {
    const m = /^\s*(\^|>=|~)?\s*v?(\d+)\.(\d+)\.(\d+)\s*$/.exec(alt);
    if (!m) throw new Error(`engines.node alternative ${JSON.stringify(alt)} is not ^X.Y.Z, >=X.Y.Z, ~X.Y.Z or X.Y.Z`);
    return `${m[2]}.${m[3]}.${m[4]}`;
  });
}

/** The lowest Node versions `engines.node` claims. */
export function claimedLowestNodes(): string[] {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { engines?: { node?: string } };
  if (!pkg.engines?.node) throw new Error('package.json has no engines.node');
  return lowestVersions(pkg.engines.node);
}

/** Path of a Node `version` binary for this platform, fetched from the npm registry on first use. */
export function nodeBinary(version: string): string {
  const cacheRoot = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  const name = `node-${process.platform}-${process.arch}`;
  const dir = join(cacheRoot, 'llava-med-test', `${name}-${version}`);
  const bin = join(dir, 'bin', 'node');
  if (existsSync(bin)) return bin;
  mkdirSync(join(cacheRoot, 'llava-med-test'), { recursive: true });
  const tmp = mkdtempSync(join(cacheRoot, 'llava-med-test', '.fetch-'));
  try {
    const run = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, { cwd: tmp, encoding: 'utf8', timeout: 300_000 });
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${String(r.status)}): ${r.stderr}`);
      return r.stdout;
    };
    // npm pack checks the tarball against the registry's integrity hash.
    const [packed] = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', `${name}@${version}`])) as { filename: string }[];
    run('tar', ['xzf', packed!.filename, 'package/bin/node']);
    const got = run(join(tmp, 'package', 'bin', 'node'), ['--version']).trim();
    if (got !== `v${version}`) throw new Error(`${name}@${version} holds Node ${got}`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(join(tmp, 'package'), dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return bin;
}
