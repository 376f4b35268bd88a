/**
 * Writing ONNX models in code (onnx-proto): nodes, attributes, tensors, value infos and the
 * ModelProto around them. The QDQ exporter (export-qdq.ts) writes its models with it, and the
 * tests build their small ONNX models with it.
 */
import onnxProto, { type onnx as proto } from 'onnx-proto';

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

/** A value info (FLOAT unless given); a string dimension is a dim_param. */
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
  /** outputs: a name (declared FLOAT, without a shape) or a value info */
  outputs: (string | proto.IValueInfoProto)[];
  initializers?: proto.ITensorProto[];
  opset?: number;
  /** ModelProto.producer_name (default 'lowbit-test') */
  producer?: string;
  /** the graph's name (default 'test') */
  name?: string;
}

/** The encoded ModelProto (IR version 7, default domain at `opset`, 13 unless given). */
export function model(spec: ModelSpec): Uint8Array {
  const m = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: spec.opset ?? 13 }],
    producerName: spec.producer ?? 'lowbit-test',
    graph: {
      name: spec.name ?? 'test',
      node: spec.nodes,
      initializer: spec.initializers ?? [],
      input: spec.inputs,
      output: spec.outputs.map((o) =>
        typeof o === 'string' ? { name: o, type: { tensorType: { elemType: T.FLOAT } } } : o,
      ),
    },
  });
  return onnx.ModelProto.encode(m).finish();
}
