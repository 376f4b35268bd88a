/**
 * Quantization math of the dyadic (integer-only) family. Every real rescale M = S_in * S_w / S_out
 * runs as an integer multiply and a rounding right shift: M ~ multiplier / 2^shift.
 */
import { awaitNative, callNative, QuantizationError, ShapeError } from './errors.js';
import { native, type NativeResult } from './native.js';
import { expectTensor, fromBuffer, type Tensor } from './tensor.js';

export interface Dyadic {
  /** m: a positive int32 in [2^30, 2^31 - 1] */
  multiplier: number;
  /** e: in [0, 62] */
  shift: number;
}

/**
 * The dyadic pair of a real multiplier M in [2^-32, 2^31): with M = f * 2^p, f in [0.5, 1),
 * `multiplier = round_half_up(f * 2^31)` (halved, with shift - 1, when it reaches 2^31) and
 * `shift = 31 - p`. The relative error |multiplier / 2^shift - M| / M is at most 2^-31.
 * Bit-identical to the C++ definition (native/src/integer/dyadic.cc).
 * @throws QuantizationError for zero, negative, NaN or infinite M, or M outside that range
 * @example toDyadic(0.75) // { multiplier: 1610612736, shift: 31 }
 */
export function toDyadic(multiplier: number): Dyadic {
  if (typeof multiplier !== 'number' || !Number.isFinite(multiplier) || !(multiplier > 0))
    throw new QuantizationError(`multiplier must be a finite number > 0, got ${String(multiplier)}`);
  // frexp: the exponent p with multiplier / 2^p in [0.5, 1); scaling by powers of two is exact.
  let p = Math.floor(Math.log2(multiplier)) + 1;
  while (multiplier / 2 ** p >= 1) ++p;
  while (multiplier / 2 ** p < 0.5) --p;
  // f * 2^31 is exact and below 2^31; Math.round rounds half up.
  let m = Math.round((multiplier / 2 ** p) * 2 ** 31);
  let e = 31 - p;
  if (m === 2 ** 31) {
    m /= 2;
    --e;
  }
  if (e < 0 || e > 62)
    throw new QuantizationError(`multiplier ${multiplier} is outside the dyadic range [2^-32, 2^31) (shift would be ${e})`);
  return { multiplier: m, shift: e };
}

type Numbers = ArrayLike<number>;

export interface RequantizeOptions<D extends 's8' | 'u8' = 's8' | 'u8'> {
  /** m per channel: int32 other than -2^31 (see {@link toDyadic}) */
  multiplier: Numbers;
  /** e per channel, in [0, 62] */
  shift: Numbers;
  /** int32 per channel, added after the shift (output units: zero points and offsets fold in); default 0 */
  bias?: Numbers;
  /** output type; default 's8' */
  dtype?: D;
  /** clamp; default the dtype's range. INT4 values use [-8, 7] (s8) or [0, 15] (u8) */
  clamp?: readonly [lo: number, hi: number];
}

function perChannel<T extends Int32Array | Uint8Array>(Ctor: new (n: number) => T, values: Numbers | undefined, name: string, channels: number, ok: (v: number) => boolean, expected: string): T | undefined {
  if (values === undefined) return undefined;
  if (typeof values !== 'object' || values === null || typeof values.length !== 'number') throw new TypeError(`${name}: expected an array of ${channels} numbers`);
  if (values.length !== channels) throw new ShapeError(`${name}: expected ${channels} values (one per channel), got ${values.length}`);
  const out = new Ctor(channels);
  for (let c = 0; c < channels; ++c) {
    if (!ok(values[c])) throw new RangeError(`${name}[${c}]: expected ${expected}, got ${String(values[c])}`);
    out[c] = values[c];
  }
  return out;
}

