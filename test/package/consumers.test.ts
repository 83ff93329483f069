/**
 * The packed tarball as other tools consume it: a strict TypeScript consumer (module nodenext,
 * skipLibCheck false) and a CommonJS consumer import every subpath export and run a call of each.
 * The tarball is `npm pack` of this checkout; its dependencies are this checkout's node_modules
 * (linked, not installed: the install itself is test/install's concern) and the addon is the one
 * built here. The consumers run on this Node and on the lowest Node of each range that package.json's
 * `engines.node` claims (binaries fetched from the npm registry once; see test/helpers/node-versions.ts).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { REPO, demoV0 } from '../helpers/tiny-llava.js';
import { claimedLowestNodes, lowestVersions, nodeBinary } from '../helpers/node-versions.js';
import { cleanEnv, ensureDist } from '../cli/util.js';

ensureDist();
const work = mkdtempSync(join(tmpdir(), 'llava-med-consumer-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

function sh(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: cleanEnv({ XDG_CACHE_HOME: join(work, 'cache') }), timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${String(r.status)}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

// A consumer's own process: tap's processinfo puts its --import hook back into NODE_OPTIONS of every
// child it sees spawned, so the consumer is started through env(1) without it, as a user would run it.
const runNode = (node: string, args: string[], cwd: string): string => sh('env', ['-u', 'NODE_OPTIONS', node, ...args], cwd);

// The tarball, unpacked where a consumer's install would put it.
const packed = JSON.parse(sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], REPO)) as { filename: string }[];
const app = join(work, 'app');
const pkgDir = join(app, 'node_modules', 'llava-med');
mkdirSync(pkgDir, { recursive: true });
sh('tar', ['xzf', join(work, packed[0].filename), '-C', pkgDir, '--strip-components=1'], work);
// The addon built here (or the one LLAVA_MED_ADDON names, which the loader prefers anyway).
cpSync(process.env.LLAVA_MED_ADDON ?? join(REPO, 'build', 'Release', 'llava_med.node'), join(pkgDir, 'build', 'Release', 'llava_med.node'));
for (const e of readdirSync(join(REPO, 'node_modules'))) {
  if (e === 'llava-med' || e === '.bin' || e.startsWith('.')) continue;
  symlinkSync(join(REPO, 'node_modules', e), join(app, 'node_modules', e));
}
// The random-weight demo-sized model: its answers run to maxTokens (the trained demo model stops early).
const demo = await demoV0();
// [label, binary]: this Node, then the lowest version of each engines.node alternative.
const nodes: [string, string][] = [[`this Node ${process.version}`, process.execPath], ...claimedLowestNodes().map((v): [string, string] => [`Node ${v} (lowest claimed)`, nodeBinary(v)])];
const image = join(REPO, 'assets', 'sample-xray.png');

t.test('the tarball carries the compiled subpath entries', async (t) => {
  for (const f of ['dist/index.js', 'dist/convert/index.d.ts', 'dist/eval/index.d.ts', 'dist/gguf.d.ts', 'dist/demo/index.d.ts', 'dist/pull/index.d.ts']) {
    t.ok(readdirSync(join(pkgDir, f, '..')).includes(f.split('/').at(-1) ?? ''), f);
  }
});

t.test('strict TypeScript consumer (nodenext, skipLibCheck false)', async (t) => {
  writeFileSync(join(app, 'package.json'), JSON.stringify({ type: 'module' }));
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, skipLibCheck: false, outDir: 'out', types: ['node'] },
    files: ['consumer.mts'],
  }));
  writeFileSync(join(app, 'consumer.mts'), `
import { LlavaMed, isLlavaMedError, type Answer } from 'llava-med';
import { convertV0, quantize, type ConvertResult } from 'llava-med/convert';
import { evaluate, type EvaluateResult } from 'llava-med/eval';
import { describeGguf, readGgufHeader, type GgufSummary } from 'llava-med/gguf';
import { ensureDemoModel } from 'llava-med/demo';
import { listModels, RECIPES, type RegisteredModel } from 'llava-med/pull';

const [model, mmproj, image] = process.argv.slice(2) as [string, string, string];
const summary: GgufSummary = await describeGguf(model);
const ctx: number | undefined = summary.kind === 'language model' ? summary.contextLength : undefined;
const header = await readGgufHeader(mmproj);
const med = await LlavaMed.load({ model, mmproj });
let answer: Answer;
try {
  answer = await med.ask(image, 'What is shown?', { maxTokens: 4, temperature: 0 });
} finally {
  await med.dispose();
}
const registered: RegisteredModel[] = await listModels();
const fns: unknown[] = [convertV0, quantize, ensureDemoModel, isLlavaMedError, RECIPES];
const r: EvaluateResult = evaluate([], []);
const unused: ConvertResult | undefined = undefined;
console.log(JSON.stringify({ kind: summary.kind, ctx, mmprojTensors: header.tensors.length, tokens: answer.timings.generatedTokens, fns: fns.length, overall: typeof r.overall, unused: unused ?? null, registered: registered.length }));
`);
  const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  sh(process.execPath, [tsc, '-p', 'tsconfig.json'], app);
  for (const [label, node] of nodes) {
    const out = JSON.parse(runNode(node, [join(app, 'out', 'consumer.mjs'), demo.model, demo.mmproj, image], app).trim()) as Record<string, unknown>;
    t.equal(out.kind, 'language model', label);
    t.type(out.ctx, 'number');
    t.ok((out.mmprojTensors as number) > 0);
    t.equal(out.tokens, 4, label);
    t.equal(out.registered, 0, 'llava-med/pull: no models registered in the fresh cache');
  }
});

t.test('CommonJS consumer requires every subpath', async (t) => {
  writeFileSync(join(app, 'consumer.cjs'), `
const { LlavaMed } = require('llava-med');
const { convertV0, quantize } = require('llava-med/convert');
const { evaluate } = require('llava-med/eval');
const { describeGguf } = require('llava-med/gguf');
const { ensureDemoModel } = require('llava-med/demo');
const { pull } = require('llava-med/pull');
(async () => {
  const [model, mmproj, image] = process.argv.slice(2);
  const info = await describeGguf(mmproj);
  const med = await LlavaMed.load({ model, mmproj });
  try {
    const a = await med.ask(image, 'What is shown?', { maxTokens: 3, temperature: 0 });
    console.log(JSON.stringify({ kind: info.kind, tokens: a.timings.generatedTokens, types: [typeof convertV0, typeof quantize, typeof evaluate, typeof ensureDemoModel, typeof pull] }));
  } finally {
    await med.dispose();
  }
})().catch((e) => { console.error(e); process.exit(1); });
`);
  for (const [label, node] of nodes) {
    const version = runNode(node, ['--version'], app).trim();
    const out = JSON.parse(runNode(node, [join(app, 'consumer.cjs'), demo.model, demo.mmproj, image], app).trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
    t.same(out, { kind: 'projector (mmproj)', tokens: 3, types: ['function', 'function', 'function', 'function', 'function'] }, `${label}: ${version}`);
  }
});

t.test('engines.node: the lowest versions are read from package.json as written', async (t) => {
  t.same(lowestVersions('^20.19.0 || >=22.12.0'), ['20.19.0', '22.12.0']);
  t.same(lowestVersions('>=20.19.0'), ['20.19.0']);
  t.throws(() => lowestVersions('20.x || >=22'), /not \^X\.Y\.Z/, 'a form the test cannot bound fails instead of testing nothing');
  t.ok(nodes.length >= 2, 'at least one lowest claimed version runs the consumers');
});
