/**
 * DICOM input: `{ dicom: path | bytes, window?, frame?, implicit? }`, or any path / Buffer whose bytes carry
 * the Part 10 "DICM" marker, rendered to 8-bit grey or RGB as a viewer shows it (render.ts), then through the
 * normal LLaVA-Med preprocessing.
 *
 * Parsing, WebAssembly decoding and rendering run in one worker thread, started on first use and unref'd, so
 * a large or compressed study never blocks the caller's event loop and the codecs' Emscripten runtimes stay
 * out of the main isolate. A job that has not finished in time (jobTimeoutMs) ends the worker (a decoder stuck
 * on a crafted stream) and rejects with ERR_IMAGE_DECODE; the next job starts a fresh worker.
 */
import { Worker } from 'node:worker_threads';
import { z } from 'zod';

import { LlavaMedError, llavaError, type ErrorCode } from '../../errors.js';
import type { DicomJob } from './decode.js';
import { WINDOW_PRESETS, type DicomImageInfo, type DicomInput, type DicomRenderOptions, type DicomRendering, type DicomWindow } from './types.js';
import type { WorkerReply, WorkerRequest } from './worker.js';

export { hasDicmMagic } from './magic.js';
export { WINDOW_PRESETS } from './types.js';
export type { DicomImageInfo, DicomInput, DicomRenderOptions, DicomRendering, DicomWindow, WindowPreset } from './types.js';

/**
 * The watchdog: 2 minutes plus 20 s per MB of input. A 7 MB JPEG 2000 radiograph (7.5 megapixels) takes
 * ~12 s on a loaded 2-core machine, so a legitimate file stays far inside it.
 */
let timeoutOverrideMs: number | undefined;
const jobTimeoutMs = (bytes: number): number => timeoutOverrideMs ?? 120_000 + Math.ceil(bytes / 1e6) * 20_000;

/** @internal For tests: a fixed watchdog limit (undefined restores the default). */
export function setDicomJobTimeoutForTests(ms: number | undefined): void {
  timeoutOverrideMs = ms;
}

/** @internal For tests: a job that never finishes, so the watchdog must end it. */
export function hangDicomWorkerForTests(): Promise<unknown> {
  return call('hang', new Uint8Array(0), { maxPixels: 1 });
}

const windowSchema = z.union([
  z.enum(Object.keys(WINDOW_PRESETS) as [keyof typeof WINDOW_PRESETS, ...(keyof typeof WINDOW_PRESETS)[]]),
  z.object({ center: z.number().finite(), width: z.number().finite().min(1) }).strict(),
]);

const optionsSchema = z
  .object({
    window: windowSchema.optional(),
    frame: z.number().int().min(0).optional(),
    implicit: z.boolean().optional(),
  })
  .strict();

/** Validates the DICOM options (window as preset name or { center, width >= 1 }, frame >= 0). */
export function parseDicomOptions(o: unknown): { window?: DicomWindow; frame?: number; implicit?: boolean } {
  const r = optionsSchema.safeParse(o ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const where = issue.path.length ? issue.path.join('.') : 'options';
    throw llavaError(
      'ERR_INVALID_ARGUMENT',
      `Invalid DICOM option ${where}: ${issue.message}. Use { window?: { center, width >= 1 } | ${Object.keys(WINDOW_PRESETS).map((k) => `'${k}'`).join(' | ')}, frame?: integer >= 0, implicit?: boolean }.`,
    );
  }
  const { window, ...rest } = r.data;
  return { ...rest, window: typeof window === 'string' ? { ...WINDOW_PRESETS[window] } : window };
}

/** `{ dicom: ... }` as an image input. */
export function isDicomInput(x: unknown): x is DicomInput {
  return typeof x === 'object' && x !== null && !ArrayBuffer.isView(x) && 'dicom' in x;
}

/** Parses "C,W" (e.g. "40,400" or "-600,1500") or a preset name, for the CLI. */
export function parseWindowFlag(v: string): DicomWindow {
  const preset = WINDOW_PRESETS[v.trim().toLowerCase() as keyof typeof WINDOW_PRESETS];
  if (preset) return { ...preset };
  const m = /^\s*(-?[\d.]+(?:e[-+]?\d+)?)\s*,\s*([\d.]+(?:e[-+]?\d+)?)\s*$/i.exec(v);
  const center = m ? Number(m[1]) : NaN;
  const width = m ? Number(m[2]) : NaN;
  if (!Number.isFinite(center) || !Number.isFinite(width) || width < 1) {
    throw llavaError('ERR_INVALID_ARGUMENT', `window must be CENTER,WIDTH with WIDTH >= 1 (e.g. 40,400) or one of ${Object.keys(WINDOW_PRESETS).join(', ')}; got "${v}".`);
  }
  return { center, width };
}