function requantizeArgs(acc: Tensor<'s32'>, options: RequantizeOptions) {
  expectTensor(acc, 'acc', ['s32']);
  if (acc.shape.length === 0) throw new ShapeError('acc: a scalar has no channel axis');
  if (typeof options !== 'object' || options === null) throw new TypeError('options: expected { multiplier, shift, bias?, dtype?, clamp? }');
  const dtype = options.dtype ?? 's8';
  if (dtype !== 's8' && dtype !== 'u8') throw new RangeError(`dtype: expected 's8' or 'u8', got ${String(dtype)}`);
  const [lo, hi] = options.clamp ?? (dtype === 's8' ? [-128, 127] : [0, 255]);
  const [min, max] = dtype === 's8' ? [-128, 127] : [0, 255];
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < min || hi > max || lo > hi)
    throw new RangeError(`clamp: expected integers ${min} <= lo <= hi <= ${max} for ${dtype}, got [${lo}, ${hi}]`);
  const channels = acc.shape[acc.shape.length - 1];
  const isInt32 = (v: number) => Number.isInteger(v) && v >= -2147483648 && v <= 2147483647;
  if (options.multiplier === undefined || options.shift === undefined) throw new TypeError('options: requantize needs multiplier and shift');
  const params = {
    multiplier: perChannel(Int32Array, options.multiplier, 'multiplier', channels, (v) => isInt32(v) && v !== -2147483648, 'an int32 other than -2^31')!,
    shift: perChannel(Uint8Array, options.shift, 'shift', channels, (v) => Number.isInteger(v) && v >= 0 && v <= 62, 'an integer in [0, 62]')!,
    bias: perChannel(Int32Array, options.bias, 'bias', channels, isInt32, 'an int32'),
    lo,
    hi,
  };
  return { dtype, channels, rows: channels === 0 ? 0 : acc.size / channels, params };
}

/**
 * Requantizes int32 accumulators (channels on the last axis) to 8-bit values, integer only:
 * `clamp(((int64)acc * multiplier[c] + 2^(shift[c]-1)) >> shift[c] + bias[c], lo, hi)`, rounding
 * half up. Bit-identical on every ISA, including acc = -2^31 and multiplier = 2^31 - 1.
 * @returns an s8 or u8 tensor of the same shape
 * @throws TypeError, ShapeError, RangeError
 * @example
 * const { multiplier, shift } = toDyadic(0.0123);
 * const q = requantize(acc, { multiplier: [multiplier], shift: [shift], dtype: 'u8' });
 */
export function requantize<D extends 's8' | 'u8' = 's8'>(acc: Tensor<'s32'>, options: RequantizeOptions<D>): Tensor<D> {
  const { dtype, channels, rows, params } = requantizeArgs(acc, options);
  const r = callNative(() => native.requantize(acc.data, rows, channels, params, false) as NativeResult);
  return fromBuffer(dtype, acc.shape, r.data) as Tensor<D>;
}

/** Async {@link requantize} on the libuv pool (on a private copy of the accumulators). */
export async function requantizeAsync<D extends 's8' | 'u8' = 's8'>(acc: Tensor<'s32'>, options: RequantizeOptions<D>): Promise<Tensor<D>> {
  const { dtype, channels, rows, params } = requantizeArgs(acc, options);
  const r = await awaitNative(() => native.requantize(acc.data, rows, channels, params, true) as Promise<NativeResult>);
  return fromBuffer(dtype, acc.shape, r.data) as Tensor<D>;
}

export interface QuantizeOptions<D extends 's8' | 'u8' = 's8' | 'u8'> {
  /** the real value of one integer step: finite and > 0 */
  scale: number;
  /** the integer that represents 0.0; default 0 */
  zeroPoint?: number;
  /** default 's8' */
  dtype?: D;
  /** default the dtype's range; INT4 values use [-8, 7] (s8) or [0, 15] (u8) */
  clamp?: readonly [lo: number, hi: number];
}

function checkScale(scale: unknown): number {
  if (typeof scale !== 'number' || !Number.isFinite(scale) || !(scale > 0) || !(Math.fround(scale) > 0) || !Number.isFinite(Math.fround(scale)))
    throw new QuantizationError(`scale must be a finite number > 0 (as float32), got ${String(scale)}`);
  return scale;
}

