/** Worker thread of offthread.ts: decode + preprocess, reply with the RGB bytes (transferred). */
import { parentPort } from 'node:worker_threads';
import { loadImage } from './load.js';
import { preprocess } from './preprocess.js';
import type { PreprocessJob } from './offthread.js';

parentPort!.on('message', async ({ id, job }: { id: number; job: PreprocessJob }) => {
  try {
    const rgb = await loadImage(job.input, { maxPixels: job.maxPixels });
    const out = preprocess(rgb, job.preprocess);
    // Copy into a standalone ArrayBuffer so it can be transferred (sharp's buffers may be pooled).
    const data = new Uint8Array(out.data.length);
    data.set(out.data);
    parentPort!.postMessage({ id, image: { width: out.width, height: out.height, sourceMode: out.sourceMode, data } }, [data.buffer]);
  } catch (e) {
    const err = e as { code?: string; message?: string };
    parentPort!.postMessage({ id, error: { code: err.code ?? 'ERR_IMAGE_DECODE', message: err.message ?? String(e) } });
  }
});
