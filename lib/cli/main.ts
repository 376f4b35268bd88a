/**
 * The `lowbit` command line: convert ONNX models, export `.lowbit` integer models as ONNX QDQ,
 * inspect, run, evaluate and benchmark `.lowbit` files, and the Fashion-MNIST demo. `main(argv, io)`
 * is the whole program (tests call it in process; lib/cli.ts is the `lowbit` executable, demo/fashion-mnist.ts is `npm start`); exit codes:
 * 0 success, 1 a runtime error (`lowbit: <ErrorClass>: message`), 2 a usage error (unknown command
 * or flag, missing or bad argument).
 *
 * A command is one file in commands/ (its usage text, its flags, what it does) and one row of
 * `COMMANDS` plus a line of `SUMMARY`.
 */
import { parseCommand, UsageError, type Command } from './args.js';
import { bench } from './commands/bench.js';
import { convert } from './commands/convert.js';
import { demo } from './commands/demo.js';
import { evaluate } from './commands/eval.js';
import { exportCommand } from './commands/export.js';
import { info } from './commands/info.js';
import { run } from './commands/run.js';
import { serve } from './commands/serve.js';
import type { Io } from './format.js';

const COMMANDS: Record<string, Command> = {
  convert,
  export: exportCommand,
  info,
  run,
  eval: evaluate,
  bench,
  serve,
  demo,
};

const SUMMARY = `usage: lowbit <command> [options]

commands:
  convert   model.onnx -o model.lowbit    convert an ONNX model (INT8 / INT4 / mixed / binary layers)
  export    model.lowbit --onnx-qdq -o F  the integer model as an ONNX QDQ model (for onnxruntime)
  info      model.lowbit                  inputs, outputs, operators, per-layer report, memory
  run       model.lowbit --input FILE     run on a dataset or raw samples
  eval      model.lowbit --dataset NAME   accuracy and latency on a labelled dataset
  bench     model.lowbit [--vs-onnx FILE] latency and throughput, optionally vs onnxruntime-node
  serve     model.lowbit [...] [--port N] the models over HTTP (KServe v2 / Open Inference Protocol)
  demo      [--full]                      the Fashion-MNIST example (npm start)
  help      [command]                     this text, or a command's options

\`lowbit help <command>\` or \`lowbit <command> --help\` shows a command's options.
`;

/** Each command's usage text (`lowbit help <command>`). */
const USAGE: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(COMMANDS).map(([name, c]) => [name, c.usage]),
);

const commandNamed = (name: string): Command | undefined =>
  Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;

/**
 * Writes an expected failure as `lowbit: <ErrorClass>: message` (no stack trace unless
 * LOWBIT_DEBUG is set) and returns the exit code: 1.
 */
export function reportError(error: unknown, io: Io): number {
  const e = error instanceof Error ? error : new Error(String(error));
  const errno = e as NodeJS.ErrnoException;
  let message = e.message.replace(/^lowbit: /, '');
  if (errno.code === 'ENOENT' && errno.path) message = `${errno.path}: no such file or directory`;
  else if (errno.code === 'EISDIR' && errno.path) message = `${errno.path}: is a directory, expected a file`;
  else if (errno.code === 'EACCES' && errno.path) message = `${errno.path}: permission denied`;
  io.stderr.write(`lowbit: ${e.name}: ${message}\n`);
  if (process.env.LOWBIT_DEBUG && e.stack) io.stderr.write(`${e.stack}\n`);
  return 1;
}

const defaultIo: Io = { stdout: process.stdout, stderr: process.stderr };

/**
 * The whole command line: runs `argv` (without `node` and the script) and returns the exit code.
 * @example process.exitCode = await main(process.argv.slice(2));
 */
export async function main(argv: readonly string[], io: Io = defaultIo): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === undefined) throw new UsageError('missing a command');
    if (name === '--help' || name === '-h') {
      io.stdout.write(SUMMARY);
      return 0;
    }
    if (name === 'help') {
      if (rest.length === 0) {
        io.stdout.write(SUMMARY);
        return 0;
      }
      const command = rest.length === 1 ? commandNamed(rest[0]) : undefined;
      if (!command) throw new UsageError(`help: unknown command '${rest.join(' ')}'`);
      io.stdout.write(command.usage);
      return 0;
    }
    const command = commandNamed(name);
    if (!command)
      throw new UsageError(
        name.startsWith('-') ? `unknown option '${name}' (a command comes first)` : `unknown command '${name}'`,
      );
    const args = parseCommand(name, command, rest, io);
    return args ? await command.run(args, io) : 0;
  } catch (error) {
    if (error instanceof UsageError) {
      // The demo's usage errors name it (`lowbit demo: ...`): it is also `npm start`.
      const program = error.command === 'demo' ? 'lowbit demo' : 'lowbit';
      io.stderr.write(`${program}: ${error.message}\n\n${error.command ? USAGE[error.command] : SUMMARY}`);
      return 2;
    }
    return reportError(error, io);
  }
}
