/** Shared benchmark machinery: interleaved timing with medians, result rows and table printing. */

export { measure, median, random, type Impl, type Timing, type TimingPlan } from '../lib/timing.js';

/** The JSON form of one measurement (`--json FILE` writes an array of these). */
export interface Row {
  workload: string;
  impl: string;
  threads: number;
  median_ms: number;
  gops: number;
  min_ms: number;
  runs: number;
  /** MST rows (`mst` suite): dense bit-ops / MST bit-ops of the layer's schedule */
  op_ratio?: number;
  /** MST rows: dense weight bits / MST weight bits */
  storage_ratio?: number;
  /** MST rows: mean child distance / K of the schedule */
  mean_dk?: number;
  /** MST rows: the path the cost model picks for this call ('lowbit-dense' or 'lowbit-mst') */
  auto?: string;
}

export function fill<A extends Float32Array | Uint8Array | Int8Array | Int32Array>(a: A, next: () => number): A {
  for (let i = 0; i < a.length; ++i) a[i] = next();
  return a;
}

/** Gop/s of a layer with `macs` multiply-accumulates run in `ms`: 2 ops per MAC. */
/** Cell formatters: milliseconds, a rate, a rounded JSON number, and another time over lowbit's. */
export const ms = (v: number) => v.toFixed(v < 10 ? 3 : 2);
export const rate = (v: number) => v.toFixed(v < 100 ? 1 : 0);
export const round = (v: number, digits: number) => Number(v.toFixed(digits));
export const ratio = (other: number, lowbit: number) => `${(other / lowbit).toFixed(2)}x`;

export function gops(macs: number, ms: number): number {
  return (2 * macs) / (ms * 1e6);
}

/**
 * Prints a Markdown table row by row as results arrive: the header now, then one line per `row()`.
 * Columns are as wide as their title or `width`, whichever is larger; all but the first align right.
 */
export function tablePrinter(
  columns: readonly (readonly [title: string, width: number])[],
  write = console.log,
): (cells: readonly string[]) => void {
  const widths = columns.map(([title, width]) => Math.max(title.length, width));
  const line = (cells: readonly string[]) =>
    '| ' + cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' | ') + ' |';
  write(line(columns.map(([title]) => title)));
  write('|' + widths.map((w, c) => (c === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|');
  return (cells) => write(line(cells));
}

export interface SuiteOptions {
  /** a short run (the whole suite in well under a minute) for CI and smoke checks */
  quick: boolean;
}

/** One comparison suite of `npm run bench -- <name>`: prints its table and returns its rows. */
export interface Suite {
  run(options: SuiteOptions): Promise<Row[]>;
}
