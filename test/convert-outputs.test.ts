// Every supported ONNX operator at a graph output, in the middle of a network, and at an output
// that also feeds the rest of the network (a feature exposed beside the logits), at batch 4,
// converted and checked against onnxruntime-node. A lowering that drops a fused activation or
// leaves a map in lowbit's internal HWC order gives errors near 1 here, not the few percent of
// 8-bit quantization.
import { describe, expect, it } from 'vitest';
import type { onnx as proto } from 'onnx-proto';
import { convertOnnxWithReport, loadModel } from '../lib/index.js';
import { binaryLayers } from '../lib/convert/lower.js';
import { importOnnx } from '../lib/onnx/import.js';
import {
  f,
  i,
  ints,
  model,
  node,
  randomValues,
  randomTensor,
  relativeRms,
  runOrt,
  signMismatch,
  T,
  tensor,
  valueInfo,
} from './helpers/onnx-builder.js';
import { fileSeed, rngFor, type Rng } from './helpers/rng.js';

const SEED = fileSeed('convert-outputs');
const BATCH = 4;
const INPUT = [3, 6, 6];

interface Piece {
  nodes: proto.INodeProto[];
  inits: proto.ITensorProto[];
  /** the fragment's result and its per-sample dims */
  out: string;
  dims: number[];
  /** a +-1 result: compared by sign */
  binary?: boolean;
  /** the fragment binarizes `h`: see {@link network} */
  signOfH?: boolean;
}

/** A fragment reads `h`, the [8, 6, 6] output of the network's first conv (signed values). */
type Fragment = (rng: Rng) => Piece;

/** Uniform random weights in [-scale, scale). */
const weights = (rng: Rng, name: string, dims: number[], scale = 1) => randomTensor(rng, name, dims, -scale, scale);
/** +-alpha[o] weights: a conv or dense on signs becomes a binary layer. */
const binaryWeights = (rng: Rng, name: string, dims: number[]) => {
  const per = dims.slice(1).reduce((a, b) => a * b, 1);
  const alpha = Float32Array.from({ length: dims[0] }, () => 0.05 + 0.2 * rng.float());
  return tensor(
    name,
    dims,
    Float32Array.from({ length: dims[0] * per }, (_, k) => (rng.float() < 0.5 ? -1 : 1) * alpha[Math.floor(k / per)]),
  );
};
const bn = (rng: Rng, p: string, c: number) => [
  weights(rng, `${p}.g`, [c], 1),
  weights(rng, `${p}.b`, [c], 0.3),
  weights(rng, `${p}.m`, [c], 0.3),
  tensor(
    `${p}.v`,
    [c],
    Float32Array.from({ length: c }, () => 0.5 + rng.float()),
  ),
];
const conv = (
  rng: Rng,
  input: string,
  out: string,
  o: number,
  c: number,
  attrs: Record<string, ReturnType<typeof ints>> = { pads: ints(1, 1, 1, 1) },
) => ({
  nodes: [node('Conv', [input, `${out}.w`, `${out}.b`], [out], attrs)],
  inits: [weights(rng, `${out}.w`, [o, c, 3, 3], 0.3), weights(rng, `${out}.b`, [o], 0.1)],
});
const flat = (input: string) => node('Flatten', [input], [`${input}.flat`]);

