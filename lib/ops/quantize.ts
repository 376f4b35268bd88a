/**
 * Quantization math of the dyadic (integer-only) family. Every real rescale M = S_in * S_w / S_out
 * runs as an integer multiply and a rounding right shift: M ~ multiplier / 2^shift.
 */
import { awaitNative, callNative, QuantizationError, ShapeError } from '../errors.js';
import { native, type NativeResult } from '../native.js';
import { roundHalfEven } from '../onnx/tensor.js';
import { expectTensor, fromBuffer, Tensor } from '../tensor.js';
import { checkScale, clamp8, isInt32, isMultiplier, isShift, perChannel } from '../validate.js';

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
    throw new QuantizationError(
      `multiplier ${multiplier} is outside the dyadic range [2^-32, 2^31) (shift would be ${e})`,
    );
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

function eightBitDType<D extends 's8' | 'u8'>(dtype: D | undefined): D {
  if (dtype !== undefined && dtype !== 's8' && dtype !== 'u8')
    throw new RangeError(`dtype: expected 's8' or 'u8', got ${String(dtype)}`);
  return dtype ?? ('s8' as D);
}

function requantizeArgs(acc: Tensor<'s32'>, options: RequantizeOptions) {
  expectTensor(acc, 'acc', ['s32']);
  if (acc.shape.length === 0) throw new ShapeError('acc: a scalar has no channel axis');
  if (typeof options !== 'object' || options === null)
    throw new TypeError('options: expected { multiplier, shift, bias?, dtype?, clamp? }');
  const dtype = eightBitDType(options.dtype);
  const [lo, hi] = clamp8(dtype, options.clamp);
  const channels = acc.shape[acc.shape.length - 1];
  if (options.multiplier === undefined || options.shift === undefined)
    throw new TypeError('options: requantize needs multiplier and shift');
  const params = {
    multiplier: perChannel(
      Int32Array,
      options.multiplier,
      'multiplier',
      channels,
      isMultiplier,
      'an int32 other than -2^31',
    )!,
    shift: perChannel(Uint8Array, options.shift, 'shift', channels, isShift, 'an integer in [0, 62]')!,
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
export async function requantizeAsync<D extends 's8' | 'u8' = 's8'>(
  acc: Tensor<'s32'>,
  options: RequantizeOptions<D>,
): Promise<Tensor<D>> {
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

function quantizeArgs(x: Tensor<'f32'>, options: QuantizeOptions) {
  expectTensor(x, 'input', ['f32']);
  if (typeof options !== 'object' || options === null)
    throw new TypeError('options: expected { scale, zeroPoint?, dtype?, clamp? }');
  const scale = checkScale(options.scale);
  const dtype = eightBitDType(options.dtype);
  const [lo, hi] = clamp8(dtype, options.clamp);
  const zeroPoint = options.zeroPoint ?? 0;
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
export async function quantizeAsync<D extends 's8' | 'u8' = 's8'>(
  x: Tensor<'f32'>,
  options: QuantizeOptions<D>,
): Promise<Tensor<D>> {
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
  const r = callNative(
    () => native.dequantize(q.data as Int8Array | Uint8Array, scale, zeroPoint, false) as NativeResult,
  );
  return fromBuffer('f32', q.shape, r.data);
}

// One definition, in the pure ONNX module (no native code), exported here as public API.
export { roundHalfEven };

/** The largest weight magnitude symmetric quantization uses at each width: 127, 64 (reduced-range INT8) or 7. */
export function weightQmax(bits: 8 | 7 | 4): number {
  return bits === 8 ? 127 : bits === 7 ? 64 : 7;
}

/**
 * Symmetric per-output-channel weight quantization (axis 0 is the output channel, as in OHWI and
 * [O, I]): `scale[c] = max|w[c]| / qmax` as float32, with qmax 127 (8 bits), 64 (7 bits) or 7 (4 bits), and
 * `q = clamp(roundHalfEven(w / scale[c]), -qmax, qmax)`. A channel of zeros gets scale 1 (all q = 0).
 * @returns the integer weights (one value per byte; see {@link packInt4}) and the scales
 * @throws QuantizationError for NaN or infinite weights (naming the channel); TypeError, RangeError
 */
export function quantizeWeights(
  w: Tensor<'f32'>,
  options: { bits: 8 | 7 | 4 },
): { weights: Tensor<'s8'>; scales: Float32Array } {
  expectTensor(w, 'weights', ['f32']);
  if (w.shape.length < 1) throw new ShapeError('weights: a scalar has no output-channel axis');
  const bits = options?.bits;
  if (bits !== 8 && bits !== 7 && bits !== 4) throw new RangeError(`bits: expected 8, 7 or 4, got ${String(bits)}`);
  const qmax = weightQmax(bits);
  const channels = w.shape[0];
  const per = channels === 0 ? 0 : w.size / channels;
  const q = new Int8Array(w.size);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; ++c) {
    let max = 0;
    for (let i = c * per; i < (c + 1) * per; ++i) {
      const v = w.data[i];
      if (!Number.isFinite(v))
        throw new QuantizationError(`weights: channel ${c} holds ${v} at flat index ${i}; weights must be finite`);
      max = Math.max(max, Math.abs(v));
    }
    const scale = max > 0 ? Math.fround(max / qmax) : 1;
    // A subnormal max can round its scale to 0 in float32; such a channel quantizes to 0.
    scales[c] = scale > 0 ? scale : 1;
    for (let i = c * per; i < (c + 1) * per; ++i)
      q[i] = Math.min(qmax, Math.max(-qmax, roundHalfEven(w.data[i] / scales[c])));
  }
  return { weights: new Tensor('s8', w.shape, q), scales };
}

/**
 * Packs INT4 values (in [-8, 7], one per byte) two per byte along the last axis, low nibble first;
 * an odd row length ends with a zero high nibble. Shape [..., K] packs to [..., ceil(K / 2)] bytes.
 * @throws RangeError for a value outside [-8, 7]
 */
export function packInt4(values: Tensor<'s8'>): Tensor<'u8'> {
  expectTensor(values, 'values', ['s8']);
  if (values.shape.length < 1) throw new ShapeError('values: a scalar has no axis to pack');
  const k = values.shape[values.shape.length - 1];
  const rows = k === 0 ? 0 : values.size / k;
  const kb = Math.ceil(k / 2);
  const out = new Uint8Array(rows * kb);
  for (let r = 0; r < rows; ++r)
    for (let j = 0; j < k; ++j) {
      const v = values.data[r * k + j];
      if (v < -8 || v > 7) throw new RangeError(`values[${r * k + j}]: expected an INT4 value in [-8, 7], got ${v}`);
      out[r * kb + (j >> 1)] |= (v & 0x0f) << ((j & 1) * 4);
    }
  return new Tensor('u8', [...values.shape.slice(0, -1), kb], out);
}

/** Inverse of {@link packInt4}: `length` is the unpacked size K of the last axis. */
export function unpackInt4(packed: Tensor<'u8'>, length: number): Tensor<'s8'> {
  expectTensor(packed, 'packed', ['u8']);
  if (packed.shape.length < 1) throw new ShapeError('packed: a scalar has no axis to unpack');
  const kb = packed.shape[packed.shape.length - 1];
  if (!Number.isInteger(length) || length < 0 || Math.ceil(length / 2) !== kb)
    throw new ShapeError(`length: ${kb} packed bytes hold 2 x ${kb} - 1 or 2 x ${kb} values, got ${String(length)}`);
  const rows = kb === 0 ? 0 : packed.size / kb;
  const out = new Int8Array(rows * length);
  for (let r = 0; r < rows; ++r)
    for (let j = 0; j < length; ++j) {
      const nibble = (packed.data[r * kb + (j >> 1)] >> ((j & 1) * 4)) & 0x0f;
      out[r * length + j] = nibble >= 8 ? nibble - 16 : nibble;
    }
  return new Tensor('s8', [...packed.shape.slice(0, -1), length], out);
}
