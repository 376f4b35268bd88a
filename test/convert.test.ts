// convertOnnx on small synthetic models built in code: every lowering path (residual add,
// concat, PReLU / LeakyReLU, pools, softmax, QDQ, binary layers) against onnxruntime-node or the
// float evaluator, the per-layer report, and the conversion errors.
import { describe, expect, it } from 'vitest';
import { AccuracyError, convertOnnx, convertOnnxWithReport, loadModel, UnsupportedError } from '../lib/index.js';
import { importOnnx } from '../lib/onnx/import.js';
import { evaluate } from '../lib/onnx/evaluate.js';
import {
  f,
  ints,
  model,
  node,
  randomValues,
  randomTensor,
  relativeRms,
  runOrt,
  T,
  tensor,
  valueInfo,
  type ModelSpec,
} from './helpers/onnx-builder.js';
import { fileSeed, rngFor, type Rng } from './helpers/rng.js';

const SEED = fileSeed('convert');
/** Uniform random weights in [-scale, scale). */
const weights = (rng: Rng, name: string, dims: number[], scale = 1) => randomTensor(rng, name, dims, -scale, scale);

/**
 * input [N, 3, 8, 8] -> Conv 3->8 + Relu -> MaxPool 2 -> Conv 8->8 (pad 1) -> Add (residual) -> Relu
 * -> Conv 8->8 -> LeakyRelu -> Concat with the residual -> AveragePool 2 -> PRelu -> GlobalAveragePool
 * -> Flatten -> Gemm 16->5 -> Softmax
 */
function cnn(rng: Rng): Uint8Array {
  const spec: ModelSpec = {
    nodes: [
      node('Conv', ['x', 'w1', 'b1'], ['c1'], { pads: ints(1, 1, 1, 1) }),
      node('Relu', ['c1'], ['r1']),
      node('MaxPool', ['r1'], ['p1'], { kernel_shape: ints(2, 2), strides: ints(2, 2) }),
      node('Conv', ['p1', 'w2', 'b2'], ['c2'], { pads: ints(1, 1, 1, 1) }),
      node('Add', ['c2', 'p1'], ['a2']),
      node('Relu', ['a2'], ['r2']),
      node('Conv', ['r2', 'w3', 'b3'], ['c3'], { pads: ints(1, 1, 1, 1) }),
      node('LeakyRelu', ['c3'], ['l3'], { alpha: f(0.1) }),
      node('Concat', ['l3', 'r2'], ['cat'], { axis: { i: 1 } }),
      node('AveragePool', ['cat'], ['ap'], { kernel_shape: ints(2, 2), strides: ints(2, 2) }),
      node('PRelu', ['ap', 'slope'], ['pr']),
      node('GlobalAveragePool', ['pr'], ['g']),
      node('Flatten', ['g'], ['fl']),
      node('Gemm', ['fl', 'wf', 'bf'], ['logits'], { transB: { i: 1 } }),
      node('Softmax', ['logits'], ['probs'], { axis: { i: 1 } }),
    ],
    inputs: [valueInfo('x', ['N', 3, 8, 8])],
    outputs: ['probs'],
    initializers: [
      weights(rng, 'w1', [8, 3, 3, 3], 0.5),
      weights(rng, 'b1', [8], 0.1),
      weights(rng, 'w2', [8, 8, 3, 3], 0.2),
      weights(rng, 'b2', [8], 0.1),
      weights(rng, 'w3', [8, 8, 3, 3], 0.2),
      weights(rng, 'b3', [8], 0.1),
      tensor(
        'slope',
        [16, 1, 1],
        Float32Array.from({ length: 16 }, (_, k) => (k % 3) * 0.2 - 0.1),
      ),
      weights(rng, 'wf', [5, 16], 1),
      weights(rng, 'bf', [5], 0.1),
    ],
  };
  return model(spec);
}

