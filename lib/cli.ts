#!/usr/bin/env node
/**
 * The `lowbit` executable (package.json `bin`, `npm run lowbit`): runs `main` (lib/cli/main.ts) on
 * the process's arguments when node was started with this file; importing it runs nothing.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { main } from './cli/main.js';

export { main };

/** Whether the module at `url` is the script node was started with (bin links resolved). */
function isMainModule(url: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isMainModule(import.meta.url)) {
  // `lowbit run ... | head`: a closed pipe ends the output quietly.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
