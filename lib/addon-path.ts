/**
 * Where the compiled addon is looked for, in order: LOWBIT_ADDON_PATH (alone, when set: an ASan or
 * arm64 build), the prebuilt binary shipped in the npm tarball (prebuilds/<platform>-<arch>/), then a
 * local build from source (build/Release/). A file that exists but that the dynamic loader refuses (a
 * prebuild needing a newer glibc, musl instead of glibc) is skipped with its reason, so a local build
 * can take over; an error the addon's own initialization throws (a bad LOWBIT_THREADS) propagates.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface AddonSearch {
  /** the package root (holds package.json) */
  root: string;
  platform: string;
  arch: string;
  /** LOWBIT_ADDON_PATH */
  override?: string;
  /** 32-bit Arm only: Node's arm_version (6 on a Pi 1 or Zero, 7 on armv7l) */
  armVersion?: number;
}

export function addonCandidates(search: AddonSearch): string[] {
  if (search.override) return [resolve(search.override)];
  const local = join(search.root, 'build', 'Release', 'lowbit.node');
  // The linux-arm prebuild is armv7 code, which an armv6 CPU would stop on (SIGILL, not a load error).
  if (search.arch === 'arm' && (search.armVersion ?? 7) < 7) return [local];
  return [join(search.root, 'prebuilds', `${search.platform}-${search.arch}`, 'lowbit.node'), local];
}

/**
 * The one command that builds the addon from source: `npm run compile` in a clone; in a project, the
 * package manager's way to run lowbit's install script, which pnpm 10 and Bun skip until approved.
 */
export function buildCommand(root: string): string {
  const parts = root.split(/[\\/]/);
  if (parts.includes('.pnpm')) return 'pnpm approve-builds   (in your project; choose lowbit)';
  if (parts.includes('node_modules'))
    return 'npm rebuild lowbit --ignore-scripts=false   (in your project; with Bun: bun pm trust lowbit)';
  return `npm run compile   (in ${root})`;
}

/** Loads the first candidate that exists and loads; else throws what was looked for and why. */
export function resolveAddon<T>(search: AddonSearch, load: (path: string) => T): T {
  const tried: string[] = [];
  for (const path of addonCandidates(search)) {
    if (!existsSync(path)) {
      tried.push(`${path}: not found`);
      continue;
    }
    try {
      return load(path);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'ERR_DLOPEN_FAILED') throw error;
      tried.push(`${path}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    }
  }
  throw new Error(
    `lowbit: no native addon for ${search.platform}-${search.arch} loads. Looked for:\n` +
      tried.map((line) => `  - ${line}\n`).join('') +
      'Prebuilt addons ship for linux-x64, linux-arm64 and linux-arm (armv7) with glibc >= 2.32 and libstdc++ >= GCC 12.\n' +
      `Build from source (needs cmake >= 3.15 and a C++17 compiler; Debian: apt-get install cmake g++):\n` +
      `  ${buildCommand(search.root)}`,
  );
}
