#!/usr/bin/env node
/**
 * The `lowbit` command line: convert ONNX models, inspect, run, evaluate and benchmark `.lowbit`
 * files, and the Fashion-MNIST demo. `main(argv, io)` is the whole program (tests call it in
 * process); exit codes: 0 success, 1 a runtime error (`lowbit: <ErrorClass>: message`), 2 a usage
 * error (unknown command or flag, missing or bad argument).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  argmax,
  evaluateAccuracy,
  formatBytes,
  formatInt,
  formatPercent,
  formatReport,
  formatTable,
  inputFile,
  intOption,
  isMainModule,
  loadOrt,
  lowbitPredict,
  MAX_THREADS,
  measure,
  median,
  numberOption,
  outputFile,
  ortSession,
  parseCommandArgs,
  Progress,
  random,
  reportError,
  reportOf,
  UsageError,
  type Impl,
  type Io,
  DEMO_USAGE,
  engine,
} from './cli-support.js';
import type { ConvertOptions } from './convert/convert.js';
import { encodeF32, readF32, readFashionMnist, readLbds, toInput, type Dataset } from './data.js';
import { ShapeError } from './errors.js';
import type { Model } from './model/model.js';

const USAGE: Record<string, string> = {
  convert: `usage: lowbit convert model.onnx -o model.lowbit --calib FILE [options]

Converts an ONNX model to a .lowbit file and prints the per-layer report.
  -o, --output FILE           the .lowbit file to write (required)
  --bits 8|4|mixed            weight bits of the integer layers (default 8)
  --size-budget SIZE          for --bits mixed: the largest file, e.g. 120k (KiB), 1.5m (MiB) or bytes;
                              implies --bits mixed
  --boundary-bits 8|4         weight bits of the first and last integer layers (default 8)
  --calib FILE                calibration samples (required): a .lbds dataset, a .f32 file of input
                              samples, or fashion-mnist-train (Debian's Fashion-MNIST training images)
  --calib-count N             calibration samples used (default 500)
  --calib-method minmax|percentile   activation ranges (default minmax)
  --percentile P              for percentile ranges: the percentile of |x| kept (default 99.99)
  --mst                       build MST schedules for the binary layers
`,
  info: `usage: lowbit info model.lowbit

Prints a model's inputs and outputs, its operators, the converter's per-layer report, its file
size and the activation memory of a run at batch 1 and 64.
`,
  run: `usage: lowbit run model.lowbit --input FILE [options]

Runs a model and prints, per sample, the arg-max of its first output (and the label for a
dataset), or writes the raw outputs.
  --input FILE        a .lbds dataset (pixels / 255) or a .f32 file of whole input samples (required)
  --count N           the first N samples only
  --batch B           samples per run (default 64)
  --output FILE       write every output as little-endian float32 values instead (.f32)
`,
  eval: `usage: lowbit eval model.lowbit --dataset fashion-mnist|FILE.lbds [options]

Top-1 accuracy on a labelled dataset, and the latency of the runs.
  --dataset NAME      fashion-mnist (the 10000 test images of Debian's dataset-fashion-mnist)
                      or an .lbds file (required)
  --count N           the first N images only
  --batch B           images per run (default 64)
`,
  bench: `usage: lowbit bench model.lowbit [options]

Median latency and throughput per batch size (warm-up, then interleaved timed rounds).
  --vs-onnx FILE      also time this ONNX model in onnxruntime-node, and the speed ratio
  --batch LIST        batch sizes, comma separated (default 1,64)
  --threads N         threads of lowbit and of onnxruntime's intra-op pool (default: all)
  --seconds S         measuring time per batch size (default 3)
`,
  demo: DEMO_USAGE,
};

const SUMMARY = `usage: lowbit <command> [options]

commands:
  convert   model.onnx -o model.lowbit    convert an ONNX model (INT8 / INT4 / mixed / binary layers)
  info      model.lowbit                  inputs, outputs, operators, per-layer report, memory
  run       model.lowbit --input FILE     run on a dataset or raw samples
  eval      model.lowbit --dataset NAME   accuracy and latency on a labelled dataset
  bench     model.lowbit [--vs-onnx FILE] latency and throughput, optionally vs onnxruntime-node
  demo      [--full]                      the Fashion-MNIST example (npm start)
  help      [command]                     this text, or a command's options

\`lowbit help <command>\` or \`lowbit <command> --help\` shows a command's options.
`;

type Values = Record<string, string | boolean | undefined>;
type Options = NonNullable<ParseArgsConfig['options']>;

/** Parses a command's arguments; `null` when --help was asked (and printed). */
function parse(command: string, args: string[], options: Options, positionals: number, io: Io): { values: Values; positionals: string[] } | null {
  const parsed = parseCommandArgs(command, () =>
    parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true }),
  );
  const values = parsed.values as Values;
  if (values.help) {
    io.stdout.write(USAGE[command]);
    return null;
  }
  if (parsed.positionals.length < positionals) throw new UsageError(`${command}: missing the ${positionals === 1 ? 'model file' : 'arguments'}`, command);
  if (parsed.positionals.length > positionals) throw new UsageError(`${command}: unexpected argument '${parsed.positionals[positionals]}'`, command);
  for (const p of parsed.positionals) inputFile(p, command === 'convert' ? 'an ONNX model file' : 'a .lowbit model file', command);
  return { values, positionals: parsed.positionals };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** '120k' (KiB), '1.5m' (MiB), '2g' or a plain byte count. */
