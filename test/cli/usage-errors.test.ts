/** CLI sharp edges: secrets in help, broken pipes, usage errors as one line, --quiet, typed JSON. */
import t from 'tap';
import { spawn } from 'node:child_process';
import { CLI, cleanEnv, ensureDist, runCli } from './util.js';
import { REPO, tinyV0 } from '../helpers/tiny-llava.js';

t.before(() => ensureDist());

const SECRET = 'sk-test-0123456789-do-not-print';

t.test('chat-judge never prints an API key from the environment', async (t) => {
  const help = await runCli(['eval', 'chat-judge', '--help'], { env: { OPENAI_API_KEY: SECRET } });
  t.equal(help.code, 0);
  t.notMatch(help.stdout + help.stderr, SECRET, 'not in --help');
  t.match(help.stdout, /OPENAI_API_KEY: \(set\)/, 'help says the variable is set');
  const askHelp = (await runCli(['ask', '--help'])).stdout.replace(/\s+/g, ' '); // help wraps long lines
  t.match(askHelp, /-m, --model <[^>]+> [^()]*(\([^)]*\) )?\(required\) -p, --mmproj/, 'required options are marked');
  t.match(askHelp, /-i, --image <file> [^-]*\(required\)/);
  t.notMatch(askHelp, /--threads <n> [^-]*\(required\)/, 'optional ones are not');
  const bad = await runCli(['eval', 'chat-judge', '--no-such-flag'], { env: { OPENAI_API_KEY: SECRET } });
  t.not(bad.code, 0);
  t.notMatch(bad.stdout + bad.stderr, SECRET, 'not after a usage error');
});

t.test('bad numbers and missing flags are one line and a hint, no stack', async (t) => {
  for (const [args, re] of [
    [['ask', '-m', 'm.gguf', '-p', 'p.gguf', '-i', 'x.png', '--threads', 'abc', 'q'], /--threads must be an integer, got "abc"/],
    [['ask', '-m', 'm.gguf', '-p', 'p.gguf', '-i', 'x.png', '--temperature', '-3', 'q'], /--temperature must be at least 0, got "-3"/],
    [['ask', '-m', 'm.gguf', '-p', 'p.gguf', '-i', 'x.png', '--threads', '0', 'q'], /--threads must be at least 1, got "0"/],
    [['convert', '--vision', 'v', '-o', 'out'], /v0 needs --base/],
  ] as const) {
    const r = await runCli([...args]);
    t.not(r.code, 0, args.join(' '));
    t.match(r.stderr, re, args.join(' '));
    t.match(r.stderr, /add --help for usage/, 'hint');
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
    t.ok(r.stderr.trim().split('\n').length <= 3, `short: ${r.stderr}`);
  }
});

t.test('info piped into a reader that closes early exits quietly', async (t) => {
  const v0 = await tinyV0();
  // `llava-med info m.gguf | head -0`: the pipe closes before the first write.
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const p = spawn('sh', ['-c', `"${process.execPath}" "${CLI}" info "${v0.model}" | head -c 0`], { cwd: REPO, env: cleanEnv() });
    let stderr = '';
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('close', (code) => resolve({ code, stderr }));
  });
  t.equal(r.stderr, '', 'nothing on stderr (no EPIPE stack)');
  t.equal(r.code, 0);
});

t.test('info --json: numeric keys are numbers', async (t) => {
  const v0 = await tinyV0();
  const r = await runCli(['info', v0.model, '--json']);
  const info = JSON.parse(r.stdout) as Record<string, unknown>;
  for (const k of ['bos', 'eos', 'promptBos', 'layers', 'contextLength']) t.equal(typeof info[k], 'number', k);
});

t.test('--quiet silences progress, not errors', async (t) => {
  const v0 = await tinyV0();
  const loud = await runCli(['score', '-m', v0.model, '-p', v0.mmproj, '-i', `${REPO}/assets/sample-xray.png`, '--candidates', 'yes,no', 'Is it?']);
  t.equal(loud.code, 0, loud.stderr);
  t.match(loud.stderr, /loading model/, 'progress without --quiet');
  const quiet = await runCli(['score', '-q', '-m', v0.model, '-p', v0.mmproj, '-i', `${REPO}/assets/sample-xray.png`, '--candidates', 'yes,no', 'Is it?']);
  t.equal(quiet.code, 0, quiet.stderr);
  t.equal(quiet.stderr, '', 'no progress with --quiet');
  t.equal(quiet.stdout, loud.stdout, 'same scores');
  const err = await runCli(['score', '-q', '-m', 'missing.gguf', '-p', v0.mmproj, '-i', 'x.png', '--candidates', 'a', 'q']);
  t.match(err.stderr, /ERR_FILE_NOT_FOUND/, 'errors still print');
});
// That a clean TypeScript build (what prepack runs) leaves the bin executable is checked after the
// real prepack, in test/install/packed-install.test.ts (no second full tsc build here).
