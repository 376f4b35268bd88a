/**
 * Small ONNX models for the importer's tests (the writer is lib/onnx/builder.ts), run with
 * onnxruntime-node as the reference.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as Ort from 'onnxruntime-node';
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

/**
 * onnxruntime-node runs in this process, except under qemu-aarch64 (scripts/test-arm64.sh), where
 * the arm64 onnxruntime-node crashes at load: there LOWBIT_TEST_HOST_ORT (a JSON array: the host's
 * node and host-ort.mjs) runs runOrt's models on the host, and the few tests that need onnxruntime
 * itself in process (its optimizer's output, typed tensors, the CLI's own use) are skipped.
 */
export const ORT_IN_PROCESS = !process.env.LOWBIT_TEST_HOST_ORT;

/**
 * Runs the model in onnxruntime-node, one thread, at graph optimization `level`: by default
 * 'disabled', the ONNX semantics (onnxruntime's basic level fuses a zero Pad into a following
 * MaxPool's pads, which pad with -infinity, so a window of negative values and zeros differs).
 */
export async function runOrt(
  bytes: Uint8Array,
  feeds: Record<string, Feed>,
  level: 'disabled' | 'all' = 'disabled',
): Promise<Record<string, Float32Array>> {
  const options: Ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: level,
  };
  if (process.env.LOWBIT_TEST_HOST_ORT)
    return runHostOrt(JSON.parse(process.env.LOWBIT_TEST_HOST_ORT), bytes, feeds, options);
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(bytes, options);
  try {
    const inputs: Record<string, Ort.Tensor> = {};
    for (const [name, feed] of Object.entries(feeds)) inputs[name] = new ort.Tensor('float32', feed.data, feed.dims);
    const out = await session.run(inputs);
    const result: Record<string, Float32Array> = {};
    for (const [name, value] of Object.entries(out)) result[name] = value.data as Float32Array;
    return result;
  } finally {
    await session.release();
  }
}

function runHostOrt(
  command: string[],
  bytes: Uint8Array,
  feeds: Record<string, Feed>,
  options: Ort.InferenceSession.SessionOptions,
): Record<string, Float32Array> {
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-host-ort-'));
  try {
    writeFileSync(join(dir, 'model.onnx'), bytes);
    const names = Object.entries(feeds).map(([name, feed], i) => {
      writeFileSync(join(dir, `in${i}.f32`), feed.data);
      return { name, dims: feed.dims };
    });
    writeFileSync(join(dir, 'request.json'), JSON.stringify({ feeds: names, options }));
    const r = spawnSync(command[0], [...command.slice(1), dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`host onnxruntime failed (exit ${r.status}): ${r.stderr}`);
    const { outputs } = JSON.parse(readFileSync(join(dir, 'response.json'), 'utf8')) as { outputs: string[] };
    return Object.fromEntries(
      outputs.map((name, i) => {
        const out = readFileSync(join(dir, `out${i}.f32`));
        return [name, new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.length))];
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
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
