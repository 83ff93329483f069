/**
 * Which model a run answers with, from the GGUF files alone (no native code, ~2 MB read per file):
 * the provenance keys the converter writes (`general.name`, `general.base_model.*`, `llava_med.source.*`,
 * file type, variant) for people, and a fingerprint for machines — SHA-256 over each file's whole header
 * (every key and tensor descriptor) and 16 evenly spread 64 KiB samples of its tensor data, so two
 * conversions with the same keys but other weights (another seed, another fold) differ too.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { llavaError } from '../errors.js';
import { openRegularFile } from '../formats/file-read.js';
import { GgufValueType, readGgufHeader, type GgufHeader } from '../formats/gguf.js';
import { isModelName, resolveModel } from '../pull/registry.js';

/** The identity of one GGUF file (see {@link modelIdentity}). */
export interface GgufIdentity {
  /** The provenance keys found in the header (string and number values only), by key. */
  provenance: Record<string, string>;
  /** Hex SHA-256 over the header and the data samples. */
  fingerprint: string;
}

/** The identity of a model pair: the language model and its projector. */
export interface ModelIdentity {
  /** The language model GGUF. */
  model: GgufIdentity;
  /** The projector (mmproj) GGUF. */
  mmproj: GgufIdentity;
}

const SAMPLES = 16;
const SAMPLE_BYTES = 64 * 1024;

function isProvenanceKey(k: string): boolean {
  return (
    k === 'general.name' || k === 'general.description' || k === 'general.file_type' || k === 'general.license' ||
    k === 'general.architecture' || k.startsWith('general.base_model.') || k.startsWith('llava_med.')
  ) && k !== 'llava_med.license_notice';
}

function provenanceOf(h: GgufHeader): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, kv] of h.kv) {
    if (!isProvenanceKey(k) || kv.type === GgufValueType.ARRAY) continue;
    out[k] = String(kv.value);
  }
  return out;
}

async function identityOf(path: string): Promise<GgufIdentity> {
  const header = await readGgufHeader(path);
  const { fh, size } = await openRegularFile(path, { what: 'GGUF file', notRegularCode: 'ERR_NOT_GGUF' });
  try {
    const hash = createHash('sha256');
    const read = async (pos: number, len: number) => {
      const buf = Buffer.alloc(len);
      let off = 0;
      while (off < len) {
        const { bytesRead } = await fh.read(buf, off, len - off, pos + off);
        if (bytesRead === 0) throw llavaError('ERR_GGUF_CORRUPT', `${path} ended at byte ${pos + off} while it was being fingerprinted (was it changed meanwhile?).`);
        off += bytesRead;
      }
      hash.update(buf);
    };
    await read(0, Math.min(header.dataOffset, size));
    const data = size - header.dataOffset;
    if (data > 0) {
      const len = Math.min(SAMPLE_BYTES, data);
      const n = data <= SAMPLE_BYTES ? 1 : SAMPLES;
      for (let i = 0; i < n; i++) {
        const pos = header.dataOffset + (n === 1 ? 0 : Math.floor((i * (data - len)) / (n - 1)));
        await read(pos, len);
      }
    }
    hash.update(`size:${size}`);
    return { provenance: provenanceOf(header), fingerprint: hash.digest('hex') };
  } finally {
    await fh.close();
  }
}

/**
 * Reads the identity of a model pair. `model` may be a registered name (`llava-med:v1.5-q4_k_m`), whose
 * projector is then the default for `mmproj`, as in `LlavaMed.load`.
 *
 * @throws LlavaMedError `ERR_INVALID_ARGUMENT` (no projector given or registered), `ERR_MODEL_NOT_FOUND`,
 *   `ERR_FILE_NOT_FOUND`, `ERR_NOT_GGUF`, `ERR_GGUF_CORRUPT`.
 */
export async function modelIdentity(files: {
  /** Language model GGUF path, or a registered name. */
  model: string;
  /** Projector GGUF path (default: the registered name's). */
  mmproj?: string | undefined;
}): Promise<ModelIdentity & {
  /** The model path the identity was read from (a registered name resolved). */
  modelPath: string;
  /** The projector path the identity was read from. */
  mmprojPath: string;
}> {
  let model = files.model;
  let mmproj = files.mmproj;
  if (isModelName(model) && !existsSync(model)) {
    const m = await resolveModel(model);
    model = m.model;
    mmproj ??= m.mmproj;
  }
  if (!mmproj) throw llavaError('ERR_INVALID_ARGUMENT', `No projector for ${model}: pass its mmproj GGUF (-p).`);
  return { model: await identityOf(model), mmproj: await identityOf(mmproj), modelPath: model, mmprojPath: mmproj };
}

