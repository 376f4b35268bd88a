/**
 * Calibration: runs the float graph on the user's samples and records the range of every
 * activation, from which the quantizer picks per-tensor scales.
 */
import { QuantizationError } from '../errors.js';
import { evaluate } from '../onnx/evaluate.js';
import type { FloatGraph } from '../onnx/ir.js';
import type { FloatTensor } from '../onnx/evaluate.js';

/** The observed range of one tensor; `lo <= 0 <= hi` unless the tensor never crossed zero. */
export interface TensorRange {
  min: number;
  max: number;
  /** the range the quantizer uses: [min, max], or the percentile-clipped one */
  lo: number;
  hi: number;
}

export type CalibrationMethod = 'minmax' | 'percentile';

export interface CalibrationOptions {
  /** 'minmax' (default) uses the extremes; 'percentile' clips to the given percentile of |x| */
  method?: CalibrationMethod;
  /** for 'percentile', in (0, 100]; default 99.99 */
  percentile?: number;
  /** samples per float evaluation */
  batch?: number;
  onProgress?: (done: number, total: number) => void;
  /** receives what is degenerate but not an error: all-zero tensors, ranges set by a few outliers */
  warnings?: string[];
  /** sees every tensor of each batch of `n` samples from sample `first` on (the float reference,
   *  the layer statistics of weight rounding) */
  observe?: (values: Map<string, FloatTensor>, first: number, n: number) => void;
}

/** Up to this many values per tensor are kept (a uniform sample) to estimate percentiles. */
const RESERVOIR = 1 << 16;
/** Activations are quantized to 8 bits: a range spans this many steps. */
const STEPS = 255;

class Observer {
  min = Infinity;
  max = -Infinity;
  seen = 0;
  nonzero = 0;
  /** nonzero values by float32 exponent, to tell how many a range leaves in its lowest steps */
  readonly exponents = new Float64Array(256);
  /** where the first NaN or infinity was seen */
  nonFinite?: { value: number; sample: number };
  /** for percentiles only: a uniform sample of |v|, grown as values arrive (a tensor of 10
   *  values needs 10, and min/max ranges need none) */
  private sample: Float32Array | null;
  private state = 0x9e3779b9; // a fixed seed: calibration is deterministic

  constructor(percentile: boolean) {
    this.sample = percentile ? new Float32Array(0) : null;
  }

  /** `data` holds `samples` whole samples, the first being sample `first` of the calibration set. */
  add(data: Float32Array, first: number, samples: number) {
    const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
    for (let i = 0; i < data.length; ++i) {
      const v = data[i];
      const e = (bits[i] >>> 23) & 255;
      if (e === 255) {
        this.nonFinite ??= { value: v, sample: first + Math.floor(i / (data.length / samples)) };
        continue;
      }
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
      if (v !== 0) {
        ++this.nonzero;
        ++this.exponents[e];
      }
      if (this.sample) this.keep(Math.abs(v));
      ++this.seen;
    }
  }

  /** Reservoir sampling (Algorithm R). */
  private keep(a: number) {
    if (this.seen < RESERVOIR) {
      if (this.seen === this.sample!.length) {
        const grown = new Float32Array(Math.min(RESERVOIR, Math.max(256, 2 * this.seen)));
        grown.set(this.sample!);
        this.sample = grown;
      }
      this.sample![this.seen] = a;
    } else {
      this.state = (Math.imul(this.state, 1664525) + 1013904223) >>> 0;
      const j = Math.floor((this.state / 2 ** 32) * (this.seen + 1));
      if (j < RESERVOIR) this.sample![j] = a;
    }
  }

  range(method: CalibrationMethod, percentile: number): TensorRange {
    const min = Math.min(0, this.min),
      max = Math.max(0, this.max);
    if (method === 'minmax' || !this.sample || this.seen === 0) return { min, max, lo: min, hi: max };
    const sorted = this.sample.slice(0, Math.min(this.seen, RESERVOIR)).sort();
    const clip = sorted[Math.min(sorted.length - 1, Math.floor((percentile / 100) * sorted.length))];
    return { min, max, lo: Math.max(min, -clip), hi: Math.min(max, clip) };
  }

  /** Whether most nonzero values lie within two 8-bit steps of zero of `r` (counted by whole
   *  binary orders of magnitude, so it errs towards silence). */
  collapses(r: TensorRange): boolean {
    const limit = (2 * (r.hi - r.lo)) / STEPS;
    let below = 0;
    // exponent e holds |v| in [2^(e-127), 2^(e-126))
    for (let e = 0; e < 255 && 2 ** (e - 126) <= limit; ++e) below += this.exponents[e];
    return below > this.nonzero / 2;
  }
}

const listed = (names: string[]) =>
  names
    .slice(0, 3)
    .map((n) => `"${n}"`)
    .join(', ') + (names.length > 3 ? ` and ${names.length - 3} more` : '');

