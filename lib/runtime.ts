/** Process-wide settings: which ISA the kernels use and how many threads they run on. */
import { callNative } from './errors.js';
import { native } from './native.js';

/** `avx512`: AVX-512 F+BW+VL+VNNI (integer GEMMs with vpdpbusd; the other families run their avx2 kernels). */
export type Isa = 'scalar' | 'avx2' | 'avx512' | 'neon';

/** The ISA the kernels use now: the best this CPU supports, or the one `LOWBIT_ISA` forced. */
export function isa(): Isa {
  return native.isa() as Isa;
}

/** Every ISA this build and CPU can run, best last. */
export function supportedIsas(): Isa[] {
  return native.supportedIsas() as Isa[];
}

/**
 * Forces the kernels onto one ISA for the whole process, every worker thread included (as
 * `LOWBIT_ISA` does at load).
 * @throws UnsupportedError if this CPU or build lacks it, RangeError for an unknown name
 */
export function setIsa(name: Isa): void {
  if (typeof name !== 'string')
    throw new TypeError(`isa: expected 'scalar', 'avx2', 'avx512' or 'neon', got ${typeof name}`);
  callNative(() => native.setIsa(name));
}

/**
 * Threads of the shared worker pool (the calling thread included). Default: the CPUs this process
 * may use ({@link usableCpus}), or `LOWBIT_THREADS`.
 */
export function threads(): number {
  return native.threads();
}

/**
 * The CPUs this process may run on: its CPU affinity (`taskset`, container cpusets), further
 * limited by a cgroup CPU quota (v2 `cpu.max`, v1 `cpu.cfs_quota_us`), rounded up.
 */
export function usableCpus(): number {
  return native.usableCpus();
}

let warnedCap = false;

/**
 * Sizes the shared worker pool; all operators and concurrent calls share it, from every worker
 * thread of the process too (their jobs take turns on it). Threads beyond the
 * usable CPUs add context switches, never speed, so `n` is capped at {@link usableCpus}, with one
 * process warning (code `LOWBIT_THREADS`) the first time. Where that count is wrong, the
 * `LOWBIT_THREADS` environment variable sets the default exactly.
 * @param n an integer in [1, 256]
 * @returns the thread count now in use
 * @throws RangeError outside that range
 */
export function setThreads(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 256)
    throw new RangeError(`threads: expected an integer in [1, 256], got ${String(n)}`);
  const cap = usableCpus();
  if (n > cap) {
    if (!warnedCap) {
      warnedCap = true;
      process.emitWarning(`setThreads(${n}): this process may use ${cap} CPU(s); using ${cap} threads`, {
        code: 'LOWBIT_THREADS',
      });
    }
    n = cap;
  }
  callNative(() => native.setThreads(n));
  return n;
}
