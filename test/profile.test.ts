// Model.profile and `lowbit bench --profile`: one entry per node, times that add up, MAC counts
// from the layer shapes (worked out here from the graph JSON and from the ONNX source), outputs
// equal to runSync's, bad arguments, and the CLI's table. No timed assertions.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../lib/cli/main.js';
import type { Io } from '../lib/cli/format.js';
import { convertOnnx, loadModel, ShapeError, type Model, type ModelProfile } from '../lib/index.js';
import { nodeKind, nodeMacs } from '../lib/model/profile.js';
import { ROOT } from './helpers/compile-lib.js';
import { i as int, ints, model as onnxModel, node, randomValues, tensor, valueInfo } from './helpers/onnx-builder.js';
import { fileSeed, rngFor } from './helpers/rng.js';

const seed = fileSeed('profile');
const MODELS = ['fashion-binary', 'fashion-binary-mst', 'fashion-mixed', 'fashion-w4a8'].map((name) =>
  join(ROOT, 'models', `${name}.lowbit`),
);

interface JsonTensor {
  dtype: string;
  shape: number[];
  layout?: string;
}
interface JsonNode {
  name: string;
  op: string;
  inputs: number[];
  outputs: number[];
  kernel?: number[];
  groups?: number;
}

/**
 * MACs per sample of a conv / dense node from its tensors: output pixels x output channels x the
 * taps of one output value (kernel area x input channels per group). Rank-3 f32 is CHW unless its
 * layout is 'hwc', every other rank-3 tensor HWC.
 */
function expectedMacs(n: JsonNode, tensors: JsonTensor[]): number | null {
  const x = tensors[n.inputs[0]],
    y = tensors[n.outputs[0]];
  const chw = (t: JsonTensor) => t.dtype === 'f32' && t.shape.length === 3 && t.layout !== 'hwc';
  if (/^[qbf]dense$/.test(n.op)) return y.shape[0] * x.shape[0];
  if (!/^[qbf]conv2d$/.test(n.op)) return null;
  const [oh, ow, c] = chw(y) ? [y.shape[1], y.shape[2], y.shape[0]] : y.shape;
  const ci = chw(x) ? x.shape[0] : x.shape[2];
  return oh * ow * c * n.kernel![0] * n.kernel![1] * (ci / (n.groups ?? 1));
}

function samples(model: Model, batch: number, label: string): Float32Array {
  const per = model.inputs[0].sampleShape.reduce((a, b) => a * b, 1);
  return randomValues(rngFor(seed, label), batch * per, 0, 1);
}

/** What every profile must satisfy, whatever the timings. */
function checkProfile(model: Model, p: ModelProfile, batch: number, runs: number) {
  const graph = model.graph() as unknown as { tensors: JsonTensor[]; nodes: JsonNode[] };
  expect(p.batch).toBe(batch);
  expect(p.runs).toBe(runs);
  expect(p.nodes.map((n) => [n.name, n.op])).toEqual(graph.nodes.map((n) => [n.name, n.op]));
  for (const t of [p.medianMs, p.meanMs]) expect(Number.isFinite(t) && t > 0).toBe(true);
  for (const n of p.nodes) {
    for (const t of [n.medianMs, n.meanMs, n.share]) expect(Number.isFinite(t) && t >= 0, `${n.name}: ${t}`).toBe(true);
    expect(n.share).toBeCloseTo(n.medianMs / p.medianMs, 12);
    if (n.gops === null) expect(n.macs === null || n.medianMs === 0).toBe(true);
    else expect(n.gops).toBeCloseTo((2 * n.macs! * batch) / (n.medianMs * 1e6), 9);
  }
  // Each run's nodes take part of that run, so their means add up to at most the run's mean.
  const meanSum = p.nodes.reduce((s, n) => s + n.meanMs, 0);
  expect(meanSum).toBeLessThanOrEqual(p.meanMs * (1 + 1e-9));
  graph.nodes.forEach((n, k) => expect(p.nodes[k].macs, n.name).toBe(expectedMacs(n, graph.tensors)));
  // The per-op summary: every node once, most time first.
  expect(p.ops.reduce((s, o) => s + o.count, 0)).toBe(p.nodes.length);
  for (const o of p.ops) {
    const mine = p.nodes.filter((n) => n.op === o.op && n.kind === o.kind);
    expect(o.count).toBe(mine.length);
    expect(o.ms).toBeCloseTo(
      mine.reduce((s, n) => s + n.medianMs, 0),
      12,
    );
  }
  for (let k = 1; k < p.ops.length; ++k) expect(p.ops[k - 1].ms).toBeGreaterThanOrEqual(p.ops[k].ms);
}

