/**
 * importOnnx: constant folding of exported weight quantizers (binary alpha * sign(W) and INT8
 * fake quantization), the activation-binarization forms becoming one `sign` node, sign(maxpool)
 * commuted, and the errors (ModelFormatError / UnsupportedError naming node, op and field). Where a
 * graph is checked numerically it is against onnxruntime-node with 1e-4 relative tolerance; inputs
 * are random floats, so no pre-sign value is exactly 0 (where ONNX Sign gives 0 and lowbit +1).
 *
 * The shipped Fashion-MNIST models (models/fashion-{float,binary}.onnx) are checked when present.
 */
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ModelFormatError, UnsupportedError } from '../lib/errors.js';
import { evaluate, importOnnx, type FloatGraph, type FloatNode } from '../lib/onnx/index.js';
import {
  f,
  i,
  ints,
  maxRelError,
  model,
  node,
  randomTensor,
  randomValues,
  runOrt,
  T,
  tensor,
  valueInfo,
  type ModelSpec,
} from './helpers/onnx-builder.js';
import { fileSeed, rngFor, type Rng } from './helpers/rng.js';

const SEED = fileSeed('onnx-import.test.ts');
const TOL = 1e-4;

const ops = (g: FloatGraph) => g.nodes.map((n) => n.op);

const weights = randomTensor;

async function compareWithOrt(
  label: string,
  bytes: Uint8Array,
  graph: FloatGraph,
  dims: number[],
  range: [number, number] = [-1, 1],
  tol = TOL,
): Promise<void> {
  const rng = rngFor(SEED, `input ${label}`);
  const x = {
    dims,
    data: randomValues(
      rng,
      dims.reduce((a, b) => a * b, 1),
      ...range,
    ),
  };
  const name = graph.inputs[0];
  const ours = evaluate(graph, new Map([[name, x]]));
  const ref = await runOrt(bytes, { [name]: x });
  for (const out of graph.outputs) {
    const { error, at } = maxRelError(ours.get(out)!.data, ref[out]);
    expect(
      error,
      `${label}: output ${out} differs at ${at}: ${ours.get(out)!.data[at]} vs ${ref[out][at]}`,
    ).toBeLessThanOrEqual(tol);
  }
}

/** Per output channel, the distinct values of a conv's folded weight. */
function channelValues(n: FloatNode): number[][] {
  if (n.op !== 'conv' && n.op !== 'dense') throw new Error(`not a layer: ${n.op}`);
  const out = n.weight.dims[0];
  const per = n.weight.data.length / out;
  return Array.from({ length: out }, (_, o) =>
    [...new Set(n.weight.data.subarray(o * per, (o + 1) * per))].sort((a, b) => a - b),
  );
}

