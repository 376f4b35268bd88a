/**
 * What the tests of PyTorch-exported networks share (test/bnn-zoo.test.ts, test/int-zoo.test.ts):
 * Debian's python3-torch, seeded normal inputs and predicted classes.
 */
import { spawnSync } from 'node:child_process';
import { it } from 'vitest';
import type { Rng } from './rng.js';

export const PYTHON = '/usr/bin/python3';
export const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
/** `it` with torch; without it, skipped locally and a failure on CI (a missing dependency cannot pass unnoticed). */
export const torchIt = hasTorch || process.env.CI ? it : it.skip;

/** n seeded standard normal values (Box-Muller). */
export function standardNormal(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; ++i) out[i] = Math.sqrt(-2 * Math.log(1 - rng.float())) * Math.cos(2 * Math.PI * rng.float());
  return out;
}

/** The predicted class of each row of `classes` logits. */
export function argmax(logits: ArrayLike<number>, classes: number): number[] {
  const out: number[] = [];
  for (let r = 0; r * classes < logits.length; ++r) {
    let best = 0;
    for (let c = 1; c < classes; ++c) if (logits[r * classes + c] > logits[r * classes + best]) best = c;
    out.push(best);
  }
  return out;
}
