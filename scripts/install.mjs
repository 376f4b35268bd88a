// npm's install script: exits 0 when the prebuilt addon for this platform loads (no compiler
// needed), else 1, and package.json's `install` then builds from source with cmake-js. A clone has
// no prebuilds/ (git ignores it), so the repository's own `npm install` always builds.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const prebuild = new URL(`../prebuilds/${process.platform}-${process.arch}/lowbit.node`, import.meta.url).pathname;
if (!existsSync(prebuild)) process.exit(1);
try {
  createRequire(import.meta.url)(prebuild);
} catch (error) {
  console.warn(`lowbit: the prebuilt addon does not load (${String(error).split('\n')[0]}); building from source`);
  process.exit(1);
}