export function parseSize(text: string, flag = '--size-budget', command?: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(k|kb|kib|m|mb|mib|g|gb|gib|b)?\s*$/i.exec(text);
  if (!m) throw new UsageError(`${flag}: expected a size such as 120k, 1.5m or 250000, got '${text}'`, command);
  const unit = (m[2] ?? 'b').toLowerCase()[0];
  const bytes = Math.floor(Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1));
  if (!(bytes >= 1)) throw new UsageError(`${flag}: expected at least 1 byte, got '${text}'`, command);
  return bytes;
}

function choice<T extends string>(value: string | undefined, flag: string, allowed: readonly T[], command: string): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${flag}: expected ${allowed.join(' or ')}, got '${value}'`, command);
  return value as T;
}

function perSample(model: Model): number {
  if (model.inputs.length !== 1)
    throw new ShapeError(`the model has ${model.inputs.length} inputs (${model.inputs.map((i) => i.name).join(', ')}); the command line runs single-input models`);
  return model.inputs[0].sampleShape.reduce((a, b) => a * b, 1);
}

function checkDatasetFits(model: Model, ds: Dataset, what: string): void {
  const size = ds.channels * ds.height * ds.width;
  if (size !== perSample(model))
    throw new ShapeError(
      `${what}: images of ${ds.channels}x${ds.height}x${ds.width} do not fit the model's input ${model.inputs[0].name} [N, ${model.inputs[0].sampleShape.join(', ')}]`,
    );
}

async function withModel<T>(path: string, fn: (model: Model) => Promise<T>): Promise<T> {
  const { loadModel } = await engine();
  const model = loadModel(path);
  try {
    return await fn(model);
  } finally {
    model.dispose();
  }
}

// ---- convert ---------------------------------------------------------------------------------

/** The samples of `--calib` (a .lbds or .f32 file, checked already, or fashion-mnist-train). */
async function calibrationSamples(path: string, onnx: Uint8Array, count: number): Promise<Float32Array> {
  if (path === 'fashion-mnist-train' || extname(path).toLowerCase() === '.lbds') {
    const ds = path === 'fashion-mnist-train' ? readFashionMnist(undefined, 'train') : readLbds(path);
    return toInput(ds, 0, Math.min(count, ds.count));
  }
  const values = readF32(path);
  // Whole samples of the ONNX model's input, when its dims are known (else every value).
  let size = 0;
  try {
    const { decodeModel } = await import('./onnx/proto.js');
    const dims = decodeModel(onnx).inputs[0]?.dims.slice(1) ?? [];
    if (dims.length > 0 && dims.every((d) => typeof d === 'number' && d > 0)) size = (dims as number[]).reduce((a, b) => a * b, 1);
  } catch {
    size = 0; // the converter reports a malformed model itself
  }
  if (size === 0) return values;
  if (values.length % size !== 0) throw new ShapeError(`--calib ${path}: ${values.length} values are not whole samples of ${size} values (the ONNX model's input)`);
  return values.subarray(0, Math.min(values.length, count * size));
}

