/**
 * evaluate(importOnnx(model)) against onnxruntime-node on random inputs, for every canonical
 * operator and the ONNX forms that lower to it: conv variants (groups, depthwise, stride, dilation,
 * asymmetric pads, auto_pad, 1x1 images), folded batch norms, Gemm / MatMul, activations, pools,
 * residual Add, Concat, Flatten / Reshape, Softmax, a QDQ model. Tolerance: 1e-4 relative
 * (|a - b| <= 1e-4 * max(1, |b|)); evaluate accumulates in float64, ORT in float32.
 */
import { describe, expect, it } from 'vitest';
import { evaluate, importOnnx, type FloatGraph } from '../lib/onnx/index.js';
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
  s,
  T,
  tensor,
  valueInfo,
  type ModelSpec,
} from './helpers/onnx-builder.js';
import { fileSeed, rngFor, type Rng } from './helpers/rng.js';

const SEED = fileSeed('onnx-evaluate.test.ts');
const TOL = 1e-4;

/** Imports the model, runs both on random inputs of `dims` in [lo, hi), compares every output. */
async function check(
  label: string,
  spec: ModelSpec,
  dims: Record<string, number[]>,
  range: [number, number] = [-1, 1],
): Promise<FloatGraph> {
  const rng = rngFor(SEED, label);
  const bytes = model(spec);
  const graph = importOnnx(bytes);
  const feeds = Object.fromEntries(
    Object.entries(dims).map(([name, d]) => [
      name,
      {
        dims: d,
        data: randomValues(
          rng,
          d.reduce((a, b) => a * b, 1),
          ...range,
        ),
      },
    ]),
  );
  const ours = evaluate(graph, new Map(Object.entries(feeds)));
  const ref = await runOrt(bytes, feeds);
  for (const name of spec.outputs) {
    const got = ours.get(name);
    expect(got, `output ${name}`).toBeDefined();
    const { error, at } = maxRelError(got!.data, ref[name]);
    expect(
      error,
      `${label}: output ${name} differs at ${at}: ${got!.data[at]} vs ${ref[name][at]}`,
    ).toBeLessThanOrEqual(TOL);
  }
  return graph;
}

const weights = randomTensor;

const ops = (g: FloatGraph) => g.nodes.map((n) => n.op);

