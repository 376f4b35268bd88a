/**
 * The importer under adversarial sizes, each case a few hundred bytes of ONNX built in code:
 * constant folding skips dead nodes and checks every folded tensor against the per-tensor limit
 * and the model's budget before allocating it; window attributes and tensor dims are validated at
 * import, naming the node; and graphs of tens of thousands of nodes import in linear passes
 * whatever their order in the file (counted as reads of the nodes' inputs, not timed).
 */
import { describe, expect, it } from 'vitest';
import { ModelFormatError, UnsupportedError } from '../lib/errors.js';
import { canonicalize } from '../lib/onnx/canon.js';
import { foldNode } from '../lib/onnx/fold.js';
import { importOnnx, type FloatNode } from '../lib/onnx/index.js';
import { decodeModel, type RawNode } from '../lib/onnx/proto.js';
import { nodeInputs } from '../lib/onnx/shapes.js';
import { simplify } from '../lib/onnx/simplify.js';
import { FoldBudget, MAX_FOLDED, MIN_FOLD_BUDGET, type CTensor } from '../lib/onnx/tensor.js';
import { i, ints, model, node, T, t, tensor, valueInfo, type ModelSpec } from './helpers/onnx-builder.js';

const shape = (name: string, dims: number[]) => tensor(name, [dims.length], dims, T.INT64);
const x4 = [valueInfo('x', ['N', 4])];

/** `big` (made by `nodes`) reduced to one value and added to the input, so that it is live. */
function live(nodes: ModelSpec['nodes'], initializers: ModelSpec['initializers'] = []): Uint8Array {
  return model({
    nodes: [...nodes, node('ReduceMax', ['big'], ['s'], { keepdims: i(0) }), node('Add', ['x', 's'], ['y'])],
    inputs: x4,
    outputs: ['y'],
    initializers,
  });
}

/** The single node of a one-node model, as the importer decodes it. */
function rawNode(opType: string, inputs: string[], attrs: Parameters<typeof node>[3] = {}): RawNode {
  const bytes = model({
    nodes: [node(opType, inputs, ['y'], attrs, opType.toLowerCase())],
    inputs: inputs.map((n) => valueInfo(n, [1])),
    outputs: ['y'],
  });
  return decodeModel(bytes).nodes[0];
}

/** A constant whose dims claim `dims` but that holds no values: the limits are checked first. */
const claiming = (dims: number[]): CTensor => ({ dtype: T.FLOAT, dims, data: new Float64Array(0) });

