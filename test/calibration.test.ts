/**
 * Calibration (lib/convert/calibrate.ts) through convertOnnx: a calibration method it does not
 * know, calibration values that are not finite or not whole samples, and a float model that
 * overflows on finite samples are named errors; all-zero data and a range set by one outlier
 * convert with a warning in the report. And memory: a 10,000-tensor graph calibrates without a
 * percentile sample per tensor.
 */
import { describe, expect, it } from 'vitest';
import { calibrate } from '../lib/convert/calibrate.js';
import { convertOnnxWithReport, type ConvertOptions } from '../lib/convert/convert.js';
import { QuantizationError } from '../lib/errors.js';
import { importOnnx } from '../lib/onnx/import.js';
import { i, model, node, tensor, valueInfo } from './helpers/onnx-builder.js';

/** input [N, 1, 2, 2] -> Flatten -> Gemm 4 -> 3 (weights `w`, each row different) -> logits */
function tiny(w = 1): Uint8Array {
  return model({
    nodes: [
      node('Flatten', ['input'], ['flat'], { axis: i(1) }),
      node('Gemm', ['flat', 'W', 'b'], ['logits'], { transB: i(1) }, 'fc'),
    ],
    inputs: [valueInfo('input', ['N', 1, 2, 2])],
    outputs: ['logits'],
    initializers: [
      tensor(
        'W',
        [3, 4],
        Array.from({ length: 12 }, (_, k) => w * (((k * 7) % 5) - 2)),
      ),
      tensor('b', [3], [0.1, -0.2, 0.3]),
    ],
  });
}

/** `count` samples of 4 values in (0, 1), the same every run. */
const samples = (count: number) =>
  Float32Array.from({ length: 4 * count }, (_, k) => 0.05 + 0.9 * ((k * 0.618034) % 1));

const convert = (calibration: Float32Array, options: ConvertOptions = {}, onnx = tiny()) =>
  convertOnnxWithReport(onnx, { calibration, ...options });

describe('calibration errors', () => {
  it('refuses a calibrationMethod other than minmax and percentile', async () => {
    for (const method of ['median', 'MinMax', '']) {
      const p = convert(samples(4), { calibrationMethod: method as ConvertOptions['calibrationMethod'] });
      await expect(p).rejects.toThrow(RangeError);
      await expect(
        convert(samples(4), { calibrationMethod: method as ConvertOptions['calibrationMethod'] }),
      ).rejects.toThrow(`calibrationMethod: expected 'minmax' or 'percentile', got '${method}'`);
    }
  });

  it('refuses NaN and infinite calibration values, naming the sample and the index', async () => {
    const cases: [number, number, string][] = [
      [6, NaN, 'value 6 (sample 1, index 2 within it) is NaN'],
      [5, Infinity, 'value 5 (sample 1, index 1 within it) is Infinity'],
      [0, -Infinity, 'value 0 (sample 0, index 0 within it) is -Infinity'],
    ];
    for (const [at, value, message] of cases) {
      const data = samples(4);
      data[at] = value;
      await expect(convert(data)).rejects.toThrow(RangeError);
      await expect(convert(data)).rejects.toThrow(`calibration: ${message}; expected finite numbers`);
    }
    await expect(convert(new Float32Array(8).fill(NaN))).rejects.toThrow(
      'calibration: value 0 (sample 0, index 0 within it) is NaN',
    );
  });

  it('refuses values that are not whole samples, naming the input and its sample size', async () => {
    await expect(convert(samples(4).subarray(0, 6))).rejects.toThrow(RangeError);
    await expect(convert(samples(4).subarray(0, 6))).rejects.toThrow(
      'calibration: expected whole samples of input "input" [N, 1, 2, 2] (4 values each), got 6 values',
    );
  });

  it('a float model that overflows on finite samples is a QuantizationError naming the tensor and the sample', async () => {
    const data = samples(4);
    data.fill(1e10, 8, 12); // sample 2: 1e10 * 1e30 is beyond float32
    await expect(convert(data, {}, tiny(1e30))).rejects.toThrow(QuantizationError);
    await expect(convert(data, {}, tiny(1e30))).rejects.toThrow(
      /calibration: tensor "logits" \(output of node "fc"\) is -?Infinity on sample 2, although every calibration value is finite/,
    );
  });
});

describe('degenerate calibration data converts with a warning in the report', () => {
  it('clean data: no calibration warning', async () => {
    const { report } = await convert(samples(16));
    expect(report.warnings.filter((w) => w.startsWith('calibration'))).toEqual([]);
  });

  it('all zeros', async () => {
    const { report } = await convert(new Float32Array(16));
    expect(report.warnings).toContainEqual(
      expect.stringMatching(/^calibration: every calibration sample is all zeros \(input "input"\)/),
    );
  });

  it('one huge value that sets the input range', async () => {
    for (const calibrationMethod of ['minmax', 'percentile'] as const) {
      const data = samples(16);
      data[37] = 1e30;
      const { report } = await convert(data, { calibrationMethod });
      expect(report.warnings, calibrationMethod).toContainEqual(
        expect.stringMatching(
          /^calibration: in \d+ tensors? \("input".*\) most nonzero values lie within two of the 255 quantization steps of the range, which a few outlying values set/,
        ),
      );
    }
  });
});

describe('calibration memory and percentiles', () => {
  const chain = (n: number) => {
    const nodes = Array.from({ length: n }, (_, k) =>
      node('Relu', [k === 0 ? 'x' : `t${k}`], [k === n - 1 ? 'y' : `t${k + 1}`]),
    );
    return importOnnx(model({ nodes, inputs: [valueInfo('x', ['N', 4])], outputs: ['y'] }));
  };

  it('a 10,000-tensor graph of 4-value tensors needs no 65,536-value sample per tensor', () => {
    const graph = chain(10_000);
    for (const method of ['minmax', 'percentile'] as const) {
      const base = process.memoryUsage().arrayBuffers;
      let peak = 0;
      const ranges = calibrate(graph, samples(64), {
        method,
        onProgress: () => (peak = Math.max(peak, process.memoryUsage().arrayBuffers - base)),
      });
      expect(ranges.size).toBe(10_001);
      // a 256 KiB sample per tensor would be 2.4 GiB
      expect(peak, method).toBeLessThan(256 * 2 ** 20);
    }
  });

  it('percentile ranges from a sample of more values than it keeps', () => {
    const graph = chain(1);
    const data = Float32Array.from({ length: 4 * 50_000 }, (_, k) => -((k * 0.618034) % 1)); // |x| uniform in [0, 1)
    const r = calibrate(graph, data, { method: 'percentile', percentile: 50 }).get(graph.nodes[0].input)!;
    expect(r.lo).toBe(r.min); // the input is always min / max
    const y = calibrate(
      graph,
      Float32Array.from(data, (v) => -v),
      { method: 'percentile', percentile: 50 },
    ).get('y')!;
    expect(y.max).toBeGreaterThan(0.99);
    expect(y.hi).toBeGreaterThan(0.48);
    expect(y.hi).toBeLessThan(0.52);
  });
});