describe('conv', () => {
  interface ConvCase {
    label: string;
    c: number;
    o: number;
    h: number;
    w: number;
    k: [number, number];
    attrs: Record<string, ReturnType<typeof i>>;
    bias?: boolean;
    group?: number;
  }
  const cases: ConvCase[] = [
    { label: '3x3 pad 1 with bias', c: 3, o: 5, h: 8, w: 7, k: [3, 3], attrs: { pads: ints(1, 1, 1, 1) }, bias: true },
    {
      label: 'groups 2, stride 2',
      c: 4,
      o: 6,
      h: 9,
      w: 9,
      k: [3, 3],
      attrs: { group: i(2), strides: ints(2, 2), pads: ints(1, 1, 1, 1) },
      group: 2,
    },
    {
      label: 'depthwise',
      c: 5,
      o: 5,
      h: 6,
      w: 6,
      k: [3, 3],
      attrs: { group: i(5), pads: ints(1, 1, 1, 1) },
      group: 5,
      bias: true,
    },
    { label: 'depthwise multiplier 2', c: 3, o: 6, h: 5, w: 5, k: [3, 3], attrs: { group: i(3) }, group: 3 },
    {
      label: 'dilation 2, asymmetric pads, stride [2, 1]',
      c: 3,
      o: 4,
      h: 11,
      w: 9,
      k: [3, 3],
      attrs: { dilations: ints(2, 2), pads: ints(1, 0, 2, 1), strides: ints(2, 1) },
    },
    {
      label: 'dilation [2, 3], stride 1, 9 output channels',
      c: 2,
      o: 9,
      h: 9,
      w: 10,
      k: [3, 2],
      attrs: { dilations: ints(2, 3), pads: ints(2, 1, 0, 3) },
      bias: true,
    },
    {
      label: 'auto_pad SAME_UPPER stride 2',
      c: 2,
      o: 3,
      h: 7,
      w: 8,
      k: [3, 3],
      attrs: { auto_pad: s('SAME_UPPER'), strides: ints(2, 2) },
      bias: true,
    },
    {
      label: 'auto_pad SAME_UPPER 2x2 kernel',
      c: 2,
      o: 3,
      h: 6,
      w: 5,
      k: [2, 2],
      attrs: { auto_pad: s('SAME_UPPER') },
    },
    {
      label: 'auto_pad SAME_LOWER 2x2 kernel',
      c: 2,
      o: 3,
      h: 6,
      w: 5,
      k: [2, 2],
      attrs: { auto_pad: s('SAME_LOWER') },
    },
    {
      label: 'auto_pad VALID 5x3 kernel',
      c: 2,
      o: 3,
      h: 8,
      w: 6,
      k: [5, 3],
      attrs: { auto_pad: s('VALID'), strides: ints(1, 2) },
    },
    { label: '1x1 image, 3x3 pad 1', c: 4, o: 3, h: 1, w: 1, k: [3, 3], attrs: { pads: ints(1, 1, 1, 1) }, bias: true },
    { label: '1x1 kernel', c: 8, o: 4, h: 5, w: 3, k: [1, 1], attrs: {} },
    { label: 'pad larger than the input', c: 1, o: 2, h: 2, w: 2, k: [3, 3], attrs: { pads: ints(2, 2, 2, 2) } },
  ];
  for (const cs of cases) {
    it(cs.label, async () => {
      const rng = rngFor(SEED, `w ${cs.label}`);
      const g = cs.group ?? 1;
      const inits = [weights(rng, 'w', [cs.o, cs.c / g, ...cs.k])];
      if (cs.bias) inits.push(weights(rng, 'b', [cs.o]));
      const graph = await check(
        cs.label,
        {
          nodes: [node('Conv', cs.bias ? ['x', 'w', 'b'] : ['x', 'w'], ['y'], cs.attrs)],
          inputs: [valueInfo('x', ['N', cs.c, cs.h, cs.w])],
          outputs: ['y'],
          initializers: inits,
        },
        { x: [2, cs.c, cs.h, cs.w] },
      );
      expect(ops(graph)).toEqual(['conv']);
      expect(graph.tensors.get('y')!.dims[0]).toBe(-1);
    });
  }

  it('conv + BatchNormalization folds into one conv', async () => {
    const rng = rngFor(SEED, 'bn');
    const graph = await check(
      'conv bn',
      {
        nodes: [
          node('Conv', ['x', 'w', 'b'], ['y'], { pads: ints(1, 1, 1, 1) }),
          node('BatchNormalization', ['y', 'gamma', 'beta', 'mean', 'var'], ['z'], { epsilon: f(1e-3) }),
        ],
        inputs: [valueInfo('x', ['N', 3, 6, 6])],
        outputs: ['z'],
        initializers: [
          weights(rng, 'w', [4, 3, 3, 3]),
          weights(rng, 'b', [4]),
          weights(rng, 'gamma', [4], -2, 2),
          weights(rng, 'beta', [4]),
          weights(rng, 'mean', [4]),
          weights(rng, 'var', [4], 0.1, 2),
        ],
      },
      { x: [2, 3, 6, 6] },
    );
    expect(ops(graph)).toEqual(['conv']);
    expect(graph.nodes[0].output).toBe('z');
  });

  it('BatchNormalization after a conv with two readers stays an affine', async () => {
    const rng = rngFor(SEED, 'bn2');
    const graph = await check(
      'bn two readers',
      {
        nodes: [
          node('Conv', ['x', 'w'], ['y']),
          node('BatchNormalization', ['y', 'gamma', 'beta', 'mean', 'var'], ['z']),
          node('Relu', ['y'], ['r']),
          node('Add', ['z', 'r'], ['out']),
        ],
        inputs: [valueInfo('x', ['N', 2, 4, 4])],
        outputs: ['out'],
        initializers: [
          weights(rng, 'w', [3, 2, 1, 1]),
          weights(rng, 'gamma', [3]),
          weights(rng, 'beta', [3]),
          weights(rng, 'mean', [3]),
          weights(rng, 'var', [3], 0.5, 1.5),
        ],
      },
      { x: [3, 2, 4, 4] },
    );
    expect(ops(graph).sort()).toEqual(['add', 'affine', 'clip', 'conv']);
  });
});

