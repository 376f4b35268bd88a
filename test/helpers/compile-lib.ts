/**
 * Transpiles lib/ to plain ESM JavaScript in a temporary folder, so that child `node` processes
 * (which cannot load .ts on Node 20) can drive the public API. The addon is found through
 * LOWBIT_ADDON_PATH, which `childEnv` sets.
 */
import { spawnSync, type SpawnSyncOptionsWithStringEncoding, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const ADDON = process.env.LOWBIT_ADDON_PATH || join(ROOT, 'build/Release/lowbit.node');

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

let compiled: string | undefined;

/** @returns the path of the compiled lib/index.js */
export function compiledLib(): string {
  if (compiled !== undefined) return compiled;
  const out = mkdtempSync(join(tmpdir(), 'lowbit-lib-'));
  writeFileSync(join(out, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(join(ROOT, 'node_modules'), join(out, 'node_modules')); // lib's dependencies (onnx-proto)
  for (const file of walk(join(ROOT, 'lib')).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))) {
    const js = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: file,
    }).outputText;
    const target = join(out, relative(ROOT, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, js);
  }
  compiled = join(out, 'lib/index.js');
  return compiled;
}

/** Environment for a child that loads the addon: LOWBIT_ADDON_PATH set, LOWBIT_ISA cleared. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOWBIT_ADDON_PATH: ADDON, ...extra };
  if (!('LOWBIT_ISA' in extra)) delete env.LOWBIT_ISA;
  return env;
}

/**
 * The command that starts a child `node`: this one, or LOWBIT_TEST_NODE (a JSON array) where this
 * node runs under an emulator that cannot exec another guest binary (scripts/test-arm64.sh runs the
 * suite in qemu-aarch64 without binfmt_misc, so a child is `qemu-aarch64 ... node`).
 */
export const NODE_COMMAND: string[] = process.env.LOWBIT_TEST_NODE
  ? JSON.parse(process.env.LOWBIT_TEST_NODE)
  : [process.execPath];

/** A test's or a child's time limit: 10x under the emulator (scripts/test-arm64.sh). */
export function timeLimit(ms: number): number {
  return process.env.LOWBIT_TEST_NODE ? 10 * ms : ms;
}

/**
 * spawnSync of a child `node` with `args` (see NODE_COMMAND), `prefix` before it (e.g. taskset),
 * within timeLimit(options.timeout).
 */
export function spawnNode(
  args: string[],
  options: SpawnSyncOptionsWithStringEncoding,
  prefix: string[] = [],
): SpawnSyncReturns<string> {
  const [command, ...rest] = [...prefix, ...NODE_COMMAND, ...args];
  const timeout = options.timeout === undefined ? undefined : timeLimit(options.timeout);
  return spawnSync(command, rest, { ...options, timeout });
}
