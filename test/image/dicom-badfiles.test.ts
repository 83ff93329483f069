// The DICOM bad-file corpus (~7,000 files mutated from the fixtures by dicom-sweep.mjs: truncated at every
// element and fragment boundary, lying lengths, lying Rows/Columns/Bits/Samples/Frames, unknown transfer
// syntax, byte flips in compressed streams, junk read as a bare dataset) rendered in a child process through
// the compiled library: the process ends normally, prints nothing, and every failure is a typed error.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { cleanEnv, ensureDist } from '../cli/util.js';

const here = path.dirname(fileURLToPath(import.meta.url));
ensureDist();

interface Sweep {
  cases: number;
  ok: number;
  codes: Record<string, number>;
  untyped: string[];
  byKind: Record<string, number>;
  okByKind: Record<string, number>;
  codesByKind: Record<string, Record<string, number>>;
  syntaxNamed: number;
  phiLeaks: string[];
}

t.test('every mutated DICOM file is rendered or refused with a typed error; the process survives', async (t) => {
  const dir = t.testdir({});
  const result = path.join(dir, 'sweep.json');
  const child = spawn(process.execPath, [path.join(here, 'dicom-sweep.mjs'), path.join(here, '..', 'fixtures', 'dicom'), result], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  // a hang guard, not a speed target: the sweep takes seconds
  const timer = setTimeout(() => child.kill('SIGKILL'), 10 * 60_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);
  t.equal(signal, null, 'no signal (no crash, no hang)');
  t.equal(code, 0, 'exit code 0');
  t.equal(out, '', 'nothing on stdout or stderr (a library never prints)');
  const r = JSON.parse(await readFile(result, 'utf8')) as Sweep;
  t.comment(`${r.cases} files: ${r.ok} rendered, ${JSON.stringify(r.codes)}; by kind ${JSON.stringify(r.byKind)}`);
  t.ok(r.cases > 5000, `a large corpus (${r.cases})`);
  t.same(r.untyped, [], 'no untyped error');
  t.same(r.phiLeaks, [], 'no message carries a patient tag value (the fixtures hold SECRET^PATIENT)');
  t.same(Object.keys(r.codesByKind.nesting ?? {}), ['ERR_IMAGE_DECODE'], 'deeply nested sequences are a typed error');
  t.equal(r.okByKind.truncated ?? 0, 0, 'no truncated file renders');
  t.equal(r.okByKind.syntax ?? 0, 0, 'no unknown transfer syntax renders');
  t.same(r.codesByKind.syntax, { ERR_DICOM_UNSUPPORTED: r.byKind.syntax }, 'every unknown syntax is ERR_DICOM_UNSUPPORTED');
  t.equal(r.syntaxNamed, r.byKind.syntax, 'and the message names the syntax UID');
  t.ok((r.codes.ERR_IMAGE_TOO_LARGE ?? 0) > 0, 'huge dimensions are ERR_IMAGE_TOO_LARGE');
  for (const k of ['truncated', 'length', 'value', 'syntax', 'flip', 'implicit', 'junk', 'nesting']) t.ok(r.byKind[k]! > 0, `${k} cases ran`);
});
