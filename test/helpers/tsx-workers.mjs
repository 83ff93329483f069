// Worker threads under tap's TypeScript loader (package.json tap.node-arg): on Node 20, `--import=tsx`
// registers its hooks in the main thread only, so a worker that loads a .ts file (lib/image/dicom from
// source) would fail with ERR_UNKNOWN_FILE_EXTENSION. Workers inherit the execArgv, so this runs in each
// of them and registers tsx there.
import { isMainThread } from 'node:worker_threads';

if (!isMainThread) (await import('tsx/esm/api')).register();
