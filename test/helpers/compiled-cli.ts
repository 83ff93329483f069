/**
 * The package's CLI as plain JavaScript for child processes: lib/ transpiled with the TypeScript
 * compiler into a private folder keyed by the sources' hash, laid out like the package (dist/ +
 * package.json), under node_modules/.cache so the CLI's dependencies resolve from the project's
 * node_modules. Never a dist/ that may be stale or half-written by a concurrent build.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listTs(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** lib/**\/*.ts → <cache>/dist/**\/*.js (+ package.json); returns the CLI entry point. */
export function compiledCli(): string {
  const lib = join(REPO, 'lib');
  const files = listTs(lib);
  const pkg = readFileSync(join(REPO, 'package.json'));
  const h = createHash('sha256').update(pkg);
  for (const f of files) h.update(f).update(readFileSync(f));
  const outDir = join(REPO, 'node_modules', '.cache', `llava-med-cli-${h.digest('hex').slice(0, 16)}`);
  const main = join(outDir, 'dist', 'cli', 'main.js');
  if (existsSync(main)) return main;
  const staging = `${outDir}.${process.pid}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  for (const f of files) {
    const js = ts.transpileModule(readFileSync(f, 'utf8'), {
      fileName: f,
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, esModuleInterop: true, sourceMap: false },
    }).outputText;
    const dest = join(staging, 'dist', relative(lib, f)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, js);
  }
  writeFileSync(join(staging, 'package.json'), pkg);
  try {
    renameSync(staging, outDir);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // a concurrent run won the race with identical output
  }
  return main;
}


/**
 * The repository's own native build: the compiled CLI lives under node_modules/.cache, where the
 * addon loader's relative search (build/Release next to dist/) finds nothing.
 */
export const REPO_ADDON = join(REPO, 'build', 'Release', 'llava_med.node');

/** process.env without tap's loaders, so a child runs the plain compiled JavaScript. */
export function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  for (const k of Object.keys(env)) if (k.startsWith('TAP') || k.startsWith('NYC') || k.startsWith('_TAPJS')) delete env[k];
  env.LLAVA_MED_ADDON ??= REPO_ADDON;
  return env;
}