const FRAGMENTS: Record<string, Fragment> = {
  Conv: (rng) => ({ ...conv(rng, 'h', 'y0', 6, 8), out: 'y0', dims: [6, 6, 6] }),
  'Conv + Relu': (rng) => {
    const c = conv(rng, 'h', 'c', 6, 8);
    return { nodes: [...c.nodes, node('Relu', ['c'], ['y0'])], inits: c.inits, out: 'y0', dims: [6, 6, 6] };
  },
  'Conv + Clip(0, 0.5)': (rng) => {
    const c = conv(rng, 'h', 'c', 6, 8);
    return {
      nodes: [...c.nodes, node('Clip', ['c', 'lo', 'hi'], ['y0'])],
      inits: [...c.inits, tensor('lo', [], [0]), tensor('hi', [], [0.5])],
      out: 'y0',
      dims: [6, 6, 6],
    };
  },
  'Conv + BatchNormalization + Relu': (rng) => {
    const c = conv(rng, 'h', 'c', 6, 8);
    return {
      nodes: [
        ...c.nodes,
        node('BatchNormalization', ['c', 'n.g', 'n.b', 'n.m', 'n.v'], ['n']),
        node('Relu', ['n'], ['y0']),
      ],
      inits: [...c.inits, ...bn(rng, 'n', 6)],
      out: 'y0',
      dims: [6, 6, 6],
    };
  },
  'depthwise Conv stride 2 + Relu': (rng) => ({
    nodes: [
      node('Conv', ['h', 'dw', 'db'], ['c'], { group: i(8), strides: ints(2, 2), pads: ints(1, 1, 1, 1) }),
      node('Relu', ['c'], ['y0']),
    ],
    inits: [weights(rng, 'dw', [8, 1, 3, 3], 0.5), weights(rng, 'db', [8], 0.1)],
    out: 'y0',
    dims: [8, 3, 3],
  }),
  'Add + Relu': (rng) => {
    const c = conv(rng, 'h', 'c', 8, 8);
    return {
      nodes: [...c.nodes, node('Add', ['c', 'h'], ['a']), node('Relu', ['a'], ['y0'])],
      inits: c.inits,
      out: 'y0',
      dims: [8, 6, 6],
    };
  },
  Add: (rng) => {
    const c = conv(rng, 'h', 'c', 8, 8);
    return { nodes: [...c.nodes, node('Add', ['c', 'h'], ['y0'])], inits: c.inits, out: 'y0', dims: [8, 6, 6] };
  },
  Concat: (rng) => {
    const c = conv(rng, 'h', 'c', 4, 8);
    return {
      nodes: [...c.nodes, node('Concat', ['c', 'h'], ['y0'], { axis: i(1) })],
      inits: c.inits,
      out: 'y0',
      dims: [12, 6, 6],
    };
  },
  LeakyRelu: () => ({
    nodes: [node('LeakyRelu', ['h'], ['y0'], { alpha: f(0.1) })],
    inits: [],
    out: 'y0',
    dims: [8, 6, 6],
  }),
  PRelu: (rng) => ({
    nodes: [node('PRelu', ['h', 'slope'], ['y0'])],
    inits: [weights(rng, 'slope', [8, 1, 1], 0.5)],
    out: 'y0',
    dims: [8, 6, 6],
  }),
  Clip: () => ({
    nodes: [node('Clip', ['h', 'lo', 'hi'], ['y0'])],
    inits: [tensor('lo', [], [-0.2]), tensor('hi', [], [0.3])],
    out: 'y0',
    dims: [8, 6, 6],
  }),
  MaxPool: () => ({
    nodes: [node('MaxPool', ['h'], ['y0'], { kernel_shape: ints(2, 2), strides: ints(2, 2) })],
    inits: [],
    out: 'y0',
    dims: [8, 3, 3],
  }),
  AveragePool: () => ({
    nodes: [node('AveragePool', ['h'], ['y0'], { kernel_shape: ints(3, 3), pads: ints(1, 1, 1, 1) })],
    inits: [],
    out: 'y0',
    dims: [8, 6, 6],
  }),
  'Pad(0.5) + MaxPool': () => ({
    nodes: [
      node('Pad', ['h', 'pads', 'pv'], ['p']),
      node('MaxPool', ['p'], ['y0'], { kernel_shape: ints(2, 2), strides: ints(2, 2) }),
    ],
    inits: [tensor('pads', [8], [0, 0, 1, 1, 0, 0, 1, 1], T.INT64), tensor('pv', [], [0.5])],
    out: 'y0',
    dims: [8, 4, 4],
  }),
  'Pad(0) + MaxPool': () => ({
    nodes: [
      node('Pad', ['h', 'pads'], ['p']),
      node('MaxPool', ['p'], ['y0'], { kernel_shape: ints(3, 3), strides: ints(2, 2) }),
    ],
    inits: [tensor('pads', [8], [0, 0, 1, 0, 0, 0, 2, 1], T.INT64)],
    out: 'y0',
    dims: [8, 4, 3],
  }),
  'Pad(-1) + Conv': (rng) => {
    const c = conv(rng, 'p', 'y0', 6, 8, {});
    return {
      nodes: [node('Pad', ['h', 'pads', 'pv'], ['p']), ...c.nodes],
      inits: [...c.inits, tensor('pads', [8], [0, 0, 1, 1, 0, 0, 1, 1], T.INT64), tensor('pv', [], [-1])],
      out: 'y0',
      dims: [6, 6, 6],
    };
  },
  GlobalAveragePool: () => ({
    nodes: [node('GlobalAveragePool', ['h'], ['y0'])],
    inits: [],
    out: 'y0',
    dims: [8, 1, 1],
  }),
  Flatten: () => ({ nodes: [node('Flatten', ['h'], ['y0'])], inits: [], out: 'y0', dims: [288] }),
  'Reshape [N, -1]': () => ({
    nodes: [node('Reshape', ['h', 'shape'], ['y0'])],
    inits: [tensor('shape', [2], [0, -1], T.INT64)],
    out: 'y0',
    dims: [288],
  }),
  'Flatten + Gemm': (rng) => ({
    nodes: [flat('h'), node('Gemm', ['h.flat', 'gw', 'gb'], ['y0'], { transB: i(1) })],
    inits: [weights(rng, 'gw', [10, 288], 0.1), weights(rng, 'gb', [10], 0.1)],
    out: 'y0',
    dims: [10],
  }),
  'Gemm + Relu': (rng) => ({
    nodes: [flat('h'), node('Gemm', ['h.flat', 'gw', 'gb'], ['g'], { transB: i(1) }), node('Relu', ['g'], ['y0'])],
    inits: [weights(rng, 'gw', [10, 288], 0.1), weights(rng, 'gb', [10], 0.1)],
    out: 'y0',
    dims: [10],
  }),
  'MatMul + Add': (rng) => ({
    nodes: [flat('h'), node('MatMul', ['h.flat', 'mw'], ['m']), node('Add', ['m', 'mb'], ['y0'])],
    inits: [weights(rng, 'mw', [288, 10], 0.1), weights(rng, 'mb', [10], 0.1)],
    out: 'y0',
    dims: [10],
  }),
  Softmax: (rng) => ({
    nodes: [
      flat('h'),
      node('Gemm', ['h.flat', 'gw', 'gb'], ['g'], { transB: i(1) }),
      node('Softmax', ['g'], ['y0'], { axis: i(1) }),
    ],
    inits: [weights(rng, 'gw', [10, 288], 0.1), weights(rng, 'gb', [10], 0.1)],
    out: 'y0',
    dims: [10],
  }),
  Sign: () => ({
    signOfH: true,
    nodes: [node('Sign', ['h'], ['y0'])],
    inits: [],
    out: 'y0',
    dims: [8, 6, 6],
    binary: true,
  }),
  'binary Conv': (rng) => ({
    signOfH: true,
    nodes: [node('Sign', ['h'], ['s']), node('Conv', ['s', 'bw'], ['y0'], { pads: ints(1, 1, 1, 1) })],
    inits: [binaryWeights(rng, 'bw', [6, 8, 3, 3])],
    out: 'y0',
    dims: [6, 6, 6],
  }),
  'binary Conv + BatchNormalization + Relu': (rng) => ({
    signOfH: true,
    nodes: [
      node('Sign', ['h'], ['s']),
      node('Conv', ['s', 'bw'], ['c']),
      node('BatchNormalization', ['c', 'n.g', 'n.b', 'n.m', 'n.v'], ['n']),
      node('Relu', ['n'], ['y0']),
    ],
    inits: [binaryWeights(rng, 'bw', [70, 8, 3, 3]), ...bn(rng, 'n', 70)],
    out: 'y0',
    dims: [70, 4, 4],
  }),
  'binary Conv + Sign': (rng) => ({
    signOfH: true,
    nodes: [
      node('Sign', ['h'], ['s']),
      node('Conv', ['s', 'bw', 'bb'], ['c'], { pads: ints(1, 1, 1, 1) }),
      node('Sign', ['c'], ['y0']),
    ],
    inits: [binaryWeights(rng, 'bw', [64, 8, 3, 3]), weights(rng, 'bb', [64], 0.2)],
    out: 'y0',
    dims: [64, 6, 6],
    binary: true,
  }),
  'binary Gemm + Relu': (rng) => ({
    signOfH: true,
    nodes: [
      flat('h'),
      node('Sign', ['h.flat'], ['s']),
      node('Gemm', ['s', 'bw', 'bb'], ['g'], { transB: i(1) }),
      node('Relu', ['g'], ['y0']),
    ],
    inits: [binaryWeights(rng, 'bw', [10, 288]), weights(rng, 'bb', [10], 0.5)],
    out: 'y0',
    dims: [10],
  }),
  'QuantizeLinear + DequantizeLinear': () => ({
    nodes: [node('QuantizeLinear', ['h', 'qs', 'qz'], ['q']), node('DequantizeLinear', ['q', 'qs', 'qz'], ['y0'])],
    inits: [tensor('qs', [], [0.01]), tensor('qz', [], [0], T.INT8)],
    out: 'y0',
    dims: [8, 6, 6],
  }),
};

