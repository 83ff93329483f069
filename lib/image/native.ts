/**
 * The pixel work of lib/image (Pillow's convert('RGB'), expand2square, CLIPImageProcessor's resize and
 * crop with Pillow's exact bicubic) runs in the addon, native/image.cpp, as one AsyncWorker on the libuv
 * thread pool. It used to be TypeScript in a worker thread, which kept a second V8 isolate (with its own
 * sharp) alive and spent background V8 time competing with the image encoder for a small machine's cores.
 * Measured on 2 cores, 12 MP JPEG: 400-620 ms -> ~160 ms per image (decode included), RSS after five
 * such images 183 -> 95 MiB, and the longest event-loop stall ~100 ms -> ~30 ms (the copy of the decoded
 * samples below, mostly page faults: the addon copies its input because JS may reuse the buffer).
 */
import { loadAddon } from '../engine/binding.js';
import { fromNative } from '../engine/lifecycle.js';
import type { NativeImageSpec } from '../engine/native-types.js';

/** Converts `samples` and applies the geometry of `spec`; resolves to the RGB bytes (a new Buffer). */
export async function runNative(samples: Uint8Array, spec: NativeImageSpec): Promise<Buffer> {
  try {
    return await loadAddon().preprocessImage(samples, spec);
  } catch (e) {
    throw fromNative(e);
  }
}