// ---- the worker ---------------------------------------------------------------------------------------

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

let worker: Worker | undefined;
let nextId = 1;
const pending = new Map<number, Pending>();

function failAll(w: Worker, e: unknown): void {
  if (worker !== w) return;
  worker = undefined;
  for (const p of pending.values()) {
    clearTimeout(p.timer);
    p.reject(e);
  }
  pending.clear();
}

function getWorker(): Worker {
  if (worker) return worker;
  // Compiled: dist/image/dicom/worker.js; under a TypeScript loader (tests): the .ts file.
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const w = new Worker(new URL(`./worker${ext}`, import.meta.url));
  w.unref();
  w.on('message', (m: WorkerReply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    clearTimeout(p.timer);
    if (pending.size === 0) w.unref();
    if (m.ok) p.resolve(m.result);
    else p.reject(new LlavaMedError(m.error.code as ErrorCode, m.error.message));
  });
  w.on('error', (e) => failAll(w, llavaError('ERR_IMAGE_DECODE', `The DICOM decoder failed: ${e.message}`, e)));
  w.on('exit', () => failAll(w, llavaError('ERR_IMAGE_DECODE', 'The DICOM decoder exited unexpectedly.')));
  worker = w;
  return w;
}

function call<T>(op: WorkerRequest['op'], bytes: Uint8Array, job: DicomJob): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const id = nextId++;
    const w = getWorker();
    const limit = jobTimeoutMs(bytes.length);
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(llavaError('ERR_IMAGE_DECODE', `Decoding the DICOM file did not finish within ${limit / 1000} s; its compressed data is likely malformed.`));
      // a decoder stuck in a loop cannot be interrupted otherwise; the jobs still queued fail with it
      if (worker === w) {
        failAll(w, llavaError('ERR_IMAGE_DECODE', 'The DICOM decoder was restarted after another file timed out; try again.'));
        void w.terminate();
      }
    }, limit);
    timer.unref();
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
    w.ref();
    w.postMessage({ id, op, bytes, job } satisfies WorkerRequest);
  });
}

/**
 * Renders a DICOM file's bytes (one frame) to 8-bit grey or RGB. The bytes are copied to the worker, so the
 * caller may reuse its buffer. `maxPixels` (default 100 megapixels) bounds Rows x Columns.
 */
export async function renderDicom(bytes: Uint8Array, opts: DicomRenderOptions & { maxPixels?: number } = {}): Promise<DicomRendering> {
  const { maxPixels = 100_000_000, ...rest } = opts;
  if (!(bytes instanceof Uint8Array)) throw llavaError('ERR_INVALID_ARGUMENT', 'renderDicom expects the DICOM file as a Buffer or Uint8Array.');
  if (typeof maxPixels !== 'number' || !(maxPixels >= 1)) throw llavaError('ERR_INVALID_ARGUMENT', `maxPixels must be a positive number or Infinity, got ${String(maxPixels)}.`);
  const o = parseDicomOptions(rest);
  const r = await call<DicomRendering>('render', bytes, { ...o, maxPixels });
  return { ...r, samples: Buffer.from(r.samples.buffer, r.samples.byteOffset, r.samples.byteLength) };
}

/** The rendering facts of a DICOM file (no identifying tags): transfer syntax, geometry, bits, windows. */
export async function describeDicom(bytes: Uint8Array, opts: { implicit?: boolean } = {}): Promise<DicomImageInfo> {
  if (!(bytes instanceof Uint8Array)) throw llavaError('ERR_INVALID_ARGUMENT', 'describeDicom expects the DICOM file as a Buffer or Uint8Array.');
  const o = parseDicomOptions(opts);
  return call<DicomImageInfo>('describe', bytes, { implicit: o.implicit, maxPixels: Infinity });
}

/** Stops the worker now (tests; a process exits without it as it is unref'd). */
export async function stopDicomWorker(): Promise<void> {
  const w = worker;
  if (!w) return;
  failAll(w, llavaError('ERR_ABORTED', 'The DICOM decoder was stopped.'));
  await w.terminate();
}

