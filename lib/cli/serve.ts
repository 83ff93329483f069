/** `llava-med serve`: the OpenAI-compatible server (lib/serve) on a model loaded from flags. */
import type { Command } from 'commander';
import { basename } from 'node:path';
import type { LlavaMed } from '../llava-med.js';
import { interruptSignal } from './output.js';

interface Helpers {
  loadFromFlags: (f: never, signal?: AbortSignal) => Promise<LlavaMed>;
  modelOptions: (c: Command) => Command;
  num: (name: string, int?: boolean, min?: number) => (v: string) => number;
}

interface ServeFlags {
  model: string;
  host: string;
  port: number;
  apiKey?: string;
  queue: number;
  parallel: number;
  imageCache: number;
  maxTokens?: number;
  maxImageBytes?: number;
  bodyLimit?: number;
  timeout?: number;
  shutdownTimeout: number;
  name?: string;
}

export function registerServeCommand(program: Command, h: Helpers): void {
  h.modelOptions(program.command('serve'))
    .description('serve an OpenAI-compatible API: POST /v1/chat/completions (one image as a data: URL), POST /v1/score, GET /v1/models, GET /health')
    .option('--host <addr>', 'address to listen on (default: this machine only)', '127.0.0.1')
    .option('--port <n>', 'port (0: any free port)', h.num('port', true, 0), 8080)
    .option('--api-key <key>', 'require "Authorization: Bearer <key>" (default: $LLAVA_MED_API_KEY; prefer the variable: arguments show in ps)')
    .option('--parallel <n>', 'requests answered at once (parallel sequences, continuous batching; each gets the context size)', h.num('parallel', true, 1), 1)
    .option('--queue <n>', 'requests that may wait when all parallel sequences are busy; more get 429', h.num('queue', true, 0), 8)
    .option('--image-cache <n>', 'encoded images kept by content, so the next turn about an image skips the encoder and reuses the KV cache (0: off)', h.num('image-cache', true, 0), 16)
    .option('--max-tokens <n>', "highest max_tokens a request may ask for, and the default (default: the variant's 1024)", h.num('max-tokens', true, 1))
    .option('--max-image-bytes <n>', 'largest decoded image in bytes (default 10 MiB)', h.num('max-image-bytes', true, 1))
    .option('--body-limit <n>', 'largest request body in bytes (default 20 MiB)', h.num('body-limit', true, 1024))
    .option('--timeout <s>', 'time limit of one request in seconds (default 300)', h.num('timeout', false, 0.001))
    .option('--shutdown-timeout <s>', 'on SIGINT/SIGTERM, how long running requests may finish before they are cancelled (a second signal cancels at once)', h.num('shutdown-timeout', false, 0), 10)
    .option('--name <id>', 'the model id /v1/models reports (default: the -m value without folder and .gguf)')
    .action(async (o: ServeFlags) => {
      const { createServer } = await import('../serve/index.js');
      const stop = interruptSignal();
      const med = await h.loadFromFlags({ ...o, sequences: o.parallel, imageCache: o.imageCache } as never, stop);
      try {
        const apiKey = o.apiKey ?? (process.env.LLAVA_MED_API_KEY || undefined);
        const server = createServer(med, {
          modelName: o.name ?? basename(o.model).replace(/\.gguf$/i, ''),
          apiKey,
          queue: o.queue,
          maxTokens: o.maxTokens,
          maxImageBytes: o.maxImageBytes,
          bodyLimit: o.bodyLimit,
          requestTimeoutMs: o.timeout === undefined ? undefined : Math.ceil(o.timeout * 1000),
          accessLog: (e) => process.stderr.write(`${JSON.stringify(e)}\n`),
        });
        const url = await server.listen({ host: o.host, port: o.port });
        process.stderr.write(`llava-med serve: listening on ${url}${apiKey ? ' (API key required)' : ''}; Ctrl-C stops\n`);
        if (!stop.aborted) await new Promise((r) => stop.addEventListener('abort', r, { once: true }));
        process.stderr.write(`llava-med serve: shutting down (${server.active} request(s) running or queued get up to ${o.shutdownTimeout} s; a second signal cancels them)\n`);
        const now = () => {
          process.stderr.write('llava-med serve: cancelling the running requests\n');
          void server.close({ timeoutMs: 0 });
        };
        process.once('SIGINT', now);
        process.once('SIGTERM', now);
        try {
          await server.close({ timeoutMs: Math.ceil(o.shutdownTimeout * 1000) });
        } finally {
          process.off('SIGINT', now);
          process.off('SIGTERM', now);
        }
      } finally {
        await med.dispose();
      }
    });
}
