/**
 * Small ONNX models for the importer's tests (the writer is lib/onnx/builder.ts), run with
 * onnxruntime-node as the reference.
 */
import * as ort from 'onnxruntime-node';
import type { onnx as proto } from 'onnx-proto';
import type { Rng } from './rng.js';
import { tensor } from '../../lib/onnx/builder.js';

// The ONNX writer itself lives in lib/onnx/builder.ts (the QDQ exporter writes with it).
export * from '../../lib/onnx/builder.js';

/** Uniform values in [lo, hi). */
export function randomValues(rng: Rng, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let k = 0; k < n; ++k) a[k] = lo + (hi - lo) * rng.float();
  return a;
}

/** An initializer of uniform random values in [lo, hi). */
export function randomTensor(rng: Rng, name: string, dims: number[], lo = -1, hi = 1): proto.ITensorProto {
  return tensor(
    name,
    dims,
    randomValues(
      rng,
      dims.reduce((a, b) => a * b, 1),
      lo,
      hi,
    ),
  );
}

/** Relative RMS error of a against b. */
export function relativeRms(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let k = 0; k < b.length; ++k) {
    num += (a[k] - b[k]) ** 2;
    den += b[k] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

/** The fraction of values whose signs (x < 0) differ. */
export function signMismatch(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let differ = 0;
  for (let k = 0; k < b.length; ++k) if (a[k] < 0 !== b[k] < 0) ++differ;
  return differ / b.length;
}

export interface Feed {
  dims: number[];
  data: Float32Array;
}

/** Runs the model in onnxruntime-node (one thread, no graph optimizations beyond the basic ones). */
export async function runOrt(bytes: Uint8Array, feeds: Record<string, Feed>): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    // The ONNX semantics, unoptimized: onnxruntime's basic level fuses a zero Pad into a following
    // MaxPool's pads, which pad with -infinity, so a window of negative values and zeros differs.
    graphOptimizationLevel: 'disabled',
  });
  try {
    const inputs: Record<string, ort.Tensor> = {};
    for (const [name, feed] of Object.entries(feeds)) inputs[name] = new ort.Tensor('float32', feed.data, feed.dims);
    const out = await session.run(inputs);
    const result: Record<string, Float32Array> = {};
    for (const [name, value] of Object.entries(out)) result[name] = value.data as Float32Array;
    return result;
  } finally {
    await session.release();
  }
}

/** Largest |a - b| / max(1, |b|) over two arrays, with the index (or Infinity when lengths differ). */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): { error: number; at: number } {
  if (a.length !== b.length) return { error: Infinity, at: -1 };
  let error = 0;
  let at = -1;
  for (let k = 0; k < a.length; ++k) {
    const e = Math.abs(a[k] - b[k]) / Math.max(1, Math.abs(b[k]));
    if (!(e <= error)) {
      error = e;
      at = k;
    }
  }
  return { error, at };
}
