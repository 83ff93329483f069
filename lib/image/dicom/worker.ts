/**
 * The DICOM worker thread: parses, decompresses (WebAssembly codecs) and renders off the caller's event loop.
 * Errors go back as { code, message }; anything that is not a LlavaMedError is reported as a decode error.
 */
import { parentPort } from 'node:worker_threads';

import { isLlavaMedError } from '../../errors.js';
import { describeDicomBytes, renderDicomBytes, type DicomJob } from './decode.js';

export interface WorkerRequest {
  id: number;
  /** 'hang' never returns: only the watchdog test sends it. */
  op: 'render' | 'describe' | 'hang';
  bytes: Uint8Array;
  job: DicomJob;
}

export type WorkerReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { code: string; message: string } };

parentPort!.on('message', (m: WorkerRequest) => {
  void (async () => {
    try {
      if (m.op === 'hang') for (;;);
      if (m.op === 'describe') {
        parentPort!.postMessage({ id: m.id, ok: true, result: describeDicomBytes(m.bytes, m.job) } satisfies WorkerReply);
        return;
      }
      const r = await renderDicomBytes(m.bytes, m.job);
      parentPort!.postMessage({ id: m.id, ok: true, result: r } satisfies WorkerReply, [r.samples.buffer as ArrayBuffer]);
    } catch (e) {
      const error = isLlavaMedError(e)
        ? { code: e.code, message: e.message }
        : { code: 'ERR_IMAGE_DECODE', message: `Invalid DICOM file: it cannot be decoded (${e instanceof Error ? e.message : String(e)}).` };
      parentPort!.postMessage({ id: m.id, ok: false, error } satisfies WorkerReply);
    }
  })();
});
