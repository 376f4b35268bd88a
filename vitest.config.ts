import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each file in its own child process: a native crash fails that file instead of killing the run,
    // and setIsa / setThreads in one file cannot leak into another.
    pool: 'forks',
    isolate: true,
    // global.gc for the async lifetime tests (reliability.md (c) item 5)
    execArgv: ['--expose-gc'],
    testTimeout: 60_000,
  },
});
