/** Process-wide settings: which ISA the kernels use and how many threads they run on. */
import { callNative } from './errors.js';
import { native } from './native.js';

export type Isa = 'scalar' | 'avx2' | 'neon';

/** The ISA the kernels use now: the best this CPU supports, or the one `LOWBIT_ISA` forced. */
export function isa(): Isa {
  return native.isa() as Isa;
}

/** Every ISA this build and CPU can run, best last. */
export function supportedIsas(): Isa[] {
  return native.supportedIsas() as Isa[];
}

/**
 * Forces the kernels onto one ISA for the whole process (as `LOWBIT_ISA` does at load).
 * @throws UnsupportedError if this CPU or build lacks it, RangeError for an unknown name
 */
export function setIsa(name: Isa): void {
  if (typeof name !== 'string') throw new TypeError(`isa: expected 'scalar', 'avx2' or 'neon', got ${typeof name}`);
  callNative(() => native.setIsa(name));
}

/** Threads of the shared worker pool (the calling thread included). Default: the CPU's threads. */
export function threads(): number {
  return native.threads();
}

/**
 * Sizes the shared worker pool; all operators and concurrent calls share it.
 * @param n an integer in [1, 256]
 * @throws RangeError outside that range
 */
export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new RangeError(`threads: expected an integer in [1, 256], got ${String(n)}`);
  callNative(() => native.setThreads(n));
}