async function convertCommand(args: string[], io: Io): Promise<number> {
  const parsed = parse('convert', args, {
    output: { type: 'string', short: 'o' },
    bits: { type: 'string' },
    'size-budget': { type: 'string' },
    'boundary-bits': { type: 'string' },
    calib: { type: 'string' },
    'calib-count': { type: 'string' },
    'calib-method': { type: 'string' },
    percentile: { type: 'string' },
    mst: { type: 'boolean' },
  }, 1, io);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const output = str(values, 'output');
  if (!output) throw new UsageError('convert: missing -o / --output model.lowbit', 'convert');
  outputFile(output, '--output', 'convert');
  const bitsText = choice(str(values, 'bits'), '--bits', ['8', '4', 'mixed'] as const, 'convert');
  const budgetText = str(values, 'size-budget');
  const sizeBudget = budgetText === undefined ? undefined : parseSize(budgetText, '--size-budget', 'convert');
  let bits: ConvertOptions['bits'] = bitsText === 'mixed' ? 'mixed' : bitsText === undefined ? undefined : bitsText === '4' ? 4 : 8;
  if (sizeBudget !== undefined && bits === undefined) bits = 'mixed';
  if (bits === 'mixed' && sizeBudget === undefined) throw new UsageError('--bits mixed: needs --size-budget', 'convert');
  if (sizeBudget !== undefined && bits !== 'mixed') throw new UsageError(`--size-budget: applies to --bits mixed, not --bits ${bits}`, 'convert');
  const boundary = choice(str(values, 'boundary-bits'), '--boundary-bits', ['8', '4'] as const, 'convert');
  let method = choice(str(values, 'calib-method'), '--calib-method', ['minmax', 'percentile'] as const, 'convert');
  const percentileText = str(values, 'percentile');
  let percentile: number | undefined;
  if (percentileText !== undefined) {
    percentile = numberOption(percentileText, '--percentile', 99.99, 'convert');
    if (percentile > 100) throw new UsageError(`--percentile: expected a number in (0, 100], got '${percentileText}'`, 'convert');
    if (method === 'minmax') throw new UsageError('--percentile: applies to --calib-method percentile', 'convert');
    method = 'percentile';
  }
  const calibCount = intOption(str(values, 'calib-count'), '--calib-count', 500, 'convert');
  const calibPath = str(values, 'calib');
  if (calibPath === undefined) throw new UsageError('convert: missing --calib FILE (calibration samples: a .lbds dataset, a .f32 file or fashion-mnist-train)', 'convert');
  if (calibPath !== 'fashion-mnist-train') {
    const ext = extname(calibPath).toLowerCase();
    if (ext !== '.lbds' && ext !== '.f32') throw new UsageError(`--calib: expected a .lbds or .f32 file or fashion-mnist-train, got '${calibPath}'`, 'convert');
    inputFile(calibPath, `a ${ext} file`, 'convert');
  }

  const onnx = readFileSync(positionals[0]);
  const calibration = await calibrationSamples(calibPath, onnx, calibCount);
  const { convertOnnxWithReport } = await import('./convert/convert.js');
  let bar: Progress | undefined;
  let phase: string | undefined;
  const start = performance.now();
  const { bytes, report } = await convertOnnxWithReport(onnx, {
    calibration,
    bits,
    sizeBudget,
    boundaryBits: boundary === undefined ? undefined : boundary === '4' ? 4 : 8,
    calibrationMethod: method,
    percentile,
    mst: values.mst === true,
    onProgress: (p, done, total) => {
      if (p !== phase) {
        bar?.finish();
        bar = new Progress(io.stderr, p, total);
        phase = p;
      }
      bar!.update(done);
    },
  }).finally(() => bar?.finish());
  writeFileSync(output, bytes);
  io.stdout.write(formatReport(report));
  io.stdout.write(`wrote ${output}: ${formatInt(bytes.length)} bytes (${formatBytes(bytes.length)}) in ${((performance.now() - start) / 1000).toFixed(1)} s\n`);
  return 0;
}

