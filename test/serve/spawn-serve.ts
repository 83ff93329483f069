/** `llava-med serve` in a child process, resolved once it says where it listens. */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Test } from 'tap';
import { CLI, cleanEnv, ensureDist } from '../cli/util.js';

export interface ServeChild {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
}

/** Starts the CLI's serve command with `args` (killed at teardown if still running). */
export async function spawnServe(t: Test, args: string[], env: Record<string, string> = {}): Promise<ServeChild> {
  ensureDist();
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const m = /listening on (http:\/\/[^\s;]+)/.exec(stderr);
      if (m) resolve(m[1]!);
    });
    void exited.then((c) => reject(new Error(`serve exited (${c}) before listening:\n${stderr}`)));
  });
  return { child, url, exited, stdout: () => stdout, stderr: () => stderr };
}
