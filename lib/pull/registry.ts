/**
 * Registered model names (`llava-med:v1.5-q4_k_m`): what `pull` produced, found again by `ask -m`,
 * `LlavaMed.load({ model })`, `eval answer -m`, `llava-med list` and `rm`.
 *
 *   <models>/<namespace>/<tag>/manifest.json   the entry (below)
 *   <models>/<namespace>/<tag>/model.gguf      converted models live here; a ready GGUF pulled from a
 *   <models>/<namespace>/<tag>/mmproj.gguf     repo stays in the Hugging Face cache and is referenced
 *
 * <models> is $LLAVA_MED_MODELS, else $XDG_CACHE_HOME/llava-med/models, else ~/.cache/llava-med/models.
 * An entry is written to a temporary folder and renamed into place, so a half-registered model is
 * never listed.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { llavaError } from '../errors.js';

const PART = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const NAME = /^([a-z0-9][a-z0-9._-]{0,63}):([a-z0-9][a-z0-9._-]{0,63})$/;

let asideCount = 0;
/**
 * A dot-name beside an entry (never listed, same file system for the rename). Unique within the
 * process too: two registrations in one millisecond must not share a name, or one renames onto the
 * other's half-deleted folder.
 */
function aside(dir: string, why: string): string {
  return join(dirname(dir), `.${basename(dir)}.${why}-${process.pid}-${Date.now()}-${asideCount++}`);
}

/** True for strings shaped like a registered name (`namespace:tag`), as opposed to file paths. */
export function isModelName(s: string): boolean {
  return NAME.test(s) && !s.includes('..');
}

/** The registry folder: `$LLAVA_MED_MODELS`, else `$XDG_CACHE_HOME/llava-med/models` or `~/.cache/llava-med/models`. */
export function modelsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.LLAVA_MED_MODELS || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'llava-med', 'models');
}

const Source = z.object({
  /** What the input was: model, delta, base, vision or gguf. */
  role: z.string(),
  /** Hugging Face repository id. */
  repo: z.string().optional(),
  /** The revision asked for (branch, tag or commit). */
  revision: z.string().optional(),
  /** The commit it resolved to. */
  commit: z.string().optional(),
  /** A local folder used instead of a repository (a v0 base the user already had). */
  dir: z.string().optional(),
});

const Manifest = z.object({
  /** The registered name (`namespace:tag`). */
  name: z.string(),
  /** LLaVA-Med release, when known. */
  variant: z.enum(['v0', 'v1.5']).optional(),
  /** Quantization of the language model (Q4_K_M, …) or the GGUF file's own tag. */
  quant: z.string(),
  /** File names inside the entry's folder, or absolute paths (ready GGUFs kept in the HF cache). */
  model: z.string(),
  /** The projector file, as `model`. */
  mmproj: z.string(),
  /** The recipe pulled (`v1.5`, `v0`, …), absent for a repository of ready GGUFs. */
  recipe: z.string().optional(),
  /** Where each input came from. */
  sources: z.array(Source),
  /** When it was registered (ISO 8601). */
  created: z.string(),
});
/**
 * `manifest.json` of a registered model.
 * @useDeclaredType
 */
export type ModelManifest = z.infer<typeof Manifest>;
/**
 * One input of a registered model, as recorded in its manifest.
 * @useDeclaredType
 */
export type ModelSource = z.infer<typeof Source>;

/** A model in the registry (`llava-med list`); pass `model` and `mmproj` (or `name`) to `LlavaMed.load`. */
export interface RegisteredModel {
  /** Its name (`namespace:tag`). */
  name: string;
  /** Its folder in the registry. */
  dir: string;
  /** Absolute path of the language-model GGUF. */
  model: string;
  /** Absolute path of the projector GGUF. */
  mmproj: string;
  /** Bytes of the model and projector files. */
  bytes: number;
  /** The manifest it was registered with. */
  manifest: ModelManifest;
}

function checkName(name: string): [string, string] {
  const m = NAME.exec(name);
  if (!m || name.includes('..')) {
    throw llavaError('ERR_INVALID_ARGUMENT', `${JSON.stringify(name)} is not a model name: use namespace:tag in lower case (letters, digits, . _ -), e.g. llava-med:v1.5-q4_k_m.`);
  }
  return [m[1], m[2]];
}

export function entryDir(name: string, root = modelsDir()): string {
  const [ns, tag] = checkName(name);
  return join(root, ns, tag);
}

