/**
 * The ONNX QDQ twin (exportOnnxQdq): integer networks written as QuantizeLinear / DequantizeLinear
 * around float Conv / Gemm / Add / pools, run in onnxruntime-node and compared with lowbit tensor
 * by tensor. Every 8-bit tensor of a model is exposed as an extra output on both sides (a
 * `dequantize` probe appended to the lowbit graph, which the exporter writes as an ONNX output
 * too), so the comparison is in quantization steps at each layer, not only at the logits.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import {
  convertOnnx,
  exportOnnxQdq,
  loadModel,
  ModelFormatError,
  readLbds,
  toInput,
  UnsupportedError,
} from '../lib/index.js';
import { withJson, type GraphTensor } from '../lib/model/format.js';
import { binaryModel, integerModel } from './helpers/tiny-models.js';
import {
  floats,
  i as int,
  ints,
  model as onnxModel,
  node,
  randomTensor,
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
  /** requantizing nodes on the longest path from the input */
  depth: number;
}

/** The model with every 8-bit tensor also dequantized to an f32 output `probe:<k>`, and the probes. */
function withProbes(bytes: Uint8Array): { bytes: Uint8Array; probes: Probe[] } {
  const probes: Probe[] = [];
  const probed = withJson(bytes, (raw) => {
    const json = raw as unknown as Json;
    const depth = new Array<number>(json.tensors.length).fill(0);
    for (const n of json.nodes) {
      const d = Math.max(0, ...n.inputs.map((t) => depth[t])) + (REQUANTIZING.has(n.op) ? 1 : 0);
      for (const t of n.outputs) depth[t] = d;
    }
    json.tensors.forEach((x, t) => {
      if (x.dtype !== 'u8' && x.dtype !== 's8') return;
      const name = `probe:${probes.length}`;
      const shape = x.shape.length === 3 ? [x.shape[2], x.shape[0], x.shape[1]] : x.shape;
      const f = json.tensors.push({ name, dtype: 'f32', shape }) - 1;
      json.nodes.push({ name: `${name}.dequantize`, op: 'dequantize', inputs: [t], outputs: [f] } as Json['nodes'][0]);
      json.outputs.push({ name, tensor: f });
      probes.push({ name, scale: x.scale!, depth: depth[t] });
    });
  });
  return { bytes: probed, probes };
}

/** onnxruntime at `level`: 'all' is what a user (and the benchmarks) run, 'disabled' the ONNX semantics. */
async function runTwin(
  onnx: Uint8Array,
  input: { name: string; dims: number[]; data: Float32Array },
  level: 'disabled' | 'all',
): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(onnx, {
    graphOptimizationLevel: level,
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  try {
    const out = await session.run({ [input.name]: new ort.Tensor('float32', input.data, input.dims) });
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await session.release();
  }
}

interface Agreement {
  /** per probe: the largest difference in steps, the fraction of values that differ, the depth */
  probes: { steps: number; differ: number; depth: number }[];
  /** per float output: the largest |difference| over the output's range, and arg-max agreement */
  outputs: { name: string; diff: number; range: number; argmax: number }[];
}

async function agreement(bytes: Uint8Array, input: Float32Array, level: 'disabled' | 'all'): Promise<Agreement> {
  const { bytes: probed, probes } = withProbes(bytes);
  const model = loadModel(probed);
  const mine = model.runSync(input);
  const info = model.inputs[0];
  const count = input.length / info.sampleShape.reduce((a, b) => a * b, 1);
  const twin = await runTwin(
    exportOnnxQdq(probed),
    { name: info.name, dims: [count, ...info.sampleShape], data: input },
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
    result.probes.push({ steps, differ: differ / a.length, depth: p.depth });
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

/** Every 8-bit tensor within one step per requantizing layer on its path, and most arg-maxes equal. */
function expectAgreement(a: Agreement, label: string): void {
  console.log(`${label}: ${summary(a)}`);
  for (const p of a.probes) expect(p.steps).toBeLessThanOrEqual(p.depth);
  for (const o of a.outputs) expect(o.argmax).toBeGreaterThanOrEqual(0.98);
}

describe('exportOnnxQdq', () => {
  it.each(['w8a8', 'w4a8', 'mixed'])('the shipped fashion-%s model agrees with onnxruntime', async (mode) => {
    const bytes = readFileSync(`${models}fashion-${mode}.lowbit`);
    for (const level of ['all', 'disabled'] as const)
      expectAgreement(await agreement(bytes, images, level), `fashion-${mode} (${level})`);
  });
});