/**
 * The differences between two model identities, one line each ("model general.name: 'a' here, 'b' in the run"),
 * fingerprints last; empty when they are the same model.
 */
export function identityDifferences(mine: ModelIdentity, theirs: ModelIdentity, names: { mine: string; theirs: string } = { mine: 'here', theirs: 'in the run' }): string[] {
  const out: string[] = [];
  for (const part of ['model', 'mmproj'] as const) {
    const a = mine[part].provenance;
    const b = theirs[part].provenance;
    for (const k of [...new Set([...Object.keys(b), ...Object.keys(a)])]) {
      if (a[k] !== b[k]) out.push(`${part} ${k}: ${a[k] === undefined ? 'absent' : JSON.stringify(a[k])} ${names.mine}, ${b[k] === undefined ? 'absent' : JSON.stringify(b[k])} ${names.theirs}`);
    }
    if (mine[part].fingerprint !== theirs[part].fingerprint) {
      out.push(`${part} fingerprint (header + weight samples): ${mine[part].fingerprint.slice(0, 16)}… ${names.mine}, ${theirs[part].fingerprint.slice(0, 16)}… ${names.theirs}`);
    }
  }
  return out;
}

/**
 * What each answers line records about the model that wrote it, under `metadata.model` (the original wrote
 * `metadata: {}`; its scripts and `eval score` read neither): the fingerprints {@link modelIdentity} computes, which
 * `mergeChunks` (`eval merge`) compares across parts and a resumed run compares with the lines already written.
 */
export interface RecordedModel {
  /** The language model's `general.name`, for people (absent when the GGUF has none). */
  name?: string;
  /**
   * The prompt variant the answers were asked with, when it is not the one the GGUF files record
   * (`llava_med.variant`): a `--variant` override, or files without the key. Absent: the files' own.
   */
  variant?: string;
  /** {@link GgufIdentity.fingerprint} of the language model and of the projector. */
  fingerprint: {
    /** The language model GGUF's. */
    model: string;
    /** The projector GGUF's. */
    mmproj: string;
  };
}

const RecordedModelSchema = z.object({
  name: z.string().optional(),
  variant: z.string().optional(),
  fingerprint: z.object({ model: z.string().regex(/^[0-9a-f]{64}$/), mmproj: z.string().regex(/^[0-9a-f]{64}$/) }),
});

/**
 * The `metadata.model` record of an identity (see {@link RecordedModel}); `variant` is the prompt variant the
 * answers are asked with (`LlavaMed.variant`), recorded only when it is not the GGUF's own.
 */
export function recordedModel(id: ModelIdentity, variant?: string): RecordedModel {
  const name = id.model.provenance['general.name'];
  const own = variant !== undefined && variant !== ggufVariant(id) ? { variant } : {};
  return { ...(name !== undefined ? { name } : {}), ...own, fingerprint: { model: id.model.fingerprint, mmproj: id.mmproj.fingerprint } };
}

/** The variant the files record (`llava_med.variant` of the language model, else of the projector), if any. */
export function ggufVariant(id: ModelIdentity): string | undefined {
  return id.model.provenance['llava_med.variant'] ?? id.mmproj.provenance['llava_med.variant'];
}

/**
 * Which model an answers line records, as a comparable key and a description for people: the two fingerprints
 * when `metadata.model` is a {@link RecordedModel}; "none" when the line records no model (the original's
 * `{}`, or llava-med before the record); anything else in `metadata.model` is kept as it is.
 */
export function recordedModelOf(metadata: Record<string, unknown>): { key: string; description: string; record?: RecordedModel } {
  const raw = metadata.model;
  if (raw === undefined) return { key: 'none', description: 'no model fingerprint recorded (written by the original scripts or an older llava-med: it cannot be checked)' };
  const r = RecordedModelSchema.safeParse(raw);
  if (!r.success) return { key: `other:${JSON.stringify(raw)}`, description: `metadata.model ${JSON.stringify(raw)} (not a llava-med model record)` };
  const f = r.data.fingerprint;
  const v = r.data.variant;
  const record: RecordedModel = { ...(r.data.name !== undefined ? { name: r.data.name } : {}), ...(v !== undefined ? { variant: v } : {}), fingerprint: { model: f.model, mmproj: f.mmproj } };
  return {
    key: `fp:${f.model}/${f.mmproj}${v !== undefined ? `/variant:${v}` : ''}`,
    description: `${r.data.name !== undefined ? `${JSON.stringify(r.data.name)}, ` : ''}model fingerprint ${f.model.slice(0, 12)}…, mmproj fingerprint ${f.mmproj.slice(0, 12)}…${v !== undefined ? `, asked with the ${v} prompt (not the GGUF's own variant)` : ''}`,
    record,
  };
}