async function readEntry(dir: string): Promise<RegisteredModel | undefined> {
  let raw: string;
  try {
    raw = await readFile(join(dir, 'manifest.json'), 'utf8');
  } catch {
    return undefined;
  }
  let parsed;
  try {
    parsed = Manifest.safeParse(JSON.parse(raw));
  } catch {
    parsed = undefined;
  }
  if (!parsed?.success) throw llavaError('ERR_FORMAT', `${join(dir, 'manifest.json')} is not a llava-med model manifest; remove the folder or pull the model again.`);
  return describe(dir, parsed.data);
}

/** The entry a manifest describes in `dir`, with the current size of its files. */
async function describe(dir: string, m: ModelManifest): Promise<RegisteredModel> {
  const model = isAbsolute(m.model) ? m.model : join(dir, m.model);
  const mmproj = isAbsolute(m.mmproj) ? m.mmproj : join(dir, m.mmproj);
  let bytes = 0;
  for (const f of [model, mmproj]) bytes += await stat(f).then((s) => s.size, () => 0);
  return { name: m.name, dir, model, mmproj, bytes, manifest: m };
}

/** The registered model of that name, or undefined. */
export async function findModel(name: string, root = modelsDir()): Promise<RegisteredModel | undefined> {
  return readEntry(entryDir(name, root));
}

/** Like findModel, but a missing name (or a missing file of it) is ERR_MODEL_NOT_FOUND saying what to do. */
export async function resolveModel(name: string, root = modelsDir()): Promise<RegisteredModel> {
  const m = await findModel(name, root);
  if (!m) {
    throw llavaError('ERR_MODEL_NOT_FOUND', `No model named ${name} in ${root}: \`llava-med list\` shows the registered ones, \`llava-med pull v1.5\` downloads one.`);
  }
  for (const f of [m.model, m.mmproj]) {
    if (!existsSync(f)) throw llavaError('ERR_MODEL_NOT_FOUND', `${name} is registered but ${f} is gone: pull it again (\`llava-med pull\`) or remove it (\`llava-med rm ${name}\`).`);
  }
  return m;
}

/** Every registered model under `root` (default {@link modelsDir}), sorted by name; unreadable entries are skipped. */
export async function listModels(root = modelsDir()): Promise<RegisteredModel[]> {
  const out: RegisteredModel[] = [];
  for (const ns of (await readdir(root, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory() && PART.test(e.name))) {
    for (const tag of (await readdir(join(root, ns.name), { withFileTypes: true })).filter((e) => e.isDirectory() && PART.test(e.name))) {
      const e = await readEntry(join(root, ns.name, tag.name)).catch(() => undefined);
      if (e) out.push(e);
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Removes a registered model and its files; resolves with what was removed.
 * @throws LlavaMedError `ERR_MODEL_NOT_FOUND` when no model has that name.
 */
export async function removeModel(name: string, root = modelsDir()): Promise<RegisteredModel> {
  const m = await findModel(name, root);
  if (!m) throw llavaError('ERR_MODEL_NOT_FOUND', `No model named ${name} in ${root} (\`llava-med list\` shows the registered ones).`);
  // Rename first so the name disappears at once, even if deleting gigabytes takes a while.
  const trash = aside(m.dir, 'rm');
  await rename(m.dir, trash);
  await rm(trash, { recursive: true, force: true });
  return m;
}

/**
 * Registers `staging` (a folder holding the files named in the manifest) under `name`, replacing an
 * entry of the same name. `staging` must be on the same file system as the models folder.
 */
export async function registerModel(staging: string, manifest: ModelManifest, root = modelsDir()): Promise<RegisteredModel> {
  const parsed = Manifest.parse(manifest);
  const dir = entryDir(parsed.name, root);
  await writeFile(join(staging, 'manifest.json'), `${JSON.stringify(parsed, null, 2)}\n`);
  await mkdir(join(dir, '..'), { recursive: true });
  // Sized before the rename: once in place, a newer registration of the name may replace it at once.
  const { bytes } = await describe(staging, parsed);
  // Move an existing entry aside, then rename ours in. Another registration of the same name may
  // slip in between (two pulls at once): then move that one aside too and try again; last one wins.
  for (let attempt = 0; ; attempt++) {
    const old = aside(dir, `old-${attempt}`);
    const had = await rename(dir, old).then(() => true, () => false);
    try {
      await rename(staging, dir);
    } catch (e) {
      // Put the old entry back; if a newer registration took the name meanwhile, the old one is
      // superseded: delete it rather than leave it aside for ever.
      if (had) await rename(old, dir).catch(() => rm(old, { recursive: true, force: true }));
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && attempt < 10) continue;
      throw e;
    }
    if (had) await rm(old, { recursive: true, force: true });
    return { ...(await describe(dir, parsed)), bytes };
  }
}
