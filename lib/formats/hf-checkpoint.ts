/**
 * Hugging Face checkpoint folders: model.safetensors(.index.json) or pytorch_model.bin(.index.json),
 * single or sharded. Opening reads only headers (safetensors JSON, torch data.pkl) of every shard so
 * that dtype/shape are known and a missing shard or tensor is reported up front; tensor bytes are read
 * lazily. The writer produces the same layouts (for fixtures and tests of the converters).
 */
import { stat, mkdir, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { llavaError, isLlavaMedError } from '../errors.js';
import { DTYPE_BYTES, numel, type CheckpointReader, type TensorData, type TensorSource } from './tensor.js';
import { MapCheckpoint, checkTensorList, writeFileAtomic } from './tensor-io.js';
import { openSafetensors, writeSafetensors } from './safetensors.js';
import { readTextFile } from './file-read.js';
import { openTorchZip, writeTorchZip } from './torch.js';

const LAYOUTS = [
  { index: 'model.safetensors.index.json', single: 'model.safetensors' },
  { index: 'pytorch_model.bin.index.json', single: 'pytorch_model.bin' },
] as const;
const MAX_INDEX_BYTES = 64 << 20;

async function isFile(p: string): Promise<boolean> {
  try { return (await stat(p)).isFile(); } catch { return false; }
}

function openShard(path: string): Promise<CheckpointReader> {
  return path.endsWith('.safetensors') ? openSafetensors(path) : openTorchZip(path);
}

async function readIndex(path: string): Promise<Map<string, string>> {
  const text = await readTextFile(path, { what: 'Checkpoint index', maxBytes: MAX_INDEX_BYTES, tooLargeCode: 'ERR_FORMAT' });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw llavaError('ERR_FORMAT', `${path} is not valid JSON (${(e as Error).message}). Download the checkpoint again.`, e);
  }
  const wm = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) throw llavaError('ERR_FORMAT', `${path} has no "weight_map" object.`);
  const map = new Map<string, string>();
  for (const [name, file] of Object.entries(wm)) {
    // Shard names come from the file: allow plain file names only, never a path out of the folder.
    if (typeof file !== 'string' || file !== basename(file) || file === '..' || file === '.' || file.length === 0) {
      throw llavaError('ERR_FORMAT', `${path} maps '${name}' to ${JSON.stringify(file)}, which is not a plain shard file name.`);
    }
    map.set(name, file);
  }
  if (map.size === 0) throw llavaError('ERR_FORMAT', `${path} lists no tensors.`);
  return map;
}

/**
 * Open a checkpoint folder (or a single .safetensors / .bin / .pt file).
 * ERR_FILE_NOT_FOUND when nothing is there, ERR_MISSING_SHARD naming an absent shard, ERR_FORMAT for a
 * tensor the index lists but its shard lacks.
 */
export async function openHfCheckpoint(dir: string): Promise<CheckpointReader> {
  let st;
  try {
    st = await stat(dir);
  } catch (e) {
    throw llavaError('ERR_FILE_NOT_FOUND', `Checkpoint folder not found: ${dir}.`, e);
  }
  if (st.isFile()) return openShard(dir);

  for (const layout of LAYOUTS) {
    const indexPath = join(dir, layout.index);
    if (await isFile(indexPath)) return openIndexed(dir, indexPath);
    const single = join(dir, layout.single);
    if (await isFile(single)) return openShard(single);
  }
  const names = await readdir(dir).catch(() => [] as string[]);
  const shards = names.filter((n) => /-\d+-of-\d+\.(safetensors|bin)$/.test(n));
  const hint = shards.length
    ? ` It has shards (${shards.slice(0, 3).join(', ')}${shards.length > 3 ? ', …' : ''}) but no index.json; download the index file too.`
    : ' Download the complete model folder from Hugging Face.';
  throw llavaError('ERR_FILE_NOT_FOUND', `${dir} holds no model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json.${hint}`);
}

