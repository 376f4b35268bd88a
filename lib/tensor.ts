/**
 * Typed tensors. NHWC for images; `b1` tensors hold sign bits packed along the last axis,
 * 64 per word (bit 1 = -1, sign(0) = +1, zero tail bits), so a `b1` tensor of shape
 * [..., C] has `ceil(C / 64)` BigUint64Array words per row.
 */
import { ShapeError } from './errors.js';

export type DType = 'f32' | 's8' | 'u8' | 's32' | 'b1';

export interface DataOf {
  f32: Float32Array;
  s8: Int8Array;
  u8: Uint8Array;
  s32: Int32Array;
  b1: BigUint64Array;
}

const constructors = {
  f32: Float32Array,
  s8: Int8Array,
  u8: Uint8Array,
  s32: Int32Array,
  b1: BigUint64Array,
} as const;

/** Number of 64-bit words that hold `channels` packed sign bits. */
export function b1Words(channels: number): number {
  return Math.ceil(channels / 64);
}

/** Elements (or, for b1, words) a tensor of this dtype and shape holds. */
export function storageLength(dtype: DType, shape: readonly number[]): number {
  if (shape.length === 0) return 1;
  const last = shape[shape.length - 1];
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return rows * (dtype === 'b1' ? b1Words(last) : last);
}

/** A short description of a value's kind for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  return typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value;
}

export class Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: DataOf[D];

  /**
   * @param dtype element type
   * @param shape dimensions, each a non-negative safe integer
   * @param data backing array of the matching TypedArray kind and exact length; zero-filled if omitted
   * @throws TypeError for a wrong data kind or dtype, RangeError for a bad dimension, ShapeError for a wrong length
   */
  constructor(dtype: D, shape: readonly number[], data?: DataOf[D]) {
    if (!(dtype in constructors))
      throw new TypeError(`dtype: expected one of ${Object.keys(constructors).join(', ')}, got ${String(dtype)}`);
    if (!Array.isArray(shape)) throw new TypeError(`shape: expected an array of dimensions, got ${describe(shape)}`);
    shape.forEach((d, i) => {
      if (!Number.isSafeInteger(d) || d < 0)
        throw new RangeError(`shape[${i}]: expected a non-negative integer, got ${String(d)}`);
    });
    const length = storageLength(dtype, shape);
    if (!Number.isSafeInteger(length)) throw new RangeError(`shape [${shape.join(', ')}] is too large`);
    const Ctor = constructors[dtype];
    if (data === undefined) {
      data = new Ctor(length) as DataOf[D];
    } else if (!(data instanceof Ctor)) {
      throw new TypeError(`data: a ${dtype} tensor needs a ${Ctor.name}, got ${describe(data)}`);
    } else if (data.length !== length) {
      const unit = dtype === 'b1' ? '64-bit words' : 'elements';
      throw new ShapeError(`data: shape [${shape.join(', ')}] (${dtype}) needs ${length} ${unit}, got ${data.length}`);
    }
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.data = data;
  }

  /** Number of logical elements (product of the shape). */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

/** Shorthand for `new Tensor(dtype, shape, data)`. */
export function tensor<D extends DType>(dtype: D, shape: readonly number[], data?: DataOf[D]): Tensor<D> {
  return new Tensor(dtype, shape, data);
}

/** Wraps an ArrayBuffer returned by the addon as a tensor of the given dtype. */
export function fromBuffer<D extends DType>(dtype: D, shape: readonly number[], buffer: ArrayBuffer): Tensor<D> {
  return new Tensor(dtype, shape, new constructors[dtype](buffer) as DataOf[D]);
}

/** Checks that `value` is a Tensor of one of the given dtypes and rank; returns it typed. */
export function expectTensor<D extends DType>(
  value: unknown,
  name: string,
  dtypes: readonly D[],
  rank?: number,
): Tensor<D> {
  if (!(value instanceof Tensor)) throw new TypeError(`${name}: expected a Tensor, got ${describe(value)}`);
  if (!(dtypes as readonly DType[]).includes(value.dtype))
    throw new TypeError(`${name}: expected dtype ${dtypes.join(' or ')}, got ${value.dtype}`);
  if (rank !== undefined && value.shape.length !== rank)
    throw new ShapeError(
      `${name}: expected rank ${rank}, got shape [${value.shape.join(', ')}] (rank ${value.shape.length})`,
    );
  // The data may have been swapped or detached after construction.
  const Ctor = constructors[value.dtype as DType];
  if (!(value.data instanceof Ctor))
    throw new TypeError(`${name}: a ${value.dtype} tensor needs a ${Ctor.name}, its data is a ${describe(value.data)}`);
  const length = storageLength(value.dtype, value.shape);
  if (value.data.length !== length)
    throw new ShapeError(
      `${name}: shape [${value.shape.join(', ')}] needs ${length} values, its data has ${value.data.length}`,
    );
  return value as Tensor<D>;
}