describe('integer models against onnxruntime', () => {
  it.each([8, 4] as const)(
    'a residual CNN with concat, PReLU, pools and softmax at %d bits follows the float model',
    async (bits) => {
      const rng = rngFor(SEED, `cnn${bits}`);
      const onnx = cnn(rng);
      const calibration = randomValues(rng, 64 * 192, 0, 1);
      const { bytes, report } = await convertOnnxWithReport(onnx, { calibration, bits, boundaryBits: 8 });
      // at 8 bits an inner layer may take reduced-range weights (reducedRange 'auto')
      const inner = bits === 8 ? expect.stringMatching(/^W[78]A8$/) : 'W4A8';
      expect(report.layers.map((l) => l.kind)).toEqual(['W8A8', inner, inner, 'W8A8']);
      for (const layer of report.layers) {
        expect(layer.metric).toBe('relative-rms');
        expect(layer.error).toBeLessThan(bits === 8 ? 0.08 : 0.4);
        expect(layer.bytes).toBeGreaterThan(0);
      }
      const ops = loadModel(bytes)
        .graph()
        .nodes.map((n) => n.op);
      for (const op of [
        'quantize',
        'qconv2d',
        'maxpool',
        'add',
        'concat',
        'avgpool',
        'prelu',
        'global_avgpool',
        'qdense',
        'affine',
        'softmax',
      ])
        expect(ops).toContain(op);

      const x = randomValues(rng, 16 * 192, 0, 1);
      const got = loadModel(bytes).runSync(x).probs.data;
      const want = (await runOrt(onnx, { x: { dims: [16, 3, 8, 8], data: x } })).probs;
      // Over many seeds the probabilities differ by 0.4-2% (W8) and 0.2-7% (W4) relative RMS.
      expect(relativeRms(got, want)).toBeLessThan(bits === 8 ? 0.05 : 0.25);
      for (let r = 0; r < 16; ++r) expect(got.subarray(r * 5, r * 5 + 5).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    },
  );

  it('percentile calibration clips the activation ranges', async () => {
    const rng = rngFor(SEED, 'percentile');
    const onnx = cnn(rng);
    const calibration = randomValues(rng, 64 * 192, 0, 1);
    const scales = async (options: object) =>
      (
        loadModel(await convertOnnx(onnx, { calibration, ...options })).graph().tensors as {
          name: string;
          scale?: number;
        }[]
      )
        .filter((t) => t.name === '/relu2' || t.scale !== undefined)
        .map((t) => t.scale ?? 0);
    const minmax = await scales({});
    const clipped = await scales({ calibrationMethod: 'percentile', percentile: 99 });
    expect(clipped.length).toBe(minmax.length);
    expect(clipped.some((s, k) => s < minmax[k])).toBe(true);
    expect(clipped.every((s, k) => s <= minmax[k] * (1 + 1e-12))).toBe(true);
  });

  it("'mixed' meets the size budget with the least harmful layers at 4 bits", async () => {
    const rng = rngFor(SEED, 'mixed');
    const onnx = cnn(rng);
    const calibration = randomValues(rng, 32 * 192, 0, 1);
    const size = async (bits: 8 | 4) => (await convertOnnx(onnx, { calibration, bits })).length;
    const [all8, all4] = [await size(8), await size(4)];
    expect(all4).toBeLessThan(all8);
    const budget = Math.floor((all8 + all4) / 2);
    const { bytes, report } = await convertOnnxWithReport(onnx, { calibration, bits: 'mixed', sizeBudget: budget });
    expect(report.modelBytes).toBeLessThanOrEqual(budget); // the whole file, its stored report included
    expect(report.layers.some((l) => l.kind === 'W4A8')).toBe(true);
    expect(report.layers.some((l) => l.kind === 'W8A8')).toBe(true);
    expect(bytes.length).toBe(report.modelBytes);
    await expect(convertOnnx(onnx, { calibration, bits: 'mixed', sizeBudget: 100 })).rejects.toThrow(/cannot be met/);
  });

  it('a QDQ model keeps its imported activation scales', async () => {
    const rng = rngFor(SEED, 'qdq');
    const onnx = model({
      nodes: [
        node('QuantizeLinear', ['x', 'xs', 'xz'], ['xq']),
        node('DequantizeLinear', ['xq', 'xs', 'xz'], ['xd']),
        node('Conv', ['xd', 'w', 'b'], ['c'], { pads: ints(1, 1, 1, 1) }),
        node('QuantizeLinear', ['c', 'cs', 'cz'], ['cq']),
        node('DequantizeLinear', ['cq', 'cs', 'cz'], ['y']),
      ],
      inputs: [valueInfo('x', ['N', 2, 5, 5])],
      outputs: ['y'],
      initializers: [
        tensor('xs', [], [1 / 100]),
        tensor('xz', [], [0], T.UINT8),
        weights(rng, 'w', [4, 2, 3, 3], 0.5),
        weights(rng, 'b', [4], 0.1),
        tensor('cs', [], [0.02]),
        tensor('cz', [], [0], T.INT8),
      ],
    });
    const calibration = randomValues(rng, 8 * 50, 0, 1);
    const tensors = loadModel(await convertOnnx(onnx, { calibration })).graph().tensors as {
      dtype: string;
      scale?: number;
    }[];
    const scales = tensors.filter((t) => t.scale !== undefined).map((t) => [t.dtype, t.scale]);
    expect(scales).toContainEqual(['u8', Math.fround(1 / 100)]);
    expect(scales).toContainEqual(['s8', Math.fround(0.02)]);
  });
});

describe('binary models', () => {
  /** sign -> binary conv (+-a weights) -> BN -> sign -> binary conv -> BN -> MaxPool -> sign -> Flatten -> Gemm */
  function binaryNet(rng: Rng): Uint8Array {
    const binaryWeights = (name: string, o: number, i: number) => {
      const alpha = Float32Array.from({ length: o }, () => 0.05 + rng.float());
      return tensor(
        name,
        [o, i, 3, 3],
        Float32Array.from(
          { length: o * i * 9 },
          (_, k) => (rng.float() < 0.5 ? -1 : 1) * alpha[Math.floor(k / (i * 9))],
        ),
      );
    };
    const bn = (prefix: string, c: number) => [
      weights(rng, `${prefix}.g`, [c], 1),
      weights(rng, `${prefix}.b`, [c], 0.5),
      weights(rng, `${prefix}.m`, [c], 0.5),
      tensor(
        `${prefix}.v`,
        [c],
        Float32Array.from({ length: c }, () => 0.5 + rng.float()),
      ),
    ];
    const sign = (x: string, y: string) => [
      node('GreaterOrEqual', [x, 'zero'], [`${y}.ge`]),
      node('Where', [`${y}.ge`, 'one', 'minus'], [y]),
    ];
    return model({
      nodes: [
        ...sign('x', 's0'),
        node('Conv', ['s0', 'w1'], ['c1'], { pads: ints(1, 1, 1, 1) }),
        node('BatchNormalization', ['c1', 'bn1.g', 'bn1.b', 'bn1.m', 'bn1.v'], ['n1']),
        ...sign('n1', 's1'),
        node('Conv', ['s1', 'w2'], ['c2'], { pads: ints(1, 1, 1, 1) }),
        node('BatchNormalization', ['c2', 'bn2.g', 'bn2.b', 'bn2.m', 'bn2.v'], ['n2']),
        node('MaxPool', ['n2'], ['p2'], { kernel_shape: ints(2, 2), strides: ints(2, 2) }),
        ...sign('p2', 's2'),
        node('Flatten', ['s2'], ['fl']),
        node('Gemm', ['fl', 'wf', 'bf'], ['logits'], { transB: { i: 1 } }),
      ],
      inputs: [valueInfo('x', ['N', 3, 6, 6])],
      outputs: ['logits'],
      initializers: [
        tensor('zero', [], [0]),
        tensor('one', [], [1]),
        tensor('minus', [], [-1]),
        binaryWeights('w1', 70, 3),
        ...bn('bn1', 70),
        binaryWeights('w2', 64, 70),
        ...bn('bn2', 64),
        weights(rng, 'wf', [4, 64 * 9], 1),
        weights(rng, 'bf', [4], 0.1),
      ],
    });
  }

  it('binary layers are detected and equal the float evaluation of the same network', async () => {
    const rng = rngFor(SEED, 'binary');
    const onnx = binaryNet(rng);
    const calibration = randomValues(rng, 16 * 108, -1, 1);
    const { bytes, report } = await convertOnnxWithReport(onnx, { calibration, floatLayers: 'none' });
    expect(report.layers.map((l) => l.kind)).toEqual(['binary', 'binary', 'W8A8']);
    expect(report.layers[0].metric).toBe('sign-mismatch');
    const ops = loadModel(bytes)
      .graph()
      .nodes.map((n) => n.op);
    expect(ops).toEqual(['quantize', 'sign', 'bconv2d', 'bconv2d', 'maxpool', 'reshape', 'unpack', 'qdense', 'affine']);

    // The input's sign depends on quantization only for values within half a step of 0: keep clear of it.
    const x = Float32Array.from(randomValues(rng, 32 * 108, -1, 1), (v) => (Math.abs(v) < 0.02 ? 0.5 : v));
    const got = loadModel(bytes).runSync(x).logits.data;
    const graph = importOnnx(onnx);
    const want = evaluate(graph, new Map([['x', { dims: [32, 3, 6, 6], data: x }]])).get('logits')!.data;
    // The binary layers are exact: measured on these very inputs, not one sign differs from the
    // float network's. The INT8 classifier quantizes its float weights (its +-1 inputs are exact):
    // with 576 inputs that leaves about 0.5% of the logits' size.
    const onX = (await convertOnnxWithReport(onnx, { calibration: x, floatLayers: 'none' })).report.layers;
    expect(onX.slice(0, 2).map((l) => [l.metric, l.error])).toEqual([
      ['sign-mismatch', 0],
      ['sign-mismatch', 0],
    ]);
    expect(relativeRms(got, want)).toBeLessThan(0.03);

    // With MST schedules (forced by 'always' in a copy): identical outputs.
    const mst = await convertOnnx(onnx, { calibration, mst: true, floatLayers: 'none' });
    const mstNodes = loadModel(mst).graph().nodes as { mst?: unknown }[];
    expect(mstNodes.filter((n) => n.mst).length).toBe(2);
    expect(loadModel(mst).runSync(x).logits.data).toEqual(got);

    // By default a binary network keeps its classifier (and its input's sign) in float: the float
    // network's logits up to float rounding.
    const float = await convertOnnxWithReport(onnx, { calibration });
    expect(float.report.layers.map((l) => l.kind)).toEqual(['binary', 'binary', 'f32']);
    expect(relativeRms(loadModel(float.bytes).runSync(x).logits.data, want)).toBeLessThan(1e-5);
  });
});

describe('a float first layer before a binary one', () => {
  it("writes the next layer's sign bits itself (no f32 tensor, no sign node), as the float network computes", async () => {
    const rng = rngFor(SEED, 'float sign');
    // x -> float Conv (3 -> 70 channels: two bit words, bias) -> BN -> sign -> binary Conv
    const alpha = Float32Array.from({ length: 16 }, () => 0.05 + rng.float());
    const onnx = model({
      nodes: [
        node('Conv', ['x', 'w1', 'b1'], ['c1'], { pads: ints(1, 1, 1, 1) }),
        node('BatchNormalization', ['c1', 'g', 'beta', 'mean', 'var'], ['n1']),
        node('GreaterOrEqual', ['n1', 'zero'], ['ge']),
        node('Where', ['ge', 'one', 'minus'], ['s1']),
        node('Conv', ['s1', 'w2'], ['y'], { pads: ints(1, 1, 1, 1) }),
      ],
      inputs: [valueInfo('x', ['N', 3, 5, 6])],
      outputs: ['y'],
      initializers: [
        tensor('zero', [], [0]),
        tensor('one', [], [1]),
        tensor('minus', [], [-1]),
        weights(rng, 'w1', [70, 3, 3, 3], 0.5),
        weights(rng, 'b1', [70], 0.2),
        weights(rng, 'g', [70], 1),
        weights(rng, 'beta', [70], 0.3),
        weights(rng, 'mean', [70], 0.3),
        tensor(
          'var',
          [70],
          Float32Array.from({ length: 70 }, () => 0.5 + rng.float()),
        ),
        tensor(
          'w2',
          [16, 70, 3, 3],
          Float32Array.from({ length: 16 * 630 }, (_, k) => (rng.float() < 0.5 ? -1 : 1) * alpha[Math.floor(k / 630)]),
        ),
      ],
    });
    const x = randomValues(rng, 8 * 90, -1, 1);
    const { bytes, report } = await convertOnnxWithReport(onnx, { calibration: x });
    expect(report.layers.map((l) => l.kind)).toEqual(['f32', 'binary']);
    const graph = loadModel(bytes).graph() as unknown as {
      tensors: { dtype: string }[];
      nodes: { op: string; outputs: number[]; sign_threshold?: unknown }[];
    };
    expect(graph.nodes.map((n) => n.op)).toEqual(['transpose', 'fconv2d', 'bconv2d', 'transpose']);
    const conv = graph.nodes[1];
    expect(graph.tensors[conv.outputs[0]].dtype).toBe('b1');
    expect(conv.sign_threshold).toBeDefined();
    const want = evaluate(importOnnx(onnx), new Map([['x', { dims: [8, 3, 5, 6], data: x }]])).get('y')!.data;
    // Up to float rounding: a sign within rounding of its threshold could flip (not seen).
    expect(relativeRms(loadModel(bytes).runSync(x).y.data, want)).toBeLessThan(1e-5);
  });
});

describe('conversion errors', () => {
  const rng = rngFor(SEED, 'errors');
  const onnx = cnn(rng);
  it('needs calibration samples, whole ones', async () => {
    await expect(convertOnnx(onnx, {})).rejects.toThrow(TypeError);
    await expect(convertOnnx(onnx, { calibration: new Float32Array(100) })).rejects.toThrow(/whole samples/);
  });
  it('checks its options', async () => {
    const calibration = new Float32Array(192);
    await expect(convertOnnx(onnx, { calibration, bits: 3 as 8 })).rejects.toThrow(RangeError);
    await expect(convertOnnx(onnx, { calibration, bits: 'mixed' })).rejects.toThrow(/sizeBudget/);
    await expect(convertOnnx(onnx, { calibration, reducedRange: 'on' as 'auto' })).rejects.toThrow(
      /reducedRange: expected 'auto' or 'off', got on/,
    );
    await expect(convertOnnx(onnx, { calibration, calibrationMethod: 'percentile', percentile: 0 })).rejects.toThrow(
      /percentile/,
    );
    await expect(convertOnnx(onnx, { calibration, floatLayers: 'all' as 'none' })).rejects.toThrow(
      /floatLayers: expected 'none', 'boundary' or an array of layer names, got all/,
    );
    const unknown = await convertOnnx(onnx, { calibration, floatLayers: ['nope'] }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(RangeError);
    expect(String(unknown)).toMatch(/floatLayers: no conv \/ dense layer named 'nope' \(the layers: '[^']+'/);
  });
  it('refuses an output far from the float model, naming it, and warns where a binarization explains it', async () => {
    const calibration = randomValues(rng, 16 * 192, 0, 1);
    const error = await convertOnnx(onnx, { calibration, maxOutputError: 1e-9 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AccuracyError);
    expect((error as AccuracyError).output).toBe('probs');
    expect((error as AccuracyError).error).toBeGreaterThan(1e-9);
    expect(String(error)).toMatch(/output 'probs': relative RMS error .* above the 1e-9/);
    await expect(convertOnnx(onnx, { calibration, maxOutputError: 0 })).rejects.toThrow(/maxOutputError/);

    // x -> Sign -> binary Conv: inputs far below the calibration's largest value all quantize to
    // 0 and binarize to +1, so about half the signs differ from the float model's.
    const binary = model({
      nodes: [node('Sign', ['x'], ['s']), node('Conv', ['s', 'w'], ['y'])],
      inputs: [valueInfo('x', ['N', 2, 4, 4])],
      outputs: ['y'],
      initializers: [
        tensor(
          'w',
          [3, 2, 3, 3],
          Float32Array.from({ length: 54 }, (_, k) => (k % 3 === 0 ? -0.5 : 0.5)),
        ),
      ],
    });
    const tiny = randomValues(rng, 8 * 32, -1e-3, 1e-3);
    tiny[5] = 100;
    const { report } = await convertOnnxWithReport(binary, { calibration: tiny, floatLayers: 'none' });
    expect(report.outputError.y).toBeGreaterThan(0.3);
    expect(report.warnings.join('\n')).toMatch(/output 'y': relative RMS error .* follows a binarization/);
    expect(loadModel(await convertOnnx(binary, { calibration: tiny, floatLayers: 'none' })).metadata).toMatchObject({
      report: { warnings: report.warnings },
    });
  });

  it('names the node and op it cannot convert', async () => {
    const bad = model({
      nodes: [node('Conv', ['x', 'w'], ['c']), node('Neg', ['c'], ['y'], {}, 'negate')],
      inputs: [valueInfo('x', ['N', 1, 4, 4])],
      outputs: ['y'],
      initializers: [weights(rng, 'w', [2, 1, 3, 3])],
    });
    await expect(convertOnnx(bad, { calibration: new Float32Array(16) })).rejects.toThrow(UnsupportedError);
    await expect(convertOnnx(bad, { calibration: new Float32Array(16) })).rejects.toThrow(/negate.*Neg|Neg.*negate/);
  });
});
