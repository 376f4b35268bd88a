/**
 * Sets the pool size exactly, past setThreads' cap at the usable CPUs: the thread-count tests run
 * more threads than this machine has cores, to exercise every way the operators split their work.
 */
import { native } from '../../lib/native.js';

export function forceThreads(n: number): void {
  native.setThreads(n);
}