describe('Model.profile on the shipped models', () => {
  it.each(MODELS)('%s', (path) => {
    const model = loadModel(path);
    const x = samples(model, 3, path);
    const p = model.profile(x, { runs: 4 });
    checkProfile(model, p, 3, 4);
    const want = model.runSync(x);
    for (const [name, t] of Object.entries(want)) expect(p.outputs[name].data).toEqual(t.data);
  });

  it('names what each layer computes, and counts the Fashion CNN MACs its architecture gives', () => {
    // conv1 1->32 3x3 at 28x28, conv2 32->64 3x3 at 14x14, conv3 64->64 and conv4 64->128 3x3 at
    // 7x7 (same padding), fc 128*7*7 -> 10.
    const macs = [28 * 28 * 32 * 9, 14 * 14 * 64 * 9 * 32, 7 * 7 * 64 * 9 * 64, 7 * 7 * 128 * 9 * 64, 6272 * 10];
    const kinds: Record<string, string[]> = {
      'fashion-binary': ['f32', 'binary', 'binary', 'binary', 'f32'],
      'fashion-binary-mst': ['f32', 'binary+MST', 'binary+MST', 'binary+MST', 'f32'],
    };
    for (const [name, kind] of Object.entries(kinds)) {
      const model = loadModel(join(ROOT, 'models', `${name}.lowbit`));
      const weighted = model.profile(samples(model, 1, name), { runs: 1, warmup: 0 }).nodes.filter((n) => n.macs);
      expect(
        weighted.map((n) => n.kind),
        name,
      ).toEqual(kind);
      expect(
        weighted.map((n) => n.macs),
        name,
      ).toEqual(macs);
      for (const n of weighted)
        expect(n.op).toMatch(n.kind.startsWith('binary') ? /^b/ : n.kind === 'f32' ? /^f/ : /^q/);
    }
    // The integer models' float CNN: conv1 and conv2 as above, fc1 64*7*7 -> 128, fc2 128 -> 10.
    const w4 = loadModel(join(ROOT, 'models/fashion-w4a8.lowbit'));
    const nodes = w4.profile(samples(w4, 1, 'w4'), { runs: 1 }).nodes;
    expect(nodes.filter((n) => n.macs).map((n) => [n.name, n.kind, n.macs])).toEqual([
      ['/conv1/Conv', 'W8A8', macs[0]],
      ['/conv2/Conv', 'W4A8', macs[1]],
      ['/Gemm', 'W4A8', 3136 * 128],
      ['/fc2/Gemm', 'W8A8', 128 * 10],
    ]);
    expect(nodes.filter((n) => n.macs === null).every((n) => n.kind === n.op && n.gops === null)).toBe(true);
  });
});

