/**
 * Constant tensors during import. Every constant is held as a Float64Array tagged with its ONNX data
 * type, so integer and bool values stay exact (int64 up to 2^53) and float32 values are rounded back
 * to float32 after each folded operation (`castValue`). A NaN in an integer tensor stands for an
 * unknown value: the dynamic batch size that `Shape` of an activation reports (see fold.ts).
 */
import { ModelFormatError, UnsupportedError } from '../errors.js';

/** ONNX TensorProto.DataType values used here. */
export const DT = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
} as const;

const DT_NAMES: Record<number, string> = Object.fromEntries(Object.entries(DT).map(([k, v]) => [v, k]));

/** The data types a constant may have. */
export const SUPPORTED_DTYPES: readonly number[] = [
  DT.FLOAT,
  DT.DOUBLE,
  DT.INT8,
  DT.UINT8,
  DT.INT32,
  DT.INT64,
  DT.BOOL,
];

export function dtypeName(dtype: number): string {
  return DT_NAMES[dtype] ?? `data type ${dtype}`;
}

export function isFloatType(dtype: number): boolean {
  return dtype === DT.FLOAT || dtype === DT.DOUBLE;
}

/** A constant tensor: row-major values, ONNX dims (rank 0 = scalar). */
export interface CTensor {
  dtype: number;
  dims: number[];
  data: Float64Array;
}

export function size(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

export function strides(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= dims[i];
  }
  return s;
}

export function ctensor(dtype: number, dims: number[], data: ArrayLike<number>): CTensor {
  const d = data instanceof Float64Array ? data : Float64Array.from(data);
  return { dtype, dims, data: d };
}

export function scalar(dtype: number, v: number): CTensor {
  return { dtype, dims: [], data: Float64Array.of(castValue(v, dtype)) };
}

/** Rounds half to even (banker's rounding), as ONNX (Round, QuantizeLinear) and PyTorch quantizers do. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
}

/**
 * A number as a value of `dtype`: float32 rounding for FLOAT, truncation toward zero and
 * two's-complement wrap for the integer types, 0/1 for BOOL. NaN stays NaN for the integer types
 * (an unknown value, see above).
 */
export function castValue(v: number, dtype: number): number {
  switch (dtype) {
    case DT.FLOAT:
      return Math.fround(v);
    case DT.DOUBLE:
      return v;
    case DT.BOOL:
      return v !== 0 ? 1 : 0;
    default: {
      if (Number.isNaN(v)) return v;
      if (!Number.isFinite(v)) return dtype === DT.INT64 ? v : 0;
      const t = Math.trunc(v) || 0; // no -0 in integer types
      switch (dtype) {
        // ToInt32 (`| 0`, shifts, `&`) reduces any finite number modulo 2^32 exactly
        case DT.INT8:
          return (t << 24) >> 24;
        case DT.UINT8:
          return t & 255;
        case DT.INT32:
          return t | 0;
        default:
          return t;
      }
    }
  }
}

/** Numpy-style broadcast of several shapes; `where` names the node for the error message. */
export function broadcastDims(shapes: readonly (readonly number[])[], where: string): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; ++i) {
      const o = rank - s.length + i;
      const d = s[i];
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else
        throw new ModelFormatError(
          `${where}: shapes ${shapes.map((x) => `[${x.join(', ')}]`).join(' and ')} do not broadcast`,
        );
    }
  }
  return out;
}

/** The most elements a folded constant may have (1 GiB as float64). */
export const MAX_FOLDED = 2 ** 27;

/** The least total a model may fold, whatever its size (128 MiB as float64). */
export const MIN_FOLD_BUDGET = 2 ** 24;

/** Allocates the values of a folded constant; `where` names the node for errors. */
export interface Allocator {
  where: string;
  alloc(dims: readonly number[]): Float64Array;
}

/**
 * What constant folding may allocate: each folded tensor at most MAX_FOLDED elements, and all of
 * them together at most `limit`, both checked from the output dims before anything is allocated.
 */
export class FoldBudget {
  used = 0;

  constructor(readonly limit: number) {}

