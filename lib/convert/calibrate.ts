/**
 * Calibration: runs the float graph on the user's samples and records the range of every
 * activation, from which the quantizer picks per-tensor scales.
 */
import { evaluate } from '../onnx/evaluate.js';
import type { FloatGraph } from '../onnx/ir.js';

/** The observed range of one tensor; `lo <= 0 <= hi` unless the tensor never crossed zero. */
export interface TensorRange {
  min: number;
  max: number;
  /** the range the quantizer uses: [min, max], or the percentile-clipped one */
  lo: number;
  hi: number;
}

export interface CalibrationOptions {
  /** 'minmax' (default) uses the extremes; 'percentile' clips to the given percentile of |x| */
  method?: 'minmax' | 'percentile';
  /** for 'percentile', in (0, 100]; default 99.99 */
  percentile?: number;
  /** samples per float evaluation */
  batch?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Up to this many values per tensor are kept (a uniform sample) to estimate percentiles. */
const RESERVOIR = 1 << 16;

class Observer {
  min = Infinity;
  max = -Infinity;
  seen = 0;
  readonly sample = new Float32Array(RESERVOIR);
  private state = 0x9e3779b9; // a fixed seed: calibration is deterministic

  add(data: Float32Array) {
    for (const v of data) {
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
      // reservoir sampling (Algorithm R) of |v|
      if (this.seen < RESERVOIR) this.sample[this.seen] = Math.abs(v);
      else {
        this.state = (Math.imul(this.state, 1664525) + 1013904223) >>> 0;
        const j = Math.floor((this.state / 2 ** 32) * (this.seen + 1));
        if (j < RESERVOIR) this.sample[j] = Math.abs(v);
      }
      ++this.seen;
    }
  }

  range(method: 'minmax' | 'percentile', percentile: number): TensorRange {
    const min = Math.min(0, this.min), max = Math.max(0, this.max);
    if (method === 'minmax' || this.seen === 0) return { min, max, lo: min, hi: max };
    const sorted = this.sample.slice(0, Math.min(this.seen, RESERVOIR)).sort();
    const clip = sorted[Math.min(sorted.length - 1, Math.floor((percentile / 100) * sorted.length))];
    return { min, max, lo: Math.max(min, -clip), hi: Math.min(max, clip) };
  }
}

/**
 * Ranges of every tensor of `graph` over `samples` (whole samples of its single input, in the
 * input's layout). The graph input itself is always min/max: clipping the input is never wanted.
 */
export function calibrate(graph: FloatGraph, samples: Float32Array, options: CalibrationOptions = {}): Map<string, TensorRange> {
  if (graph.inputs.length !== 1) throw new RangeError(`calibration: supported for models with one input, this one has ${graph.inputs.length}`);
  const method = options.method ?? 'minmax';
  const percentile = options.percentile ?? 99.99;
  if (!(percentile > 0 && percentile <= 100)) throw new RangeError(`percentile: expected a number in (0, 100], got ${percentile}`);
  const input = graph.inputs[0];
  const sampleDims = graph.tensors.get(input)!.dims.slice(1);
  const perSample = sampleDims.reduce((a, b) => a * b, 1);
  if (samples.length === 0 || samples.length % perSample !== 0)
    throw new RangeError(`calibration data: expected whole samples of [${sampleDims.join(', ')}] (${perSample} values each), got ${samples.length} values`);
  const count = samples.length / perSample;
  const batch = options.batch ?? 16;
  const observers = new Map<string, Observer>();
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    const data = samples.subarray(start * perSample, (start + n) * perSample);
    const values = evaluate(graph, new Map([[input, { dims: [n, ...sampleDims], data }]]), { keep: 'all' });
    for (const [name, t] of values) {
      let o = observers.get(name);
      if (!o) observers.set(name, (o = new Observer()));
      o.add(t.data);
    }
    options.onProgress?.(start + n, count);
  }
  const ranges = new Map<string, TensorRange>();
  for (const [name, o] of observers) ranges.set(name, o.range(name === input ? 'minmax' : method, percentile));
  return ranges;
}