describe('constant folding of exported weight quantizers', () => {
  /** alpha_c * sign(W) with the straight-through trick W + (q - W), as PyTorch 1.13 exports it. */
  function binaryWeightModel(rng: Rng, opset: number): { bytes: Uint8Array; w: Float32Array } {
    const w = randomValues(rng, 4 * 3 * 3 * 3);
    const axes =
      opset >= 18
        ? { inputs: ['absw', 'axes'], attrs: { keepdims: i(1) } }
        : { inputs: ['absw'], attrs: { axes: ints(1, 2, 3), keepdims: i(1) } };
    const bytes = model({
      opset,
      nodes: [
        node('Abs', ['w'], ['absw']),
        node('ReduceMean', axes.inputs, ['alpha'], axes.attrs),
        node('Constant', [], ['zero'], { value: { t: tensor('', [], [0]) } }),
        node('GreaterOrEqual', ['w', 'zero'], ['ge']),
        node('Where', ['ge', 'one', 'minus'], ['s']),
        node('Mul', ['alpha', 's'], ['q']),
        node('Sub', ['q', 'w'], ['d']),
        node('Add', ['w', 'd'], ['weff']),
        node('Conv', ['x', 'weff'], ['y'], { pads: ints(1, 1, 1, 1) }),
      ],
      inputs: [valueInfo('x', ['N', 3, 6, 6])],
      outputs: ['y'],
      initializers: [
        tensor('w', [4, 3, 3, 3], w),
        tensor('one', [], [1]),
        tensor('minus', [], [-1]),
        tensor('axes', [3], [1, 2, 3], T.INT64),
      ],
    });
    return { bytes, w };
  }

  for (const opset of [13, 18]) {
    it(`binary weights alpha_c * sign(W) (Abs, ReduceMean, GreaterOrEqual, Where, Mul, Sub, Add) fold exactly, opset ${opset}`, async () => {
      const rng = rngFor(SEED, `binary weights ${opset}`);
      const { bytes, w } = binaryWeightModel(rng, opset);
      const graph = importOnnx(bytes);
      expect(ops(graph)).toEqual(['conv']);
      const values = channelValues(graph.nodes[0]);
      for (let o = 0; o < 4; ++o) {
        let sum = 0;
        for (let k = o * 27; k < (o + 1) * 27; ++k) sum += Math.abs(w[k]);
        const alpha = Math.fround(sum / 27);
        expect(values[o]).toEqual([-alpha, alpha]);
      }
      await compareWithOrt(`binary weights ${opset}`, bytes, graph, [2, 3, 6, 6]);
    });
  }

  it('INT8 fake-quantized weights (ReduceMax, Div, Round, Clip, Mul) fold to q * scale', async () => {
    const rng = rngFor(SEED, 'int8 weights');
    const w = randomValues(rng, 5 * 2 * 3 * 3);
    const bytes = model({
      nodes: [
        node('Abs', ['w'], ['absw']),
        node('ReduceMax', ['absw'], ['amax'], { axes: ints(1, 2, 3) }),
        node('Div', ['amax', 'k127'], ['scale']),
        node('Div', ['w', 'scale'], ['ws']),
        node('Round', ['ws'], ['r']),
        node('Clip', ['r', 'lo', 'hi'], ['q']),
        node('Mul', ['q', 'scale'], ['wq']),
        node('Conv', ['x', 'wq'], ['y']),
      ],
      inputs: [valueInfo('x', ['N', 2, 5, 5])],
      outputs: ['y'],
      initializers: [
        tensor('w', [5, 2, 3, 3], w),
        tensor('k127', [], [127]),
        tensor('lo', [], [-127]),
        tensor('hi', [], [127]),
      ],
    });
    const graph = importOnnx(bytes);
    expect(ops(graph)).toEqual(['conv']);
    const conv = graph.nodes[0] as Extract<FloatNode, { op: 'conv' }>;
    for (let o = 0; o < 5; ++o) {
      let amax = 0;
      for (let k = o * 18; k < (o + 1) * 18; ++k) amax = Math.max(amax, Math.abs(w[k]));
      const scale = Math.fround(amax / 127);
      for (let k = o * 18; k < (o + 1) * 18; ++k) {
        const q = conv.weight.data[k] / scale;
        expect(Math.abs(q - Math.round(q))).toBeLessThan(1e-3);
        expect(Math.abs(q)).toBeLessThanOrEqual(127.001);
      }
    }
    await compareWithOrt('int8 weights', bytes, graph, [2, 2, 5, 5]);
  });

  it('typed-field initializers, INT32 / INT64 / UINT8 / BOOL / DOUBLE constants, Shape arithmetic', async () => {
    const rng = rngFor(SEED, 'typed');
    const bytes = model({
      nodes: [
        node('Cast', ['wd'], ['w'], { to: i(T.FLOAT) }),
        node('Cast', ['mask'], ['maskf'], { to: i(T.FLOAT) }),
        node('Mul', ['w', 'maskf'], ['wm']),
        node('Cast', ['u8'], ['u8f'], { to: i(T.FLOAT) }),
        node('Add', ['wm', 'u8f'], ['w2']),
        node('Shape', ['w2'], ['shape']),
        node('Slice', ['shape', 'start', 'end'], ['o']),
        node('Cast', ['o'], ['o32'], { to: i(T.INT32) }),
        node('Concat', ['o32', 'i32'], ['target'], { axis: i(0) }),
        node('Cast', ['target'], ['target64'], { to: i(T.INT64) }),
        node('Reshape', ['w2', 'target64'], ['w3']),
        node('Transpose', ['w3'], ['b'], { perm: ints(1, 0) }),
        node('MatMul', ['x', 'b'], ['y']),
      ],
      inputs: [valueInfo('x', ['N', 6])],
      outputs: ['y'],
      initializers: [
        tensor('wd', [3, 2, 3], Array.from(randomValues(rng, 18)), T.DOUBLE, true),
        tensor('mask', [3, 1, 1], [1, 0, 1], T.BOOL, true),
        tensor('u8', [1, 2, 3], [0, 1, 2, 3, 4, 5], T.UINT8),
        tensor('start', [1], [0], T.INT64, true),
        tensor('end', [1], [1], T.INT64),
        tensor('i32', [1], [-1], T.INT32, true),
      ],
    });
    const graph = importOnnx(bytes);
    expect(ops(graph)).toEqual(['dense']);
    await compareWithOrt('typed', bytes, graph, [3, 6]);
  });
});