describe('dense', () => {
  for (const transB of [0, 1]) {
    for (const cDims of [[5], [1, 5]]) {
      it(`Gemm transB ${transB}, alpha 0.5, beta 2, C ${JSON.stringify(cDims)}`, async () => {
        const rng = rngFor(SEED, `gemm ${transB} ${cDims}`);
        const graph = await check(
          `gemm ${transB} ${cDims}`,
          {
            nodes: [node('Gemm', ['x', 'b', 'c'], ['y'], { transB: i(transB), alpha: f(0.5), beta: f(2) })],
            inputs: [valueInfo('x', ['N', 7])],
            outputs: ['y'],
            initializers: [weights(rng, 'b', transB ? [5, 7] : [7, 5]), weights(rng, 'c', cDims)],
          },
          { x: [3, 7] },
        );
        expect(ops(graph)).toEqual(['dense']);
      });
    }
  }

  it('Gemm without C, scalar C', async () => {
    const rng = rngFor(SEED, 'gemm scalar');
    await check(
      'gemm no c',
      {
        nodes: [node('Gemm', ['x', 'b'], ['y'], { transB: i(1) })],
        inputs: [valueInfo('x', [2, 4])],
        outputs: ['y'],
        initializers: [weights(rng, 'b', [3, 4])],
      },
      { x: [2, 4] },
    );
    await check(
      'gemm scalar c',
      {
        nodes: [node('Gemm', ['x', 'b', 'c'], ['y'])],
        inputs: [valueInfo('x', [2, 4])],
        outputs: ['y'],
        initializers: [weights(rng, 'b', [4, 3]), weights(rng, 'c', [])],
      },
      { x: [2, 4] },
    );
  });

  it('MatMul + Add becomes one dense with a bias', async () => {
    const rng = rngFor(SEED, 'matmul');
    const graph = await check(
      'matmul add',
      {
        nodes: [node('MatMul', ['x', 'b'], ['m']), node('Add', ['bias', 'm'], ['y'])],
        inputs: [valueInfo('x', ['N', 6])],
        outputs: ['y'],
        initializers: [weights(rng, 'b', [6, 4]), weights(rng, 'bias', [4])],
      },
      { x: [4, 6] },
    );
    expect(ops(graph)).toEqual(['dense']);
    const d = graph.nodes[0];
    expect(d.op === 'dense' && d.bias?.dims).toEqual([4]);
  });
});

describe('activations', () => {
  const cases: [string, ModelSpec['nodes'], (rng: Rng) => ModelSpec['initializers']][] = [
    ['Relu', [node('Relu', ['x'], ['y'])], () => []],
    [
      'Clip min and max',
      [node('Clip', ['x', 'lo', 'hi'], ['y'])],
      () => [tensor('lo', [], [-0.3]), tensor('hi', [], [0.5])],
    ],
    ['Clip min only', [node('Clip', ['x', 'lo'], ['y'])], () => [tensor('lo', [], [-0.25])]],
    ['Clip max only', [node('Clip', ['x', '', 'hi'], ['y'])], () => [tensor('hi', [], [0.25])]],
    ['LeakyRelu', [node('LeakyRelu', ['x'], ['y'], { alpha: f(0.2) })], () => []],
    ['PRelu [C, 1, 1]', [node('PRelu', ['x', 'slope'], ['y'])], (rng) => [weights(rng, 'slope', [3, 1, 1])]],
    ['PRelu scalar', [node('PRelu', ['x', 'slope'], ['y'])], (rng) => [weights(rng, 'slope', [1])]],
    [
      'Mul / Add / Sub / Div by per-channel and scalar constants',
      [
        node('Mul', ['x', 'm'], ['a']),
        node('Add', ['a', 'c'], ['b']),
        node('Sub', ['k', 'b'], ['d']),
        node('Div', ['d', 'k'], ['y']),
      ],
      (rng) => [weights(rng, 'm', [3, 1, 1]), weights(rng, 'c', [1, 3, 1, 1]), tensor('k', [], [1.5])],
    ],
  ];
  for (const [label, nodes, inits] of cases) {
    it(label, async () => {
      const graph = await check(
        label,
        { nodes, inputs: [valueInfo('x', ['N', 3, 4, 5])], outputs: ['y'], initializers: inits(rngFor(SEED, label)) },
        { x: [2, 3, 4, 5] },
      );
      expect(graph.nodes.length).toBe(1);
    });
  }
});

