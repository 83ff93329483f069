// `npm test` runs this first (package.json "pretest"). tap builds its Test class from the plugins that
// package.json "tap.plugin" leaves in, the first time it runs after an install, but the runner that
// does that build has already loaded the installed default set: that whole first run starts every test
// file with the default plugins' loaders (@tapjs/typescript's ts-node and @tapjs/mock, ~2.7 s of CPU per
// file on the 2-core CI machine). A fresh clone (CI) only ever has that first run. This exits 0 when the
// installed build matches the configured plugins and 1 when it does not, so that `tap build` runs first.
import { TapConfig } from '@tapjs/config';
import { signature } from '@tapjs/test';

const config = await TapConfig.load();
if (config.pluginSignature !== signature) {
  process.stderr.write('tap: the installed plugin set is not the configured one; building it before the run\n');
  process.exit(1);
}
