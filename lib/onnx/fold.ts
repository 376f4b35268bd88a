/**
 * Constant folding: evaluates one ONNX node whose inputs are all constants, with ONNX semantics
 * (numpy broadcasting, float32 rounding after every float operation, integer division truncating,
 * Round half to even). PyTorch exports quantized weights as small subgraphs on the latent weight
 * (Abs, ReduceMean, GreaterOrEqual, Where, Sub, Add, Mul for binary weights; Div, Round, Clip, Mul
 * for INT8), and shape arithmetic as Shape / Gather / Unsqueeze / Concat chains: all of it folds here.
 *
 * An unknown integer (the dynamic batch size reported by `Shape` of an activation) is NaN; it passes
 * through data movement (Gather, Concat, Slice, Unsqueeze, ...) unchanged and turns arithmetic on it
 * into NaN. A shape argument that still holds a NaN where a number is needed is an UnsupportedError.
 *
 * Every folded value is allocated through a FoldBudget (tensor.ts), which checks the output's dims
 * against the per-tensor limit and the model's total before allocating anything.
 */
import { ModelFormatError, UnsupportedError } from '../errors.js';
import { nodeLabel, type RawNode } from './proto.js';
import {
  castValue,
  DT,
  dtypeName,
  formatDims,
  isFloatType,
  mapBroadcast,
  roundHalfEven,
  size,
  strides,
  FoldBudget,
  type Allocator,
  type CTensor,
} from './tensor.js';

/** What a fold gets beside its inputs: the opset, and where its outputs' values come from. */
interface Context extends Allocator {
  opset: number;
}

type Fold = (node: RawNode, inputs: (CTensor | undefined)[], ctx: Context) => CTensor[];

function input(node: RawNode, inputs: (CTensor | undefined)[], i: number): CTensor {
  const t = inputs[i];
  if (!t) throw new ModelFormatError(`${nodeLabel(node)}: input ${i} is required (field node.input)`);
  return t;
}