type Placement = 'at the output' | 'in the middle' | 'beside the logits';

/**
 * x -> Conv 3->8 -> h -> fragment -> [a conv or dense head -> logits]. Where the fragment takes
 * the sign of h, a value of h within half a quantization step of 0 may binarize either way, and
 * one flipped sign moves a binary layer's output by a whole weight: the first conv is then 1x1
 * with +-1 weights and no bias, and the input odd multiples of 1/4 (see {@link input}), so that
 * |h| >= 1/4, far from 0, and every sign is the float network's.
 */
function network(rng: Rng, fragment: Fragment, placement: Placement): { onnx: Uint8Array; piece: Piece } {
  const piece = fragment(rng);
  const first = piece.signOfH
    ? {
        nodes: [node('Conv', ['x', 'h.w'], ['h'])],
        inits: [
          tensor(
            'h.w',
            [8, 3, 1, 1],
            Float32Array.from({ length: 24 }, () => (rng.float() < 0.5 ? -1 : 1)),
          ),
        ],
      }
    : conv(rng, 'x', 'h', 8, 3);
  const nodes = [...first.nodes, ...piece.nodes];
  const inits = [...first.inits, ...piece.inits];
  const outputs = [piece.out];
  if (placement !== 'at the output') {
    const features = piece.dims.reduce((a, b) => a * b, 1);
    if (piece.dims.length === 3) {
      const head = conv(rng, piece.out, 'z', 4, piece.dims[0]);
      nodes.push(...head.nodes, flat('z'), node('Gemm', ['z.flat', 'hw', 'hb'], ['logits'], { transB: i(1) }));
      inits.push(
        ...head.inits,
        weights(rng, 'hw', [5, (4 * features) / piece.dims[0]], 0.1),
        weights(rng, 'hb', [5], 0.1),
      );
    } else {
      nodes.push(node('Gemm', [piece.out, 'hw', 'hb'], ['logits'], { transB: i(1) }));
      inits.push(weights(rng, 'hw', [5, features], 0.3), weights(rng, 'hb', [5], 0.1));
    }
    outputs.splice(0, 1, ...(placement === 'in the middle' ? ['logits'] : ['logits', piece.out]));
  }
  const onnx = model({ nodes, inputs: [valueInfo('x', ['N', ...INPUT])], outputs, initializers: inits });
  return { onnx, piece };
}

