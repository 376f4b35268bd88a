/**
 * The ONNX QDQ twin (exportOnnxQdq): integer networks written as QuantizeLinear / DequantizeLinear
 * around float Conv / Gemm / Add / pools, run in onnxruntime-node and compared with lowbit tensor
 * by tensor. Every 8-bit tensor of a model is exposed as an extra output on both sides (a
 * `dequantize` probe appended to the lowbit graph, which the exporter writes as an ONNX output
 * too), so the comparison is in quantization steps at each layer, not only at the logits.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import {
  convertOnnx,
  exportOnnxQdq,
  loadModel,
  ModelFormatError,
  readLbds,
  Tensor,
  toInput,
  unpackInt4,
  UnsupportedError,
} from '../lib/index.js';
import { decodeModel, withJson, type GraphTensor } from '../lib/model/format.js';
import { decodeModel as decodeOnnx } from '../lib/onnx/proto.js';
import { binaryModel, integerModel } from './helpers/tiny-models.js';
import {
  floats,
  i as int,
  ints,
  model as onnxModel,
  node,
  ORT_IN_PROCESS,
  randomTensor,
  runOrt,
  tensor,
  T,
  valueInfo,
} from './helpers/onnx-builder.js';
import { Rng } from './helpers/rng.js';

const models = new URL('../models/', import.meta.url).pathname;
const slice = readLbds(`${models}fashion-mnist-test-1000.lbds`);
const SAMPLES = 200;
const images = toInput(slice, 0, SAMPLES);
const calibration = toInput(slice, slice.count - 64, 64);

type Json = {
  tensors: GraphTensor[];
  nodes: { op: string; inputs: number[]; outputs: number[] }[];
  outputs: { name: string; tensor: number }[];
};

/** Nodes that round to a new 8-bit grid (max-pool, reshape, pad and clamp copy codes). */
const REQUANTIZING = new Set(['quantize', 'qconv2d', 'qdense', 'add', 'concat', 'avgpool', 'global_avgpool', 'prelu']);

interface Probe {
  name: string;
  scale: number;
  /** the node writing it */
  op: string;
  tensor: number;
  /** requantizing nodes on the longest path from the input */
  depth: number;
}

/** The model with every 8-bit tensor also dequantized to an f32 output `probe:<k>`, and the probes. */
function withProbes(bytes: Uint8Array): { bytes: Uint8Array; probes: Probe[] } {
  const probes: Probe[] = [];
  const probed = withJson(bytes, (raw) => {
    const json = raw as unknown as Json;
    const depth = new Array<number>(json.tensors.length).fill(0);
    const writer = new Array<string>(json.tensors.length).fill('input');
    for (const n of json.nodes) {
      const d = Math.max(0, ...n.inputs.map((t) => depth[t])) + (REQUANTIZING.has(n.op) ? 1 : 0);
      for (const t of n.outputs) [depth[t], writer[t]] = [d, n.op];
    }
    json.tensors.forEach((x, t) => {
      if (x.dtype !== 'u8' && x.dtype !== 's8') return;
      const name = `probe:${probes.length}`;
      const shape = x.shape.length === 3 ? [x.shape[2], x.shape[0], x.shape[1]] : x.shape;
      const f = json.tensors.push({ name, dtype: 'f32', shape }) - 1;
      json.nodes.push({ name: `${name}.dequantize`, op: 'dequantize', inputs: [t], outputs: [f] } as Json['nodes'][0]);
      json.outputs.push({ name, tensor: f });
      probes.push({ name, scale: x.scale!, op: writer[t], tensor: t, depth: depth[t] });
    });
  });
  return { bytes: probed, probes };
}

interface Agreement {
  /** per probe: the largest difference in steps, the fraction of values that differ, the depth */
  probes: { op: string; steps: number; differ: number; depth: number }[];
  /** per float output: the largest |difference| over the output's range, and arg-max agreement */
  outputs: { name: string; diff: number; range: number; argmax: number }[];
}