describe('pools', () => {
  const cases: [string, ModelSpec['nodes'], number[]][] = [
    [
      'MaxPool 2x2 stride 2',
      [node('MaxPool', ['x'], ['y'], { kernel_shape: ints(2, 2), strides: ints(2, 2) })],
      [2, 3, 8, 7],
    ],
    [
      'MaxPool 3x3 stride 2 pads 1',
      [node('MaxPool', ['x'], ['y'], { kernel_shape: ints(3, 3), strides: ints(2, 2), pads: ints(1, 1, 1, 1) })],
      [2, 3, 7, 6],
    ],
    [
      'MaxPool SAME_UPPER',
      [node('MaxPool', ['x'], ['y'], { kernel_shape: ints(2, 3), strides: ints(2, 2), auto_pad: s('SAME_UPPER') })],
      [1, 2, 5, 5],
    ],
    [
      'AveragePool pads, count_include_pad 0',
      [node('AveragePool', ['x'], ['y'], { kernel_shape: ints(3, 3), pads: ints(1, 1, 0, 1), strides: ints(2, 1) })],
      [2, 3, 7, 6],
    ],
    [
      'AveragePool pads, count_include_pad 1',
      [
        node('AveragePool', ['x'], ['y'], {
          kernel_shape: ints(3, 3),
          pads: ints(1, 1, 1, 1),
          count_include_pad: i(1),
        }),
      ],
      [2, 3, 5, 6],
    ],
    ['GlobalAveragePool', [node('GlobalAveragePool', ['x'], ['y'])], [2, 4, 5, 3]],
    [
      'MaxPool on a 1x1 image',
      [node('MaxPool', ['x'], ['y'], { kernel_shape: ints(3, 3), pads: ints(1, 1, 1, 1) })],
      [2, 3, 1, 1],
    ],
  ];
  for (const [label, nodes, dims] of cases) {
    it(label, async () => {
      const graph = await check(
        label,
        { nodes, inputs: [valueInfo('x', ['N', ...dims.slice(1)])], outputs: ['y'] },
        { x: dims },
      );
      expect(graph.nodes.length).toBe(1);
    });
  }
});