describe('constant folding limits', () => {
  it('dead nodes are neither folded nor checked', () => {
    const bytes = model({
      nodes: [
        node('Relu', ['x'], ['y']),
        node('ConstantOfShape', ['huge'], ['c'], {}, 'dead_fill'), // 2^40 values: refused if folded
        node('Concat', ['c', 'c'], ['cc'], { axis: i(0) }, 'dead_cat'),
        node('LSTM', ['x', 'cc', 'cc'], ['h'], {}, 'dead_lstm'), // unsupported if lowered
      ],
      inputs: x4,
      outputs: ['y'],
      initializers: [shape('huge', [2 ** 40])],
    });
    expect(bytes.length).toBeLessThan(400);
    expect(importOnnx(bytes).nodes.map((n) => n.op)).toEqual(['clip']);
  });

  // Each ONNX file is under 1 KiB and asks for just over the 2^24 values such a small model may fold.
  const over = MIN_FOLD_BUDGET + 1;
  const cases: [string, Uint8Array][] = [
    ['ConstantOfShape', live([node('ConstantOfShape', ['d'], ['big'], {}, 'constantofshape')], [shape('d', [over])])],
    [
      'Concat', // 17 copies of 2^20 values: each input fits, the output does not
      live(
        [
          node('ConstantOfShape', ['d'], ['c']),
          node('Concat', new Array(17).fill('c'), ['big'], { axis: i(0) }, 'concat'),
        ],
        [shape('d', [2 ** 20])],
      ),
    ],
    [
      'Gather', // 4097 rows gathered from a [1, 4096] constant
      live(
        [
          node('ConstantOfShape', ['d'], ['c']),
          node('ConstantOfShape', ['n'], ['idx'], { value: t(tensor('v', [1], [0], T.INT64)) }),
          node('Gather', ['c', 'idx'], ['big'], { axis: i(0) }, 'gather'),
        ],
        [shape('d', [1, 4096]), shape('n', [4097])],
      ),
    ],
    [
      'Expand',
      live([node('Expand', ['one', 'd'], ['big'], {}, 'expand')], [tensor('one', [1], [1]), shape('d', [over])]),
    ],
    [
      'Range',
      live(
        [node('Range', ['a', 'b', 'c'], ['big'], {}, 'range')],
        [tensor('a', [], [0], T.INT64), tensor('b', [], [over], T.INT64), tensor('c', [], [1], T.INT64)],
      ),
    ],
    [
      'Add', // [4097, 1] + [1, 4096] broadcast
      live(
        [
          node('ConstantOfShape', ['d1'], ['p']),
          node('ConstantOfShape', ['d2'], ['q']),
          node('Add', ['p', 'q'], ['big'], {}, 'add'),
        ],
        [shape('d1', [4097, 1]), shape('d2', [1, 4096])],
      ),
    ],
  ];
  it.each(cases)(
    "%s: over the model's budget is an UnsupportedError naming the node, before allocating",
    (op, bytes) => {
      expect(bytes.length).toBeLessThan(1024);
      expect(() => importOnnx(bytes)).toThrow(UnsupportedError);
      expect(() => importOnnx(bytes)).toThrow(
        new RegExp(
          `ONNX node "${op.toLowerCase()}" \\(${op}\\): folding a constant of dims \\[[\\d, ]+\\] would bring .* over its budget of ${MIN_FOLD_BUDGET}`,
        ),
      );
    },
  );

  it('Concat and Gather check the per-tensor limit from the output dims, before reading or allocating', () => {
    const half = claiming([MAX_FOLDED / 2 + 1]);
    expect(() => foldNode(rawNode('Concat', ['a', 'b'], { axis: i(0) }), [half, half], 13)).toThrow(ModelFormatError);
    expect(() => foldNode(rawNode('Concat', ['a', 'b'], { axis: i(0) }), [half, half], 13)).toThrow(
      `ONNX node "concat" (Concat): a constant of dims [${MAX_FOLDED + 2}] is too large or malformed to fold (at most ${MAX_FOLDED} elements)`,
    );
    const rows = { dtype: T.INT64, dims: [2 ** 13 + 1], data: new Float64Array(2 ** 13 + 1) };
    expect(() => foldNode(rawNode('Gather', ['a', 'b'], { axis: i(0) }), [claiming([1, 2 ** 14]), rows], 13)).toThrow(
      `ONNX node "gather" (Gather): a constant of dims [${2 ** 13 + 1}, ${2 ** 14}] is too large or malformed to fold`,
    );
  });

  it('the budget counts every folded value and refuses before allocating', () => {
    const budget = new FoldBudget(1000);
    const fill = rawNode('ConstantOfShape', ['d']);
    const d = { dtype: T.INT64, dims: [1], data: Float64Array.of(600) };
    expect(foldNode(fill, [d], 13, budget)![0].data.length).toBe(600);
    expect(budget.used).toBe(600);
    expect(() => foldNode(fill, [d], 13, budget)).toThrow(UnsupportedError);
    expect(() => foldNode(fill, [d], 13, budget)).toThrow(
      /"constantofshape" \(ConstantOfShape\): .* to 1200, over its budget of 1000/,
    );
    expect(budget.used).toBe(600);
    expect(FoldBudget.forModel(300).limit).toBe(MIN_FOLD_BUDGET);
    expect(FoldBudget.forModel(100e6).limit).toBe(400e6);
  });
});

