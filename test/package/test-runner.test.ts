// How tap starts the test files and what the processes they spawn inherit: the suite's start-up cost
// (package.json "tap" and "pretest"). Each test file is a process that loads the TypeScript sources through
// tsx only, without the default plugins' loaders that package.json tap.plugin removes; each process a test
// spawns runs without tap's process tracker (test/helpers/plain-children.mjs), whatever env it is given.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { childEnv } from '../helpers/compiled-cli.js';

const probe = `process.stdout.write(JSON.stringify({
  nodeOptions: process.env.NODE_OPTIONS ?? null,
  loaders: process.execArgv.filter((a) => /^--(import|loader|experimental-loader)/.test(a)),
  heapLimitMiB: Math.round(v8.getHeapStatistics().heap_size_limit / 2 ** 20),
}))`;
const spawnProbe = (env: NodeJS.ProcessEnv) => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import v8 from 'node:v8'; ${probe}`], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`probe child failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { nodeOptions: string | null; loaders: string[]; heapLimitMiB: number };
};

t.test('a test file starts with tsx and without the loaders of the plugins tap.plugin removes', async (t) => {
  t.ok(process.execArgv.includes('--import=tsx'), 'tsx loads the .ts files');
  t.same(
    process.execArgv.filter((a) => /@tapjs[\\/](typescript|mock)[\\/]/.test(a)),
    [],
    "no ts-node (@tapjs/typescript) or @tapjs/mock loader: `npm test` builds tap's configured plugin set before the first run (test/helpers/tap-plugins.mjs)",
  );
});

t.test("a spawned process does not load tap's process tracker", async (t) => {
  const plain = spawnProbe(childEnv());
  t.equal(plain.nodeOptions, null, 'an env without NODE_OPTIONS (childEnv) stays without it');
  t.same(plain.loaders, [], 'and loads no module hooks');
  const inherited = spawnProbe({ ...process.env });
  t.notMatch(inherited.nodeOptions ?? '', /processinfo/, 'nor with the test process env passed on as it is');
  const own = spawnProbe({ ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=1234` });
  t.notMatch(own.nodeOptions ?? '', /processinfo/);
  t.ok(Math.abs(own.heapLimitMiB - 1234) < 200, `a child's own NODE_OPTIONS are kept and apply (heap limit ${own.heapLimitMiB} MiB)`);
});
