/**
 * What the `lowbit` command line and the Fashion-MNIST demo share: accuracy over a dataset,
 * onnxruntime-node as the reference, progress bars, tables and the converter's report.
 * Timing follows bench/harness.ts (warm-up, interleaved rounds, medians); lib/ does not import bench/.
 */
import { realpathSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ConversionReport, LayerReport } from './convert/convert.js';
import { toInput, type Dataset } from './data.js';
import type { Model } from './model/model.js';


/** Where the command line writes: `process.stdout` / `process.stderr`, or a test's capture. */
export interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface Io {
  stdout: Output;
  stderr: Output;
}

/** The demo's usage (`lowbit demo`, `npm start`), shared by both entry points. */
export const DEMO_USAGE = `usage: lowbit demo [--full] [--threads N] [--models DIR]   (also: npm start [-- --full] ...)

The Fashion-MNIST example: the shipped .lowbit models against the float ONNX model in
onnxruntime-node: accuracy, size, latency at batch 1 and throughput at batch 64.
  --full              the 10000 test images of Debian's dataset-fashion-mnist instead of the
                      shipped 1000-image slice
  --threads N         threads of lowbit and of onnxruntime's intra-op pool (default: all)
  --models DIR        where the models and the slice are (default: the shipped models/)
`;

/** A command line that cannot be run as given (unknown flag, missing argument, bad value): exit code 2. */
export class UsageError extends Error {
  constructor(message: string, readonly command?: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Runs node:util's parseArgs, turning its errors (unknown flag, missing value) into UsageErrors. */
export function parseCommandArgs<T>(command: string | undefined, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) throw new UsageError((error as Error).message, command);
    throw error;
  }
}

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

/**
 * The addon-backed modules (models, ISA and threads), loaded on first use: help and usage errors
 * work without the compiled addon, and a missing addon is reported like any other error.
 */
export async function engine(): Promise<typeof import('./model/model.js') & typeof import('./runtime.js')> {
  const [model, runtime] = await Promise.all([import('./model/model.js'), import('./runtime.js')]);
  return { ...model, ...runtime };
}

