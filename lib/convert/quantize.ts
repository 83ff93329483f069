/**
 * Quantizes a GGUF with llama.cpp's llama_model_quantize, in a child Node process: the C call
 * has no progress or cancel hook, so the child forwards llama.cpp's per-tensor log lines
 * ("[  12/ 291] blk.0.attn_q.weight ...") as progress and abort kills it. The output is
 * written to a temporary name and renamed only when complete. The child dies with its parent: it
 * watches its IPC channel, and when the parent goes away (even by SIGKILL) it removes the temporary
 * file and kills itself (Node has no PR_SET_PDEATHSIG; the channel closing works on every platform).
 */
import { fork } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, llavaError, throwIfAborted, type ErrorCode } from '../errors.js';

const isErrorCode = (c: string): c is ErrorCode => (ErrorCodes as readonly string[]).includes(c);
import { readGgufHeader, GgufValueType } from '../formats/gguf.js';
import { sweepStaleTemps, tempPathFor } from '../formats/temp-files.js';

/** Quantization types {@link quantize} offers, with llama.cpp's file-type number (`llama_ftype`). */
export const QUANT_TYPES = {
  /** Half precision (no quantization). */
  F16: 1,
  /** 8-bit, ~8.5 bits/weight. */
  Q8_0: 7,
  /** 4-bit k-quant mix, ~4.8 bits/weight (the usual choice). */
  Q4_K_M: 15,
  /** 5-bit k-quant mix, ~5.7 bits/weight. */
  Q5_K_M: 17,
  /** 4-bit, blocks of 32, ~4.5 bits/weight; ggml repacks it at load for AVX2 / ARM dot-product kernels. */
  Q4_0: 2,
  /** 4-bit non-linear, blocks of 32, ~4.5 bits/weight; repacked at load like Q4_0. */
  IQ4_NL: 25,
} as const;
/** A {@link QUANT_TYPES} name. */
export type QuantType = keyof typeof QUANT_TYPES;

/** Options of {@link quantize}. */
export interface QuantizeOptions {
  /** The GGUF to quantize (language model or projector). */
  input: string;
  /** Where to write the result; must differ from `input`. Its folder is created if missing. */
  output: string;
  /** Target type. */
  type: QuantType;
  /** Threads for llama.cpp's quantizer. Default 0: llama.cpp picks (the hardware concurrency). */
  threads?: number;
  /** Called per tensor: its name, how many are done, and the total. */
  onProgress?: (p: { tensor: string; done: number; total: number }) => void;
  /** Aborts: the quantizer process is killed, its temporary file removed, and the call rejects with `ERR_ABORTED`. */
  signal?: AbortSignal;
}

/** What the child receives (argv[2], JSON). */
export interface QuantizeJob {
  input: string;
  output: string;
  ftype: number;
  threads: number;
  keepF16: string[];
}

/**
 * Quantizes a GGUF with llama.cpp's quantizer in a child process. The output appears only when complete
 * and readable; a projector's `mm.*` tensors stay F16 (the v0 projector's exact identity depends on it).
 * Resolves with the output path, its size in bytes and the tensor-name patterns kept in F16.
 *
 * @throws LlavaMedError `ERR_INVALID_ARGUMENT` (unknown type, output = input), `ERR_FILE_NOT_FOUND`,
 *   `ERR_NOT_GGUF` / `ERR_GGUF_CORRUPT` (input not a readable GGUF), `ERR_QUANTIZE` (llama.cpp failed), `ERR_ABORTED`.
 */
export async function quantize(opts: QuantizeOptions): Promise<{
  /** The output path. */
  output: string;
  /** Its size in bytes. */
  bytes: number;
  /** Tensor-name patterns (regular expressions) kept in F16. */
  keptF16: string[];
}> {
  throwIfAborted(opts.signal, 'quantize');
  if (!(opts.type in QUANT_TYPES)) {
    throw llavaError('ERR_INVALID_ARGUMENT', `Unknown quantization type ${String(opts.type)}; use one of ${Object.keys(QUANT_TYPES).join(', ')}.`);
  }
  const header = await readGgufHeader(opts.input).catch((e) => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw llavaError('ERR_FILE_NOT_FOUND', `${opts.input} does not exist.`);
    throw e;
  });
  const arch = header.kv.get('general.architecture');
  const isClip = arch?.type === GgufValueType.STRING && arch.value === 'clip';
  // The v0 projector is stored as mm.0 = [I; -I], mm.2 = [W | -W] and relies on
  // GELU(t) - GELU(-t) = t: quantizing those would break the identity, so they stay F16.
  const keepF16 = isClip ? ['^mm\\.'] : [];
  if (path.resolve(opts.input) === path.resolve(opts.output)) throw llavaError('ERR_INVALID_ARGUMENT', 'The output must be a different file than the input.');
  await fs.mkdir(path.dirname(path.resolve(opts.output)), { recursive: true });
  // Temporaries of killed runs into this folder go first; ours carries this pid (temp-files.ts).
  await sweepStaleTemps(path.dirname(path.resolve(opts.output)));
  const tmp = tempPathFor(opts.output);
  const job: QuantizeJob = { input: opts.input, output: tmp, ftype: QUANT_TYPES[opts.type], threads: opts.threads ?? 0, keepF16 };
  const childPath = path.join(path.dirname(fileURLToPath(import.meta.url)), 'quantize-child.js');
  const total = header.tensors.length;
  try {
    await new Promise<void>((resolve, reject) => {
      const child = fork(childPath, [JSON.stringify(job)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
      let errText = '';
      let childError: { code: string; message: string } | undefined;
      child.stderr?.on('data', (d: Buffer) => (errText = (errText + d.toString()).slice(-4000)));
      const onAbort = () => child.kill('SIGKILL');
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      child.on('message', (m: { type: string; text?: string; error?: { code: string; message: string } }) => {
        if (m.type === 'log' && m.text) {
          const g = /^\[\s*(\d+)\/\s*(\d+)\]\s+(\S+)/.exec(m.text);
          if (g) opts.onProgress?.({ done: Number(g[1]), total: Number(g[2]) || total, tensor: g[3] });
        } else if (m.type === 'error' && m.error) {
          childError = m.error;
        }
      });
      // 'close', not 'exit': 'exit' can come before the child's last IPC message and stderr bytes have been
      // read, and the error reported would then depend on timing; 'close' waits for the IPC channel and stderr.
      child.on('close', (code, sig) => {
        opts.signal?.removeEventListener('abort', onAbort);
        if (opts.signal?.aborted) reject(llavaError('ERR_ABORTED', 'Quantization was aborted.', opts.signal.reason));
        else if (code === 0) resolve();
        // A typed error of the child (e.g. ERR_NATIVE_LOAD: no addon) keeps its code and message.
        else if (childError && childError.code !== 'ERR_QUANTIZE' && isErrorCode(childError.code)) reject(llavaError(childError.code, childError.message));
        else reject(llavaError('ERR_QUANTIZE', `Quantizing ${opts.input} failed (${sig ?? `exit ${code}`}): ${(childError?.message ?? errText).trim() || 'no details'}`));
      });
      child.on('error', (e) => reject(llavaError('ERR_QUANTIZE', `Could not start the quantizer: ${e.message}`, e)));
    });
    await readGgufHeader(tmp); // never publish a file llama.cpp could not read back
    await fs.rename(tmp, opts.output);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  const st = await fs.stat(opts.output);
  return { output: opts.output, bytes: st.size, keptF16: keepF16 };
}
