// Processes the tests spawn run without tap's process tracker (package.json tap.node-arg loads this file
// into every test process). tap runs each test file with @tapjs/processinfo, which also puts its --import
// into the NODE_OPTIONS of every process a test spawns, even one given an env without NODE_OPTIONS
// (childEnv() in compiled-cli.ts): each spawned CLI, worker or server then loads a module-hook thread
// that records coverage data, ~0.4 s more per spawn on the 2-core CI machine. Coverage is disabled
// (tap.disable-coverage), so nothing reads that data: while it is, this removes processinfo's loader from
// the children's NODE_OPTIONS and keeps anything else in it. With coverage on, children keep it.
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';

if (isMainThread && process.env._TAPJS_PROCESSINFO_COVERAGE_ === '0') {
  // processinfo's own copies, so the spawn hook is the one it registered with.
  const require = createRequire(import.meta.resolve('@tapjs/processinfo'));
  const onSpawn = require('process-on-spawn');
  const { nodeOptionsToArgv, argvToNodeOptions } = require('node-options-to-argv');
  const isTracker = (v) => /[\\/]@tapjs[\\/]processinfo[\\/]|^@tapjs\/processinfo\//.test(decodeURIComponent(v));
  const LOADER_FLAGS = new Set(['--import', '--loader', '--experimental-loader']);
  // Runs after processinfo's listener (registered when tap loaded it, before this file).
  onSpawn.addListener((opts) => {
    const no = opts.env.NODE_OPTIONS;
    if (!no) return;
    const argv = nodeOptionsToArgv(no);
    const kept = [];
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      const eq = a.indexOf('=');
      if (eq > 0 && LOADER_FLAGS.has(a.slice(0, eq)) && isTracker(a.slice(eq + 1))) continue;
      if (LOADER_FLAGS.has(a) && i + 1 < argv.length && isTracker(argv[i + 1])) {
        i++;
        continue;
      }
      kept.push(a);
    }
    if (kept.length === argv.length) return;
    const env = { ...opts.env };
    if (kept.length) env.NODE_OPTIONS = argvToNodeOptions(kept);
    else delete env.NODE_OPTIONS;
    opts.env = env;
  });
}