describe('window attributes and dims are checked at import, naming the node', () => {
  const conv = (attrs: Parameters<typeof node>[3], xDims: (number | string)[] = ['N', 2, 8, 8]) =>
    model({
      nodes: [node('Conv', ['x', 'w'], ['y'], attrs, 'c1')],
      inputs: [valueInfo('x', xDims)],
      outputs: ['y'],
      initializers: [tensor('w', [4, 2, 3, 3], new Array(72).fill(0.1))],
    });
  const pool = (op: string, attrs: Parameters<typeof node>[3]) =>
    model({ nodes: [node(op, ['x'], ['y'], attrs, 'p1')], inputs: [valueInfo('x', ['N', 2, 8, 8])], outputs: ['y'] });

  const unsupported: [string, Uint8Array, RegExp][] = [
    [
      'Conv pads of 2^40',
      conv({ pads: ints(2 ** 40, 2 ** 40, 2 ** 40, 2 ** 40) }),
      /"c1" \(Conv\): attribute "pads" is \[1099511627776, 1099511627776, 1099511627776, 1099511627776\]; supported: values in \[0, 65535\]/,
    ],
    [
      'Conv pads of 2^20',
      conv({ pads: ints(0, 2 ** 20, 0, 0) }),
      /"c1" \(Conv\): attribute "pads" is \[0, 1048576, 0, 0\]; supported: values in \[0, 65535\]/,
    ],
    [
      'Conv pads as large as the kernel',
      conv({ pads: ints(1, 3, 1, 1) }),
      /"c1" \(Conv\): attribute "pads" is \[1, 3, 1, 1\]; supported: pads smaller than the dilated kernel extent \(3 x 3\)/,
    ],
    [
      'Conv strides',
      conv({ strides: ints(1, 70000) }),
      /"c1" \(Conv\): attribute "strides" is \[1, 70000\]; supported: values in \[1, 65535\]/,
    ],
    [
      'Conv dilations',
      conv({ dilations: ints(65536, 1) }),
      /"c1" \(Conv\): attribute "dilations" is \[65536, 1\]; supported: values in \[1, 65535\]/,
    ],
    [
      'a Conv output too large to hold',
      conv({ dilations: ints(32768, 32768), pads: ints(65535, 65535, 65535, 65535) }),
      /"c1" \(Conv\): output "y": dims \[N, 4, \d+, \d+\]; supported: each dimension at most 16777216 and at most 2147483647 values per sample/,
    ],
    [
      'MaxPool pads of 2^40',
      pool('MaxPool', { kernel_shape: ints(2, 2), pads: ints(0, 0, 2 ** 40, 0) }),
      /"p1" \(MaxPool\): attribute "pads" is \[0, 0, 1099511627776, 0\]; supported: values in \[0, 65535\]/,
    ],
    [
      'AveragePool strides',
      pool('AveragePool', { kernel_shape: ints(2, 2), strides: ints(2 ** 20, 1) }),
      /"p1" \(AveragePool\): attribute "strides" is \[1048576, 1\]; supported: values in \[1, 65535\]/,
    ],
    [
      'MaxPool kernel',
      pool('MaxPool', { kernel_shape: ints(1, 2 ** 16) }),
      /"p1" \(MaxPool\): attribute "kernel_shape" is \[1, 65536\]; supported: values in \[1, 65535\]/,
    ],
    [
      'a graph input too large to hold',
      conv({}, ['N', 2, 2 ** 25, 1]),
      /ONNX graph input "x": dims \[N, 2, 33554432, 1\]; supported: each dimension at most 16777216/,
    ],
  ];
  it.each(unsupported)('%s: UnsupportedError', (_, bytes, message) => {
    expect(() => importOnnx(bytes)).toThrow(UnsupportedError);
    expect(() => importOnnx(bytes)).toThrow(message);
  });

  const malformed: [string, Uint8Array, RegExp][] = [
    [
      'Conv strides of 0',
      conv({ strides: ints(0, 1) }),
      /"c1" \(Conv\): attribute "strides" is \[0, 1\], expected 2 integers >= 1 \(2-D windows only\)/,
    ],
    [
      'Conv negative pads',
      conv({ pads: ints(-1, 0, 0, 0) }),
      /"c1" \(Conv\): attribute "pads" is \[-1, 0, 0, 0\], expected 4 integers >= 0/,
    ],
    [
      'Conv group not dividing the channels',
      conv({ group: i(3) }),
      /"c1" \(Conv\): attribute "group" is 3, expected a positive integer dividing the input's 2 channels and the 4 output channels/,
    ],
    ['Conv group 0', conv({ group: i(0) }), /"c1" \(Conv\): attribute "group" is 0, expected a positive integer/],
    [
      'a MaxPool window larger than the input',
      pool('MaxPool', { kernel_shape: ints(9, 9) }),
      /"p1" \(maxpool\): a 9x9 window .* does not fit the input \[N, 2, 8, 8\]/,
    ],
  ];
  it.each(malformed)('%s: ModelFormatError', (_, bytes, message) => {
    expect(() => importOnnx(bytes)).toThrow(ModelFormatError);
    expect(() => importOnnx(bytes)).toThrow(message);
  });
});