describe('activation binarization', () => {
  type Form = { label: string; nodes: ModelSpec['nodes']; inits: ModelSpec['initializers'] };
  const C = 4;
  const forms: Form[] = [
    { label: 'Sign(x)', nodes: [node('Sign', ['c'], ['s'])], inits: [] },
    {
      label: 'Where(GreaterOrEqual(x, 0), 1, -1), scalar constants',
      nodes: [node('GreaterOrEqual', ['c', 'zero'], ['ge']), node('Where', ['ge', 'one', 'minus'], ['s'])],
      inits: [tensor('zero', [], [0]), tensor('one', [], [1]), tensor('minus', [], [-1])],
    },
    {
      label: 'Where(Cast(GreaterOrEqual(x, 0)), ones, -ones), broadcast tensors',
      nodes: [
        node('GreaterOrEqual', ['c', 'zero'], ['ge']),
        node('Cast', ['ge'], ['gec'], { to: i(T.BOOL) }),
        node('Where', ['gec', 'one', 'minus'], ['s']),
      ],
      inits: [
        tensor('zero', [1, 1, 1, 1], [0]),
        tensor('one', [1, C, 1, 1], new Array(C).fill(1)),
        tensor('minus', [C, 1, 1], new Array(C).fill(-1)),
      ],
    },
    {
      label: 'Where(Less(x, 0), -1, 1)',
      nodes: [node('Less', ['c', 'zero'], ['lt']), node('Where', ['lt', 'minus', 'one'], ['s'])],
      inits: [tensor('zero', [], [0]), tensor('one', [], [1]), tensor('minus', [], [-1])],
    },
    {
      label: 'Where(Not(Less(x, 0)), 1, -1)',
      nodes: [
        node('Less', ['c', 'zero'], ['lt']),
        node('Not', ['lt'], ['ge']),
        node('Where', ['ge', 'one', 'minus'], ['s']),
      ],
      inits: [tensor('zero', [], [0]), tensor('one', [], [1]), tensor('minus', [], [-1])],
    },
    {
      label: 'straight-through a + (Where(x >= 0) - a), a = Clip(x, -1, 1)',
      nodes: [
        node('Clip', ['c', 'lo', 'hi'], ['a']),
        node('GreaterOrEqual', ['c', 'zero'], ['ge']),
        node('Where', ['ge', 'one', 'minus'], ['sx']),
        node('Sub', ['sx', 'a'], ['d']),
        node('Add', ['a', 'd'], ['s']),
      ],
      inits: [
        tensor('zero', [], [0]),
        tensor('one', [], [1]),
        tensor('minus', [], [-1]),
        tensor('lo', [], [-1]),
        tensor('hi', [], [1]),
      ],
    },
    {
      label: 'straight-through (Where(a >= 0) - a) + a, a = Clip(x, -1, 1)',
      nodes: [
        node('Clip', ['c', 'lo', 'hi'], ['a']),
        node('GreaterOrEqual', ['a', 'zero'], ['ge']),
        node('Where', ['ge', 'one', 'minus'], ['sa']),
        node('Sub', ['sa', 'a'], ['d']),
        node('Add', ['d', 'a'], ['s']),
      ],
      inits: [
        tensor('zero', [], [0]),
        tensor('one', [], [1]),
        tensor('minus', [], [-1]),
        tensor('lo', [], [-1]),
        tensor('hi', [], [1]),
      ],
    },
    {
      label: 'straight-through x + (Sign(x) - x)',
      nodes: [node('Sign', ['c'], ['sx']), node('Sub', ['sx', 'c'], ['d']), node('Add', ['c', 'd'], ['s'])],
      inits: [],
    },
  ];

  for (const form of forms) {
    it(`${form.label} becomes one sign node`, async () => {
      const rng = rngFor(SEED, form.label);
      const bytes = model({
        nodes: [
          node('Conv', ['x', 'w1', 'b1'], ['c'], { pads: ints(1, 1, 1, 1) }),
          ...form.nodes,
          node('Conv', ['s', 'w2'], ['y']),
        ],
        inputs: [valueInfo('x', ['N', 2, 5, 5])],
        outputs: ['y'],
        initializers: [
          weights(rng, 'w1', [C, 2, 3, 3]),
          weights(rng, 'b1', [C]),
          weights(rng, 'w2', [3, C, 1, 1]),
          ...(form.inits ?? []),
        ],
      });
      const graph = importOnnx(bytes);
      expect(ops(graph)).toEqual(['conv', 'sign', 'conv']);
      expect(graph.nodes[1]).toMatchObject({ op: 'sign', input: 'c' });
      expect(graph.nodes[2]).toMatchObject({ op: 'conv', input: graph.nodes[1].output });
      // random pre-sign values are never exactly 0, where ONNX Sign and lowbit's sign would differ
      await compareWithOrt(form.label, bytes, graph, [2, 2, 5, 5], [-2, 2]);
    });
  }

  it('a sign that is a graph output keeps the output name', () => {
    const graph = importOnnx(
      model({
        nodes: [node('GreaterOrEqual', ['x', 'zero'], ['ge']), node('Where', ['ge', 'one', 'minus'], ['y'])],
        inputs: [valueInfo('x', ['N', 3])],
        outputs: ['y'],
        initializers: [tensor('zero', [], [0]), tensor('one', [], [1]), tensor('minus', [], [-1])],
      }),
    );
    expect(graph.nodes).toEqual([{ op: 'sign', input: 'x', name: expect.any(String), output: 'y' }]);
  });

  it('sign(maxpool(z)) is commuted to maxpool(sign(z)); not when the maxpool output has another reader', async () => {
    const rng = rngFor(SEED, 'maxpool sign');
    const spec = (extraReader: boolean): ModelSpec => ({
      nodes: [
        node('Conv', ['x', 'w1'], ['c'], { pads: ints(1, 1, 1, 1) }),
        node('BatchNormalization', ['c', 'gamma', 'beta', 'mean', 'var'], ['bn']),
        node('MaxPool', ['bn'], ['p'], { kernel_shape: ints(2, 2), strides: ints(2, 2) }),
        node('GreaterOrEqual', ['p', 'zero'], ['ge']),
        node('Where', ['ge', 'one', 'minus'], ['s']),
        node('Conv', ['s', 'w2'], ['y'], { pads: ints(1, 1, 1, 1) }),
        ...(extraReader ? [node('GlobalAveragePool', ['p'], ['y2'])] : []),
      ],
      inputs: [valueInfo('x', ['N', 1, 8, 8])],
      outputs: extraReader ? ['y', 'y2'] : ['y'],
      initializers: [
        weights(rng, 'w1', [4, 1, 3, 3]),
        weights(rng, 'gamma', [4]),
        weights(rng, 'beta', [4]),
        weights(rng, 'mean', [4]),
        weights(rng, 'var', [4], 0.5, 1),
        weights(rng, 'w2', [2, 4, 3, 3]),
        tensor('zero', [], [0]),
        tensor('one', [], [1]),
        tensor('minus', [], [-1]),
      ],
    });
    const bytes = model(spec(false));
    const graph = importOnnx(bytes);
    expect(ops(graph)).toEqual(['conv', 'sign', 'maxpool', 'conv']);
    expect(graph.nodes[1]).toMatchObject({ input: 'bn' });
    expect(graph.nodes[2]).toMatchObject({ input: graph.nodes[1].output, output: 's' });
    expect(graph.tensors.get(graph.nodes[1].output)!.dims).toEqual([-1, 4, 8, 8]);
    await compareWithOrt('maxpool sign', bytes, graph, [3, 1, 8, 8]);

    const both = model(spec(true));
    const graph2 = importOnnx(both);
    expect(ops(graph2).sort()).toEqual(['conv', 'conv', 'global_avgpool', 'maxpool', 'sign']);
    expect(graph2.nodes.find((n) => n.op === 'sign')).toMatchObject({ input: 'p' });
    await compareWithOrt('maxpool sign two readers', both, graph2, [3, 1, 8, 8]);
  });
});

