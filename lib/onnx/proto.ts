/**
 * Reading an ONNX ModelProto with onnx-proto (protobufjs): the opset, the graph's nodes with their
 * attributes, initializers as constant tensors, and the graph inputs and outputs. Everything a later
 * stage needs is checked here (types, lengths, dims) and reported as ModelFormatError naming the
 * tensor or node and the protobuf field, or UnsupportedError for valid ONNX that lowbit cannot take.
 */
import onnxProto, { type onnx as proto } from 'onnx-proto';
import { ModelFormatError, UnsupportedError } from '../errors.js';
import { castValue, DT, dtypeName, size, SUPPORTED_DTYPES, type CTensor } from './tensor.js';

const { onnx } = onnxProto;
const AT = onnx.AttributeProto.AttributeType;

/** The oldest default-domain opset the importer reads. */
export const MIN_OPSET = 11;

type Int64 = number | { toNumber(): number } | null | undefined;

/** An int64 protobuf field (a number or a Long) as a number (exact up to 2^53). */
export function num(v: Int64): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

/** `ONNX node "name" (Op)`: how messages name a node. */
export function nodeLabel(node: { name: string; opType: string }): string {
  return `ONNX node "${node.name}" (${node.opType})`;
}

export interface RawNode {
  /** the ONNX name, or `OpType#index` when unnamed */
  name: string;
  opType: string;
  domain: string;
  /** input names; '' for an omitted optional input */
  inputs: string[];
  outputs: string[];
  attrs: Attrs;
}

export interface RawInput {
  name: string;
  /** null for a symbolic or missing dimension */
  dims: (number | null)[];
}

export interface RawModel {
  opset: number;
  nodes: RawNode[];
  /** initializers (including graph inputs that have one) */
  initializers: Map<string, CTensor>;
  /** graph inputs without an initializer */
  inputs: RawInput[];
  outputs: string[];
  /** the size of the encoded model, in bytes (what constant folding may allocate scales with it) */
  bytes: number;
}

/** Typed access to a node's attributes; a wrong attribute type is a ModelFormatError. */
export class Attrs {
  private readonly map = new Map<string, proto.IAttributeProto>();

  constructor(
    list: proto.IAttributeProto[] | null | undefined,
    private readonly where: string,
  ) {
    for (const a of list ?? []) {
      if (!a.name) throw new ModelFormatError(`${where}: an attribute without a name (field attribute.name)`);
      this.map.set(a.name, a);
    }
  }

  names(): string[] {
    return [...this.map.keys()];
  }

  has(name: string): boolean {
    return this.map.has(name);
  }

  private get(name: string, type: number, typeName: string): proto.IAttributeProto | undefined {
    const a = this.map.get(name);
    if (a && a.type && a.type !== type) {
      throw new ModelFormatError(
        `${this.where}: attribute "${name}" has type ${AT[a.type] ?? a.type}, expected ${typeName} (field attribute.type)`,
      );
    }
    return a;
  }

  int(name: string, def: number): number {
    const a = this.get(name, AT.INT, 'INT');
    return a ? num(a.i) : def;
  }

  float(name: string, def: number): number {
    const a = this.get(name, AT.FLOAT, 'FLOAT');
    return a ? (a.f ?? 0) : def;
  }

  string(name: string, def: string): string {
    const a = this.get(name, AT.STRING, 'STRING');
    return a ? Buffer.from(a.s ?? new Uint8Array()).toString('utf8') : def;
  }

  ints(name: string): number[] | undefined {
    const a = this.get(name, AT.INTS, 'INTS');
    return a ? (a.ints ?? []).map(num) : undefined;
  }

  floats(name: string): number[] | undefined {
    const a = this.get(name, AT.FLOATS, 'FLOATS');
    return a ? [...(a.floats ?? [])] : undefined;
  }

  tensor(name: string): CTensor | undefined {
    const a = this.get(name, AT.TENSOR, 'TENSOR');
    if (!a) return undefined;
    if (!a.t) throw new ModelFormatError(`${this.where}: attribute "${name}" holds no tensor (field attribute.t)`);
    return tensorFromProto(a.t, `${this.where}: attribute "${name}"`);
  }
}

