/**
 * `llava-med chat` in a pseudo-terminal (util-linux `script` gives the CLI a real tty, so readline
 * runs in raw mode and Ctrl-C arrives as the user's keystroke). Answers are compared with the
 * library's ChatSession on the same model at temperature 0: the CLI must keep the history between
 * turns, drop it on /reset, switch images on /image, and survive Ctrl-C during an answer.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { LlavaMed } from '../../lib/llava-med.js';
import { REPO, demoV0 } from '../helpers/tiny-llava.js';
import { CLI, cleanEnv, ensureDist } from './util.js';

ensureDist();
const work = mkdtempSync(join(tmpdir(), 'llava-med-chat-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
// The random-weight demo-sized model: its answers run to maxTokens (the trained demo model stops early).
const demo = await demoV0();
const XRAY = join(REPO, 'assets', 'sample-xray.png');
const OTHER = join(REPO, 'test', 'fixtures', 'image', 'inputs', 'gray-301x299.png');
const Q1 = 'What is shown?';
const Q2 = 'Which side is abnormal?';
const Q3 = 'Is this a CT scan?';
const gen = { temperature: 0, maxTokens: 8 };

// Tokens are decoded without special-token text, so a CLI line and the library text compare as is.
const ref = await (async () => {
  const med = await LlavaMed.load({ model: demo.model, mmproj: demo.mmproj, threads: 2 });
  try {
    const chat = med.chat(XRAY);
    const a1 = (await chat.ask(Q1, gen)).text;
    const a2 = (await chat.ask(Q2, gen)).text;
    await chat.dispose();
    const fresh2 = (await med.ask(XRAY, Q2, gen)).text;
    const other3 = (await med.ask(OTHER, Q3, gen)).text;
    return { a1, a2, fresh2, other3 };
  } finally {
    await med.dispose();
  }
})();

/** The CLI under a pty; `screen` is everything it printed, without terminal control sequences. */
function startChat(extra: string[]) {
  const cmd = [process.execPath, CLI, 'chat', '-m', demo.model, '-p', demo.mmproj, '-i', XRAY, '-t', '2', '-q', ...extra]
    .map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let raw = '';
  child.stdout.on('data', (d: Buffer) => (raw += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (raw += d.toString('utf8')));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  // eslint-disable-next-line no-control-regex
  const screen = () => raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
  let seen = 0;
  /** Waits until `re` appears after what earlier waits consumed; returns the text up to its end. */
  const waitFor = async (re: RegExp, ms = 120_000): Promise<string> => {
    const t0 = Date.now();
    for (;;) {
      const s = screen();
      const m = re.exec(s.slice(seen));
      if (m) {
        const upTo = s.slice(seen, seen + m.index + m[0].length);
        seen += m.index + m[0].length;
        return upTo;
      }
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${String(re)}; screen:\n${s}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  /** Sends a line and returns the answer printed before the next prompt. */
  const ask = async (q: string): Promise<string> => {
    child.stdin.write(`${q}\r`);
    await waitFor(new RegExp(`${q.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\n`)); // the echo of the line
    const out = await waitFor(/>>> $/m);
    return out.slice(0, -'>>> '.length).trim();
  };
  return { child, exited, waitFor, ask, screen, send: (s: string) => child.stdin.write(s) };
}

t.test('turns keep the history, /reset drops it, /image switches', async (t) => {
  const c = startChat(['--temperature', '0', '--max-tokens', '8']);
  await c.waitFor(/>>> $/m);
  t.equal(await c.ask(Q1), ref.a1.trim(), 'first turn');
  t.equal(await c.ask(Q2), ref.a2.trim(), 'second turn answers with the first in its history');
  t.not(ref.a2, ref.fresh2, 'the reference shows the history matters for this question');
  c.send('/reset\r');
  await c.waitFor(/conversation reset/);
  t.equal(await c.ask(Q2), ref.fresh2.trim(), 'after /reset the question is answered without the earlier turns');
  c.send(`/image ${OTHER}\r`);
  await c.waitFor(/now talking about/);
  t.equal(await c.ask(Q3), ref.other3.trim(), '/image switches the image');
  c.send('/image /nonexistent/x.png\r');
  await c.waitFor(/now talking about/);
  const err = await c.ask(Q1);
  t.match(err, /ERR_FILE_NOT_FOUND|ERR_IMAGE/, 'a bad image path is an error line, not the end of the session');
  c.send('/exit\r');
  t.equal(await c.exited, 0);
});

t.test('Ctrl-C stops the answer, not the program; twice on an empty prompt leaves', async (t) => {
  const c = startChat(['--temperature', '0', '--max-tokens', '1500', '-c', '2048']);
  await c.waitFor(/>>> $/m);
  c.send(`${Q1}\r`);
  await c.waitFor(/w\d+/); // the answer has started
  c.send('\x03');
  await c.waitFor(/\(stopped; this turn is not kept\)/);
  await c.waitFor(/>>> $/m);
  c.send(`${Q2}\r`);
  await c.waitFor(/w\d+/);
  c.send('\x03');
  await c.waitFor(/\(stopped/);
  await c.waitFor(/>>> $/m);
  c.send('\x03');
  await c.waitFor(/press Ctrl-C again/);
  c.send('\x03');
  t.equal(await c.exited, 0, 'the second Ctrl-C on an empty prompt leaves cleanly');
  t.notMatch(c.screen(), /at .*\.js:\d+/, 'no stack trace');
});
