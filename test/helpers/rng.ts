/**
 * Seeded randomness for the test suites. One seed per test file: LOWBIT_TEST_SEED (decimal or
 * 0x-hex) when set, else a random one; it is printed once per file and every derived generator is
 * keyed by (seed, label), so a single failing test replays with
 *   LOWBIT_TEST_SEED=<seed> npx vitest run test/<file> -t '<test name>'
 */

/** mulberry32: small, fast, good enough for test data. Returns uint32. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A uint32. */
  u32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] (inclusive); works for the whole int32 range and beyond up to 2^53. */
  int(lo: number, hi: number): number {
    if (hi < lo) throw new Error(`Rng.int: empty range [${lo}, ${hi}]`);
    const span = hi - lo + 1;
    if (span <= 4294967296) return lo + Math.floor(this.float() * span);
    return lo + Math.floor(((this.u32() * 4294967296 + this.u32()) / 18446744073709551616) * span);
  }

  /** True with probability p. */
  bool(p = 0.5): boolean {
    return this.float() < p;
  }

  pick<T>(values: readonly T[]): T {
    if (values.length === 0) throw new Error('Rng.pick: empty list');
    return values[this.int(0, values.length - 1)];
  }
}

function parseSeed(text: string): number {
  const v = text.trim().toLowerCase().startsWith('0x') ? Number.parseInt(text, 16) : Number(text);
  if (!Number.isFinite(v)) throw new Error(`LOWBIT_TEST_SEED: expected an integer, got '${text}'`);
  return v >>> 0;
}

/**
 * The seed of one test file: from LOWBIT_TEST_SEED or random, logged once.
 * @param file a label for the log line (the file name)
 */
export function fileSeed(file: string): number {
  const env = process.env.LOWBIT_TEST_SEED;
  const seed = env !== undefined && env !== '' ? parseSeed(env) : (Math.random() * 4294967296) >>> 0;
  console.log(`[${file}] LOWBIT_TEST_SEED=${seed}`);
  return seed;
}

/** FNV-1a of a label, to derive independent generators from one seed. */
function hash(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; ++i) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A generator keyed by (seed, label): the same label replays the same data whatever else runs. */
export function rngFor(seed: number, label: string): Rng {
  return new Rng((seed ^ hash(label)) >>> 0);
}