/** n samples of the input: uniform in [-1, 1), or for a sign of h odd multiples of 1/4 in [-3/4, 3/4]. */
function input(rng: Rng, piece: Piece, n: number): Float32Array {
  const values = randomValues(rng, n * INPUT.reduce((a, b) => a * b, 1), -1, 1);
  return piece.signOfH ? values.map((v) => (v < -0.5 ? -0.75 : v < 0 ? -0.25 : v < 0.5 ? 0.25 : 0.75)) : values;
}

const CASES = Object.keys(FRAGMENTS).flatMap((name) =>
  (['at the output', 'in the middle', 'beside the logits'] as Placement[]).map(
    (placement) => [name, placement] as const,
  ),
);

/**
 * floatLayers that leave nothing in 8 bits: 'boundary' in a network with binary layers (every other
 * layer and the real-valued stream), else every conv / dense layer by name.
 */
function everythingFloat(onnx: Uint8Array): 'boundary' | string[] {
  const g = importOnnx(onnx);
  if (binaryLayers(g).size > 0) return 'boundary';
  return g.nodes.filter((n) => n.op === 'conv' || n.op === 'dense').map((n) => n.name);
}

describe('every operator at a graph output and inside a network, against onnxruntime', () => {
  it.each(CASES)('%s %s', async (name, placement) => {
    const rng = rngFor(SEED, `${name}/${placement}`);
    const { onnx, piece } = network(rng, FRAGMENTS[name], placement);
    const { bytes } = await convertOnnxWithReport(onnx, { calibration: input(rng, piece, 128), floatLayers: 'none' });
    const x = input(rng, piece, BATCH);
    const got = loadModel(bytes).runSync(x);
    const want = await runOrt(onnx, { x: { dims: [BATCH, ...INPUT], data: x } });
    for (const [output, expected] of Object.entries(want)) {
      const actual = got[output];
      expect(actual.shape, output).toEqual([BATCH, ...(output === piece.out ? piece.dims : [5])]);
      if (output === piece.out && piece.binary) expect(signMismatch(actual.data, expected), output).toBe(0);
      // 8-bit activations and weights: measured 0.2-5.3% on the fragment's output; on the 5 logits
      // of the random head, which can nearly cancel, up to 12% (12 seeds x 26 fragments). A
      // lowering bug gives 0.7 or more.
      else expect(relativeRms(actual.data, expected), output).toBeLessThan(output === 'logits' ? 0.25 : 0.1);
    }
  });
});