async function agreement(bytes: Uint8Array, input: Float32Array, level: 'disabled' | 'all'): Promise<Agreement> {
  const { bytes: probed, probes } = withProbes(bytes);
  const model = loadModel(probed);
  const mine = model.runSync(input);
  const info = model.inputs[0];
  const count = input.length / info.sampleShape.reduce((a, b) => a * b, 1);
  const twin = await runOrt(
    exportOnnxQdq(probed),
    { [info.name]: { dims: [count, ...info.sampleShape], data: input } },
    level,
  );
  const result: Agreement = { probes: [], outputs: [] };
  for (const p of probes) {
    const a = mine[p.name].data;
    const b = twin[p.name];
    expect(b.length).toBe(a.length);
    let steps = 0,
      differ = 0;
    for (let k = 0; k < a.length; ++k) {
      const d = Math.round(Math.abs(a[k] - b[k]) / p.scale);
      steps = Math.max(steps, d);
      if (d > 0) ++differ;
    }
    result.probes.push({ op: p.op, steps, differ: differ / a.length, depth: p.depth });
  }
  for (const out of model.outputs) {
    if (out.name.startsWith('probe:')) continue;
    const a = mine[out.name].data;
    const b = twin[out.name];
    const width = out.sampleShape.reduce((x, y) => x * y, 1);
    let diff = 0,
      lo = Infinity,
      hi = -Infinity,
      argmax = 0;
    for (let k = 0; k < a.length; ++k) {
      diff = Math.max(diff, Math.abs(a[k] - b[k]));
      lo = Math.min(lo, a[k]);
      hi = Math.max(hi, a[k]);
    }
    const best = (v: ArrayLike<number>, n: number) => {
      let at = 0;
      for (let k = 1; k < width; ++k) if (v[n * width + k] > v[n * width + at]) at = k;
      return at;
    };
    for (let n = 0; n < count; ++n) if (best(a, n) === best(b, n)) ++argmax;
    result.outputs.push({ name: out.name, diff, range: hi - lo, argmax: argmax / count });
  }
  model.dispose();
  return result;
}

/**
 * Each node that writes an 8-bit tensor from 8-bit tensors, run alone in both engines on the
 * inputs lowbit computed for it in the whole model (a one-node model: quantize, the node,
 * dequantize; the inputs are on their grids, so both quantize them exactly): per node, the largest
 * difference in steps and the fraction of values that differ.
 */
async function layerAgreement(
  bytes: Uint8Array,
  input: Float32Array,
  level: 'disabled' | 'all',
): Promise<{ node: string; op: string; steps: number; differ: number }[]> {
  const { bytes: probed, probes } = withProbes(bytes);
  const whole = loadModel(probed);
  const values = whole.runSync(input);
  whole.dispose();
  const probeOf = new Map(probes.map((p) => [p.tensor, p]));
  const json = decodeModel(bytes).json as unknown as Json & { nodes: { name: string }[] };
  const is8 = (t: number) => json.tensors[t].dtype === 'u8' || json.tensors[t].dtype === 's8';
  const chw = (x: GraphTensor) => (x.shape.length === 3 ? [x.shape[2], x.shape[0], x.shape[1]] : x.shape);
  const results = [];
  for (const n of json.nodes) {
    const [t] = n.outputs;
    if (n.outputs.length !== 1 || !is8(t) || n.inputs.length === 0 || !n.inputs.every(is8)) continue;
    const ins = [...new Set(n.inputs)];
    const k = ins.length;
    const single = withJson(bytes, (raw) => ({
      ...raw,
      inputs: ins.map((_, j) => ({ name: `in${j}`, tensor: j })),
      outputs: [{ name: 'out', tensor: 2 * k + 1 }],
      tensors: [
        ...ins.map((x, j) => ({ name: `in${j}`, dtype: 'f32', shape: chw(json.tensors[x]) })),
        ...ins.map((x) => json.tensors[x]),
        json.tensors[t],
        { name: 'out', dtype: 'f32', shape: chw(json.tensors[t]) },
      ],
      nodes: [
        ...ins.map((_, j) => ({ name: `in${j}.quantize`, op: 'quantize', inputs: [j], outputs: [k + j] })),
        { ...n, inputs: n.inputs.map((x) => k + ins.indexOf(x)), outputs: [2 * k] },
        { name: 'out.dequantize', op: 'dequantize', inputs: [2 * k], outputs: [2 * k + 1] },
      ],
    }));
    const feeds = Object.fromEntries(
      ins.map((x, j) => {
        const data = values[probeOf.get(x)!.name].data;
        const shape = chw(json.tensors[x]);
        return [`in${j}`, { dims: [data.length / shape.reduce((a, b) => a * b, 1), ...shape], data }];
      }),
    );
    const model = loadModel(single);
    const mine = model.runSync(Object.fromEntries(Object.entries(feeds).map(([name, f]) => [name, f.data]))).out.data;
    model.dispose();
    // The harness itself: alone, lowbit's node gives what it gave inside the whole model.
    const inWhole = values[probeOf.get(t)!.name].data;
    expect(Buffer.compare(bytesOf(mine), bytesOf(inWhole))).toBe(0);
    const twin = (await runOrt(exportOnnxQdq(single), feeds, level)).out;
    const scale = json.tensors[t].scale!;
    let steps = 0,
      differ = 0;
    for (let e = 0; e < mine.length; ++e) {
      const d = Math.round(Math.abs(mine[e] - twin[e]) / scale);
      steps = Math.max(steps, d);
      if (d > 0) ++differ;
    }
    results.push({ node: n.name, op: n.op, steps, differ: differ / mine.length });
  }
  return results;
}