// ---- info ------------------------------------------------------------------------------------

async function infoCommand(args: string[], io: Io): Promise<number> {
  const parsed = parse('info', args, {}, 1, io);
  if (!parsed) return 0;
  const path = parsed.positionals[0];
  return withModel(path, async (model) => {
    const graph = model.graph();
    const out: string[] = [];
    out.push(`${path}: ${formatInt(model.bytes)} bytes (${formatBytes(model.bytes)})${typeof graph.producer === 'string' ? `, written by ${graph.producer}` : ''}\n`);
    const tensorRows = (list: Model['inputs'], kind: string) => list.map((t) => [kind, t.name, `[N, ${t.sampleShape.join(', ')}]`, t.dtype]);
    out.push('\n' + formatTable(['', 'name', 'shape', 'dtype'], [...tensorRows(model.inputs, 'input'), ...tensorRows(model.outputs, 'output')], ['left', 'left', 'left', 'left']));
    const ops = new Map<string, number>();
    for (const node of graph.nodes) ops.set(node.op, (ops.get(node.op) ?? 0) + 1);
    const opList = [...ops].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    out.push(`\nnodes: ${graph.nodes.length} (${opList.map(([op, n]) => `${op} ${n}`).join(', ')})\n`);
    const report = reportOf(model.metadata);
    // The report's size was taken before the report itself joined the file: show the file's.
    out.push('\n' + (report ? formatReport({ ...report, modelBytes: model.bytes }) : 'no conversion report in the metadata (not written by lowbit convert)\n'));
    const plans = [1, 64].map((batch) => ({ batch, ...model.memoryPlan(batch) }));
    out.push('\n' + formatTable(['activations', 'arena', 'unplanned'],
      plans.map((p) => [`batch ${p.batch}`, `${formatInt(p.arenaBytes)} B (${formatBytes(p.arenaBytes)})`, `${formatInt(p.tensorBytes)} B`])));
    io.stdout.write(out.join(''));
    return 0;
  });
}

// ---- run -------------------------------------------------------------------------------------

async function runCommand(args: string[], io: Io): Promise<number> {
  const parsed = parse('run', args, {
    input: { type: 'string' },
    count: { type: 'string' },
    batch: { type: 'string' },
    output: { type: 'string' },
  }, 1, io);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const inputPath = str(values, 'input');
  if (!inputPath) throw new UsageError('run: missing --input FILE (.lbds or .f32)', 'run');
  const ext = extname(inputPath).toLowerCase();
  if (ext !== '.lbds' && ext !== '.f32') throw new UsageError(`--input: expected a .lbds or .f32 file, got '${inputPath}'`, 'run');
  inputFile(inputPath, 'a .lbds or .f32 file', 'run');
  const countLimit = intOption(str(values, 'count'), '--count', Number.MAX_SAFE_INTEGER, 'run');
  const batch = intOption(str(values, 'batch'), '--batch', 64, 'run');
  const outputPath = str(values, 'output');
  if (outputPath !== undefined) outputFile(outputPath, '--output', 'run');

  return withModel(positionals[0], async (model) => {
    const size = perSample(model);
    let ds: Dataset | undefined;
    let samples: Float32Array | undefined;
    let count: number;
    if (ext === '.lbds') {
      ds = readLbds(inputPath);
      checkDatasetFits(model, ds, inputPath);
      count = Math.min(countLimit, ds.count);
    } else {
      samples = readF32(inputPath, size);
      count = Math.min(countLimit, samples.length / size);
    }
    const outputs = model.outputs.map((o) => ({ name: o.name, size: o.sampleShape.reduce((a, b) => a * b, 1), parts: [] as Float32Array[] }));
    for (let start = 0; start < count; start += batch) {
      const n = Math.min(batch, count - start);
      const input = ds ? toInput(ds, start, n) : samples!.subarray(start * size, (start + n) * size);
      const result = model.runSync(input);
      for (const o of outputs) o.parts.push(result[o.name].data);
    }
    const joined = outputs.map((o) => {
      const all = new Float32Array(count * o.size);
      let at = 0;
      for (const part of o.parts) {
        all.set(part, at);
        at += part.length;
      }
      return { ...o, all };
    });
    if (outputPath !== undefined) {
      const total = joined.reduce((s, o) => s + o.all.length, 0);
      const bytes = new Uint8Array(total * 4);
      let at = 0;
      for (const o of joined) {
        bytes.set(encodeF32(o.all), at);
        at += o.all.length * 4;
      }
      writeFileSync(outputPath, bytes);
      io.stdout.write(`wrote ${outputPath}: ${joined.map((o) => `${o.name} [${count}, ${model.outputs.find((m) => m.name === o.name)!.sampleShape.join(', ')}]`).join(', then ')} as float32 (${formatInt(bytes.length)} bytes)\n`);
      return 0;
    }
    const first = joined[0];
    const rows: string[][] = [];
    let correct = 0;
    for (let i = 0; i < count; ++i) {
      const predicted = argmax(first.all, i * first.size, first.size);
      const row = [String(i), String(predicted)];
      if (ds) {
        row.push(String(ds.labels[i]));
        if (predicted === ds.labels[i]) ++correct;
      }
      rows.push(row);
    }
    io.stdout.write(formatTable(ds ? ['sample', `argmax ${first.name}`, 'label'] : ['sample', `argmax ${first.name}`], rows));
    if (ds) io.stdout.write(`accuracy ${formatPercent(correct / count)} (${correct}/${count})\n`);
    return 0;
  });
}

