/**
 * Decoding is asynchronous in sharp, but the Pillow-exact resample (pillow-bicubic.ts) and the
 * pixel conversions are plain JavaScript: for a 12-megapixel photo they take ~0.3-0.7 s, which
 * must not stall the event loop. loadAndPreprocess runs both in one worker thread, started on
 * first use and unref'd so it never keeps the process alive; errors come back with their code.
 */
import { Worker } from 'node:worker_threads';
import { LlavaMedError, llavaError, type ErrorCode } from '../errors.js';
import type { ImageInput, PreprocessOptions, RgbImage } from './types.js';

export interface PreprocessJob {
  input: ImageInput;
  maxPixels?: number;
  preprocess: PreprocessOptions;
}

type Reply = { id: number; image?: RgbImage; error?: { code: string; message: string } };

let worker: Worker | undefined;
let nextId = 1;
const pending = new Map<number, { resolve: (v: RgbImage) => void; reject: (e: unknown) => void }>();

function failAll(e: unknown): void {
  for (const p of pending.values()) p.reject(e);
  pending.clear();
  worker = undefined;
}

function getWorker(): Worker {
  if (worker) return worker;
  // Compiled: dist/image/preprocess-worker.js; under a TypeScript loader (tests): the .ts file.
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const w = new Worker(new URL(`./preprocess-worker${ext}`, import.meta.url));
  w.unref();
  w.on('message', (m: Reply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (pending.size === 0) w.unref();
    if (m.error) p.reject(new LlavaMedError(m.error.code as ErrorCode, m.error.message));
    else {
      const img = m.image!;
      p.resolve({ ...img, data: Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength) });
    }
  });
  w.on('error', (e) => failAll(llavaError('ERR_IMAGE_DECODE', `the image worker failed: ${e.message}`, e)));
  w.on('exit', () => failAll(llavaError('ERR_IMAGE_DECODE', 'the image worker exited')));
  worker = w;
  return w;
}

/** loadImage + preprocess, off the JS thread. */
export function loadAndPreprocess(job: PreprocessJob): Promise<RgbImage> {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    const w = getWorker();
    w.ref();
    w.postMessage({ id, job });
  });
}
