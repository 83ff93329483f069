/**
 * `pull`: from nothing to a registered, quantized LLaVA-Med model.
 *
 *   recipe (v1.5, v0, v0-vqarad, …)  → licence accepted? → resolve repos to commits → already
 *   registered at these commits? done → (v0: check the base's config before the big downloads) →
 *   space for downloads + conversion? → download (HF cache) → convert (f16) → quantize → register
 *
 *   owner/name --file <glob>         → a repo of ready GGUF files: download the model and its mmproj,
 *                                      check both headers, register them where they lie in the HF cache
 *
 * Work files live in dot-folders of the models folder and are removed on any error or abort;
 * a name is registered only once its files are complete.
 */
import { existsSync, statSync } from 'node:fs';
import { copyFile, link, mkdir, mkdtemp, readFile, rm, stat, writeFile, unlink, lstat, readlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { allInOrder, llavaError, throwIfAborted } from '../errors.js';
import { checkV0Base } from '../convert/base-check.js';
import { readLlmConfig } from '../convert/hf-config.js';
import { readGgufHeader, GgufValueType } from '../formats/gguf.js';
import type { QuantType } from '../convert/quantize.js';
import {
  RepoCache,
  checkRepoId,
  downloadFiles,
  formatBytes,
  freeBytes,
  hubSettings,
  resolveRepo,
  type HubOptions,
  type RepoFile,
  type RepoSnapshot,
} from '../hub/index.js';
import { LICENSES, RECIPES, checkpointFiles, globRegExp, quantTag, type LicenseId, type Recipe } from './recipes.js';
import { findModel, modelsDir as defaultModelsDir, registerModel, type ModelSource, type RegisteredModel } from './registry.js';

/** A progress event of {@link pull}; `phase` tells which step it is. Byte counts are bytes. */
export type PullProgress =
  | {
      /** Resolving a repository's revision to a commit. */
      phase: 'resolve';
      /** The repository id. */
      repo: string;
    }
  | {
      /** Downloading (totals over all repositories of the pull). */
      phase: 'download';
      /** The file that just moved. */
      file: string;
      /** Bytes downloaded or found in the cache so far. */
      bytesDone: number;
      /** Bytes of all files. */
      bytesTotal: number;
      /** Files finished. */
      filesDone: number;
      /** Files in all. */
      filesTotal: number;
    }
  | {
      /** Converting to GGUF. */
      phase: 'convert';
      /** The conversion step (check, fold, llm, mmproj). */
      step: string;
      /** Tensors written in this step. */
      tensorsDone: number;
      /** Tensors this step writes. */
      tensorsTotal: number;
      /** Bytes written in this step. */
      bytesDone: number;
      /** Bytes this step writes. */
      bytesTotal: number;
    }
  | {
      /** Quantizing. */
      phase: 'quantize';
      /** The target type (Q4_K_M, …). */
      quant: string;
      /** Tensors done. */
      done: number;
      /** Tensors in all. */
      total: number;
    }
  | {
      /** Registering a name. */
      phase: 'register';
      /** The name registered. */
      name: string;
    };

/** Options of {@link pull}; also the Hub options (token, cache, retries, offline) of {@link HubOptions}. */
export interface PullOptions extends HubOptions {
  /** A recipe (`v1.5`, `v0`, `v0-vqarad`, `v0-pathvqa`) or a repository id (`owner/name`, with `files`). */
  source: string;
  /** Branch, tag or commit of the recipe's model / delta repository (default main). */
  revision?: string;
  /** v0: the LLaMA-7B base, a local HF folder or a repository id. Required for v0 recipes. */
  base?: string;
  /** Revision of `base` when it is a repository id (default main). */
  baseRevision?: string;
  /** For a repository of ready GGUF files: globs choosing the model file (and the mmproj, else found by name). */
  files?: string[];
  /** Quantizations to register (default Q4_K_M; README "Which quantization" and BENCHMARKS.md's quantization table say why). */
  quant?: QuantType | QuantType[];
  /** Registered name (`ns:tag`), or a tag stem; default `llava-med:<recipe>-<quant>`. */
  name?: string;
  /** The licence terms were shown and accepted (the CLI's --accept-license). */
  acceptLicense?: boolean;
  /** Asked when the terms were not accepted before: show them, return true to accept (undefined: nobody to ask). */
  confirmLicense?: (terms: string) => boolean | undefined | Promise<boolean | undefined>;
  /** Keep the downloaded Hugging Face files after converting (default true: Python and later pulls reuse them). */
  keepSource?: boolean;
  /** Threads for quantization (default: llama.cpp's choice). */
  threads?: number;
  /** Registry folder (default $LLAVA_MED_MODELS or ~/.cache/llava-med/models). */
  modelsDir?: string;
  /** Called as the pull proceeds. */
  onProgress?: (p: PullProgress) => void;
  /** Non-fatal notices (e.g. a tensor kept in F16). */
  onWarning?: (message: string) => void;
}

/** What {@link pull} registered. */
export interface PullResult {
  /** One registered model per quantization. */
  models: RegisteredModel[];
  /** Bytes fetched over the network. */
  bytesFetched: number;
  /** Nothing was downloaded or converted: the names were registered at these commits already. */
  upToDate: boolean;
}

const QUANTS = ['F16', 'Q8_0', 'Q5_K_M', 'Q4_K_M', 'Q4_0', 'IQ4_NL'] as const;
/** Output size relative to the F16 language model (llama.cpp's bits per weight / 16). */
const QUANT_RATIO: Record<QuantType, number> = { F16: 1, Q8_0: 0.54, Q5_K_M: 0.36, Q4_K_M: 0.31, Q4_0: 0.28, IQ4_NL: 0.28 };

const OptionsSchema = z.looseObject({
  source: z.string().min(1),
  revision: z.string().min(1).optional(),
  base: z.string().min(1).optional(),
  baseRevision: z.string().min(1).optional(),
  files: z.array(z.string().min(1)).optional(),
  quant: z.union([z.enum(QUANTS), z.array(z.enum(QUANTS)).min(1)]).optional(),
  name: z.string().min(1).optional(),
  acceptLicense: z.boolean().optional(),
  keepSource: z.boolean().optional(),
  threads: z.number().int().positive().optional(),
  modelsDir: z.string().min(1).optional(),
});

function validate(o: PullOptions): void {
  const r = OptionsSchema.safeParse(o);
  if (!r.success) {
    const i = r.error.issues[0];
    throw llavaError('ERR_INVALID_ARGUMENT', `pull: ${i.path.join('.') || 'options'}: ${i.message}${i.path[0] === 'quant' ? ` (one of ${QUANTS.join(', ')})` : ''}.`);
  }
}

// ---------------------------------------------------------------------------------------------
// licence

async function acceptedLicenses(root: string): Promise<Record<string, string>> {
  try {
    return JSON.parse(await readFile(join(root, '.licenses.json'), 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

/** Shows the terms not accepted before; refuses unless accepted by flag or by the confirm callback. */
export async function checkLicenses(ids: readonly LicenseId[], o: Pick<PullOptions, 'acceptLicense' | 'confirmLicense'>, root: string, what: string): Promise<void> {
  const accepted = await acceptedLicenses(root);
  const todo = ids.filter((id) => !accepted[id]);
  if (todo.length === 0) return;
  const terms = todo.map((id) => LICENSES[id]).join('\n\n');
  let ok = o.acceptLicense === true;
  const answer = !ok && o.confirmLicense ? await o.confirmLicense(terms) : undefined;
  if (answer === false) throw llavaError('ERR_LICENSE', `${what}: the terms were declined, so nothing was downloaded.`);
  ok ||= answer === true;
  if (!ok) {
    throw llavaError('ERR_LICENSE', `${what} comes under these terms, which must be accepted first (--accept-license, or acceptLicense: true): ${terms.replace(/\n+/g, ' ')}`);
  }
  await mkdir(root, { recursive: true });
  const now = new Date().toISOString();
  for (const id of todo) accepted[id] = now;
  await writeFile(join(root, '.licenses.json'), `${JSON.stringify(accepted, null, 2)}\n`);
}

// ---------------------------------------------------------------------------------------------
// helpers

interface RepoPlan {
  role: 'model' | 'delta' | 'base' | 'vision' | 'gguf';
  snap: RepoSnapshot;
  files: RepoFile[];
}

function sameSources(a: readonly ModelSource[], b: readonly ModelSource[]): boolean {
  const key = (s: ModelSource) => `${s.role}|${s.repo ?? ''}|${s.commit ?? ''}|${s.dir ?? ''}`;
  return a.length === b.length && a.map(key).sort().join('\n') === b.map(key).sort().join('\n');
}

function sourcesOf(plans: readonly RepoPlan[], localBase?: string): ModelSource[] {
  const s: ModelSource[] = plans.map((p) => ({ role: p.role, repo: p.snap.repo, revision: p.snap.revision, commit: p.snap.commit }));
  if (localBase) s.push({ role: 'base', dir: localBase });
  return s;
}

async function hardlinkOrCopy(from: string, to: string): Promise<void> {
  await link(from, to).catch(() => copyFile(from, to));
}

async function deviceOf(p: string): Promise<number> {
  for (let d = resolve(p); ; d = dirname(d)) {
    const s = await stat(d).catch(() => undefined);
    if (s) return s.dev;
    if (dirname(d) === d) return -1;
  }
}

async function missingBytes(cacheDir: string, plans: readonly RepoPlan[]): Promise<number> {
  let need = 0;
  for (const p of plans) {
    const c = new RepoCache(cacheDir, p.snap.repo);
    for (const f of p.files) {
      const have = await stat(c.blob(f.etag)).then((s) => (s.size === f.size ? f.size : 0), () => 0);
      need += f.size - have;
    }
  }
  return need;
}

/** Deletes the snapshot links and blobs of the files a pull downloaded (--delete-source). */
async function deleteSource(cacheDir: string, plans: readonly RepoPlan[]): Promise<void> {
  for (const p of plans) {
    const c = new RepoCache(cacheDir, p.snap.repo);
    for (const f of p.files) {
      const snapPath = c.snapshotFile(p.snap.commit, f.path);
      const isLink = await lstat(snapPath).then((s) => s.isSymbolicLink(), () => false);
      if (isLink && !(await readlink(snapPath)).endsWith(f.etag)) continue;
      await unlink(snapPath).catch(() => undefined);
      await rm(c.blob(f.etag), { force: true });
    }
  }
}

function quantList(q: PullOptions['quant']): QuantType[] {
  const l = q === undefined ? ['Q4_K_M' as const] : Array.isArray(q) ? q : [q];
  return [...new Set(l)];
}

function targetName(o: PullOptions, stem: string, quant: string, many: boolean): string {
  if (o.name?.includes(':')) {
    if (many) throw llavaError('ERR_INVALID_ARGUMENT', `name ${o.name} is a full name but ${quant} is one of several quantizations: pass a stem (e.g. --name my-model) instead.`);
    return o.name;
  }
  return `llava-med:${o.name ?? stem}-${quant.toLowerCase()}`;
}

// ---------------------------------------------------------------------------------------------
// the pipeline

/**
 * Downloads a released LLaVA-Med model (a recipe) or a repository of ready GGUF files from the Hugging Face
 * Hub, converts and quantizes it, and registers it under a name `LlavaMed.load({ model })` accepts. LFS files
 * are checked against their sha256; a name is registered only once its files are complete.
 *
 * @throws LlavaMedError `ERR_INVALID_ARGUMENT` (bad options, unknown source, v0 without `base`), `ERR_LICENSE`
 *   (terms not accepted), `ERR_HUB_NETWORK` / `ERR_HUB_AUTH` / `ERR_HUB_NOT_FOUND` / `ERR_HUB_INTEGRITY` (download
 *   failed, needs a token, no such repository or file, checksum mismatch), `ERR_DISK_SPACE`, the conversion and
 *   quantization errors (`ERR_CONVERT`, `ERR_QUANTIZE`, …), `ERR_ABORTED`.
 */
export async function pull(o: PullOptions): Promise<PullResult> {
  validate(o);
  throwIfAborted(o.signal, 'pull');
  const root = o.modelsDir ?? defaultModelsDir(o.env);
  const settings = { ...hubSettings(o.env), ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}) };
  const recipe = RECIPES[o.source];
  if (recipe) return pullRecipe(o, recipe, root, settings.cacheDir);
  if (o.source.includes('/')) return pullGguf(o, root);
  throw llavaError('ERR_INVALID_ARGUMENT', `${JSON.stringify(o.source)} is neither a recipe (${Object.keys(RECIPES).join(', ')}) nor a repository id (owner/name --file <pattern>).`);
}

/**
 * The repositories' downloads side by side, with aggregated progress. When one fails, those listed after
 * it stop and those listed before it go on, and the error thrown is that of the first failing repository
 * in plan order: which error a failed pull reports must not depend on which download failed first.
 */
async function downloadAll(o: PullOptions, plans: readonly RepoPlan[]): Promise<number> {
  const done = new Map<string, { bytesDone: number; filesDone: number }>();
  const bytesTotal = plans.reduce((a, p) => a + p.files.reduce((b, f) => b + f.size, 0), 0);
  const filesTotal = plans.reduce((a, p) => a + p.files.length, 0);
  // One controller per repository, aborted by the caller's signal or by a failure listed before it.
  // (Forwarded by hand, not AbortSignal.any: see downloadOne in lib/hub/client.ts.)
  const stops = plans.map(() => new AbortController());
  const onAbort = () => stops.forEach((s) => s.abort(o.signal?.reason));
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) onAbort();
  const results = await allInOrder(
    ...plans.map((p, i) =>
      downloadFiles(p.snap, {
        ...o,
        signal: stops[i]!.signal,
        files: p.files,
        onProgress: (d) => {
          done.set(`${p.role}:${p.snap.repo}`, { bytesDone: d.bytesDone, filesDone: d.filesDone });
          let bytesDone = 0;
          let filesDone = 0;
          for (const v of done.values()) {
            bytesDone += v.bytesDone;
            filesDone += v.filesDone;
          }
          o.onProgress?.({ phase: 'download', file: d.file, bytesDone, bytesTotal, filesDone, filesTotal });
        },
      }).catch((e: unknown) => {
        for (const s of stops.slice(i + 1)) s.abort();
        throw e;
      }),
    ),
  ).finally(() => o.signal?.removeEventListener('abort', onAbort));
  return results.reduce((sum, r) => sum + r.bytesFetched, 0);
}

async function resolveStep(o: PullOptions, repo: string, revision: string | undefined): Promise<RepoSnapshot> {
  o.onProgress?.({ phase: 'resolve', repo });
  return resolveRepo(repo, revision ?? 'main', o);
}

async function pullRecipe(o: PullOptions, recipe: Recipe, root: string, cacheDir: string): Promise<PullResult> {
  const quants = quantList(o.quant);
  if (o.files) throw llavaError('ERR_INVALID_ARGUMENT', `--file is for repositories of GGUF files; the ${recipe.id} recipe converts the released checkpoints.`);
  let localBase: string | undefined;
  let baseRepo: string | undefined;
  if (recipe.variant === 'v0') {
    if (!o.base) {
      throw llavaError('ERR_INVALID_ARGUMENT', `${recipe.id} is a delta on the original LLaMA-7B, which llava-med does not download for you (Meta's licence): pass --base with your LLaMA-7B in HF format, as a folder or a repository id.`);
    }
    if (existsSync(o.base) && statSync(o.base).isDirectory()) localBase = resolve(o.base);
    else {
      try {
        checkRepoId(o.base);
      } catch {
        throw llavaError('ERR_INVALID_ARGUMENT', `--base ${o.base} is neither a folder nor a repository id (owner/name).`);
      }
      baseRepo = o.base;
    }
  } else if (o.base) {
    throw llavaError('ERR_INVALID_ARGUMENT', `--base is for the v0 recipes; ${recipe.id} is a full model.`);
  }
  await checkLicenses(recipe.licenses, o, root, recipe.description);

  const plans: RepoPlan[] = [];
  const main = recipe.model ?? recipe.delta!;
  const mainSnap = await resolveStep(o, main, o.revision);
  plans.push({ role: recipe.model ? 'model' : 'delta', snap: mainSnap, files: checkpointFiles(main, mainSnap.files) });
  const visionSnap = await resolveStep(o, recipe.vision, undefined);
  plans.push({ role: 'vision', snap: visionSnap, files: checkpointFiles(recipe.vision, visionSnap.files) });
  if (baseRepo) {
    const baseSnap = await resolveStep(o, baseRepo, o.baseRevision);
    plans.push({ role: 'base', snap: baseSnap, files: checkpointFiles(baseRepo, baseSnap.files) });
  }
  const sources = sourcesOf(plans, localBase);
  const names = quants.map((q) => targetName(o, recipe.id, q, quants.length > 1));

  // A second pull of the same commits downloads and converts nothing.
  const existing = await Promise.all(names.map((n) => findModel(n, root).catch(() => undefined)));
  if (existing.every((e) => e && sameSources(e.manifest.sources, sources) && existsSync(e.model) && existsSync(e.mmproj))) {
    return { models: existing as RegisteredModel[], bytesFetched: 0, upToDate: true };
  }

  // v0: refuse a wrong base from its config before gigabytes move.
  if (recipe.variant === 'v0') {
    const configOf = async (role: 'base' | 'delta'): Promise<string> => {
      if (role === 'base' && localBase) return localBase;
      const p = plans.find((x) => x.role === role)!;
      const r = await downloadFiles(p.snap, { ...o, files: p.files.filter((f) => f.path === 'config.json') });
      return r.dir;
    };
    const [baseDir, deltaDir] = [await configOf('base'), await configOf('delta')];
    const [bc, dc] = [await readLlmConfig(baseDir), await readLlmConfig(deltaDir)];
    checkV0Base(
      { dir: o.base!, config: bc, embedRows: bc.vocab_size, addedTokens: 0 },
      { dir: main, config: dc, embedRows: dc.vocab_size, extraTokens: dc.vocab_size - bc.vocab_size },
    );
  }

  // Space: the downloads (HF cache) and the conversion (models folder), together when on one disk.
  const weights = (p: RepoPlan) => p.files.filter((f) => /\.(safetensors|bin)$/.test(f.path)).reduce((a, f) => a + f.size, 0);
  const llmF16 = weights(plans[0]);
  const convertNeed = llmF16 + weights(plans[1]) + quants.reduce((a, q) => a + (q === 'F16' ? 0 : llmF16 * QUANT_RATIO[q]), 0);
  const downloadNeed = await missingBytes(cacheDir, plans);
  const sameDisk = (await deviceOf(root)) === (await deviceOf(cacheDir));
  const need = convertNeed + (sameDisk ? downloadNeed : 0);
  const free = await freeBytes(root);
  if (need > free) {
    throw llavaError('ERR_DISK_SPACE', `${recipe.id} needs about ${formatBytes(need)} (${formatBytes(downloadNeed)} to download, ${formatBytes(convertNeed)} to convert and quantize) but ${root} has ${formatBytes(free)} free: free some space, or set LLAVA_MED_MODELS / HF_HUB_CACHE to a bigger disk.`);
  }

  const bytesFetched = await downloadAll(o, plans);
  const dirOf = (role: RepoPlan['role']) => {
    const p = plans.find((x) => x.role === role)!;
    return new RepoCache(cacheDir, p.snap.repo).snapshotDir(p.snap.commit);
  };

  await mkdir(root, { recursive: true });
  const work = await mkdtemp(join(root, '.work-'));
  try {
    const { convertV0, convertV15 } = await import('../convert/index.js');
    const onConvert = (p: { phase: string; tensorsDone: number; tensorsTotal: number; bytesDone: number; bytesTotal: number }) =>
      o.onProgress?.({ phase: 'convert', step: p.phase, tensorsDone: p.tensorsDone, tensorsTotal: p.tensorsTotal, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal });
    const origins = Object.fromEntries(plans.map((p) => [p.role, { repo: p.snap.repo, revision: p.snap.revision, commit: p.snap.commit }]));
    const common = { origins, vision: dirOf('vision'), out: join(work, 'f16'), name: `llava-med-${recipe.id}`, outtype: 'f16' as const, onProgress: onConvert, onWarning: o.onWarning, signal: o.signal };
    const conv =
      recipe.variant === 'v1.5'
        ? await convertV15({ ...common, model: dirOf('model') })
        : await convertV0({ ...common, base: localBase ?? dirOf('base'), delta: dirOf('delta') });
    const models: RegisteredModel[] = [];
    const { quantize } = await import('../convert/quantize.js');
    for (const [i, q] of quants.entries()) {
      throwIfAborted(o.signal, 'pull');
      const staging = await mkdtemp(join(root, '.staging-'));
      try {
        if (q === 'F16') await hardlinkOrCopy(conv.model, join(staging, 'model.gguf'));
        else {
          await quantize({
            input: conv.model, output: join(staging, 'model.gguf'), type: q, threads: o.threads, signal: o.signal,
            onProgress: (p) => o.onProgress?.({ phase: 'quantize', quant: q, done: p.done, total: p.total }),
          });
        }
        await hardlinkOrCopy(conv.mmproj, join(staging, 'mmproj.gguf'));
        o.onProgress?.({ phase: 'register', name: names[i] });
        models.push(
          await registerModel(staging, { name: names[i], variant: recipe.variant, quant: q, model: 'model.gguf', mmproj: 'mmproj.gguf', recipe: recipe.id, sources, created: new Date().toISOString() }, root),
        );
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    }
    if (o.keepSource === false) await deleteSource(cacheDir, plans);
    return { models, bytesFetched, upToDate: false };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A repository of ready GGUF files: the model file the globs choose, and its mmproj. */
async function pullGguf(o: PullOptions, root: string): Promise<PullResult> {
  checkRepoId(o.source);
  const snap = await resolveStep(o, o.source, o.revision);
  const ggufs = snap.files.filter((f) => f.path.toLowerCase().endsWith('.gguf'));
  const list = ggufs.map((f) => f.path).join(', ') || 'none';
  if (!o.files || o.files.length === 0) {
    throw llavaError('ERR_INVALID_ARGUMENT', `${o.source} is not a recipe: choose its GGUF file with --file <pattern> (its GGUF files: ${list}).`);
  }
  const chosen = ggufs.filter((f) => o.files!.some((p) => globRegExp(p).test(f.path) || globRegExp(p).test(f.path.replace(/^.*\//, ''))));
  const isProj = (f: RepoFile) => /mmproj|projector|clip/i.test(f.path.replace(/^.*\//, ''));
  const modelFiles = chosen.filter((f) => !isProj(f));
  if (modelFiles.length !== 1) {
    throw llavaError('ERR_HUB_NOT_FOUND', `--file ${o.files.join(' ')} matches ${modelFiles.length === 0 ? 'no' : `${modelFiles.length}`} model GGUF in ${o.source}${modelFiles.length > 1 ? ` (${modelFiles.map((f) => f.path).join(', ')}); make the pattern narrower` : ''} (its GGUF files: ${list}).`);
  }
  let proj = chosen.filter(isProj);
  if (proj.length === 0) proj = ggufs.filter(isProj);
  if (proj.length > 1) proj = proj.filter((f) => /f16/i.test(f.path)).slice(0, 1).length === 1 ? proj.filter((f) => /f16/i.test(f.path)).slice(0, 1) : proj;
  if (proj.length !== 1) {
    throw llavaError('ERR_HUB_NOT_FOUND', proj.length === 0 ? `${o.source} has no mmproj GGUF (a LLaVA-Med model needs its projector); its GGUF files: ${list}.` : `${o.source} has several mmproj files (${proj.map((f) => f.path).join(', ')}): add a second --file naming one.`);
  }
  const model = modelFiles[0];
  const tag = quantTag(model.path) ?? model.path.replace(/^.*\//, '').replace(/\.gguf$/i, '').toLowerCase().replace(/[^a-z0-9._-]/g, '-');
  const ns = o.source.split('/').pop()!.toLowerCase().replace(/[^a-z0-9._-]/g, '-').replace(/^[^a-z0-9]+/, '');
  const name = o.name?.includes(':') ? o.name : `${o.name ?? ns}:${tag}`;
  const plan: RepoPlan = { role: 'gguf', snap, files: [model, proj[0]] };
  const sources = sourcesOf([plan]);
  const existing = await findModel(name, root).catch(() => undefined);
  if (existing && sameSources(existing.manifest.sources, sources) && existsSync(existing.model) && existsSync(existing.mmproj)) {
    return { models: [existing], bytesFetched: 0, upToDate: true };
  }
  await checkLicenses(['llava-med'], o, root, `${o.source} (a LLaVA-Med conversion)`);
  const bytesFetched = await downloadAll(o, [plan]);
  const settings = { ...hubSettings(o.env), ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}) };
  const cache = new RepoCache(settings.cacheDir, snap.repo);
  const modelPath = cache.snapshotFile(snap.commit, model.path);
  const projPath = cache.snapshotFile(snap.commit, proj[0].path);
  const arch = async (p: string) => {
    const h = await readGgufHeader(p);
    const a = h.kv.get('general.architecture');
    return a?.type === GgufValueType.STRING ? String(a.value) : '';
  };
  if ((await arch(modelPath)) === 'clip') throw llavaError('ERR_MMPROJ_MISMATCH', `${o.source}/${model.path} is a projector (clip) GGUF, not a language model: choose the model file with --file.`);
  if ((await arch(projPath)) !== 'clip') throw llavaError('ERR_MMPROJ_MISMATCH', `${o.source}/${proj[0].path} is not an mmproj (clip) GGUF.`);
  await mkdir(root, { recursive: true });
  const staging = await mkdtemp(join(root, '.staging-'));
  try {
    o.onProgress?.({ phase: 'register', name });
    const m = await registerModel(staging, { name, quant: tag.toUpperCase(), model: modelPath, mmproj: projPath, sources, created: new Date().toISOString() }, root);
    return { models: [m], bytesFetched, upToDate: false };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