const bytesOf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function summary(a: Agreement): string {
  const steps = Math.max(...a.probes.map((p) => p.steps));
  const differ = Math.max(...a.probes.map((p) => p.differ));
  return `max ${steps} steps, at most ${(100 * differ).toFixed(3)}% of a tensor's values differ; ${a.outputs
    .map(
      (o) =>
        `${o.name}: max |diff| ${o.diff.toExponential(2)} (range ${o.range.toFixed(2)}), arg-max ${(100 * o.argmax).toFixed(1)}%`,
    )
    .join('; ')}`;
}

/** Each layer alone within one step of lowbit's. */
function expectLayers(layers: { node: string; op: string; steps: number; differ: number }[], label: string): void {
  console.log(
    `${label} per layer: ${layers.map((l) => `${l.op} ${l.steps}/${(100 * l.differ).toFixed(2)}%`).join(', ')}`,
  );
  for (const l of layers) expect(l.steps, `${l.node} (${l.op})`).toBeLessThanOrEqual(1);
}

/**
 * The whole model: every 8-bit tensor within one step per requantizing layer on its path (an
 * empirical guard: a layer's gain can amplify an upstream step, the per-layer test is the exact
 * one), and the arg-maxes equal on at least 98% of the samples.
 */
function expectAgreement(a: Agreement, label: string): void {
  console.log(`${label}: ${summary(a)}`);
  for (const p of a.probes) expect(p.steps).toBeLessThanOrEqual(p.depth);
  for (const o of a.outputs) expect(o.argmax).toBeGreaterThanOrEqual(0.98);
}

describe('exportOnnxQdq', () => {
  it.each(['w8a8', 'w4a8', 'mixed'])('the shipped fashion-%s model agrees with onnxruntime', async (mode) => {
    const bytes = readFileSync(`${models}fashion-${mode}.lowbit`);
    for (const level of ['all', 'disabled'] as const) {
      expectAgreement(await agreement(bytes, images, level), `fashion-${mode} (${level})`);
      expectLayers(await layerAgreement(bytes, images, level), `fashion-${mode} (${level})`);
    }
  });
});