describe('large graphs in linear passes', () => {
  it("a 20,000-node chain listed in reverse: imported in chain order, each node's inputs read a few times", () => {
    const n = 20_000;
    const names = Array.from({ length: n }, (_, k) => `r${k}`);
    const nodes = names
      .map((name, k) => node('Relu', [k === 0 ? 'x' : `t${k}`], [k === n - 1 ? 'y' : `t${k + 1}`], {}, name))
      .reverse();
    const bytes = model({ nodes, inputs: x4, outputs: ['y'] });
    const g = importOnnx(bytes);
    expect(g.nodes.map((nd) => nd.name)).toEqual(names);
    expect(g.nodes.every((nd, k) => nodeInputs(nd)[0] === (k === 0 ? 'x' : g.nodes[k - 1].output))).toBe(true);
    expect(g.nodes[n - 1].output).toBe('y');

    // Sorting by repeated passes read every pending node's inputs once per pass: n^2 / 2 reads.
    const raw = decodeModel(bytes);
    let reads = 0;
    for (const r of raw.nodes) {
      const inputs = r.inputs;
      Object.defineProperty(r, 'inputs', { get: () => (++reads, inputs) });
    }
    expect(canonicalize(raw, undefined).nodes).toHaveLength(n);
    expect(reads).toBeLessThan(20 * n);
  });

  it('simplify folds 1,000 affines into their dense layers in a few passes', () => {
    const layers = 1000;
    const nodes: FloatNode[] = [];
    for (let k = 0; k < layers; ++k) {
      nodes.push({
        op: 'dense',
        input: k === 0 ? 'x' : `r${k - 1}`,
        weight: { dims: [2, 2], data: Float32Array.of(1, 2, 3, 4) },
        bias: null,
        name: `d${k}`,
        output: `d${k}`,
      });
      nodes.push({
        op: 'affine',
        input: `d${k}`,
        scale: { dims: [2], data: Float32Array.of(2, 3) },
        bias: { dims: [2], data: Float32Array.of(1, -1) },
        name: `a${k}`,
        output: `a${k}`,
      });
      nodes.push({
        op: 'clip',
        input: `a${k}`,
        min: 0,
        max: Infinity,
        name: `r${k}`,
        output: k === layers - 1 ? 'y' : `r${k}`,
      });
    }
    // Folding one affine per pass over the whole graph read every node's input once per fold.
    let reads = 0;
    for (const nd of nodes) {
      let input = (nd as { input: string }).input;
      Object.defineProperty(nd, 'input', {
        get: () => (++reads, input),
        set: (v: string) => (input = v),
        enumerable: true,
      });
    }
    const out = simplify({ inputs: ['x'], outputs: ['y'], nodes });
    expect(out.map((nd) => nd.op)).toEqual(
      Array.from({ length: 2 * layers }, (_, k) => (k % 2 === 0 ? 'dense' : 'clip')),
    );
    for (const d of out.filter((nd) => nd.op === 'dense')) {
      expect(Array.from(d.weight.data)).toEqual([2, 4, 9, 12]);
      expect(Array.from(d.bias!.data)).toEqual([1, -1]);
    }
    expect(reads).toBeLessThan(30 * nodes.length);
  });

  it('sign(maxpool(maxpool(z))) commutes through both maxpools', () => {
    const attrs = {
      kernel: [2, 2] as [number, number],
      stride: [1, 1] as [number, number],
      pads: [0, 0, 0, 0] as [number, number, number, number],
    };
    const nodes: FloatNode[] = [
      { op: 'maxpool', input: 'x', attrs, name: 'm1', output: 'm1' },
      { op: 'maxpool', input: 'm1', attrs, name: 'm2', output: 'm2' },
      { op: 'sign', input: 'm2', name: 's', output: 'y' },
    ];
    const out = simplify({ inputs: ['x'], outputs: ['y'], nodes });
    expect(out.map((nd) => `${nd.op}(${nodeInputs(nd)[0]})`)).toEqual([
      'sign(x)',
      `maxpool(${out[0].output})`,
      `maxpool(${out[1].output})`,
    ]);
    expect(out[2].output).toBe('y');
  });
});
