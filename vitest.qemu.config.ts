// The suite as scripts/test-arm64.sh runs it under qemu-aarch64: worker threads instead of forked
// processes (a forked child of an emulated node would be an arm64 binary the host cannot exec) and one
// file at a time (the ISA and thread settings are process-wide, and the files share one process).
import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

export default defineConfig({
  test: {
    ...base.test,
    pool: 'threads',
    execArgv: [], // worker threads refuse --expose-gc; scripts/test-arm64.sh passes it to node itself
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