function normAxis(node: RawNode, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank)
    throw new ModelFormatError(`${nodeLabel(node)}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Integer values of a 1-D shape-like constant (no NaN allowed). */
function intsOf(node: RawNode, t: CTensor, what: string): number[] {
  const v = Array.from(t.data);
  if (v.some((x) => Number.isNaN(x))) {
    throw new UnsupportedError(
      `${nodeLabel(node)}: ${what} depends on the dynamic batch size (${formatValues(v)}); only a Reshape to [N, -1] may use it`,
    );
  }
  return v;
}

/**
 * The dims of a filled or expanded constant (ConstantOfShape, Expand): the dynamic batch (NaN)
 * becomes 1. Every element along that axis is the same, so the constant broadcasts to the real
 * tensor: `ones_like(x)` under a dynamic batch (`ConstantOfShape(Shape(x))`) is a [1, C, H, W] of ones.
 */
function broadcastShape(t: CTensor): number[] {
  return Array.from(t.data, (d) => (Number.isNaN(d) ? 1 : d));
}

function formatValues(v: number[]): string {
  return `[${v.map((x) => (Number.isNaN(x) ? 'N' : String(x))).join(', ')}]`;
}

function unary(fn: (v: number) => number, outType?: number): Fold {
  return (node, ins, ctx) => {
    const x = input(node, ins, 0);
    return [mapBroadcast([x], outType ?? x.dtype, fn, ctx)];
  };
}

function binary(fn: (a: number, b: number, dtype: number) => number, outType?: number): Fold {
  return (node, ins, ctx) => {
    const a = input(node, ins, 0);
    const b = input(node, ins, 1);
    const dtype = outType ?? a.dtype;
    return [mapBroadcast([a, b], dtype, (x, y) => fn(x, y, a.dtype), ctx)];
  };
}

function variadic(fn: (a: number, b: number) => number): Fold {
  return (node, ins, ctx) => {
    const xs = ins.filter((t): t is CTensor => t !== undefined);
    if (xs.length === 0) throw new ModelFormatError(`${nodeLabel(node)}: no inputs (field node.input)`);
    let acc = xs[0];
    for (const x of xs.slice(1)) acc = mapBroadcast([acc, x], xs[0].dtype, fn, ctx);
    return [acc];
  };
}

function bool(fn: (a: number, b: number) => boolean): Fold {
  return binary((a, b) => (fn(a, b) ? 1 : 0), DT.BOOL);
}

/** Axes of a Reduce / Squeeze / Unsqueeze: the `axes` input (newer opsets) or attribute. */
function axesOf(node: RawNode, ins: (CTensor | undefined)[], index: number): number[] | undefined {
  const t = ins[index];
  if (t) return intsOf(node, t, 'axes');
  return node.attrs.ints('axes');
}

function reduce(
  init: number,
  step: (acc: number, v: number) => number,
  finish: (acc: number, count: number) => number = (a) => a,
): Fold {
  return (node, ins, ctx) => {
    const x = input(node, ins, 0);
    const rank = x.dims.length;
    const keep = node.attrs.int('keepdims', 1) !== 0;
    let axes = axesOf(node, ins, 1);
    if (!axes || axes.length === 0) {
      if (node.attrs.int('noop_with_empty_axes', 0) !== 0) return [x];
      axes = x.dims.map((_, i) => i);
    }
    const set = new Set(axes.map((a) => normAxis(node, a, rank)));
    const outDimsKeep = x.dims.map((d, i) => (set.has(i) ? 1 : d));
    const outStrides = strides(outDimsKeep);
    const n = size(outDimsKeep);
    const acc = ctx.alloc(outDimsKeep).fill(init);
    const count = size(x.dims) / Math.max(1, n);
    const inCounter = new Array<number>(rank).fill(0);
    for (let i = 0; i < x.data.length; ++i) {
      let o = 0;
      for (let a = 0; a < rank; ++a) if (!set.has(a)) o += inCounter[a] * outStrides[a];
      acc[o] = step(acc[o], x.data[i]);
      for (let a = rank - 1; a >= 0; --a) {
        if (++inCounter[a] < x.dims[a]) break;
        inCounter[a] = 0;
      }
    }
    for (let i = 0; i < n; ++i) acc[i] = castValue(finish(acc[i], count), x.dtype);
    const dims = keep ? outDimsKeep : x.dims.filter((_, i) => !set.has(i));
    return [{ dtype: x.dtype, dims, data: acc }];
  };
}

function reshaped(x: CTensor, dims: number[]): CTensor {
  return { dtype: x.dtype, dims, data: x.data };
}

/** Target dims of a Reshape (0 copies the input's dim unless allowzero, one -1 is inferred). */
export function reshapeDims(node: RawNode, inDims: number[], shape: number[], allowZero: boolean): number[] {
  const out = shape.map((d, i) => (d === 0 && !allowZero ? inDims[i] : d));
  const known = out.filter((d) => d !== -1);
  const infer = out.length - known.length;
  const total = size(inDims);
  if (infer > 1 || out.some((d) => d < -1 || d === undefined)) {
    throw new ModelFormatError(`${nodeLabel(node)}: bad target shape ${formatValues(shape)} (input "shape")`);
  }
  if (infer === 1) {
    const rest = size(known);
    if (rest === 0 || total % rest !== 0)
      throw new ModelFormatError(`${nodeLabel(node)}: cannot reshape ${formatDims(inDims)} to ${formatValues(shape)}`);
    out[out.indexOf(-1)] = total / rest;
  }
  if (size(out) !== total)
    throw new ModelFormatError(`${nodeLabel(node)}: cannot reshape ${formatDims(inDims)} to ${formatValues(shape)}`);
  return out;
}

function transpose(x: CTensor, perm: number[], to: Allocator): CTensor {
  const rank = x.dims.length;
  const dims = perm.map((p) => x.dims[p]);
  const inStrides = strides(x.dims);
  const permStrides = perm.map((p) => inStrides[p]);
  const out = to.alloc(dims);
  const counter = new Array<number>(rank).fill(0);
  let offset = 0;
  for (let i = 0; i < out.length; ++i) {
    out[i] = x.data[offset];
    for (let a = rank - 1; a >= 0; --a) {
      if (++counter[a] < dims[a]) {
        offset += permStrides[a];
        break;
      }
      offset -= permStrides[a] * (dims[a] - 1);
      counter[a] = 0;
    }
  }
  return { dtype: x.dtype, dims, data: out };
}

function concat(node: RawNode, xs: CTensor[], axisAttr: number, to: Allocator): CTensor {
  const rank = xs[0].dims.length;
  const axis = normAxis(node, axisAttr, rank);
  for (const x of xs) {
    if (x.dims.length !== rank || x.dims.some((d, i) => i !== axis && d !== xs[0].dims[i])) {
      throw new ModelFormatError(
        `${nodeLabel(node)}: cannot concatenate ${xs.map((t) => formatDims(t.dims)).join(', ')} on axis ${axisAttr}`,
      );
    }
  }
  const dims = [...xs[0].dims];
  dims[axis] = xs.reduce((s, x) => s + x.dims[axis], 0);
  const outer = size(dims.slice(0, axis));
  const out = to.alloc(dims);
  let o = 0;
  for (let i = 0; i < outer; ++i) {
    for (const x of xs) {
      const chunk = size(x.dims.slice(axis));
      out.set(x.data.subarray(i * chunk, (i + 1) * chunk), o);
      o += chunk;
    }
  }
  const dtype = xs[0].dtype;
  return { dtype, dims, data: out };
}

function gather(node: RawNode, x: CTensor, indices: CTensor, axisAttr: number, to: Allocator): CTensor {
  const axis = normAxis(node, axisAttr, x.dims.length);
  const n = x.dims[axis];
  const outer = size(x.dims.slice(0, axis));
  const inner = size(x.dims.slice(axis + 1));
  const idx = Array.from(indices.data, (v) => {
    const k = v < 0 ? v + n : v;
    if (!Number.isInteger(k) || k < 0 || k >= n)
      throw new ModelFormatError(`${nodeLabel(node)}: index ${v} is out of range for axis ${axisAttr} of size ${n}`);
    return k;
  });
  const dims = [...x.dims.slice(0, axis), ...indices.dims, ...x.dims.slice(axis + 1)];
  const out = to.alloc(dims);
  let o = 0;
  for (let i = 0; i < outer; ++i) {
    for (const k of idx) {
      out.set(x.data.subarray((i * n + k) * inner, (i * n + k + 1) * inner), o);
      o += inner;
    }
  }
  return { dtype: x.dtype, dims, data: out };
}

function slice(node: RawNode, ins: (CTensor | undefined)[], to: Allocator): CTensor {
  const x = input(node, ins, 0);
  const rank = x.dims.length;
  const starts = intsOf(node, input(node, ins, 1), 'starts');
  const ends = intsOf(node, input(node, ins, 2), 'ends');
  const axes = ins[3] ? intsOf(node, ins[3], 'axes') : starts.map((_, i) => i);
  const steps = ins[4] ? intsOf(node, ins[4], 'steps') : starts.map(() => 1);
  const begin = x.dims.map(() => 0);
  const step = x.dims.map(() => 1);
  const count = [...x.dims];
  axes.forEach((axisAttr, i) => {
    const a = normAxis(node, axisAttr, rank);
    const d = x.dims[a];
    const s = steps[i];
    if (s === 0) throw new ModelFormatError(`${nodeLabel(node)}: step 0 (input "steps")`);
    const clampIdx = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + d : v, lo), hi);
    const b = s > 0 ? clampIdx(starts[i], 0, d) : clampIdx(starts[i], -1, d - 1);
    const e = s > 0 ? clampIdx(ends[i], 0, d) : clampIdx(ends[i], -1, d - 1);
    begin[a] = b;
    step[a] = s;
    count[a] = Math.max(0, Math.ceil((e - b) / s));
  });
  const inStrides = strides(x.dims);
  const out = to.alloc(count);
  const counter = new Array<number>(rank).fill(0);
  for (let i = 0; i < out.length; ++i) {
    let off = 0;
    for (let a = 0; a < rank; ++a) off += (begin[a] + counter[a] * step[a]) * inStrides[a];
    out[i] = x.data[off];
    for (let a = rank - 1; a >= 0; --a) {
      if (++counter[a] < count[a]) break;
      counter[a] = 0;
    }
  }
  return { dtype: x.dtype, dims: count, data: out };
}

/** QuantizeLinear / DequantizeLinear parameters broadcast to x: per tensor, or per `axis`. */
function quantParams(
  node: RawNode,
  x: CTensor,
  scale: CTensor,
  zp: CTensor | undefined,
): { s: (i: number) => number; z: (i: number) => number } {
  const perAxis = scale.dims.length === 1 && size(scale.dims) > 1;
  if (!perAxis) {
    if (size(scale.dims) !== 1)
      throw new ModelFormatError(
        `${nodeLabel(node)}: scale ${formatDims(scale.dims)} is neither a scalar nor 1-D (input "y_scale")`,
      );
    const s = scale.data[0];
    const z = zp ? zp.data[0] : 0;
    return { s: () => s, z: () => z };
  }
  const axis = normAxis(node, node.attrs.int('axis', 1), x.dims.length);
  if (scale.dims[0] !== x.dims[axis]) {
    throw new ModelFormatError(
      `${nodeLabel(node)}: ${scale.dims[0]} scales for axis ${axis} of size ${x.dims[axis]} (input "scale")`,
    );
  }
  if (zp && size(zp.dims) !== scale.dims[0])
    throw new ModelFormatError(
      `${nodeLabel(node)}: zero point ${formatDims(zp.dims)} does not match scale ${formatDims(scale.dims)}`,
    );
  const inner = size(x.dims.slice(axis + 1));
  const n = x.dims[axis];
  const ch = (i: number) => Math.floor(i / inner) % n;
  return { s: (i) => scale.data[ch(i)], z: (i) => (zp ? zp.data[ch(i)] : 0) };
}

const QRANGE: Record<number, [number, number]> = {
  [DT.UINT8]: [0, 255],
  [DT.INT8]: [-128, 127],
  [DT.INT32]: [-(2 ** 31), 2 ** 31 - 1],
};

function quantizeLinear(node: RawNode, ins: (CTensor | undefined)[], to: Allocator): CTensor {
  const x = input(node, ins, 0);
  const scale = input(node, ins, 1);
  const zp = ins[2];
  const dtype = zp ? zp.dtype : DT.UINT8;
  const range = QRANGE[dtype];
  if (!range)
    throw new UnsupportedError(
      `${nodeLabel(node)}: zero point of type ${dtypeName(dtype)}; supported: UINT8, INT8, INT32`,
    );
  const { s, z } = quantParams(node, x, scale, zp);
  const out = to.alloc(x.dims);
  for (let i = 0; i < out.length; ++i) {
    const q = roundHalfEven(castValue(x.data[i] / s(i), x.dtype === DT.DOUBLE ? DT.DOUBLE : DT.FLOAT)) + z(i);
    out[i] = Number.isNaN(q) ? z(i) : Math.min(range[1], Math.max(range[0], q));
  }
  return { dtype, dims: [...x.dims], data: out };
}

function dequantizeLinear(node: RawNode, ins: (CTensor | undefined)[], to: Allocator): CTensor {
  const x = input(node, ins, 0);
  const scale = input(node, ins, 1);
  const { s, z } = quantParams(node, x, scale, ins[2]);
  const out = to.alloc(x.dims);
  for (let i = 0; i < out.length; ++i) out[i] = Math.fround((x.data[i] - z(i)) * s(i));
  return { dtype: scale.dtype === DT.DOUBLE ? DT.DOUBLE : DT.FLOAT, dims: [...x.dims], data: out };
}

function intDiv(a: number, b: number, dtype: number): number {
  return isFloatType(dtype) ? a / b : Math.trunc(a / b);
}

const FOLDS: Record<string, Fold> = {
  Identity: (node, ins) => [input(node, ins, 0)],
  Abs: unary(Math.abs),
  Neg: unary((v) => -v),
  // ONNX semantics on constants: Sign(0) = 0 (activation binarization is handled in canon.ts)
  Sign: unary((v) => (v > 0 ? 1 : v < 0 ? -1 : v)),
  Sqrt: unary(Math.sqrt),
  Reciprocal: unary((v) => 1 / v),
  Round: unary(roundHalfEven),
  Floor: unary(Math.floor),
  Ceil: unary(Math.ceil),
  Relu: unary((v) => (v > 0 ? v : 0)),
  Exp: unary(Math.exp),
  Log: unary(Math.log),
  Tanh: unary(Math.tanh),
  Sigmoid: unary((v) => 1 / (1 + Math.exp(-v))),
  Not: unary((v) => (v ? 0 : 1), DT.BOOL),
  Add: binary((a, b) => a + b),
  Sub: binary((a, b) => a - b),
  Mul: binary((a, b) => a * b),
  Div: binary(intDiv),
  Pow: binary((a, b) => Math.pow(a, b)),
  Max: variadic((a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b))),
  Min: variadic((a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b))),
  Sum: variadic((a, b) => a + b),
  Equal: bool((a, b) => a === b),
  Greater: bool((a, b) => a > b),
  GreaterOrEqual: bool((a, b) => a >= b),
  Less: bool((a, b) => a < b),
  LessOrEqual: bool((a, b) => a <= b),
  And: bool((a, b) => a !== 0 && b !== 0),
  Or: bool((a, b) => a !== 0 || b !== 0),
  Xor: bool((a, b) => (a !== 0) !== (b !== 0)),
  Where: (node, ins, ctx) => {
    const c = input(node, ins, 0);
    const x = input(node, ins, 1);
    const y = input(node, ins, 2);
    return [mapBroadcast([c, x, y], x.dtype, (cv, xv, yv) => (cv ? xv : yv), ctx)];
  },
  Clip: (node, ins, ctx) => {
    const x = input(node, ins, 0);
    const opset = ctx.opset;
    const lo = opset < 11 ? node.attrs.float('min', -Infinity) : ins[1] ? ins[1].data[0] : -Infinity;
    const hi = opset < 11 ? node.attrs.float('max', Infinity) : ins[2] ? ins[2].data[0] : Infinity;
    return [mapBroadcast([x], x.dtype, (v) => (v < lo ? lo : v > hi ? hi : v), ctx)];
  },
  Cast: (node, ins, ctx) => {
    const x = input(node, ins, 0);
    const to = node.attrs.int('to', 0);
    if (![DT.FLOAT, DT.DOUBLE, DT.INT8, DT.UINT8, DT.INT32, DT.INT64, DT.BOOL].includes(to as 1)) {
      throw new UnsupportedError(
        `${nodeLabel(node)}: cast to ${dtypeName(to)} (attribute "to"); supported: FLOAT, DOUBLE, INT8, UINT8, INT32, INT64, BOOL`,
      );
    }
    return [mapBroadcast([x], to, (v) => v, ctx)];
  },
  ReduceMean: reduce(
    0,
    (a, v) => a + v,
    (a, n) => a / n,
  ),
  ReduceSum: reduce(0, (a, v) => a + v),
  ReduceMax: reduce(-Infinity, (a, v) => (Number.isNaN(a) || v > a || Number.isNaN(v) ? v : a)),
  ReduceMin: reduce(Infinity, (a, v) => (Number.isNaN(a) || v < a || Number.isNaN(v) ? v : a)),
  ReduceProd: reduce(1, (a, v) => a * v),
  Reshape: (node, ins) => {
    const x = input(node, ins, 0);
    const shape = intsOf(node, input(node, ins, 1), 'the target shape');
    return [reshaped(x, reshapeDims(node, x.dims, shape, node.attrs.int('allowzero', 0) !== 0))];
  },
  Flatten: (node, ins) => {
    const x = input(node, ins, 0);
    const axis = node.attrs.int('axis', 1);
    const a = axis < 0 ? axis + x.dims.length : axis;
    if (a < 0 || a > x.dims.length)
      throw new ModelFormatError(`${nodeLabel(node)}: axis ${axis} is out of range for rank ${x.dims.length}`);
    return [reshaped(x, [size(x.dims.slice(0, a)), size(x.dims.slice(a))])];
  },
  Transpose: (node, ins, ctx) => {
    const x = input(node, ins, 0);
    const perm = node.attrs.ints('perm') ?? x.dims.map((_, i) => x.dims.length - 1 - i);
    if (perm.length !== x.dims.length || [...perm].sort().some((p, i) => p !== i)) {
      throw new ModelFormatError(
        `${nodeLabel(node)}: perm [${perm.join(', ')}] is not a permutation of rank ${x.dims.length} (attribute "perm")`,
      );
    }
    return [transpose(x, perm, ctx)];
  },
  Unsqueeze: (node, ins) => {
    const x = input(node, ins, 0);
    const axes = axesOf(node, ins, 1) ?? [];
    const rank = x.dims.length + axes.length;
    const set = new Set(axes.map((a) => normAxis(node, a, rank)));
    const dims: number[] = [];
    let k = 0;
    for (let i = 0; i < rank; ++i) dims.push(set.has(i) ? 1 : x.dims[k++]);
    return [reshaped(x, dims)];
  },
  Squeeze: (node, ins) => {
    const x = input(node, ins, 0);
    const axes = axesOf(node, ins, 1);
    const set = axes ? new Set(axes.map((a) => normAxis(node, a, x.dims.length))) : undefined;
    if (set)
      for (const a of set)
        if (x.dims[a] !== 1) throw new ModelFormatError(`${nodeLabel(node)}: axis ${a} has size ${x.dims[a]}, not 1`);
    return [
      reshaped(
        x,
        x.dims.filter((d, i) => (set ? !set.has(i) : d !== 1)),
      ),
    ];
  },
  Concat: (node, ins, ctx) => {
    const xs = ins.filter((t): t is CTensor => t !== undefined);
    if (xs.length === 0) throw new ModelFormatError(`${nodeLabel(node)}: no inputs (field node.input)`);
    return [concat(node, xs, node.attrs.int('axis', 0), ctx)];
  },
  Expand: (node, ins, ctx) => {
    const x = input(node, ins, 0);
    const shape = broadcastShape(input(node, ins, 1));
    return [mapBroadcast([x], x.dtype, (v) => v, ctx, shape)];
  },
  Shape: (node, ins) => {
    const x = input(node, ins, 0);
    return [shapeOf(node, x.dims)];
  },
  Size: (node, ins) => [{ dtype: DT.INT64, dims: [], data: Float64Array.of(size(input(node, ins, 0).dims)) }],
  Gather: (node, ins, ctx) => [gather(node, input(node, ins, 0), input(node, ins, 1), node.attrs.int('axis', 0), ctx)],
  Slice: (node, ins, ctx) => [slice(node, ins, ctx)],
  ConstantOfShape: (node, ins, ctx) => {
    const dims = broadcastShape(input(node, ins, 0));
    const value = node.attrs.tensor('value') ?? { dtype: DT.FLOAT, dims: [1], data: Float64Array.of(0) };
    return [{ dtype: value.dtype, dims, data: ctx.alloc(dims).fill(value.data[0] ?? 0) }];
  },
  Range: (node, ins, ctx) => {
    const [start, limit, delta] = [0, 1, 2].map((i) => intsOf(node, input(node, ins, i), 'a range bound')[0]);
    const n = Math.max(0, Math.ceil((limit - start) / delta));
    const t = input(node, ins, 0);
    const data = ctx.alloc([n]);
    for (let i = 0; i < n; ++i) data[i] = castValue(start + i * delta, t.dtype);
    return [{ dtype: t.dtype, dims: [n], data }];
  },
  QuantizeLinear: (node, ins, ctx) => [quantizeLinear(node, ins, ctx)],
  DequantizeLinear: (node, ins, ctx) => [dequantizeLinear(node, ins, ctx)],
};

/** Shape of a tensor as an INT64 constant (start / end attributes of opset 15); -1 dims become NaN. */
export function shapeOf(node: RawNode, dims: number[]): CTensor {
  const rank = dims.length;
  const clampAxis = (a: number) => Math.min(Math.max(a < 0 ? a + rank : a, 0), rank);
  const start = clampAxis(node.attrs.int('start', 0));
  const end = clampAxis(node.attrs.int('end', rank));
  const v = dims.slice(start, Math.max(start, end)).map((d) => (d < 0 ? NaN : d));
  return { dtype: DT.INT64, dims: [v.length], data: Float64Array.from(v) };
}

/** The operators `foldNode` evaluates. */
export const FOLDABLE_OPS: readonly string[] = Object.keys(FOLDS).sort();

/**
 * Evaluates a node whose inputs are all constants; undefined when the operator is not foldable.
 * Every value it allocates is counted against `budget` first (by default only the per-tensor limit).
 */
export function foldNode(
  node: RawNode,
  inputs: (CTensor | undefined)[],
  opset: number,
  budget = new FoldBudget(Infinity),
): CTensor[] | undefined {
  const fold = FOLDS[node.opType];
  return fold ? fold(node, inputs, { opset, ...budget.allocator(nodeLabel(node)) }) : undefined;
}
