/** `llava-med serve` as the README starts it answers a curl-style request, and stops on SIGTERM. */
import t from 'tap';
import { spawnServe } from './spawn-serve.js';
import { noisePng, tinyV0 } from '../helpers/tiny-llava.js';

t.test('llava-med serve answers a chat completion with a data-URL image', async (t) => {
  const tiny = await tinyV0();
  const { child, url, exited, stdout, stderr } = await spawnServe(t, ['-m', tiny.model, '-p', tiny.mmproj, '-t', '1', '--port', '0', '--name', 'tiny'], { LLAVA_MED_API_KEY: 'secret-key-1' });
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, 'binds 127.0.0.1 by default');
  const png = await noisePng(32, 32, 3);
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer secret-key-1' },
    body: JSON.stringify({
      model: 'tiny',
      max_tokens: 8,
      temperature: 0,
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } }, { type: 'text', text: 'What is this?' }] }],
    }),
  });
  t.equal(res.status, 200);
  const body = (await res.json()) as { choices: { message: { role: string; content: string } }[]; usage: { completion_tokens: number } };
  t.equal(body.choices[0]!.message.role, 'assistant');
  t.type(body.choices[0]!.message.content, 'string');
  t.ok(body.usage.completion_tokens >= 1 && body.usage.completion_tokens <= 8, 'usage within max_tokens');
  const unauth = await fetch(`${url}/v1/models`);
  t.equal(unauth.status, 401, 'the key from LLAVA_MED_API_KEY is required');
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'exits 0 on SIGTERM');
  t.match(stderr(), /shutting down/);
  t.match(stderr(), /"path":"\/v1\/chat\/completions","status":200/, 'access log line on stderr');
  t.notMatch(stderr(), /What is this\?|secret-key-1/, 'no prompt text or key in the log');
  t.equal(stdout(), '', 'nothing on stdout');
});