describe('every operator in float (floatLayers: every layer), against onnxruntime', () => {
  it.each(CASES)('%s %s', async (name, placement) => {
    const rng = rngFor(SEED, `float ${name}/${placement}`);
    const { onnx, piece } = network(rng, FRAGMENTS[name], placement);
    const { bytes, report } = await convertOnnxWithReport(onnx, {
      calibration: input(rng, piece, 16),
      floatLayers: everythingFloat(onnx),
    });
    expect(report.layers.filter((l) => l.kind !== 'f32').every((l) => l.kind === 'binary')).toBe(true);
    const x = input(rng, piece, BATCH);
    const got = loadModel(bytes).runSync(x);
    const want = await runOrt(onnx, { x: { dims: [BATCH, ...INPUT], data: x } });
    for (const [output, expected] of Object.entries(want)) {
      const actual = got[output];
      expect(actual.shape, output).toEqual([BATCH, ...(output === piece.out ? piece.dims : [5])]);
      // Float layers sum in another order than onnxruntime (and with FMA): float rounding only.
      // A QDQ pair quantizes in float exactly as onnxruntime does, but an input within rounding
      // of a step boundary may round the other way: one step (0.01) at most.
      const tolerance = name.startsWith('QuantizeLinear') ? 0.01 : 1e-5;
      expect(relativeRms(actual.data, expected), output).toBeLessThan(tolerance);
    }
  });
});