function quantizeArgs(x: Tensor<'f32'>, options: QuantizeOptions) {
  expectTensor(x, 'input', ['f32']);
  if (typeof options !== 'object' || options === null) throw new TypeError('options: expected { scale, zeroPoint?, dtype?, clamp? }');
  const scale = checkScale(options.scale);
  const dtype = options.dtype ?? 's8';
  if (dtype !== 's8' && dtype !== 'u8') throw new RangeError(`dtype: expected 's8' or 'u8', got ${String(dtype)}`);
  const [min, max] = dtype === 's8' ? [-128, 127] : [0, 255];
  const [lo, hi] = options.clamp ?? [min, max];
  const zeroPoint = options.zeroPoint ?? 0;
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < min || hi > max || lo > hi)
    throw new RangeError(`clamp: expected integers ${min} <= lo <= hi <= ${max} for ${dtype}, got [${lo}, ${hi}]`);
  if (!Number.isInteger(zeroPoint) || zeroPoint < lo || zeroPoint > hi)
    throw new RangeError(`zeroPoint: expected an integer in the clamp [${lo}, ${hi}], got ${String(zeroPoint)}`);
  return { scale, zeroPoint, dtype, lo, hi };
}

/**
 * Float -> 8-bit at a network boundary, per tensor, as ONNX QuantizeLinear:
 * `clamp(round(x / scale) + zeroPoint, lo, hi)`, rounding half to even (x / scale in float32).
 * NaN maps to zeroPoint (the integer for 0.0); +-Infinity saturate to the clamp.
 * @throws QuantizationError for a zero, negative or non-finite scale; RangeError, TypeError
 */
export function quantize<D extends 's8' | 'u8' = 's8'>(x: Tensor<'f32'>, options: QuantizeOptions<D>): Tensor<D> {
  const { scale, zeroPoint, dtype, lo, hi } = quantizeArgs(x, options);
  const r = callNative(() => native.quantize(x.data, scale, zeroPoint, lo, hi, false) as NativeResult);
  return fromBuffer(dtype, x.shape, r.data) as Tensor<D>;
}

/** Async {@link quantize} on the libuv pool. */
export async function quantizeAsync<D extends 's8' | 'u8' = 's8'>(x: Tensor<'f32'>, options: QuantizeOptions<D>): Promise<Tensor<D>> {
  const { scale, zeroPoint, dtype, lo, hi } = quantizeArgs(x, options);
  const r = await awaitNative(() => native.quantize(x.data, scale, zeroPoint, lo, hi, true) as Promise<NativeResult>);
  return fromBuffer(dtype, x.shape, r.data) as Tensor<D>;
}

/**
 * 8-bit -> float at a network boundary: `(q - zeroPoint) * scale` (one float32 multiply).
 * @throws QuantizationError for a bad scale; RangeError for a zero point outside the dtype
 */
export function dequantize(q: Tensor<'s8' | 'u8'>, options: { scale: number; zeroPoint?: number }): Tensor<'f32'> {
  expectTensor(q, 'input', ['s8', 'u8']);
  if (typeof options !== 'object' || options === null) throw new TypeError('options: expected { scale, zeroPoint? }');
  const scale = checkScale(options.scale);
  const zeroPoint = options.zeroPoint ?? 0;
  const [min, max] = q.dtype === 's8' ? [-128, 127] : [0, 255];
  if (!Number.isInteger(zeroPoint) || zeroPoint < min || zeroPoint > max)
    throw new RangeError(`zeroPoint: expected an integer in [${min}, ${max}] for ${q.dtype}, got ${String(zeroPoint)}`);
  const r = callNative(() => native.dequantize(q.data as Int8Array | Uint8Array, scale, zeroPoint, false) as NativeResult);
  return fromBuffer('f32', q.shape, r.data);
}