describe('Model.profile on a converted ONNX model', () => {
  // x [3, 9, 9] -> Conv 3->8 3x3 pad 1 -> Relu -> Conv 8->8 3x3 groups 2 stride 2 pad 1 ([8, 5, 5])
  // -> Sign -> binary Conv 8->6 3x3 pad 1 ([6, 5, 5]) -> Flatten -> Gemm 150 -> 10.
  const rng = rngFor(seed, 'onnx');
  const w = (name: string, dims: number[], binary = false) =>
    tensor(
      name,
      dims,
      randomValues(
        rng,
        dims.reduce((a, b) => a * b, 1),
      ).map((v) => (binary ? (v < 0 ? -0.2 : 0.2) : v * 0.3)),
    );
  const onnx = onnxModel({
    nodes: [
      node('Conv', ['x', 'w1', 'b1'], ['c1'], { pads: ints(1, 1, 1, 1) }, 'conv1'),
      node('Relu', ['c1'], ['r1'], {}, 'relu1'),
      node('Conv', ['r1', 'w2'], ['c2'], { pads: ints(1, 1, 1, 1), strides: ints(2, 2), group: int(2) }, 'conv2'),
      node('Sign', ['c2'], ['s'], {}, 'sign'),
      node('Conv', ['s', 'w3', 'b3'], ['c3'], { pads: ints(1, 1, 1, 1) }, 'bconv'),
      node('Flatten', ['c3'], ['flat'], { axis: int(1) }, 'flatten'),
      node('Gemm', ['flat', 'w4', 'b4'], ['logits'], { transB: int(1) }, 'fc'),
    ],
    inputs: [valueInfo('x', ['N', 3, 9, 9])],
    outputs: ['logits'],
    initializers: [
      w('w1', [8, 3, 3, 3]),
      w('b1', [8]),
      w('w2', [8, 4, 3, 3]),
      w('w3', [6, 8, 3, 3], true),
      w('b3', [6]),
      w('w4', [10, 150]),
      w('b4', [10]),
    ],
  });
  const expected: Record<string, number> = {
    conv1: 9 * 9 * 8 * (3 * 3 * 3),
    conv2: 5 * 5 * 8 * (3 * 3 * 4),
    bconv: 5 * 5 * 6 * (3 * 3 * 8),
    fc: 10 * 150,
  };

  it.each([
    [8, 'none'],
    [4, 'none'],
    [8, 'boundary'],
  ] as const)('bits %d, float layers %s', async (bits, floatLayers) => {
    const calibration = randomValues(rngFor(seed, 'calibration'), 32 * 243, 0, 1);
    const model = loadModel(
      await convertOnnx(onnx, { calibration, bits, boundaryBits: bits, floatLayers, reducedRange: 'off' }),
    );
    const x = samples(model, 5, `onnx${bits}`);
    const p = model.profile(x, { runs: 3 });
    checkProfile(model, p, 5, 3);
    expect(p.outputs.logits.data).toEqual(model.runSync(x).logits.data);
    const weighted = p.nodes.filter((n) => n.macs !== null);
    expect(weighted.map((n) => n.macs)).toEqual(Object.values(expected));
    const other = floatLayers === 'boundary' ? 'f32' : `W${bits}A8`;
    expect(weighted.map((n) => n.kind)).toEqual([other, other, 'binary', other]);
  });
});

describe('nodeMacs and nodeKind on float layers (fconv2d / fdense, f32 tensors laid out hwc or chw)', () => {
  it.each([
    ['hwc', [9, 9, 3], [5, 5, 8]],
    ['chw', [3, 9, 9], [8, 5, 5]],
  ])('%s', (layout, inShape, outShape) => {
    const tensors = [
      { dtype: 'f32', shape: inShape, layout },
      { dtype: 'f32', shape: outShape, layout },
    ];
    const conv = { name: 'c', op: 'fconv2d', inputs: [0], outputs: [1], kernel: [3, 3] as [number, number], groups: 1 };
    expect(nodeMacs(conv, tensors)).toBe(5 * 5 * 8 * (3 * 3 * 3));
    expect(expectedMacs(conv, tensors)).toBe(5 * 5 * 8 * (3 * 3 * 3));
    expect(nodeKind(conv)).toBe('f32');
  });

  it('fdense, and ops without weights', () => {
    const tensors = [
      { dtype: 'f32', shape: [150] },
      { dtype: 'f32', shape: [10] },
    ];
    expect(nodeMacs({ name: 'fc', op: 'fdense', inputs: [0], outputs: [1] }, tensors)).toBe(1500);
    expect(nodeKind({ name: 'fc', op: 'fdense', inputs: [0], outputs: [1] })).toBe('f32');
    expect(nodeMacs({ name: 's', op: 'softmax', inputs: [1], outputs: [1] }, tensors)).toBeNull();
    expect(nodeKind({ name: 's', op: 'softmax', inputs: [1], outputs: [1] })).toBe('softmax');
  });
});

