/** Shared helpers for the engine tests (not a test file: tap only runs *.test.ts). */
import type { Test } from 'tap';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { LlavaMedError } from '../../lib/errors.js';
import { Context, Model, Projector } from '../../lib/engine/index.js';
import { makeTinyLlamaGguf, makeTinyMmproj, type TinyLlama, type TinyLlamaOptions, type TinyMmproj, type TinyMmprojOptions } from '../helpers/tiny-gguf.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const ADDON_PATH = join(REPO, 'build', 'Release', 'llava_med.node');

/**
 * Runs `f` and returns what it threw or rejected with (sync throws and rejections both count);
 * undefined when it succeeded.
 */
export async function caught(f: () => unknown): Promise<unknown> {
  try {
    await f();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** Asserts `f` fails (throws or rejects) with a LlavaMedError carrying `code`. */
export async function failsWith(t: Test, f: () => unknown, code: string, what: string): Promise<LlavaMedError | undefined> {
  const e = await caught(f);
  t.ok(e instanceof LlavaMedError, `${what}: fails with a LlavaMedError (got ${e === undefined ? 'success' : describe(e)})`);
  t.equal((e as { code?: string } | undefined)?.code, code, `${what}: code ${code}`);
  return e instanceof LlavaMedError ? e : undefined;
}

/**
 * Asserts a Promise-returning call REJECTS (never throws synchronously: a caller writing
 * `x.method().catch(h)` would otherwise get an uncaught exception) with a LlavaMedError `code`.
 */
export async function rejectsWith(t: Test, f: () => Promise<unknown>, code: string, what: string): Promise<void> {
  let p: Promise<unknown>;
  try {
    p = f();
  } catch (e) {
    t.fail(`${what}: threw synchronously (${describe(e)}) instead of returning a rejected promise`);
    return;
  }
  t.ok(p instanceof Promise, `${what}: returns a promise`);
  const e = await p.then(() => undefined, (err: unknown) => err);
  t.ok(e instanceof LlavaMedError, `${what}: rejects with a LlavaMedError (got ${e === undefined ? 'success' : describe(e)})`);
  t.equal((e as { code?: string } | undefined)?.code, code, `${what}: code ${code}`);
}

export function describe(e: unknown): string {
  if (e instanceof Error) return `${e.constructor.name}${(e as { code?: string }).code ? ` ${(e as { code?: string }).code}` : ''}: ${e.message}`;
  return String(e);
}

// ---- fixtures ----------------------------------------------------------------------------------

/** The default tiny pair: chain-mode LLaMA (n_embd 64, 32004 tokens) + matching 28 px mmproj. */
export async function tinyPair(llm: TinyLlamaOptions = {}, mm: TinyMmprojOptions = {}): Promise<{ llm: TinyLlama; mm: TinyMmproj }> {
  return { llm: await makeTinyLlamaGguf(undefined, llm), mm: await makeTinyMmproj(undefined, mm) };
}

/** A model large enough that load/decode/encode take measurable time (tens of ms). */
export const BIG_LLM: TinyLlamaOptions = { mode: 'random', f16: true, contextLength: 1024, nEmbd: 512, nLayer: 4, nFf: 1024, nHead: 8 };
export const BIG_MMPROJ: TinyMmprojOptions = { imageSize: 336, nEmbd: 128, nFf: 256, outWidth: 512, nLayer: 3 };

export async function loadAll(llmPath: string, mmPath: string, ctxSize = 512): Promise<{ model: Model; proj: Projector; ctx: Context }> {
  const model = await Model.load(llmPath);
  const proj = await Projector.load(model, mmPath);
  const ctx = await Context.create(model, { contextSize: ctxSize });
  return { model, proj, ctx };
}

/** Greedy continuation: decode `prompt`, then sample + step `n` tokens. */
export async function greedy(ctx: Context, prompt: number[], n: number, seq = 0): Promise<number[]> {
  using s = ctx.createSampler({ temperature: 0 });
  await ctx.decode(prompt, { seq });
  let tok = (await ctx.sample(s)).token;
  const out = [tok];
  while (out.length < n) {
    const [r] = await ctx.step([{ seq, token: tok, sampler: s }]);
    tok = r!.token;
    out.push(tok);
  }
  return out;
}

/** Follows a chain map n steps from `start` (exclusive). */
export function followChain(chain: Map<number, number>, start: number, n: number): number[] {
  const out: number[] = [];
  let x = start;
  for (let i = 0; i < n; i++) {
    x = chain.get(x)!;
    out.push(x);
  }
  return out;
}

// ---- child processes ---------------------------------------------------------------------------

/**
 * Compiles the engine (lib/engine, lib/errors.ts, lib/defaults.ts, lib/formats) with the TypeScript compiler into
 * a private folder in os.tmpdir() (keyed by the sources' hash), so child processes run plain
 * JavaScript without tap's loader and without touching the shared dist/. The addon is found
 * through LLAVA_MED_ADDON (see childEnv). Returns the path of the compiled engine index.js.
 */
export function compiledEngine(): string {
  const files: string[] = [join(REPO, 'lib', 'errors.ts'), join(REPO, 'lib', 'defaults.ts')];
  for (const sub of ['engine', 'formats']) {
    for (const f of readdirSync(join(REPO, 'lib', sub)).sort()) if (f.endsWith('.ts') && !f.endsWith('.d.ts')) files.push(join(REPO, 'lib', sub, f));
  }
  const h = createHash('sha256');
  for (const f of files) h.update(f).update(readFileSync(f));
  const outDir = join(tmpdir(), `llava-med-engine-js-${h.digest('hex').slice(0, 16)}`);
  const index = join(outDir, 'lib', 'engine', 'index.js');
  if (existsSync(index)) return index;
  const staging = `${outDir}.${process.pid}.tmp`;
  for (const f of files) {
    const src = readFileSync(f, 'utf8');
    const js = ts.transpileModule(src, {
      fileName: f,
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, esModuleInterop: true, sourceMap: false },
    }).outputText;
    const dest = join(staging, relative(REPO, f)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, js);
  }
  writeFileSync(join(staging, 'package.json'), '{"type":"module"}\n');
  try {
    renameSync(staging, outDir);
  } catch {
    // another process won the race: its copy is identical
  }
  return index;
}

/** An environment for children: the built addon, and none of tap's loaders or coverage hooks. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LLAVA_MED_ADDON: ADDON_PATH, ...extra };
  delete env.NODE_OPTIONS;
  for (const k of Object.keys(env)) if (k.startsWith('TAP') || k.startsWith('NYC') || k.startsWith('_TAPJS')) delete env[k];
  return env;
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `node script.mjs args…` and collects its exit status and output. */
export function runNode(script: string, args: string[] = [], timeoutMs = 60_000, env = childEnv()): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', reject);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