  /**
   * The budget of a model file of `bytes` bytes: 4 values per byte (a float32 weight may pass
   * through 16 folded operators; PyTorch's quantizer subgraphs take about 7), at least
   * MIN_FOLD_BUDGET, so that a few hundred bytes of ONNX cannot ask for gigabytes.
   */
  static forModel(bytes: number): FoldBudget {
    return new FoldBudget(Math.max(MIN_FOLD_BUDGET, 4 * bytes));
  }

  allocator(where: string): Allocator {
    return {
      where,
      alloc: (dims) => {
        const n = size(dims);
        if (!(n <= MAX_FOLDED) || dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
          throw new ModelFormatError(
            `${where}: a constant of dims [${dims.join(', ')}] is too large or malformed to fold (at most ${MAX_FOLDED} elements)`,
          );
        }
        if (this.used + n > this.limit) {
          throw new UnsupportedError(
            `${where}: folding a constant of dims [${dims.join(', ')}] would bring the values folded for this model to ${this.used + n}, ` +
              `over its budget of ${this.limit} (4 per byte of the model file, at least ${MIN_FOLD_BUDGET})`,
          );
        }
        this.used += n;
        return new Float64Array(n);
      },
    };
  }
}

/** For each output element of `outDims`, the flat index into a tensor of `dims` broadcast to it. */
export function broadcastIndex(dims: readonly number[], outDims: readonly number[]): Int32Array {
  const n = size(outDims);
  const idx = new Int32Array(n);
  const rank = outDims.length;
  const inStrides = strides(dims);
  const bs = new Array<number>(rank).fill(0);
  for (let i = 0; i < dims.length; ++i) bs[rank - dims.length + i] = dims[i] === 1 ? 0 : inStrides[i];
  const counter = new Array<number>(rank).fill(0);
  let offset = 0;
  for (let i = 0; i < n; ++i) {
    idx[i] = offset;
    for (let a = rank - 1; a >= 0; --a) {
      if (++counter[a] < outDims[a]) {
        offset += bs[a];
        break;
      }
      offset -= bs[a] * (outDims[a] - 1);
      counter[a] = 0;
    }
  }
  return idx;
}

/** Element-wise map over broadcast inputs (and `shape`, for Expand); the result is cast to `dtype`. */
export function mapBroadcast(
  inputs: readonly CTensor[],
  dtype: number,
  fn: (...v: number[]) => number,
  to: Allocator,
  shape: readonly number[] = [],
): CTensor {
  const dims = broadcastDims([...inputs.map((t) => t.dims), shape], to.where);
  const n = size(dims);
  const out = to.alloc(dims);
  const same = inputs.every((t) => t.dims.length === dims.length && t.dims.every((d, i) => d === dims[i]));
  if (same) {
    const ds = inputs.map((t) => t.data);
    if (ds.length === 1) for (let i = 0; i < n; ++i) out[i] = castValue(fn(ds[0][i]), dtype);
    else if (ds.length === 2) for (let i = 0; i < n; ++i) out[i] = castValue(fn(ds[0][i], ds[1][i]), dtype);
    else for (let i = 0; i < n; ++i) out[i] = castValue(fn(...ds.map((d) => d[i])), dtype);
  } else {
    const idx = inputs.map((t) => broadcastIndex(t.dims, dims));
    const ds = inputs.map((t) => t.data);
    if (ds.length === 2) for (let i = 0; i < n; ++i) out[i] = castValue(fn(ds[0][idx[0][i]], ds[1][idx[1][i]]), dtype);
    else for (let i = 0; i < n; ++i) out[i] = castValue(fn(...ds.map((d, k) => d[idx[k][i]])), dtype);
  }
  return { dtype, dims, data: out };
}

/** Every value of `t` equal to `v` (and at least one value). */
export function allEqual(t: CTensor, v: number): boolean {
  if (t.data.length === 0) return false;
  for (const x of t.data) if (x !== v) return false;
  return true;
}

export function formatDims(dims: readonly number[]): string {
  return `[${dims.map((d) => (d < 0 || Number.isNaN(d) ? 'N' : String(d))).join(', ')}]`;
}
