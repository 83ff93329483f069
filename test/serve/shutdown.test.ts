/**
 * Graceful shutdown. In a child process (`llava-med serve`): SIGTERM stops accepting while the
 * running stream finishes its whole answer, then the process frees the model and exits 0; a second
 * signal cancels what is still running. In process: close({ timeoutMs: 0 }) cancels at once, and a
 * server created from load options loads its model at listen() and frees it at close().
 */
import t, { type Test } from 'tap';
import http from 'node:http';
import type { Socket } from 'node:net';
import OpenAI from 'openai';
import { spawnServe } from './spawn-serve.js';
import { createServer } from '../../lib/serve/index.js';
import { engineOf } from '../../lib/llava-med.js';
import { loadTiny, noisePng, tinyV0 } from '../llava-med/util.js';

const tiny = await tinyV0();
const png = await noisePng(32, 32, 401);
const Q = 'What is this?';
const userMsg = { role: 'user' as const, content: [{ type: 'image_url' as const, image_url: { url: `data:image/png;base64,${png.toString('base64')}` } }, { type: 'text' as const, text: Q }] };

async function startCli(t: Test, extra: string[]) {
  const { child, url, exited, stderr } = await spawnServe(t, ['-m', tiny.model, '-p', tiny.mmproj, '-t', '1', '--port', '0', '--parallel', '2', ...extra]);
  return { child, url, exited, stderr, client: new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 }) };
}

