/**
 * Transpiles lib/ to plain ESM JavaScript in a temporary folder, so that child `node` processes
 * (which cannot load .ts on Node 20) can drive the public API. The addon is found through
 * LOWBIT_ADDON_PATH, which `childEnv` sets.
 */
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