describe('graph structure', () => {
  it('residual Add of two activations', async () => {
    const rng = rngFor(SEED, 'residual');
    const graph = await check(
      'residual',
      {
        nodes: [
          node('Conv', ['x', 'w1'], ['a'], { pads: ints(1, 1, 1, 1) }),
          node('Relu', ['a'], ['r']),
          node('Conv', ['r', 'w2'], ['b'], { pads: ints(1, 1, 1, 1) }),
          node('Add', ['b', 'x'], ['y']),
        ],
        inputs: [valueInfo('x', ['N', 3, 5, 5])],
        outputs: ['y'],
        initializers: [weights(rng, 'w1', [3, 3, 3, 3]), weights(rng, 'w2', [3, 3, 3, 3])],
      },
      { x: [2, 3, 5, 5] },
    );
    expect(ops(graph)).toEqual(['conv', 'clip', 'conv', 'add']);
  });

  for (const axis of [1, -3]) {
    it(`Concat on axis ${axis}`, async () => {
      const rng = rngFor(SEED, `concat ${axis}`);
      const graph = await check(
        `concat ${axis}`,
        {
          nodes: [
            node('Conv', ['x', 'w1'], ['a']),
            node('Conv', ['x', 'w2'], ['b']),
            node('Concat', ['a', 'x', 'b'], ['y'], { axis: i(axis) }),
          ],
          inputs: [valueInfo('x', ['N', 2, 4, 4])],
          outputs: ['y'],
          initializers: [weights(rng, 'w1', [3, 2, 1, 1]), weights(rng, 'w2', [1, 2, 1, 1])],
        },
        { x: [2, 2, 4, 4] },
      );
      expect(graph.tensors.get('y')!.dims).toEqual([-1, 6, 4, 4]);
    });
  }

  it('Flatten then Gemm, Softmax on axis 1 and -1', async () => {
    const rng = rngFor(SEED, 'flatten');
    for (const axis of [1, -1]) {
      const graph = await check(
        `flatten softmax ${axis}`,
        {
          nodes: [
            node('Flatten', ['x'], ['f']),
            node('Gemm', ['f', 'w', 'b'], ['g'], { transB: i(1) }),
            node('Softmax', ['g'], ['y'], { axis: i(axis) }),
          ],
          inputs: [valueInfo('x', ['N', 2, 3, 3])],
          outputs: ['y'],
          initializers: [weights(rng, 'w', [5, 18]), weights(rng, 'b', [5])],
        },
        { x: [3, 2, 3, 3] },
        [-3, 3],
      );
      expect(ops(graph)).toEqual(['flatten', 'dense', 'softmax']);
    }
  });

  it('Reshape to [N, -1] through Shape / Gather / Unsqueeze / Concat (dynamic batch), and to [-1, prod]', async () => {
    const rng = rngFor(SEED, 'reshape');
    const graph = await check(
      'reshape',
      {
        nodes: [
          node('Shape', ['x'], ['shape']),
          node('Gather', ['shape', 'zero'], ['n'], { axis: i(0) }),
          node('Unsqueeze', ['n', 'axes0'], ['n1']),
          node('Concat', ['n1', 'minus1'], ['target'], { axis: i(0) }),
          node('Reshape', ['x', 'target'], ['r']),
          node('MatMul', ['r', 'w'], ['y']),
          node('Reshape', ['x', 'fixed'], ['r2']),
          node('Relu', ['r2'], ['y2']),
          node('Reshape', ['x', 'copy'], ['r3']),
          node('Relu', ['r3'], ['y3']),
        ],
        inputs: [valueInfo('x', ['N', 2, 2, 3])],
        outputs: ['y', 'y2', 'y3'],
        initializers: [
          tensor('zero', [], [0], T.INT64),
          tensor('axes0', [1], [0], T.INT64),
          tensor('minus1', [1], [-1], T.INT64),
          tensor('fixed', [2], [-1, 12], T.INT64),
          tensor('copy', [2], [0, 12], T.INT64),
          weights(rng, 'w', [12, 4]),
        ],
      },
      { x: [3, 2, 2, 3] },
    );
    expect(ops(graph).sort()).toEqual(['clip', 'clip', 'dense', 'flatten', 'flatten', 'flatten']);
    expect(graph.tensors.get('y')!.dims).toEqual([-1, 4]);
  });

  it('Softmax in opset 11 defaults to axis 1', async () => {
    const graph = await check(
      'softmax opset 11',
      { opset: 11, nodes: [node('Softmax', ['x'], ['y'])], inputs: [valueInfo('x', ['N', 5])], outputs: ['y'] },
      { x: [3, 5] },
      [-4, 4],
    );
    expect(ops(graph)).toEqual(['softmax']);
  });

  it('Identity and Dropout disappear; an output that is an alias keeps its name', async () => {
    const graph = await check(
      'identity',
      {
        nodes: [node('Relu', ['x'], ['r']), node('Dropout', ['r'], ['d']), node('Identity', ['d'], ['y'])],
        inputs: [valueInfo('x', ['N', 3])],
        outputs: ['y'],
      },
      { x: [2, 3] },
    );
    expect(graph.nodes.map((n) => [n.op, n.output])).toEqual([['clip', 'y']]);
  });

  it('a fixed batch stays fixed; { batch } fixes a dynamic one', () => {
    const spec = { nodes: [node('Relu', ['x'], ['y'])], inputs: [valueInfo('x', [1, 3, 2, 2])], outputs: ['y'] };
    expect(importOnnx(model(spec)).tensors.get('y')!.dims).toEqual([1, 3, 2, 2]);
    const dynamic = { ...spec, inputs: [valueInfo('x', ['N', 3, 2, 2])] };
    expect(importOnnx(model(dynamic), { batch: 4 }).tensors.get('y')!.dims).toEqual([4, 3, 2, 2]);
    expect(() => importOnnx(model(spec), { batch: 2 })).toThrow(RangeError);
  });
});