/** Streams until the first text, calls `then`, and reads the rest: text, finish reason, and how it ended. */
async function streamAround(client: OpenAI, maxTokens: number, then: () => Promise<void> | void) {
  const stream = await client.chat.completions.create({ model: 'x', messages: [userMsg], temperature: 0, max_tokens: maxTokens, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish: string | null = null;
  let tokens: number | undefined;
  let error: unknown;
  let triggered = false;
  try {
    for await (const c of stream) {
      const piece = c.choices[0]?.delta.content ?? '';
      text += piece;
      finish = c.choices[0]?.finish_reason ?? finish;
      tokens = c.usage?.completion_tokens ?? tokens;
      if (piece && !triggered) {
        triggered = true;
        await then();
      }
    }
  } catch (e) {
    error = e;
  }
  return { text, finish, tokens, error };
}

t.test('SIGTERM: new requests refused, the running stream finishes its answer, exit 0', async (t) => {
  const { med } = await loadTiny('v0', { contextSize: 2048 });
  const ref = await med.ask(png, Q, { temperature: 0, maxTokens: 1500 });
  await med.dispose();
  t.ok(ref.tokens.length > 1000, `a long answer (${ref.tokens.length} tokens), still being generated at the signal`);
  // -c 4096 over 2 sequences: 2048 positions each, as the reference's.
  const s = await startCli(t, ['--shutdown-timeout', '120', '--name', 'x', '-c', '4096', '--max-tokens', '1500']);
  let refused = '';
  const r = await streamAround(s.client, 1500, async () => {
    s.child.kill('SIGTERM');
    while (!s.stderr().includes('shutting down')) await new Promise((res) => setTimeout(res, 5));
    refused = await fetch(`${s.url}/v1/models`, { signal: AbortSignal.timeout(20_000) }).then(
      (res) => `status ${res.status}`,
      (e: { cause?: { code?: string } }) => `error ${e.cause?.code ?? String(e)}`,
    );
  });
  t.match(refused, /^(error ECONNREFUSED|status 503)$/, `a request after the signal is refused (${refused})`);
  t.equal(r.error, undefined, 'the running stream was not cut');
  t.equal(r.text, ref.text, 'it delivered the whole answer');
  t.equal(r.tokens, ref.tokens.length, 'every token');
  t.equal(await s.exited, 0, 'then the process exits 0');
  t.match(s.stderr(), /shutting down \(1 request/);
});

t.test('a second signal cancels the running request at once', async (t) => {
  const s = await startCli(t, ['--shutdown-timeout', '120', '--name', 'x', '-c', '8192', '--max-tokens', '3000']);
  const r = await streamAround(s.client, 3000, async () => {
    s.child.kill('SIGTERM');
    while (!s.stderr().includes('shutting down')) await new Promise((res) => setTimeout(res, 5));
    s.child.kill('SIGTERM');
  });
  t.ok(r.error !== undefined || r.finish === null, 'the stream ended without finishing its answer');
  t.ok((r.tokens ?? 0) < 3000, 'before its 3000 tokens');
  t.equal(await s.exited, 0, 'exit 0');
  t.match(s.stderr(), /cancelling the running requests/);
});

t.test('close({ timeoutMs: 0 }) cancels at once; a server over load options owns its model', async (t) => {
  const server = createServer({ load: { model: tiny.model, mmproj: tiny.mmproj, threads: 1, contextSize: 4096, sequences: 2 }, modelName: 'x', maxTokens: 1500 });
  t.teardown(() => server.close({ timeoutMs: 0 }));
  t.equal(server.med, undefined, 'nothing loaded before listen()');
  const url = await server.listen({ port: 0 });
  const med = server.med!;
  t.equal(med.sequences, 2, 'loaded with the load options');
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0 });
  let closed: Promise<void> | undefined;
  const r = await streamAround(client, 1500, () => {
    closed = server.close({ timeoutMs: 0 });
  });
  t.ok(r.error !== undefined || r.finish === null, 'the running stream was cancelled');
  await closed;
  t.equal(med.disposed, true, 'the model the server loaded is freed');
  t.equal(engineOf(med).model.disposed, true, 'its weights too');
  t.throws(() => createServer({ load: null } as never), { code: 'ERR_INVALID_ARGUMENT' }, 'load must be options');
  t.throws(() => createServer({ model: tiny.model } as never), { code: 'ERR_INVALID_ARGUMENT' }, 'neither an instance nor { load }');
});

t.test('close() ends idle keep-alive connections: the one idle at the call and the one whose request finishes after it', async (t) => {
  const { med } = await loadTiny('v0', { contextSize: 2048 });
  const server = createServer(med, { modelName: 'x' });
  t.teardown(async () => {
    await server.close({ timeoutMs: 0 });
    await med.dispose();
  });
  // No keep-alive timeout: an idle connection stays open until something closes it.
  server.app.server.keepAliveTimeout = 0;
  const url = new URL(await server.listen({ port: 0 }));
  // Two clients that keep their connections open (keep-alive) and never close them themselves.
  const agents = [new http.Agent({ keepAlive: true, maxSockets: 1 }), new http.Agent({ keepAlive: true, maxSockets: 1 })];
  t.teardown(() => agents.forEach((a) => a.destroy()));
  const serverClosed: Promise<void>[] = [];
  const request = (agent: http.Agent, method: string, path: string, body?: object, onData?: (d: string) => void) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request({ host: url.hostname, port: url.port, method, path, agent, headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          text += d;
          onData?.(d);
        });
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('socket', (s: Socket) => serverClosed.push(new Promise((r) => s.once('close', () => r()))));
      req.on('error', reject);
      req.end(body ? JSON.stringify(body) : undefined);
    });
  // Connection 1: one request, then idle.
  t.equal((await request(agents[0]!, 'GET', '/health')).status, 200, 'connection 1 answered and stays open, idle');
  // Connection 2: a stream that is still running when close() is called.
  let closing: Promise<void> | undefined;
  const streamed = await request(agents[1]!, 'POST', '/v1/chat/completions', { messages: [userMsg], temperature: 0, max_tokens: 200, stream: true }, () => {
    closing ??= server.close({ timeoutMs: 60_000 });
  });
  t.equal(streamed.status, 200, 'the running stream finished after close() was called');
  t.match(streamed.text, /data: \[DONE\]\n\n$/, 'its whole answer');
  t.equal(serverClosed.length, 2, 'two connections');
  // A guard against a hang, not a speed check: left open, the connections would keep close() waiting forever.
  const ended = await Promise.race([
    Promise.all([closing, ...serverClosed]).then(() => true),
    new Promise<false>((r) => setTimeout(r, 60_000, false).unref()),
  ]);
  t.ok(ended, 'close() resolved and the server closed both kept-alive connections (the clients never closed them)');
});
