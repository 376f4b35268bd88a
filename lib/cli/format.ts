/**
 * What the command line writes: where it writes (`Io`), progress bars, plain-text tables, numbers,
 * and the converter's report as `lowbit convert` and `lowbit info` print it.
 */
import type { ConversionReport, LayerReport } from '../convert/convert.js';

/** Where the command line writes: `process.stdout` / `process.stderr`, or a test's capture. */
export interface Output {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface Io {
  stdout: Output;
  stderr: Output;
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
  constructor(
    private readonly out: Output,
    private readonly label: string,
    private readonly total: number,
    private readonly plain = true,
  ) {}

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
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly Align[] = [],
): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, c) =>
        (align[c] ?? (c === 0 ? 'left' : 'right')) === 'left' ? cell.padEnd(widths[c]) : cell.padStart(widths[c]),
      )
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

/** (1, 'thread') -> '1 thread', (4, 'thread') -> '4 threads'. */
export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

// ---- the converter's report --------------------------------------------------------------------

/** The conversion report stored in a model's metadata, if any. */
export function reportOf(metadata: Record<string, unknown>): ConversionReport | undefined {
  const report = metadata.report as ConversionReport | undefined;
  return report && Array.isArray(report.layers) ? report : undefined;
}

/** One word for a converted model: 'binary', 'binary+MST', 'W8A8', 'W7A8', 'W4A8' or 'mixed W4/W8'. */
export function modelKind(metadata: Record<string, unknown>): string {
  const layers = reportOf(metadata)?.layers ?? [];
  if (layers.some((l) => l.kind === 'binary+MST')) return 'binary+MST';
  if (layers.some((l) => l.kind.startsWith('binary'))) return 'binary';
  const bits = (metadata.options as { bits?: unknown } | undefined)?.bits;
  if (bits === 8) return 'W8A8';
  if (bits === 7) return 'W7A8';
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
  return layer.metric === 'sign-mismatch'
    ? `${formatPercent(layer.error)} signs differ`
    : `${formatError(layer.error)} rel. RMS`;
}

/** A relative error: 4 decimals, or 3 significant digits when smaller than 1e-4. */
export function formatError(e: number): string {
  return e !== 0 && Math.abs(e) < 1e-4 ? e.toExponential(2) : e.toFixed(4);
}

/** The per-layer table and the totals of a conversion report. */
export function formatReport(report: ConversionReport): string {
  const notes = report.layers.some((l) => l.note);
  // 'mixed' bits: the output error with each layer alone at 4 bits, which chose the bits.
  const sensitivity = report.layers.some((l) => typeof l.sensitivity === 'number');
  // reducedRange 'auto': how much each inner layer alone at 7 bits raised the output error.
  const reduced = report.layers.some((l) => typeof l.reducedRangeCost === 'number');
  const optional = (shown: boolean, value: number | undefined) =>
    shown ? [typeof value === 'number' ? formatError(value) : ''] : [];
  const rows = report.layers.map((l) => [
    l.name,
    l.kind,
    formatInt(l.bytes),
    formatLayerError(l),
    ...optional(sensitivity, l.sensitivity),
    ...optional(reduced, l.reducedRangeCost),
    ...(notes ? [l.note ?? ''] : []),
  ]);
  let text = formatTable(
    [
      'layer',
      'kind',
      'bytes',
      'error vs float',
      ...(sensitivity ? ['output error at 4 bits'] : []),
      ...(reduced ? ['output error rise at 7 bits'] : []),
      ...(notes ? ['MST'] : []),
    ],
    rows,
    [
      'left',
      'left',
      'right',
      'right',
      ...(sensitivity ? ['right' as const] : []),
      ...(reduced ? ['right' as const] : []),
      ...(notes ? ['left' as const] : []),
    ],
  );
  const layerBytes = report.layers.reduce((s, l) => s + l.bytes, 0);
  text += `layers: ${report.layers.length}, ${formatInt(layerBytes)} bytes of weights and parameters\n`;
  if (typeof report.modelBytes === 'number')
    text += `model: ${formatInt(report.modelBytes)} bytes (${formatBytes(report.modelBytes)})\n`;
  for (const [name, error] of Object.entries(report.outputError ?? {}))
    text += `output ${name}: relative RMS error ${formatError(error)} vs the float model\n`;
  for (const [name, agree] of Object.entries(report.top1Agreement ?? {}))
    text += `output ${name}: top-1 agreement with the float model ${formatPercent(agree)}\n`;
  if (report.calibrationSamples) text += `calibration samples: ${report.calibrationSamples}\n`;
  for (const warning of report.warnings ?? []) text += `warning: ${warning}\n`;
  return text;
}