describe('QDQ', () => {
  it('QuantizeLinear -> DequantizeLinear pairs on activations become fakequant; weight DQ folds', async () => {
    const rng = rngFor(SEED, 'qdq');
    const wq = Int8Array.from({ length: 4 * 3 * 9 }, () => rng.int(-127, 127));
    const spec: ModelSpec = {
      nodes: [
        node('QuantizeLinear', ['x', 'xs', 'xz'], ['xq']),
        node('DequantizeLinear', ['xq', 'xs', 'xz'], ['xd']),
        node('DequantizeLinear', ['wq', 'ws', 'wz'], ['w'], { axis: i(0) }),
        node('Conv', ['xd', 'w', 'b'], ['c'], { pads: ints(1, 1, 1, 1) }),
        node('QuantizeLinear', ['c', 'cs', 'cz'], ['cq']),
        node('DequantizeLinear', ['cq', 'cs', 'cz'], ['y']),
      ],
      inputs: [valueInfo('x', ['N', 3, 5, 5])],
      outputs: ['y'],
      initializers: [
        tensor('xs', [], [1 / 128]),
        tensor('xz', [], [128], T.UINT8),
        tensor('wq', [4, 3, 3, 3], wq, T.INT8),
        tensor('ws', [4], [0.01, 0.02, 0.005, 0.03]),
        tensor('wz', [4], [0, 0, 0, 0], T.INT8),
        weights(rng, 'b', [4]),
        tensor('cs', [], [0.05]),
        tensor('cz', [], [-3], T.INT8),
      ],
    };
    const bytes = model(spec);
    const graph = importOnnx(bytes);
    const x = { dims: [2, 3, 5, 5], data: randomValues(rng, 150, -1, 1) };
    const ours = evaluate(graph, new Map([['x', x]])).get('y')!.data;
    const ref = (await runOrt(bytes, { x })).y;
    // The conv sums in float64 here and in float32 in onnxruntime, so a sum that lands within
    // rounding of a step boundary of the output quantizer may round to the neighbouring step.
    let moved = 0;
    ours.forEach((v, k) => {
      expect(Math.abs(v - ref[k])).toBeLessThanOrEqual(0.05 * 1.0001);
      if (v !== ref[k]) ++moved;
    });
    expect(moved).toBeLessThanOrEqual(2);
    expect(ops(graph)).toEqual(['fakequant', 'conv', 'fakequant']);
    const fq = graph.nodes[0];
    expect(fq.op === 'fakequant' && fq.quant).toEqual({ scale: 1 / 128, zeroPoint: 128, dtype: 'u8' });
    const fq2 = graph.nodes[2];
    expect(fq2.op === 'fakequant' && fq2.quant).toEqual({ scale: Math.fround(0.05), zeroPoint: -3, dtype: 's8' });
  });
});

describe('evaluate options and errors', () => {
  const spec = {
    nodes: [node('Relu', ['x'], ['r']), node('Flatten', ['r'], ['y'])],
    inputs: [valueInfo('x', ['N', 2, 2, 2])],
    outputs: ['y'],
  };
  const graph = importOnnx(model(spec));
  const x = { dims: [2, 2, 2, 2], data: Float32Array.from({ length: 16 }, (_, k) => k - 8) };

  it('keep: all returns every tensor (inputs included); a list adds those tensors', () => {
    expect([...evaluate(graph, new Map([['x', x]]), { keep: 'all' }).keys()].sort()).toEqual(['r', 'x', 'y']);
    expect([...evaluate(graph, new Map([['x', x]]), { keep: ['r'] }).keys()].sort()).toEqual(['r', 'y']);
    const out = evaluate(graph, new Map([['x', x]])).get('y')!;
    expect(out.dims).toEqual([2, 8]);
    expect(Array.from(out.data)).toEqual(Array.from(x.data, (v) => Math.max(0, v)));
  });

  it('a missing input, wrong dims or data are named errors', () => {
    expect(() => evaluate(graph, new Map())).toThrow(TypeError);
    expect(() => evaluate(graph, new Map([['x', { dims: [2, 2, 2, 3], data: new Float32Array(24) }]]))).toThrow(
      /expected \[N, 2, 2, 2\]/,
    );
    expect(() => evaluate(graph, new Map([['x', { dims: [2, 2, 2, 2], data: new Float32Array(15) }]]))).toThrow(
      /15 values/,
    );
    expect(() => evaluate(graph, new Map([['x', x]]), { keep: ['nope'] })).toThrow(RangeError);
  });

  it('sign maps 0, -0 and NaN to +1', () => {
    const g = importOnnx(
      model({ nodes: [node('Sign', ['x'], ['y'])], inputs: [valueInfo('x', ['N', 4])], outputs: ['y'] }),
    );
    const y = evaluate(g, new Map([['x', { dims: [1, 4], data: Float32Array.of(0, -0, NaN, -1e-30) }]])).get('y')!;
    expect(Array.from(y.data)).toEqual([1, 1, 1, -1]);
  });
});