/** A TensorProto (raw_data or the typed fields) as a constant. */
export function tensorFromProto(t: proto.ITensorProto, where: string): CTensor {
  const dtype = t.dataType ?? 0;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    throw new UnsupportedError(
      `${where}: data stored outside the model file (field data_location); save the model with every tensor inside it`,
    );
  }
  if (!SUPPORTED_DTYPES.includes(dtype)) {
    throw new ModelFormatError(
      `${where}: unsupported data type ${dtypeName(dtype)} (field data_type); supported: ${SUPPORTED_DTYPES.map(dtypeName).join(', ')}`,
    );
  }
  const dims = (t.dims ?? []).map(num);
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0)
      throw new ModelFormatError(`${where}: bad dimension ${d} in [${dims.join(', ')}] (field dims)`);
  }
  const count = size(dims);
  if (count > 2 ** 31) throw new ModelFormatError(`${where}: ${count} elements is too many (field dims)`);
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    const bytes = dtype === DT.DOUBLE || dtype === DT.INT64 ? 8 : dtype === DT.FLOAT || dtype === DT.INT32 ? 4 : 1;
    if (raw.length !== count * bytes) {
      throw new ModelFormatError(
        `${where}: raw_data holds ${raw.length} bytes, expected ${count} x ${bytes} for dims [${dims.join(', ')}] (field raw_data)`,
      );
    }
    const data = new Float64Array(count);
    const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < count; ++i) {
      switch (dtype) {
        case DT.FLOAT:
          data[i] = v.getFloat32(4 * i, true);
          break;
        case DT.DOUBLE:
          data[i] = v.getFloat64(8 * i, true);
          break;
        case DT.INT32:
          data[i] = v.getInt32(4 * i, true);
          break;
        case DT.INT64:
          data[i] = Number(v.getBigInt64(8 * i, true));
          break;
        case DT.INT8:
          data[i] = v.getInt8(i);
          break;
        default: // UINT8, BOOL
          data[i] = v.getUint8(i);
      }
    }
    if (dtype === DT.BOOL) for (let i = 0; i < count; ++i) data[i] = data[i] ? 1 : 0;
    return { dtype, dims, data };
  }
  let values: ArrayLike<Int64> | undefined;
  let field: string;
  switch (dtype) {
    case DT.FLOAT:
      values = t.floatData ?? undefined;
      field = 'float_data';
      break;
    case DT.DOUBLE:
      values = t.doubleData ?? undefined;
      field = 'double_data';
      break;
    case DT.INT64:
      values = t.int64Data ?? undefined;
      field = 'int64_data';
      break;
    default:
      values = t.int32Data ?? undefined;
      field = 'int32_data';
  }
  const n = values?.length ?? 0;
  if (n !== count) {
    throw new ModelFormatError(
      `${where}: ${field} holds ${n} values, expected ${count} for dims [${dims.join(', ')}] (fields ${field} / raw_data)`,
    );
  }
  const data = new Float64Array(count);
  for (let i = 0; i < count; ++i) data[i] = castValue(num(values![i]), dtype);
  return { dtype, dims, data };
}

function valueInfoDims(v: proto.IValueInfoProto, where: string): (number | null)[] {
  const tt = v.type?.tensorType;
  if (!tt) throw new UnsupportedError(`${where}: not a tensor (field type.tensor_type)`);
  if (tt.elemType !== DT.FLOAT) {
    throw new UnsupportedError(
      `${where}: element type ${dtypeName(tt.elemType ?? 0)} (field type.tensor_type.elem_type); graph inputs must be FLOAT`,
    );
  }
  if (!tt.shape)
    throw new ModelFormatError(
      `${where}: no shape (field type.tensor_type.shape); the input's rank and dimensions must be given`,
    );
  return (tt.shape.dim ?? []).map((d, i) => {
    if (d.dimValue !== null && d.dimValue !== undefined) {
      const value = num(d.dimValue);
      if (!Number.isSafeInteger(value) || value < 1)
        throw new ModelFormatError(
          `${where}: bad dimension ${value} on axis ${i} (field type.tensor_type.shape.dim.dim_value)`,
        );
      return value;
    }
    return null;
  });
}

/** Decodes and checks a model. */
export function decodeModel(bytes: Uint8Array): RawModel {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`bytes: expected a Uint8Array, got ${typeof bytes}`);
  let model: proto.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new ModelFormatError(`ONNX model: not a valid protobuf ModelProto (${(error as Error).message})`);
  }
  const opsets = (model.opsetImport ?? []).filter((o) => !o.domain || o.domain === 'ai.onnx');
  if (opsets.length === 0)
    throw new ModelFormatError('ONNX model: no opset for the default domain (field opset_import)');
  const opset = num(opsets[0].version);
  if (opset < MIN_OPSET)
    throw new UnsupportedError(
      `ONNX model: opset ${opset} (field opset_import.version); lowbit imports opset ${MIN_OPSET} and later`,
    );
  const graph = model.graph;
  if (!graph) throw new ModelFormatError('ONNX model: no graph (field graph)');

  const initializers = new Map<string, CTensor>();
  for (const [i, t] of (graph.initializer ?? []).entries()) {
    if (!t.name) throw new ModelFormatError(`ONNX initializer #${i}: no name (field graph.initializer.name)`);
    initializers.set(t.name, tensorFromProto(t, `ONNX initializer "${t.name}"`));
  }
  if ((graph.sparseInitializer ?? []).length > 0)
    throw new UnsupportedError('ONNX model: sparse initializers (field graph.sparse_initializer)');

  const inputs: RawInput[] = [];
  for (const [i, v] of (graph.input ?? []).entries()) {
    if (!v.name) throw new ModelFormatError(`ONNX graph input #${i}: no name (field graph.input.name)`);
    if (initializers.has(v.name)) continue;
    inputs.push({ name: v.name, dims: valueInfoDims(v, `ONNX graph input "${v.name}"`) });
  }
  const outputs = (graph.output ?? []).map((v, i) => {
    if (!v.name) throw new ModelFormatError(`ONNX graph output #${i}: no name (field graph.output.name)`);
    return v.name;
  });
  if (outputs.length === 0) throw new ModelFormatError('ONNX model: the graph has no outputs (field graph.output)');

  const nodes = (graph.node ?? []).map((n, i): RawNode => {
    const opType = n.opType ?? '';
    if (!opType) throw new ModelFormatError(`ONNX node #${i}: no operator (field node.op_type)`);
    const name = n.name || `${opType}#${i}`;
    if (!n.output?.length || !n.output[0])
      throw new ModelFormatError(`${nodeLabel({ name, opType })}: no output (field node.output)`);
    return {
      name,
      opType,
      domain: n.domain ?? '',
      inputs: [...(n.input ?? [])],
      outputs: [...(n.output ?? [])],
      attrs: new Attrs(n.attribute, nodeLabel({ name, opType })),
    };
  });
  return { opset, nodes, initializers, inputs, outputs, bytes: bytes.length };
}