/** Whether the module at `url` is the script node was started with (bin links resolved). */
export function isMainModule(url: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

/** Parses a positive integer option. @throws UsageError */
export function intOption(value: string | undefined, flag: string, fallback: number, command?: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag}: expected an integer ${max < Number.MAX_SAFE_INTEGER ? `in [${min}, ${max}]` : `>= ${min}`}, got '${value}'`, command);
  }
  return n;
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
  if (!isDirectory(dirname(path))) throw new UsageError(`${flag} ${path}: the directory ${dirname(path)} does not exist`, command);
  return path;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Parses a positive number option. @throws UsageError */
export function numberOption(value: string | undefined, flag: string, fallback: number, command?: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`${flag}: expected a number > 0, got '${value}'`, command);
  return n;
}

// ---- timing: lib/timing.ts ------------------------------------------------------------------------

export { measure, median, random, type Impl, type Timing, type TimingPlan } from './timing.js';

// ---- results ------------------------------------------------------------------------------------

export function argmax(a: ArrayLike<number>, offset: number, length: number): number {
  let best = 0;
  for (let i = 1; i < length; ++i) if (a[offset + i] > a[offset + best]) best = i;
  return best;
}

/**
 * A progress bar on `out`: on a terminal one line redrawn in place, `label [#####.....] 250/500`;
 * elsewhere (a pipe, a log file) a plain line at every fifth of the way.
 */
export class Progress {
  private lastDraw = 0;
  private lastFifth = 0;
  private closed = false;

  /** @param plain whether to write the plain lines when `out` is not a terminal (else nothing) */
  constructor(private readonly out: Output, private readonly label: string, private readonly total: number, private readonly plain = true) {}

  update(done: number): void {
    if (this.closed) return;
    if (this.out.isTTY) {
      const now = Date.now();
      if (done < this.total && now - this.lastDraw < 50) return;
      this.lastDraw = now;
      const width = 20;
      const filled = this.total > 0 ? Math.round((width * done) / this.total) : width;
      this.out.write(`\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total}`);
      if (done >= this.total) this.finish();
    } else if (this.plain) {
      const fifth = this.total > 0 ? Math.floor((5 * done) / this.total) : 5;
      if (fifth <= this.lastFifth) return;
      this.lastFifth = fifth;
      this.out.write(`${this.label} ${done}/${this.total}\n`);
      if (done >= this.total) this.closed = true;
    }
  }

  /** Ends the bar's line (on a terminal); idempotent. */
  finish(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.out.isTTY) this.out.write('\n');
  }
}

export type Align = 'left' | 'right';

/** A plain-text table: a header, a rule, rows; columns as wide as their widest cell. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[] = []): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, c) => ((align[c] ?? (c === 0 ? 'left' : 'right')) === 'left' ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n') + '\n';
}

/** 1234567 -> '1,234,567'. */
export function formatInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** 1234567 -> '1.18 MiB'. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(2)} MiB`;
}

export function formatPercent(fraction: number, digits = 2): string {
  return `${(100 * fraction).toFixed(digits)}%`;
}

/** Runs a batch of whole samples and returns the first output's values. */
export type Predict = (input: Float32Array, batch: number) => Float32Array | Promise<Float32Array>;

export function lowbitPredict(model: Model): Predict {
  const output = model.outputs[0].name;
  return (input) => model.runSync(input)[output].data;
}

export interface Accuracy {
  correct: number;
  total: number;
  /** wall time of each full batch, ms */
  batchMs: number[];
  /** wall time of all batches, ms */
  totalMs: number;
}

/**
 * Top-1 accuracy of `predict` on images [0, count) of `ds`, in batches.
 * @param progress called after each batch with the images done
 */
export async function evaluateAccuracy(predict: Predict, ds: Dataset, options: { count?: number; batch?: number; progress?: (done: number) => void } = {}): Promise<Accuracy> {
  const count = Math.min(options.count ?? ds.count, ds.count);
  const batch = options.batch ?? 64;
  let correct = 0;
  let totalMs = 0;
  const batchMs: number[] = [];
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    const input = toInput(ds, start, n);
    const t0 = performance.now();
    const out = await predict(input, n);
    const ms = performance.now() - t0;
    totalMs += ms;
    if (n === batch) batchMs.push(ms);
    const classes = out.length / n;
    for (let i = 0; i < n; ++i) if (argmax(out, i * classes, classes) === ds.labels[start + i]) ++correct;
    options.progress?.(start + n);
  }
  return { correct, total: count, batchMs, totalMs };
}

// ---- onnxruntime-node ------------------------------------------------------------------------

export type Ort = typeof import('onnxruntime-node');
export type OrtSession = import('onnxruntime-node').InferenceSession;

/** onnxruntime-node, loaded on demand: it is a development dependency of lowbit, not a runtime one. */
export async function loadOrt(): Promise<Ort> {
  try {
    const mod = (await import('onnxruntime-node')) as Ort & { default?: Ort };
    return mod.InferenceSession ? mod : mod.default!;
  } catch (error) {
    throw new Error(
      `onnxruntime-node is not available (${(error as Error).message.split('\n')[0]}); ` +
        'install it with `npm install onnxruntime-node` to run the ONNX reference',
    );
  }
}

/** A CPU session as the benchmarks make it: `threads` intra-op threads, sequential, all graph optimizations. */
export function ortSession(ort: Ort, onnx: Uint8Array, threads: number): Promise<OrtSession> {
  return ort.InferenceSession.create(onnx, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

/** Runs the session's first input on a batch of samples of `sampleShape`; returns the first output. */
export function ortPredict(ort: Ort, session: OrtSession, sampleShape: readonly number[]): Predict {
  const input = session.inputNames[0];
  const output = session.outputNames[0];
  return async (data, batch) => {
    const result = await session.run({ [input]: new ort.Tensor('float32', data, [batch, ...sampleShape]) });
    return result[output].data as Float32Array;
  };
}

// ---- the converter's report --------------------------------------------------------------------

/** The conversion report stored in a model's metadata, if any. */
export function reportOf(metadata: Record<string, unknown>): ConversionReport | undefined {
  const report = metadata.report as ConversionReport | undefined;
  return report && Array.isArray(report.layers) ? report : undefined;
}

/** One word for a converted model: 'binary', 'binary+MST', 'W8A8', 'W4A8' or 'mixed W4/W8'. */
export function modelKind(metadata: Record<string, unknown>): string {
  const layers = reportOf(metadata)?.layers ?? [];
  if (layers.some((l) => l.kind === 'binary+MST')) return 'binary+MST';
  if (layers.some((l) => l.kind.startsWith('binary'))) return 'binary';
  const bits = (metadata.options as { bits?: unknown } | undefined)?.bits;
  if (bits === 8) return 'W8A8';
  if (bits === 4) return 'W4A8';
  const kinds = [...new Set(layers.map((l) => l.kind))].sort();
  if (bits === 'mixed' || kinds.length > 1) {
    const four = layers.filter((l) => l.kind === 'W4A8').length;
    return `mixed (${four}/${layers.length} W4)`;
  }
  return kinds[0] ?? 'unknown';
}

/** '0.0123 rel. RMS' or '1.23% signs': a layer's error with its metric. */
export function formatLayerError(layer: LayerReport): string {
  return layer.metric === 'sign-mismatch' ? `${formatPercent(layer.error)} signs differ` : `${formatError(layer.error)} rel. RMS`;
}

/** A relative error: 4 decimals, or 3 significant digits when smaller than 1e-4. */
export function formatError(e: number): string {
  return e !== 0 && Math.abs(e) < 1e-4 ? e.toExponential(2) : e.toFixed(4);
}

/** The per-layer table and the totals of a conversion report. */
export function formatReport(report: ConversionReport): string {
  const notes = report.layers.some((l) => l.note);
  const rows = report.layers.map((l) => [l.name, l.kind, formatInt(l.bytes), formatLayerError(l), ...(notes ? [l.note ?? ''] : [])]);
  let text = formatTable(['layer', 'kind', 'bytes', 'error vs float', ...(notes ? ['MST'] : [])], rows,
    ['left', 'left', 'right', 'right', ...(notes ? ['left' as const] : [])]);
  const layerBytes = report.layers.reduce((s, l) => s + l.bytes, 0);
  text += `layers: ${report.layers.length}, ${formatInt(layerBytes)} bytes of weights and parameters\n`;
  if (typeof report.modelBytes === 'number') text += `model: ${formatInt(report.modelBytes)} bytes (${formatBytes(report.modelBytes)})\n`;
  for (const [name, error] of Object.entries(report.outputError ?? {}))
    text += `output ${name}: relative RMS error ${formatError(error)} vs the float model\n`;
  for (const [name, agree] of Object.entries(report.top1Agreement ?? {}))
    text += `output ${name}: top-1 agreement with the float model ${formatPercent(agree)}\n`;
  if (report.calibrationSamples) text += `calibration samples: ${report.calibrationSamples}\n`;
  for (const warning of report.warnings ?? []) text += `warning: ${warning}\n`;
  return text;
}
