// llama-server (bench/build-peers.mjs, the same patched llama.cpp tree) as the peer of the
// many-questions workload: what a user who knows llama.cpp runs for batch evaluation — one server
// process, `-np` parallel slots (separate KV per slot, 2048 cells each, as llava-med's sequences),
// its prompt cache on (`cache_prompt`, its default), the questions sent `-np` at a time to
// /completion with the image as multimodal data. Timed from spawn (load included) to the last
// answer; peak RSS is the server's VmHWM, read before it is stopped.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';

const freePort = () => new Promise((resolve, reject) => {
  const s = net.createServer();
  s.unref();
  s.on('error', reject);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

// llama-server parses every final result into a chat message (task_result_state::update_chat_msg,
// tools/server/server-queue.cpp), /completion's too, although its `content` is the raw text and does
// not use that message. Without a chat template that defines a parser, the parse is the pure-content
// PEG grammar (content(rest) + end, common/chat.cpp common_chat_peg_parse), whose `until` parser fails
// on invalid UTF-8 (common/peg-parser.cpp); the request then fails with HTTP 500 "The model produced
// output that does not match the expected Content-only format" (its log: "unparsed Content-only
// output: ..."). The bench model's random weights now and then pick one of the vocabulary's 256
// byte-fallback pieces, and a lone <0x80>..<0xFF> is not UTF-8: measured on the bench's first 12
// questions (greedy, 32 tokens, return_tokens), 6 answers held a lone <0xD0> or <0x8B> and exactly
// those 6 failed without this field. Upstream llama.cpp fixed the parser after our pin (issue #27543,
// PR #29161: an invalid run becomes U+FFFD in the AST).
// The request field `chat_parser` (llama-server's own, the parser the chat endpoints pass along) set
// to an arena whose root is epsilon accepts any output: the parse succeeds and yields an empty chat
// message, which /completion does not return; generation, sampling and the returned `content` (invalid
// bytes replaced by U+FFFD in the JSON, as before) are unchanged (the same 12 requests with and
// without it, prompt cache off: identical tokens and content wherever the plain one succeeded).
// Shared by bench/serve.mjs.
export const ANY_OUTPUT_CHAT_PARSER = JSON.stringify({ parsers: [{ type: 'epsilon' }], rules: {}, root: 0 });

/** The /completion request body both bench peers send: greedy, prompt cache on, the image as multimodal data. */
export const completionBody = ({ prompt, image, maxTokens }) => ({
  prompt: { prompt_string: prompt, multimodal_data: [image] },
  n_predict: maxTokens, temperature: 0, top_k: 1, cache_prompt: true, seed: 0,
  chat_parser: ANY_OUTPUT_CHAT_PARSER,
});

const vmhwmMb = (pid) => {
  try { return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024; } catch { return NaN; }
};

/**
 * Runs `items` ([{ image, prompt }]; prompt holds one `<__media__>` marker) through llama-server.
 * Resolves { wallMs, readyMs, questionsMs, peakRssMb, questions, promptTokens, promptMs, generatedTokens, evalMs, cachedTokens, args }.
 */
export async function runServerWorkload({ bin, model, mmproj, threads, slots, ctxPerSlot = 2048, maxTokens, items, env, log = () => {}, timeoutMs = 60 * 60_000 }) {
  const port = await freePort();
  const args = ['-m', model, '--mmproj', mmproj, '-np', String(slots), '-c', String(ctxPerSlot * slots), '--no-kv-unified',
    '-t', String(threads), '-tb', String(threads), '-ngl', '0', '--host', '127.0.0.1', '--port', String(port), '--no-webui', '-lv', process.env.SERVER_LV ?? '1'];
  const images = new Map();
  for (const it of items) if (!images.has(it.image)) images.set(it.image, (await fs.readFile(it.image)).toString('base64'));
  const t0 = performance.now();
  // its media marker is random per process unless pinned: the prompts carry mtmd's default
  const child = spawn(bin, args, { env: { ...env, LLAMA_MEDIA_MARKER: '<__media__>' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); if (process.env.SERVER_LOG) process.stderr.write(d); });
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });
  const base = `http://127.0.0.1:${port}`;
  const deadline = t0 + timeoutMs;
  try {
    // ready = /health answers 200 (model and projector loaded)
    for (;;) {
      if (exited) throw new Error(`llama-server exited (${exited.code ?? exited.signal}) before it was ready:\n${stderr}`);
      if (performance.now() > deadline) throw new Error('llama-server did not become ready');
      const ok = await fetch(`${base}/health`).then((r) => r.status === 200, () => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const readyMs = performance.now() - t0;
    const out = new Array(items.length);
    let next = 0;
    const tq = performance.now();
    const worker = async () => {
      while (next < items.length) {
        const i = next++;
        const body = completionBody({ prompt: items[i].prompt, image: images.get(items[i].image), maxTokens });
        const r = await fetch(`${base}/completion`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        if (!r.ok) throw new Error(`llama-server /completion: HTTP ${r.status}: ${(await r.text()).slice(0, 500)}`);
        out[i] = await r.json();
      }
    };
    await Promise.all(Array.from({ length: slots }, worker));
    const wallMs = performance.now() - t0;
    const questionsMs = performance.now() - tq;
    const peakRssMb = vmhwmMb(child.pid);
    const sum = (f) => out.reduce((a, x) => a + f(x), 0);
    log(`  llama-server: ${(wallMs / 1000).toFixed(1)} s wall (ready ${(readyMs / 1000).toFixed(1)} s, questions ${(questionsMs / 1000).toFixed(1)} s)`);
    return {
      wallMs, readyMs, questionsMs, peakRssMb, questions: items.length, args: args.filter((a, i) => !['-m', '--mmproj', '--port'].includes(args[i - 1]) && !['-m', '--mmproj', '--port'].includes(a)).join(' '),
      promptTokens: sum((x) => x.timings?.prompt_n ?? 0), promptMs: sum((x) => x.timings?.prompt_ms ?? 0),
      cachedTokens: sum((x) => x.timings?.cache_n ?? x.tokens_cached ?? 0),
      generatedTokens: sum((x) => x.timings?.predicted_n ?? 0), evalMs: sum((x) => x.timings?.predicted_ms ?? 0),
    };
  } finally {
    if (!exited) {
      child.kill('SIGTERM');
      await new Promise((r) => { const t = setTimeout(() => { child.kill('SIGKILL'); r(); }, 10_000); child.once('exit', () => { clearTimeout(t); r(); }); });
    }
  }
}