describe('Model.profile arguments', () => {
  const model = loadModel(MODELS[0]);
  const x = samples(model, 2, 'args');

  it('defaults to 10 runs; warmup may be 0', () => {
    expect(model.profile(x).runs).toBe(10);
    expect(model.profile(x, { runs: 1, warmup: 0 }).runs).toBe(1);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 1e6])('runs %s: RangeError', (runs) => {
    expect(() => model.profile(x, { runs })).toThrow(RangeError);
    expect(() => model.profile(x, { runs })).toThrow(/^runs: expected an integer in \[1, 100000\]/);
  });

  it('rejects other bad options and inputs with the errors runSync gives', () => {
    expect(() => model.profile(x, { warmup: -1 })).toThrow(RangeError);
    expect(() => model.profile(x, { runs: '3' as unknown as number })).toThrow(TypeError);
    expect(() => model.profile(x, { run: 3 } as never)).toThrow(/unknown option 'run'/);
    expect(() => model.profile(x, null as never)).toThrow(TypeError);
    expect(() => model.profile(new Float32Array(5))).toThrow(ShapeError);
    expect(() => model.profile({ nope: x })).toThrow(TypeError);
    const disposed = loadModel(MODELS[0]);
    disposed.dispose();
    expect(() => disposed.profile(x)).toThrow(/disposed/);
  });
});

describe('lowbit bench --profile', () => {
  async function cli(...argv: string[]) {
    let stdout = '',
      stderr = '';
    const io: Io = { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } };
    return { code: await main(argv, io), stdout, stderr };
  }

  it('prints each node in graph order, the total, and the time per operator', async () => {
    const path = MODELS[1];
    const r = await cli('bench', path, '--profile', '--runs', '3', '--batch', '2', '--threads', '1');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/isa \w+, 1 thread, medians of 3 timed runs after 1 warm-up\n/);
    expect(r.stdout).toMatch(/^batch 2: median run [\d.]+ ms \(mean [\d.]+ ms\)$/m);
    expect(r.stdout).toMatch(/^node +op +kind +median ms +mean ms +share +MACs\/sample +Gop\/s$/m);
    const names = loadModel(path)
      .graph()
      .nodes.map((n) => n.name);
    const rows = names.map((name) => r.stdout.split('\n').findIndex((line) => line.startsWith(`${name} `)));
    expect(rows.every((row) => row > 0)).toBe(true);
    expect([...rows].sort((a, b) => a - b)).toEqual(rows);
    expect(r.stdout).toMatch(/^\/conv2\/Conv +bconv2d +binary\+MST +[\d.]+ +[\d.]+ +[\d.]+% +3,612,672 +[\d.]+$/m);
    expect(r.stdout).toMatch(/^nodes: [\d.]+ ms of the [\d.]+ ms run \([\d.]+%\)$/m);
    expect(r.stdout).toMatch(/^op +kind +count +ms +share +MACs\/sample +Gop\/s$/m);
    expect(r.stdout).toMatch(/^bconv2d +binary\+MST +3 +[\d.]+ +[\d.]+% +9,031,680 +[\d.]+$/m);
  });

  it('--sort time puts the slowest node first', async () => {
    const r = await cli('bench', MODELS[0], '--profile', '--runs', '2', '--sort', 'time', '--threads', '1');
    expect(r.code).toBe(0);
    const table = r.stdout.split('\n\n')[2].split('\n').slice(2, -1); // header, rule; the total
    const times = table.map((line) => Number(/ ([\d.]+) +[\d.]+ +[\d.]+%/.exec(line)![1]));
    // The float first conv writes the binary layer's signs itself; the classifier reads the last
    // binary layer's bits unpacked straight to float.
    expect(times.length).toBe(10);
    expect([...times].sort((a, b) => b - a)).toEqual(times);
  });

  it.each([
    [['--profile', '--runs', '0'], /--runs: expected an integer in \[1, 100000\], got '0'/],
    [['--profile', '--runs', 'x'], /--runs: expected an integer/],
    [['--runs', '5'], /--runs: applies to --profile/],
    [['--sort', 'time'], /--sort: applies to --profile/],
    [['--profile', '--sort', 'size'], /--sort: expected order or time, got 'size'/],
    [['--profile', '--seconds', '1'], /--seconds: cannot be combined with --profile/],
    [['--profile', '--vs-onnx', 'a.onnx'], /--vs-onnx: cannot be combined with --profile/],
    [['--profile', '--batch', '0'], /--batch: expected an integer >= 1/],
  ])('%j: a usage error', async (flags, message) => {
    const r = await cli('bench', MODELS[0], ...flags);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('usage: lowbit bench');
  });
});