// ---- eval ------------------------------------------------------------------------------------

async function evalCommand(args: string[], io: Io): Promise<number> {
  const parsed = parse('eval', args, { dataset: { type: 'string' }, count: { type: 'string' }, batch: { type: 'string' } }, 1, io);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const name = str(values, 'dataset');
  if (!name) throw new UsageError('eval: missing --dataset fashion-mnist|FILE.lbds', 'eval');
  if (name !== 'fashion-mnist' && extname(name).toLowerCase() !== '.lbds')
    throw new UsageError(`--dataset: expected fashion-mnist or an .lbds file, got '${name}'`, 'eval');
  if (name !== 'fashion-mnist') inputFile(name, 'an .lbds file', 'eval');
  const countLimit = intOption(str(values, 'count'), '--count', Number.MAX_SAFE_INTEGER, 'eval');
  const batch = intOption(str(values, 'batch'), '--batch', 64, 'eval');

  const { isa, threads } = await engine();
  return withModel(positionals[0], async (model) => {
    const ds = name === 'fashion-mnist' ? readFashionMnist() : readLbds(name);
    checkDatasetFits(model, ds, name);
    const count = Math.min(countLimit, ds.count);
    const predict = lowbitPredict(model);
    predict(toInput(ds, 0, Math.min(batch, count)), Math.min(batch, count)); // warm-up: first-run allocations
    const bar = new Progress(io.stderr, 'eval', count);
    const result = await evaluateAccuracy(predict, ds, { count, batch, progress: (done) => bar.update(done) });
    bar.finish();
    const label = name === 'fashion-mnist' ? 'Fashion-MNIST t10k' : name;
    io.stdout.write(`accuracy ${formatPercent(result.correct / result.total)} (${result.correct}/${result.total}) on ${label}\n`);
    const perImage = result.totalMs / result.total;
    const batchLine = result.batchMs.length > 0
      ? `median ${median(result.batchMs).toFixed(3)} ms per batch of ${batch} (min ${result.batchMs.reduce((a, b) => Math.min(a, b)).toFixed(3)}), `
      : '';
    io.stdout.write(
      `latency: ${batchLine}${perImage.toFixed(4)} ms per image, ${formatInt(1000 / perImage)} images/s ` +
        `(${result.total} images in ${(result.totalMs / 1000).toFixed(2)} s, isa ${isa()}, ${plural(threads(), 'thread')})\n`,
    );
    return 0;
  });
}

// ---- bench -----------------------------------------------------------------------------------