describe('errors', () => {
  const relu = (opset = 13): ModelSpec => ({
    opset,
    nodes: [node('Relu', ['x'], ['y'])],
    inputs: [valueInfo('x', ['N', 3])],
    outputs: ['y'],
  });

  it('garbage and truncated bytes are ModelFormatError', () => {
    expect(() => importOnnx(Uint8Array.from([0xff, 0xff, 0xff, 0x07, 1, 2, 3]))).toThrow(ModelFormatError);
    expect(() => importOnnx(new TextEncoder().encode('definitely not an onnx model'))).toThrow(ModelFormatError);
    expect(() => importOnnx(new Uint8Array(0))).toThrow(ModelFormatError);
    const bytes = model(relu());
    for (const cut of [bytes.length - 1, Math.floor(bytes.length / 2), 3])
      expect(() => importOnnx(bytes.subarray(0, cut)), `cut at ${cut}`).toThrow(ModelFormatError);
  });

  it('opset 9 is UnsupportedError', () => {
    expect(() => importOnnx(model(relu(9)))).toThrow(UnsupportedError);
    expect(() => importOnnx(model(relu(9)))).toThrow(/opset 9.*11/);
  });

  it('an unsupported operator names the node, the op and the supported list', () => {
    const bytes = model({
      nodes: [node('LSTM', ['x', 'w', 'r'], ['y'], {}, 'lstm1')],
      inputs: [valueInfo('x', [5, 1, 3])],
      outputs: ['y'],
      initializers: [tensor('w', [1, 8, 3], new Array(24).fill(0)), tensor('r', [1, 8, 2], new Array(16).fill(0))],
    });
    expect(() => importOnnx(bytes)).toThrow(UnsupportedError);
    expect(() => importOnnx(bytes)).toThrow(/"lstm1" \(LSTM\).*LSTM on an activation is not supported.*Conv.*Gemm/);
  });

  it('Conv with a non-constant weight is UnsupportedError', () => {
    const bytes = model({
      nodes: [node('Conv', ['x', 'w'], ['y'], {}, 'conv_w')],
      inputs: [valueInfo('x', ['N', 2, 4, 4]), valueInfo('w', [3, 2, 1, 1])],
      outputs: ['y'],
    });
    expect(() => importOnnx(bytes)).toThrow(UnsupportedError);
    expect(() => importOnnx(bytes)).toThrow(/"conv_w" \(Conv\).*weight.*constant/);
  });

  it('unsupported attributes and forms are UnsupportedError naming the attribute', () => {
    const x = [valueInfo('x', ['N', 2, 4, 4])];
    const cases: [ModelSpec, RegExp][] = [
      [
        {
          nodes: [node('MaxPool', ['x'], ['y'], { kernel_shape: ints(2, 2), ceil_mode: i(1) })],
          inputs: x,
          outputs: ['y'],
        },
        /ceil_mode/,
      ],
      [
        {
          nodes: [node('MaxPool', ['x'], ['y'], { kernel_shape: ints(2, 2), dilations: ints(2, 2) })],
          inputs: x,
          outputs: ['y'],
        },
        /dilations/,
      ],
      [{ nodes: [node('Relu', ['x'], ['y'], { bogus: i(1) })], inputs: x, outputs: ['y'] }, /attribute "bogus"/],
      [{ nodes: [node('Concat', ['x', 'x'], ['y'], { axis: i(2) })], inputs: x, outputs: ['y'] }, /axis 2/],
      [{ nodes: [node('Flatten', ['x'], ['y'], { axis: i(2) })], inputs: x, outputs: ['y'] }, /axis 2/],
      [
        {
          nodes: [node('Reshape', ['x', 'shape'], ['y'])],
          inputs: x,
          outputs: ['y'],
          initializers: [tensor('shape', [3], [0, 4, -1], T.INT64)],
        },
        /not a flattening reshape/,
      ],
      [
        {
          nodes: [node('Mul', ['x', 'm'], ['y'])],
          inputs: x,
          outputs: ['y'],
          initializers: [
            tensor(
              'm',
              [4, 4],
              Array.from({ length: 16 }, (_, k) => k),
            ),
          ],
        },
        /varies along an axis other than the channels/,
      ],
      [{ nodes: [node('Softmax', ['x'], ['y'], { axis: i(1) })], inputs: x, outputs: ['y'] }, /Softmax/],
      [{ nodes: [node('Mul', ['x', 'x'], ['y'])], inputs: x, outputs: ['y'] }, /two activations/],
      [
        {
          nodes: [node('Greater', ['x', 'zero'], ['g']), node('Where', ['g', 'one', 'minus'], ['y'])],
          inputs: x,
          outputs: ['y'],
          initializers: [tensor('zero', [], [0]), tensor('one', [], [1]), tensor('minus', [], [-1])],
        },
        /binarization condition/,
      ],
      [
        {
          nodes: [node('GreaterOrEqual', ['x', 'zero'], ['g']), node('Cast', ['g'], ['y'], { to: i(T.FLOAT) })],
          inputs: x,
          outputs: ['y'],
          initializers: [tensor('zero', [], [0])],
        },
        /only as the condition/,
      ],
      [
        {
          nodes: [node('Gemm', ['x2', 'b'], ['y'], { transA: i(1) })],
          inputs: [valueInfo('x2', [3, 2])],
          outputs: ['y'],
          initializers: [tensor('b', [3, 4], new Array(12).fill(1))],
        },
        /transA/,
      ],
      [
        { nodes: [node('Relu', ['x'], ['y'])], inputs: [valueInfo('x', ['N', 'C'])], outputs: ['y'] },
        /dimension 1 is symbolic/,
      ],
    ];
    for (const [spec, message] of cases) {
      const bytes = model(spec);
      expect(() => importOnnx(bytes), String(message)).toThrow(UnsupportedError);
      expect(() => importOnnx(bytes)).toThrow(message);
    }
  });

  it('a missing tensor, bad dims and unsupported data types are ModelFormatError naming the tensor and field', () => {
    const cases: [ModelSpec, RegExp][] = [
      [
        { nodes: [node('Add', ['x', 'nope'], ['y'], {}, 'add1')], inputs: [valueInfo('x', ['N', 3])], outputs: ['y'] },
        /"add1" \(Add\): input "nope" is not .* \(field node.input\)/,
      ],
      [{ nodes: [node('Relu', ['x'], ['y'])], inputs: [valueInfo('x', ['N', 3])], outputs: ['z'] }, /graph output "z"/],
      [
        {
          nodes: [node('Add', ['x', 'c'], ['y'])],
          inputs: [valueInfo('x', ['N', 3])],
          outputs: ['y'],
          initializers: [{ name: 'c', dims: [3], dataType: T.FLOAT, rawData: new Uint8Array(8) }],
        },
        /"c".*raw_data/,
      ],
      [
        {
          nodes: [node('Add', ['x', 'c'], ['y'])],
          inputs: [valueInfo('x', ['N', 3])],
          outputs: ['y'],
          initializers: [{ name: 'c', dims: [3], dataType: T.FLOAT, floatData: [1, 2] }],
        },
        /"c".*float_data/,
      ],
      [
        {
          nodes: [node('Add', ['x', 'c'], ['y'])],
          inputs: [valueInfo('x', ['N', 3])],
          outputs: ['y'],
          initializers: [{ name: 'c', dims: [-3], dataType: T.FLOAT }],
        },
        /"c".*dims/,
      ],
      [
        {
          nodes: [node('Add', ['x', 'c'], ['y'])],
          inputs: [valueInfo('x', ['N', 3])],
          outputs: ['y'],
          initializers: [{ name: 'c', dims: [3], dataType: T.FLOAT16, int32Data: [0, 0, 0] }],
        },
        /"c".*FLOAT16.*data_type/,
      ],
      [
        {
          nodes: [node('Add', ['x', 'c'], ['y'])],
          inputs: [valueInfo('x', ['N', 3])],
          outputs: ['y'],
          initializers: [{ name: 'c', dims: [1], dataType: T.STRING, stringData: [new Uint8Array(1)] }],
        },
        /STRING/,
      ],
      [
        {
          nodes: [node('Conv', ['x', 'w'], ['y'], {}, 'cv')],
          inputs: [valueInfo('x', ['N', 3, 4, 4])],
          outputs: ['y'],
          initializers: [tensor('w', [2, 2, 1, 1], [1, 2, 3, 4])],
        },
        /"cv" \(conv\).*do not agree/,
      ],
      [{ nodes: [node('Relu', ['x'], ['y'])], inputs: [valueInfo('x', ['N', 0])], outputs: ['y'] }, /bad dimension 0/],
    ];
    for (const [spec, message] of cases) {
      const bytes = model(spec);
      expect(() => importOnnx(bytes), String(message)).toThrow(ModelFormatError);
      expect(() => importOnnx(bytes)).toThrow(message);
    }
  });
});

