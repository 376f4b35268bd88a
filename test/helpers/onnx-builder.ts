/**
 * Building small ONNX models in code (onnx-proto) for the importer's tests, and running them with
 * onnxruntime-node as the reference.
 */
import * as ort from 'onnxruntime-node';
import onnxProto, { type onnx as proto } from 'onnx-proto';
import type { Rng } from './rng.js';

const { onnx } = onnxProto;
export const T = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;

export type Attr =
  | { i: number }
  | { f: number }
  | { ints: number[] }
  | { floats: number[] }
  | { s: string }
  | { t: proto.ITensorProto };
export const i = (v: number): Attr => ({ i: v });
export const f = (v: number): Attr => ({ f: v });
export const ints = (...v: number[]): Attr => ({ ints: v });
export const floats = (...v: number[]): Attr => ({ floats: v });
export const s = (v: string): Attr => ({ s: v });
export const t = (v: proto.ITensorProto): Attr => ({ t: v });

function attribute(name: string, a: Attr): proto.IAttributeProto {
  if ('i' in a) return { name, type: AT.INT, i: a.i };
  if ('f' in a) return { name, type: AT.FLOAT, f: a.f };
  if ('ints' in a) return { name, type: AT.INTS, ints: a.ints };
  if ('floats' in a) return { name, type: AT.FLOATS, floats: a.floats };
  if ('s' in a) return { name, type: AT.STRING, s: new TextEncoder().encode(a.s) };
  return { name, type: AT.TENSOR, t: a.t };
}

let unnamed = 0;
/** A node; the name defaults to `<op>_<k>`. */
export function node(
  opType: string,
  inputs: string[],
  outputs: string[],
  attrs: Record<string, Attr> = {},
  name?: string,
): proto.INodeProto {
  return {
    opType,
    input: inputs,
    output: outputs,
    name: name ?? `${opType}_${unnamed++}`,
    attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
  };
}

/** A tensor with raw_data (or the typed field when `typed`). */
export function tensor(
  name: string,
  dims: number[],
  values: ArrayLike<number>,
  dataType: number = T.FLOAT,
  typed = false,
): proto.ITensorProto {
  const n = values.length;
  if (typed) {
    switch (dataType) {
      case T.FLOAT:
        return { name, dims, dataType, floatData: Array.from(values) };
      case T.DOUBLE:
        return { name, dims, dataType, doubleData: Array.from(values) };
      case T.INT64:
        return { name, dims, dataType, int64Data: Array.from(values) };
      default:
        return { name, dims, dataType, int32Data: Array.from(values) };
    }
  }
  let raw: Uint8Array;
  switch (dataType) {
    case T.FLOAT:
      raw = new Uint8Array(Float32Array.from(values).buffer);
      break;
    case T.DOUBLE:
      raw = new Uint8Array(Float64Array.from(values).buffer);
      break;
    case T.INT32:
      raw = new Uint8Array(Int32Array.from(values).buffer);
      break;
    case T.INT64:
      raw = new Uint8Array(BigInt64Array.from(Array.from(values, (v) => BigInt(v))).buffer);
      break;
    case T.INT8:
      raw = new Uint8Array(Int8Array.from(values).buffer);
      break;
    default:
      raw = Uint8Array.from(values);
  }
  if (raw.length === 0 && n === 0) return { name, dims, dataType };
  return { name, dims, dataType, rawData: raw };
}

/** A FLOAT value info; a string dimension is a dim_param. */
export function valueInfo(name: string, dims: (number | string)[], elemType: number = T.FLOAT): proto.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

export interface ModelSpec {
  nodes: proto.INodeProto[];
  inputs: proto.IValueInfoProto[];
  /** output names (declared without shapes) */
  outputs: string[];
  initializers?: proto.ITensorProto[];
  opset?: number;
}

export function model(spec: ModelSpec): Uint8Array {
  const m = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: spec.opset ?? 13 }],
    producerName: 'lowbit-test',
    graph: {
      name: 'test',
      node: spec.nodes,
      initializer: spec.initializers ?? [],
      input: spec.inputs,
      output: spec.outputs.map((name) => ({ name, type: { tensorType: { elemType: T.FLOAT } } })),
    },
  });
  return onnx.ModelProto.encode(m).finish();
}

/** Uniform values in [lo, hi). */
export function randomValues(rng: Rng, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let k = 0; k < n; ++k) a[k] = lo + (hi - lo) * rng.float();
  return a;
}

/** An initializer of uniform random values in [lo, hi). */
export function randomTensor(rng: Rng, name: string, dims: number[], lo = -1, hi = 1): proto.ITensorProto {
  return tensor(
    name,
    dims,
    randomValues(
      rng,
      dims.reduce((a, b) => a * b, 1),
      lo,
      hi,
    ),
  );
}

/** Relative RMS error of a against b. */
export function relativeRms(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let k = 0; k < b.length; ++k) {
    num += (a[k] - b[k]) ** 2;
    den += b[k] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

/** The fraction of values whose signs (x < 0) differ. */
export function signMismatch(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let differ = 0;
  for (let k = 0; k < b.length; ++k) if (a[k] < 0 !== b[k] < 0) ++differ;
  return differ / b.length;
}

export interface Feed {
  dims: number[];
  data: Float32Array;
}

/** Runs the model in onnxruntime-node (one thread, no graph optimizations beyond the basic ones). */
export async function runOrt(bytes: Uint8Array, feeds: Record<string, Feed>): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    // The ONNX semantics, unoptimized: onnxruntime's basic level fuses a zero Pad into a following
    // MaxPool's pads, which pad with -infinity, so a window of negative values and zeros differs.
    graphOptimizationLevel: 'disabled',
  });
  try {
    const inputs: Record<string, ort.Tensor> = {};
    for (const [name, feed] of Object.entries(feeds)) inputs[name] = new ort.Tensor('float32', feed.data, feed.dims);
    const out = await session.run(inputs);
    const result: Record<string, Float32Array> = {};
    for (const [name, value] of Object.entries(out)) result[name] = value.data as Float32Array;
    return result;
  } finally {
    await session.release();
  }
}

/** Largest |a - b| / max(1, |b|) over two arrays, with the index (or Infinity when lengths differ). */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): { error: number; at: number } {
  if (a.length !== b.length) return { error: Infinity, at: -1 };
  let error = 0;
  let at = -1;
  for (let k = 0; k < a.length; ++k) {
    const e = Math.abs(a[k] - b[k]) / Math.max(1, Math.abs(b[k]));
    if (!(e <= error)) {
      error = e;
      at = k;
    }
  }
  return { error, at };
}