async function benchCommand(args: string[], io: Io): Promise<number> {
  const parsed = parse('bench', args, {
    'vs-onnx': { type: 'string' },
    batch: { type: 'string' },
    threads: { type: 'string' },
    seconds: { type: 'string' },
  }, 1, io);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const batches = (str(values, 'batch') ?? '1,64').split(',').map((b) => intOption(b.trim(), '--batch', 1, 'bench'));
  const threadCount = values.threads === undefined ? undefined : intOption(str(values, 'threads'), '--threads', 1, 'bench', 1, MAX_THREADS);
  const seconds = numberOption(str(values, 'seconds'), '--seconds', 3, 'bench');
  const onnxPath = str(values, 'vs-onnx');
  if (onnxPath !== undefined) inputFile(onnxPath, 'an ONNX model file', 'bench');

  const { isa, setThreads, threads } = await engine();
  if (threadCount !== undefined) setThreads(threadCount);
  return withModel(positionals[0], async (model) => {
    const size = perSample(model);
    const sampleShape = model.inputs[0].sampleShape;
    const ort = onnxPath === undefined ? undefined : await loadOrt();
    const session = ort && onnxPath !== undefined ? await ortSession(ort, readFileSync(onnxPath), threads()) : undefined;
    try {
      io.stdout.write(`lowbit bench ${positionals[0]}: isa ${isa()}, ${plural(threads(), 'thread')}` +
        (session ? `; onnxruntime-node ${onnxPath} with ${plural(threads(), 'intra-op thread')}` : '') + '\n\n');
      const rows: string[][] = [];
      const rnd = random(1);
      for (const batch of batches) {
        const x = Float32Array.from({ length: batch * size }, rnd);
        const impls: Impl[] = [{ name: 'lowbit', run: () => model.runSync(x) }];
        if (ort && session) {
          const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x, [batch, ...sampleShape]) };
          impls.push({ name: 'onnxruntime', run: () => session.run(feeds), async: true });
        }
        io.stderr.write(`timing batch ${batch} ...\n`);
        const rounds = 5;
        const timings = await measure(impls, {
          warmupMs: (seconds * 1000 * 0.2) / impls.length,
          rounds,
          roundMs: (seconds * 1000 * 0.8) / (rounds * impls.length),
        });
        const lowbit = timings.get('lowbit')!;
        const reference = timings.get('onnxruntime');
        for (const impl of impls) {
          const t = timings.get(impl.name)!;
          const row = [String(batch), impl.name, t.median.toFixed(3), t.min.toFixed(3), formatInt((1000 * batch) / t.median), String(t.runs)];
          if (reference) row.push(impl.name === 'lowbit' ? `${(reference.median / lowbit.median).toFixed(2)}x` : '1.00x');
          rows.push(row);
        }
      }
      const header = ['batch', 'impl', 'median ms', 'min ms', 'images/s', 'runs'];
      if (session) header.push('speed vs ORT');
      io.stdout.write(formatTable(header, rows, ['right', 'left']));
      return 0;
    } finally {
      await session?.release();
    }
  });
}

// ---- main ------------------------------------------------------------------------------------

const COMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = {
  convert: convertCommand,
  info: infoCommand,
  run: runCommand,
  eval: evalCommand,
  bench: benchCommand,
  demo: async (args, io) => (await import('../demo/fashion-mnist.js')).runDemo(args, io),
};

const defaultIo: Io = { stdout: process.stdout, stderr: process.stderr };

/**
 * The whole command line: runs `argv` (without `node` and the script) and returns the exit code.
 * @example process.exitCode = await main(process.argv.slice(2));
 */
export async function main(argv: readonly string[], io: Io = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined) throw new UsageError('missing a command');
    if (command === '--help' || command === '-h') {
      io.stdout.write(SUMMARY);
      return 0;
    }
    if (command === 'help') {
      if (rest.length === 0) {
        io.stdout.write(SUMMARY);
        return 0;
      }
      if (rest.length > 1 || !(rest[0] in USAGE)) throw new UsageError(`help: unknown command '${rest.join(' ')}'`);
      io.stdout.write(USAGE[rest[0]]);
      return 0;
    }
    const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
    if (!run) throw new UsageError(command.startsWith('-') ? `unknown option '${command}' (a command comes first)` : `unknown command '${command}'`);
    return await run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`lowbit: ${error.message}\n\n${error.command ? USAGE[error.command] : SUMMARY}`);
      return 2;
    }
    return reportError(error, io);
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