async function openIndexed(dir: string, indexPath: string): Promise<CheckpointReader> {
  const weightMap = await readIndex(indexPath);
  const shardNames = [...new Set(weightMap.values())];
  for (const s of shardNames) {
    if (!(await isFile(join(dir, s)))) {
      const needs = [...weightMap].filter(([, f]) => f === s).map(([n]) => n);
      throw llavaError('ERR_MISSING_SHARD', `Shard ${s} listed in ${indexPath} is missing from ${dir} (it holds ${needs.length} tensors, e.g. '${needs[0]}'). Download it again.`);
    }
  }
  const readers = new Map<string, CheckpointReader>();
  const closeAll = async () => { await Promise.all([...readers.values()].map((r) => r.close())); };
  try {
    for (const s of shardNames) readers.set(s, await openShard(join(dir, s)));
    const tensors = new Map<string, TensorSource>();
    for (const [name, s] of weightMap) {
      const r = readers.get(s)!;
      if (!r.has(name)) {
        throw llavaError('ERR_FORMAT', `${indexPath} says tensor '${name}' is in ${s}, but that shard does not contain it. The checkpoint is damaged or mixed from different downloads.`);
      }
      tensors.set(name, r.get(name));
    }
    return new MapCheckpoint(shardNames.map((s) => join(dir, s)), tensors, closeAll);
  } catch (e) {
    await closeAll();
    if (isLlavaMedError(e)) throw e;
    throw llavaError('ERR_FORMAT', `Cannot open the checkpoint in ${dir}: ${(e as Error).message}`, e);
  }
}

export interface WriteHfCheckpointOptions {
  format: 'safetensors' | 'bin';
  /** Number of shards (default 1 = a single file, no index). Clamped to the number of tensors. */
  shards?: number;
}

/** Write a (possibly sharded) HF checkpoint with a correct index.json. Returns the files written. */
export async function writeHfCheckpoint(dir: string, tensors: readonly TensorData[], opts: WriteHfCheckpointOptions): Promise<string[]> {
  checkTensorList(tensors);
  if (opts.format !== 'safetensors' && opts.format !== 'bin') throw llavaError('ERR_INVALID_ARGUMENT', `format must be 'safetensors' or 'bin', got ${String(opts.format)}.`);
  const want = opts.shards ?? 1;
  if (!Number.isInteger(want) || want < 1) throw llavaError('ERR_INVALID_ARGUMENT', `shards must be a positive integer, got ${want}.`);
  await mkdir(dir, { recursive: true });
  const write = (p: string, ts: readonly TensorData[]) => (opts.format === 'safetensors' ? writeSafetensors(p, ts, { format: 'pt' }) : writeTorchZip(p, ts));
  const bytes = (t: TensorData) => numel(t.shape) * DTYPE_BYTES[t.dtype];

  const n = Math.max(1, Math.min(want, tensors.length));
  if (n === 1) {
    const p = join(dir, opts.format === 'safetensors' ? 'model.safetensors' : 'pytorch_model.bin');
    await write(p, tensors);
    return [p];
  }
  // Split in order into n groups of roughly equal bytes, each non-empty (as HF's shard_checkpoint does by size).
  const total = tensors.reduce((s, t) => s + bytes(t), 0);
  const groups: TensorData[][] = [];
  let cur: TensorData[] = [];
  let acc = 0;
  tensors.forEach((t, i) => {
    cur.push(t);
    acc += bytes(t);
    const left = tensors.length - i - 1;
    const groupsLeft = n - groups.length - 1;
    if (groupsLeft > 0 && (acc >= (total * (groups.length + 1)) / n || left === groupsLeft)) {
      groups.push(cur);
      cur = [];
    }
  });
  if (cur.length) groups.push(cur);
  const count = groups.length;
  const pad = (i: number) => String(i).padStart(5, '0');
  const stem = opts.format === 'safetensors' ? 'model' : 'pytorch_model';
  const ext = opts.format === 'safetensors' ? 'safetensors' : 'bin';
  const weightMap: Record<string, string> = {};
  const files: string[] = [];
  for (let g = 0; g < count; g++) {
    const file = `${stem}-${pad(g + 1)}-of-${pad(count)}.${ext}`;
    await write(join(dir, file), groups[g]!);
    for (const t of groups[g]!) weightMap[t.name] = file;
    files.push(join(dir, file));
  }
  const sorted = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
  const index = join(dir, `${stem}.${ext}.index.json`);
  const body = Buffer.from(JSON.stringify({ metadata: { total_size: total }, weight_map: sorted }, null, 2) + '\n');
  await writeFileAtomic(index, (w) => w(body));
  return [...files, index];
}
