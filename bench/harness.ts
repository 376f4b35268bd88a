/** Shared benchmark machinery: interleaved timing with medians, result rows and table printing. */

/** One contender of a comparison. `run` is timed per call (awaited when `async`). */
export interface Impl {
  name: string;
  run: () => unknown;
  async?: boolean;
  /** called before each batch of calls of this impl (e.g. to switch the ISA), and `after` after it */
  before?: () => void;
  after?: () => void;
}

export interface Timing {
  /** median of the per-call latencies, milliseconds */
  median: number;
  min: number;
  runs: number;
}

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

export interface TimingPlan {
  /** warm-up of each impl before any timed call: this long, and at least 3 calls */
  warmupMs: number;
  /** timed rounds; each round runs every impl back to back for `roundMs` (at least 2 calls) */
  rounds: number;
  roundMs: number;
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/** Calls `impl.run` until `ms` have passed and at least `minCalls` ran; returns the per-call times. */
async function batch(impl: Impl, ms: number, minCalls: number): Promise<number[]> {
  const times: number[] = [];
  impl.before?.();
  try {
    const start = nowMs();
    let t0 = start;
    do {
      if (impl.async) await impl.run();
      else impl.run();
      const t1 = nowMs();
      times.push(t1 - t0);
      t0 = t1;
    } while (t0 - start < ms || times.length < minCalls);
  } finally {
    impl.after?.();
  }
  return times;
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Times the impls of one workload interleaved: after a warm-up, each round runs every impl back to
 * back (starting with a different one each round), so slow phases of a noisy machine hit all alike.
 * The first call of each batch is dropped: it pays for the switch (another impl's worker threads
 * still spinning, caches refilled with this impl's data).
 */
export async function measure(impls: readonly Impl[], plan: TimingPlan): Promise<Map<string, Timing>> {
  for (const impl of impls) await batch(impl, plan.warmupMs, 3);
  const samples = new Map<string, number[]>(impls.map((i) => [i.name, []]));
  for (let r = 0; r < plan.rounds; ++r) {
    for (let k = 0; k < impls.length; ++k) {
      const impl = impls[(r + k) % impls.length];
      samples.get(impl.name)!.push(...(await batch(impl, plan.roundMs, 2)).slice(1));
    }
  }
  return new Map(
    [...samples].map(([name, times]) => [name, { median: median(times), min: Math.min(...times), runs: times.length }]),
  );
}

/** Uniform [0, 1) values from a small seeded generator, so every run measures the same data. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function fill<A extends Float32Array | Uint8Array | Int8Array | Int32Array>(a: A, next: () => number): A {
  for (let i = 0; i < a.length; ++i) a[i] = next();
  return a;
}

/** Gop/s of a layer with `macs` multiply-accumulates run in `ms`: 2 ops per MAC. */
export function gops(macs: number, ms: number): number {
  return (2 * macs) / (ms * 1e6);
}

/**
 * Prints a Markdown table row by row as results arrive: the header now, then one line per `row()`.
 * Columns are as wide as their title or `width`, whichever is larger; all but the first align right.
 */
export function tablePrinter(columns: readonly (readonly [title: string, width: number])[], write = console.log): (cells: readonly string[]) => void {
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