describe('exportOnnxQdq: onnxruntime runs the twin in int8', () => {
  it.skipIf(!ORT_IN_PROCESS)(
    'at level all the QDQ pattern becomes QLinearConv / QGemm / QLinearAdd / QLinearGlobalAveragePool, and no Pad joins a MaxPool',
    async () => {
      const ort = await import('onnxruntime-node');
      const dir = mkdtempSync(join(tmpdir(), 'lowbit-qdq-'));
      const ops = async (bytes: Uint8Array) => {
        const path = join(dir, 'optimized.onnx');
        const session = await ort.InferenceSession.create(exportOnnxQdq(bytes), {
          graphOptimizationLevel: 'all',
          optimizedModelFilePath: path,
        });
        await session.release();
        return onnxProto.onnx.ModelProto.decode(readFileSync(path)).graph!.node!.map((n) => n.opType!);
      };
      try {
        const fashion = await ops(readFileSync(`${models}fashion-w8a8.lowbit`));
        expect(fashion.filter((op) => op === 'QLinearConv')).toHaveLength(2);
        expect(fashion).toContain('QGemm');
        const wide = await ops(await convertOnnx(wideOnnx(), { bits: 8, calibration: wideCalibration }));
        for (const op of [
          'QLinearConv',
          'QLinearAdd',
          'QLinearConcat',
          'QLinearAveragePool',
          'QLinearGlobalAveragePool',
        ])
          expect(wide).toContain(op);
        // The Q/DQ pair between the Pad and the MaxPool keeps onnxruntime from folding the Pad into
        // the MaxPool's -infinity padding (its PadFusion, which changes a zero Pad's result).
        expect(wide[wide.indexOf('Pad') + 1]).toBe('QuantizeLinear');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe.each(['vgg', 'resnet'])('exportOnnxQdq: heldout-%s', (name) => {
  const onnx = readFileSync(`${models}heldout-${name}.onnx`);
  it.each([8, 7, 4] as const)('converted at %i bits agrees with onnxruntime', async (bits) => {
    const bytes = await convertOnnx(onnx, { bits, calibration });
    expectAgreement(await agreement(bytes, images, 'all'), `heldout-${name} w${bits}a8 (all)`);
    expectLayers(await layerAgreement(bytes, images, 'all'), `heldout-${name} w${bits}a8 (all)`);
  });
});

/**
 * A float network with most of what the converter lowers to 8 bits: conv, depthwise conv, a
 * residual add, concat, PRelu (negative values: s8), a zero Pad before a MaxPool, AveragePool,
 * GlobalAveragePool, Flatten, Gemm, Softmax.
 */
function wideOnnx(): Uint8Array {
  const rng = new Rng(14);
  const conv = (x: string, w: string, b: string, y: string, k: number, group = 1) =>
    node(
      'Conv',
      [x, w, b],
      [y],
      { kernel_shape: ints(k, k), pads: ints(...Array(4).fill((k - 1) / 2)), group: int(group) },
      y,
    );
  return onnxModel({
    inputs: [valueInfo('x', ['N', 3, 8, 8])],
    outputs: ['probs'],
    initializers: [
      randomTensor(rng, 'w1', [8, 3, 3, 3], -0.5, 0.5),
      randomTensor(rng, 'b1', [8], -0.1, 0.1),
      randomTensor(rng, 'wd', [8, 1, 3, 3], -0.5, 0.5),
      randomTensor(rng, 'bd', [8], -0.1, 0.1),
      randomTensor(rng, 'w2', [4, 8, 1, 1], -0.5, 0.5),
      randomTensor(rng, 'b2', [4], -0.1, 0.1),
      randomTensor(rng, 'slope', [12, 1, 1], 0.05, 0.3),
      tensor('pads', [8], [0, 0, 1, 1, 0, 0, 1, 1], T.INT64),
      randomTensor(rng, 'w3', [6, 12, 3, 3], -0.3, 0.3),
      randomTensor(rng, 'b3', [6], -0.1, 0.1),
      randomTensor(rng, 'wf', [5, 6], -0.5, 0.5),
      randomTensor(rng, 'bf', [5], -0.1, 0.1),
    ],
    nodes: [
      conv('x', 'w1', 'b1', 'c1', 3),
      node('Relu', ['c1'], ['a']),
      conv('a', 'wd', 'bd', 'dw', 3, 8),
      node('Relu', ['dw'], ['b']),
      node('Add', ['a', 'b'], ['s']),
      conv('s', 'w2', 'b2', 'c2', 1),
      node('Concat', ['s', 'c2'], ['d'], { axis: int(1) }),
      node('PRelu', ['d', 'slope'], ['e']),
      node('Pad', ['e', 'pads'], ['ep']),
      node('MaxPool', ['ep'], ['m'], { kernel_shape: ints(3, 3), strides: ints(2, 2) }),
      node('AveragePool', ['m'], ['g'], { kernel_shape: ints(2, 2), pads: ints(0, 0, 1, 1) }),
      conv('g', 'w3', 'b3', 'c3', 3),
      node('Relu', ['c3'], ['h']),
      node('GlobalAveragePool', ['h'], ['gap']),
      node('Flatten', ['gap'], ['flat']),
      node('Gemm', ['flat', 'wf', 'bf'], ['logits'], { transB: int(1) }, 'fc'),
      node('Softmax', ['logits'], ['probs'], { axis: int(1) }),
    ],
  });
}

const wideSamples = (rng: Rng, n: number) => Float32Array.from({ length: n * 3 * 64 }, () => rng.float() * 2 - 1);
const wideCalibration = wideSamples(new Rng(4), 64);

describe('exportOnnxQdq: every integer operator', () => {
  const rng = new Rng(3);
  const input = wideSamples(rng, 256);
  it.each([
    ['integer', 8, 'none'],
    ['integer', 4, 'none'],
    ['float conv and dense', 8, ['c3', 'fc']],
  ] as const)('%s layers at %i bits agree with onnxruntime', async (_, bits, floatLayers) => {
    const bytes = await convertOnnx(wideOnnx(), {
      bits,
      calibration: wideCalibration,
      floatLayers: floatLayers as 'none' | string[],
    });
    const ops = new Set(
      loadModel(bytes)
        .graph()
        .nodes.map((n) => n.op),
    );
    console.log([...ops].join(' '));
    for (const level of ['all', 'disabled'] as const) {
      expectAgreement(await agreement(bytes, input, level), `wide ${bits} ${String(floatLayers)} (${level})`);
      expectLayers(await layerAgreement(bytes, input, level), `wide ${bits} ${String(floatLayers)} (${level})`);
    }
  });

  it('imported QDQ parameters with zero points other than 0 (u8 128 and 100, s8 -10) agree', async () => {
    const q = (x: string, scale: string, zp: string, y: string) => [
      node('QuantizeLinear', [x, scale, zp], [`${y}.q`]),
      node('DequantizeLinear', [`${y}.q`, scale, zp], [y]),
    ];
    const onnx = onnxModel({
      inputs: [valueInfo('x', ['N', 3, 8, 8])],
      outputs: ['y'],
      initializers: [
        tensor('xs', [], [1 / 127]),
        tensor('xz', [], [128], T.UINT8),
        randomTensor(rng, 'w1', [6, 3, 3, 3], -0.5, 0.5),
        randomTensor(rng, 'b1', [6], -0.1, 0.1),
        tensor('rs', [], [0.01]),
        tensor('rz', [], [100], T.UINT8),
        randomTensor(rng, 'w2', [4, 6, 3, 3], -0.5, 0.5),
        randomTensor(rng, 'b2', [4], -0.1, 0.1),
        tensor('ys', [], [0.02]),
        tensor('yz', [], [-10], T.INT8),
      ],
      nodes: [
        ...q('x', 'xs', 'xz', 'xd'),
        node('Conv', ['xd', 'w1', 'b1'], ['c1'], { kernel_shape: ints(3, 3), pads: ints(1, 1, 1, 1) }),
        node('Relu', ['c1'], ['r']),
        ...q('r', 'rs', 'rz', 'rd'),
        node('Conv', ['rd', 'w2', 'b2'], ['c2'], { kernel_shape: ints(3, 3), strides: ints(2, 2) }),
        ...q('c2', 'ys', 'yz', 'y'),
      ],
    });
    const bytes = await convertOnnx(onnx, { calibration: wideCalibration });
    const zeroPoints = (loadModel(bytes).graph().tensors as GraphTensor[]).map((t) => t.zero_point);
    expect(zeroPoints).toEqual(expect.arrayContaining([128, 100, -10]));
    for (const level of ['all', 'disabled'] as const) {
      expectAgreement(await agreement(bytes, input, level), `zero points (${level})`);
      expectLayers(await layerAgreement(bytes, input, level), `zero points (${level})`);
    }
  });

  it('the tiny hand-written integer model (4-bit dense, softmax) agrees', async () => {
    const input = Float32Array.from({ length: 64 * 72 }, () => rng.float());
    expectAgreement(await agreement(integerModel(), input, 'all'), 'tiny integer (all)');
  });
});

describe("exportOnnxQdq: the twin holds lowbit's weights", () => {
  it("int8 codes equal the file's (4-bit unpacked, OIHW, flattened columns in ONNX order) and the scales give its rescales", () => {
    const bytes = readFileSync(`${models}fashion-w4a8.lowbit`);
    const { json, sections } = decodeModel(bytes);
    const twin = decodeOnnx(exportOnnxQdq(bytes)).initializers;
    const section = (n: Record<string, unknown>, key: string) => sections[(n[key] as { section: number }).section];
    let layers = 0;
    for (const [k, n] of json.nodes.entries()) {
      if (n.op !== 'qconv2d' && n.op !== 'qdense') continue;
      const input = json.tensors[n.inputs[0]];
      const output = json.tensors[n.outputs[0]];
      const codes = twin.get(`${output.name}.weight.q`)!;
      const scales = twin.get(`${output.name}.weight.scale`)!.data;
      const c = output.shape[output.shape.length - 1];
      const per = codes.data.length / c;
      const packed = section(n, 'weights');
      const stored =
        n.bits === 4
          ? unpackInt4(new Tensor('u8', [packed.length], packed), c * per).data
          : new Int8Array(packed.buffer, packed.byteOffset, packed.length);
      // Where the twin's code of each stored (OHWI) weight is.
      const at = (o: number, j: number): number => {
        if (n.op === 'qconv2d') {
          const [, icg, kh, kw] = codes.dims;
          const ci = j % icg,
            x = Math.floor(j / icg) % kw,
            y = Math.floor(j / icg / kw);
          return ((o * icg + ci) * kh + y) * kw + x;
        }
        const flat = json.nodes[k - 1].op === 'reshape' ? json.tensors[json.nodes[k - 1].inputs[0]].shape : undefined;
        if (!flat) return o * per + j;
        const [h, w, ch] = flat;
        const ci = j % ch,
          x = Math.floor(j / ch) % w,
          y = Math.floor(j / ch / w);
        return o * per + (ci * h + y) * w + x;
      };
      let mismatched = 0;
      for (let o = 0; o < c; ++o)
        for (let j = 0; j < per; ++j) if (codes.data[at(o, j)] !== stored[o * per + j]) ++mismatched;
      expect(mismatched, output.name).toBe(0);
      // s_in * s_w / s_out is the stored rescale m * 2^-e; with an s32 output s_in * s_w is the affine's scale.
      const affineScale =
        output.dtype === 's32'
          ? new Float32Array(new Uint8Array(section(json.nodes[k + 1], 'scale')).buffer)
          : undefined;
      const m = output.dtype === 's32' ? undefined : new Int32Array(new Uint8Array(section(n, 'multiplier')).buffer);
      for (let o = 0; o < c; ++o) {
        const got = affineScale ? input.scale! * scales[o] : (input.scale! * scales[o]) / output.scale!;
        const want = affineScale ? affineScale[o] : m![o] * 2 ** -section(n, 'shift')[o];
        expect(Math.abs(got / want - 1)).toBeLessThan(2 ** -22);
      }
      ++layers;
    }
    expect(layers).toBe(4);
  });
});

describe('exportOnnxQdq: refusals', () => {
  it('a file that is no .lowbit model is a ModelFormatError', () => {
    expect(() => exportOnnxQdq(new TextEncoder().encode('not a model at all, just some text here'))).toThrow(
      ModelFormatError,
    );
    expect(() => exportOnnxQdq(readFileSync(`${models}heldout-vgg.onnx`))).toThrow(ModelFormatError);
  });
  it('binary layers are an UnsupportedError that says why', () => {
    expect(() => exportOnnxQdq(binaryModel())).toThrow(UnsupportedError);
    expect(() => exportOnnxQdq(binaryModel())).toThrow(/1-bit tensors; binary layers have no ONNX QDQ form/);
    expect(() => exportOnnxQdq(`${models}fashion-binary.lowbit`)).toThrow(UnsupportedError);
  });
  it('anything but bytes or a path is a TypeError', () => {
    expect(() => exportOnnxQdq(42 as unknown as Uint8Array)).toThrow(TypeError);
  });
});
