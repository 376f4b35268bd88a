/**
 * Interleaved timing with medians, shared by the benchmarks (bench/) and the CLI's `bench`, `eval`
 * and demo: on a noisy machine, medians over interleaved rounds and ratios are what can be trusted.
 */

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
      const times = await batch(impl, plan.roundMs, 2);
      const into = samples.get(impl.name)!;
      for (let i = 1; i < times.length; ++i) into.push(times[i]); // no spread: fast calls give 100k+ times
    }
  }
  return new Map(
    [...samples].map(([name, times]) => [
      name,
      { median: median(times), min: times.reduce((a, b) => Math.min(a, b), Infinity), runs: times.length },
    ]),
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
