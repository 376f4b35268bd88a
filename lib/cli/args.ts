/**
 * A command's arguments: the `Command` record each command is, parsing its flags with node:util's
 * parseArgs, and the checks of option values and file arguments. Every problem is a `UsageError`
 * (exit code 2, printed with the command's usage text).
 */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Io } from './format.js';

/** A command line that cannot be run as given (unknown flag, missing argument, bad value): exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>;

/** One `lowbit` command: `main` parses its flags (and --help), then calls `run`. */
export interface Command {
  /** `lowbit help <command>`, and what follows a usage error */
  usage: string;
  /** its flags, as node:util's parseArgs takes them (`--help` / `-h` is added) */
  options: Options;
  /** what its one positional argument, a file, is ('a .lowbit model file'); absent: no positionals */
  file?: string;
  /** true: one or more such files */
  files?: boolean;
  run(args: CommandArgs, io: Io): Promise<number>;
}

/** A command's parsed arguments. */
export interface CommandArgs {
  readonly positionals: readonly string[];
  /** a string option's value, undefined when not given */
  string(name: string): string | undefined;
  /** whether a boolean option was given */
  flag(name: string): boolean;
}

/** Runs node:util's parseArgs, turning its errors (unknown flag, missing value) into UsageErrors. */
export function parseCommandArgs<T>(command: string | undefined, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))
      throw new UsageError((error as Error).message, command);
    throw error;
  }
}

/**
 * Parses the arguments of command `name`: its flags, and its file argument (checked to be no
 * directory). Returns `null` when --help was asked (and its usage printed). @throws UsageError
 */
export function parseCommand(name: string, command: Command, args: readonly string[], io: Io): CommandArgs | null {
  const takesFile = command.file !== undefined;
  const parsed = parseCommandArgs(name, () =>
    parseArgs({
      args: [...args],
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: takesFile,
      strict: true,
    }),
  );
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) {
    io.stdout.write(command.usage);
    return null;
  }
  const positionals = takesFile ? 1 : 0;
  if (parsed.positionals.length < positionals) throw new UsageError(`${name}: missing the model file`, name);
  if (parsed.positionals.length > positionals && !command.files)
    throw new UsageError(`${name}: unexpected argument '${parsed.positionals[positionals]}'`, name);
  for (const p of parsed.positionals) inputFile(p, command.file!, name);
  return {
    positionals: parsed.positionals,
    string: (option) => (typeof values[option] === 'string' ? (values[option] as string) : undefined),
    flag: (option) => values[option] === true,
  };
}

/** Parses a positive integer option. @throws UsageError */
export function intOption(
  value: string | undefined,
  flag: string,
  fallback: number,
  command?: string,
  min = 1,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(
      `${flag}: expected an integer ${max < Number.MAX_SAFE_INTEGER ? `in [${min}, ${max}]` : `>= ${min}`}, got '${value}'`,
      command,
    );
  }
  return n;
}

/** Parses a positive number option. @throws UsageError */
export function numberOption(value: string | undefined, flag: string, fallback: number, command?: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new UsageError(`${flag}: expected a number > 0, got '${value}'`, command);
  return n;
}

/** One of `allowed`, or undefined when not given. @throws UsageError */
export function choice<T extends string>(
  value: string | undefined,
  flag: string,
  allowed: readonly T[],
  command: string,
): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value))
    throw new UsageError(`${flag}: expected ${allowed.join(' or ')}, got '${value}'`, command);
  return value as T;
}

/** '120k' (KiB), '1.5m' (MiB), '2g' or a plain byte count. @throws UsageError */
export function parseSize(text: string, flag = '--size-budget', command?: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(k|kb|kib|m|mb|mib|g|gb|gib|b)?\s*$/i.exec(text);
  if (!m) throw new UsageError(`${flag}: expected a size such as 120k, 1.5m or 250000, got '${text}'`, command);
  const unit = (m[2] ?? 'b').toLowerCase()[0];
  const bytes = Math.floor(
    Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1),
  );
  if (!(bytes >= 1)) throw new UsageError(`${flag}: expected at least 1 byte, got '${text}'`, command);
  return bytes;
}

/** The most threads `--threads` takes (what `setThreads` accepts). */
export const MAX_THREADS = 256;

/**
 * A file the command reads: a directory is a usage error naming it. (A missing file is reported
 * when it is read, as a runtime error.) @throws UsageError
 */
export function inputFile(path: string, what: string, command: string): string {
  if (isDirectory(path)) throw new UsageError(`${path}: is a directory, expected ${what}`, command);
  return path;
}

/** A file the command writes, checked before the work: not a directory, in one that exists. @throws UsageError */
export function outputFile(path: string, flag: string, command: string): string {
  if (isDirectory(path)) throw new UsageError(`${flag} ${path}: is a directory, expected a file to write`, command);
  if (!isDirectory(dirname(path)))
    throw new UsageError(`${flag} ${path}: the directory ${dirname(path)} does not exist`, command);
  return path;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