/**
 * Ranges of every tensor of `graph` over `samples` (whole samples of its single input, in the
 * input's layout). The graph input itself is always min/max: clipping the input is never wanted.
 * @throws RangeError (a bad option; samples that are not whole, or not finite), QuantizationError
 *   (a tensor of the float model becomes NaN or infinite on finite samples)
 */
export function calibrate(
  graph: FloatGraph,
  samples: Float32Array,
  options: CalibrationOptions = {},
): Map<string, TensorRange> {
  if (graph.inputs.length !== 1)
    throw new RangeError(`calibration: supported for models with one input, this one has ${graph.inputs.length}`);
  const method = options.method ?? 'minmax';
  if (method !== 'minmax' && method !== 'percentile') {
    throw new RangeError(
      `calibrationMethod: expected 'minmax' or 'percentile', got ${typeof method === 'string' ? `'${method}'` : String(method)}`,
    );
  }
  const percentile = options.percentile ?? 99.99;
  if (!(percentile > 0 && percentile <= 100))
    throw new RangeError(`percentile: expected a number in (0, 100], got ${percentile}`);
  const input = graph.inputs[0];
  const sampleDims = graph.tensors.get(input)!.dims.slice(1);
  const perSample = sampleDims.reduce((a, b) => a * b, 1);
  if (samples.length === 0 || samples.length % perSample !== 0) {
    throw new RangeError(
      `calibration: expected whole samples of input "${input}" [N, ${sampleDims.join(', ')}] (${perSample} values each), got ${samples.length} values` +
        (samples.length > perSample
          ? ` (${Math.floor(samples.length / perSample)} samples and ${samples.length % perSample} values)`
          : ''),
    );
  }
  for (let i = 0; i < samples.length; ++i) {
    if (!Number.isFinite(samples[i])) {
      throw new RangeError(
        `calibration: value ${i} (sample ${Math.floor(i / perSample)}, index ${i % perSample} within it) is ${samples[i]}; expected finite numbers`,
      );
    }
  }
  const count = samples.length / perSample;
  const batch = options.batch ?? 16;
  const producer = new Map(graph.nodes.map((n) => [n.output, n.name]));
  const observers = new Map<string, Observer>();
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    const data = samples.subarray(start * perSample, (start + n) * perSample);
    const values = evaluate(graph, new Map([[input, { dims: [n, ...sampleDims], data }]]), { keep: 'all' });
    // in topological order: the first non-finite tensor is where the model breaks
    for (const [name, t] of values) {
      let o = observers.get(name);
      if (!o) observers.set(name, (o = new Observer(method === 'percentile' && name !== input)));
      o.add(t.data, start, n);
      if (o.nonFinite) {
        throw new QuantizationError(
          `calibration: tensor "${name}" (output of node "${producer.get(name)}") is ${o.nonFinite.value} on sample ${o.nonFinite.sample}, ` +
            'although every calibration value is finite: the float model overflows float32 or divides by zero (check its weights and normalization parameters)',
        );
      }
    }
    options.observe?.(values, start, n);
    options.onProgress?.(start + n, count);
  }
  const ranges = new Map<string, TensorRange>();
  const empty: string[] = [];
  const collapsed: string[] = [];
  for (const [name, o] of observers) {
    const r = o.range(name === input ? 'minmax' : method, percentile);
    ranges.set(name, r);
    if (r.lo === 0 && r.hi === 0) empty.push(name);
    else if (o.collapses(r)) collapsed.push(name);
  }
  const warnings = options.warnings;
  if (warnings) {
    if (empty.includes(input)) {
      warnings.push(
        `calibration: every calibration sample is all zeros (input "${input}"): the activation ranges say nothing about real inputs`,
      );
    } else if (empty.length > 0) {
      warnings.push(
        `calibration: ${empty.length > 1 ? 'tensors' : 'tensor'} ${listed(empty)} ${empty.length > 1 ? 'are' : 'is'} 0 on every calibration sample, so the quantization range is empty`,
      );
    }
    if (collapsed.length > 0) {
      const extent = (name: string) => Math.max(-ranges.get(name)!.lo, ranges.get(name)!.hi);
      const worst = collapsed.reduce((a, b) => (extent(b) > extent(a) ? b : a));
      warnings.push(
        `calibration: in ${collapsed.length} tensor${collapsed.length > 1 ? 's' : ''} (${listed(collapsed)}) most nonzero values lie within two of the ` +
          `255 quantization steps of the range, which a few outlying values set (in "${worst}", up to ${extent(worst).toPrecision(3)}); check the calibration data` +
          (method === 'minmax' && collapsed.some((name) => name !== input)
            ? `, or use calibrationMethod 'percentile'`
            : ''),
      );
    }
  }
  return ranges;
}
