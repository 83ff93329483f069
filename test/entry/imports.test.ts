/**
 * What `import 'llava-med'` (lib/index.ts) loads, in a fresh child process, recorded by a module
 * loader hook: none of the server, queue, converter, evaluation, hub or CLI code, none of their
 * dependencies (fastify, bullmq, ioredis, the DICOM codecs), no sharp (loaded at the first decoded
 * image) and no GGUF writer. Each of them costs start-up time and memory in every process that only
 * asks questions (BENCHMARKS.md, "ready" and peak RSS against llama-mtmd-cli).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../../lib/index.ts', import.meta.url));
// The hook prints every module URL it loads; the child imports the entry through tsx (the sources).
const hook = `export async function load(url, ctx, next) { process.stderr.write('LOADED ' + url + '\\n'); return next(url, ctx); }`;
const register = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));`;

function loadedBy(code: string): string[] {
  const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--import', 'tsx/esm', '--input-type=module', '-e', code], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`child exited ${r.status}: ${r.stderr.slice(-2000)}`);
  return r.stderr.split('\n').filter((l) => l.startsWith('LOADED ')).map((l) => l.slice(7));
}

const FORBIDDEN: [string, RegExp][] = [
  ['the server', /\/lib\/serve\//],
  ['the CLI', /\/lib\/cli\//],
  ['the converter', /\/lib\/convert\//],
  ['the evaluation', /\/lib\/eval\//],
  ['the hub client', /\/lib\/hub\//],
  ['the demo', /\/lib\/demo\//],
  ['the GGUF writer', /\/lib\/formats\/(gguf-write|temp-files)\./],
  ['the DICOM decoder (worker side)', /\/lib\/image\/dicom\/(decode|worker)\./],
  ['sharp', /\/node_modules\/(sharp|@img)\//],
  ['fastify', /\/node_modules\/(fastify|@fastify)\//],
  ['bullmq / ioredis', /\/node_modules\/(bullmq|ioredis)\//],
  ['a DICOM codec', /\/node_modules\/(@cornerstonejs|dicom-parser|dcmjs)\//],
];

t.test("import 'llava-med' loads only what asking a question needs", async (t) => {
  const urls = loadedBy(`const m = await import(${JSON.stringify(entry)}); if (typeof m.LlavaMed?.load !== 'function') process.exit(3);`);
  t.ok(urls.some((u) => u.endsWith('/lib/llava-med.ts')), 'the hook sees the library modules');
  for (const [what, re] of FORBIDDEN) {
    t.same(urls.filter((u) => re.test(u)), [], `no ${what}`);
  }
});