describe('Fashion-MNIST models', () => {
  const floatPath = 'models/fashion-float.onnx';
  const binaryPath = 'models/fashion-binary.onnx';
  const missing = (p: string) => !fs.existsSync(p);
  if (missing(floatPath) || missing(binaryPath)) {
    console.log(
      `[onnx-import.test.ts] skipping the Fashion-MNIST model checks: ${[floatPath, binaryPath].filter(missing).join(', ')} not found (trained by tools/train_fashion.py)`,
    );
  }

  /** Random [n, 1, 28, 28] inputs in [0, 1], our outputs and ORT's. */
  async function run(bytes: Uint8Array, graph: FloatGraph, n: number, label: string) {
    const rng = rngFor(SEED, label);
    const x = { dims: [n, 1, 28, 28], data: randomValues(rng, n * 784, 0, 1) };
    const ours = evaluate(graph, new Map([[graph.inputs[0], x]])).get(graph.outputs[0])!.data;
    const ref = (await runOrt(bytes, { [graph.inputs[0]]: x }))[graph.outputs[0]];
    return { ours, ref };
  }

  it.skipIf(missing(floatPath))(
    'fashion-float: conv / BN folded / relu / maxpool / flatten / dense; evaluate equals ORT',
    async () => {
      const bytes = new Uint8Array(fs.readFileSync(floatPath));
      const graph = importOnnx(bytes);
      expect(ops(graph)).toEqual([
        'conv',
        'clip',
        'maxpool',
        'conv',
        'clip',
        'maxpool',
        'flatten',
        'dense',
        'clip',
        'dense',
      ]);
      expect(graph.tensors.get(graph.inputs[0])!.dims).toEqual([-1, 1, 28, 28]);
      expect(graph.tensors.get(graph.outputs[0])!.dims).toEqual([-1, 10]);
      const { ours, ref } = await run(bytes, graph, 4, 'fashion-float');
      const { error, at } = maxRelError(ours, ref);
      expect(error, `logit ${at}: ${ours[at]} vs ${ref[at]}`).toBeLessThanOrEqual(TOL);
    },
  );

  it.skipIf(missing(binaryPath))(
    'fashion-binary: sign nodes feed binary convs whose folded weights are +-a per channel; evaluate equals ORT',
    async () => {
      const bytes = new Uint8Array(fs.readFileSync(binaryPath));
      const graph = importOnnx(bytes);
      const producer = new Map(graph.nodes.map((n) => [n.output, n]));
      expect(ops(graph).filter((op) => op === 'sign')).toHaveLength(4);
      expect(ops(graph).filter((op) => op === 'affine')).toHaveLength(0);
      const convs = graph.nodes.filter((n): n is Extract<FloatNode, { op: 'conv' }> => n.op === 'conv');
      expect(convs).toHaveLength(4);
      for (const conv of convs.slice(1)) {
        // the input is sign(.) or maxpool(sign(.)) (sign commuted through the pool)
        let p = producer.get(conv.input);
        if (p?.op === 'maxpool') p = producer.get(p.input);
        expect(p?.op, `input of ${conv.name}`).toBe('sign');
        for (const [o, values] of channelValues(conv).entries()) {
          expect(values.length, `${conv.name} channel ${o}: ${values.slice(0, 4)}`).toBe(2);
          expect(values[0], `${conv.name} channel ${o}`).toBe(-values[1]);
        }
      }
      const dense = graph.nodes.filter((n) => n.op === 'dense');
      expect(dense).toHaveLength(1);
      expect(producer.get((dense[0] as { input: string }).input)?.op).toBe('flatten');
      const n = 4;
      const { ours, ref } = await run(bytes, graph, n, 'fashion-binary');
      // A pre-sign value within float rounding of 0 could binarize differently in ORT (float32
      // accumulation) and here (float64); with random inputs that is rare, and then only some logits
      // move: require equal predictions everywhere and 1e-4 agreement for most samples.
      let close = 0;
      for (let b = 0; b < n; ++b) {
        const a = ours.subarray(b * 10, (b + 1) * 10);
        const r = ref.subarray(b * 10, (b + 1) * 10);
        if (maxRelError(a, r).error <= TOL) ++close;
        expect(a.indexOf(Math.max(...a)), `sample ${b} prediction`).toBe(r.indexOf(Math.max(...r)));
      }
      expect(close).toBeGreaterThanOrEqual(n - 1);
    },
  );
});
