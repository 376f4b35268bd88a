/**
 * Integer (dyadic, HAWQ-V3 style) convolution and dense layers: INT8 or INT4 weights, 8-bit
 * activations (INT4 activations are 8-bit tensors clamped to [0, 15] or [-8, 7]), exact int32
 * accumulation, and a per-channel dyadic requantization. No float on the run path:
 *
 *   acc[c] = bias[c] + sum_k (x_k - inputZeroPoint) * w[c][k]
 *   y[c]   = clamp(((int64)acc[c] * multiplier[c] + 2^(shift[c]-1)) >> shift[c] + outputZeroPoint, lo, hi)
 *
 * Padded pixels read the input zero point, so they are real zeros. Every ISA gives the same bits.
 */
import { awaitNative, callNative, ShapeError } from '../errors.js';
import {
  native,
  type NativeConvGeometry,
  type NativeQHandle,
  type NativeQOptions,
  type NativeResult,
} from '../native.js';
import { describe, expectTensor, fromBuffer, type Tensor } from '../tensor.js';
import { clamp8, isInt32, isMultiplier, isShift, perChannel, zeroPointOf } from '../validate.js';
import { convOutputShape, expectOut, explicitPads, pair, positiveInt, samePads, type Pair } from './geometry.js';

type Numbers = ArrayLike<number>;
type QDType = 's8' | 'u8' | 's32';

/** Packed integer weights of a conv ([O, H, W, I/groups]) or dense ([O, I]) layer. */
export class PackedQWeights {
  /** @internal */
  readonly handle: NativeQHandle;
  readonly bits: QWeightBits;
  readonly outChannels: number;
  readonly kernelH: number;
  readonly kernelW: number;
  readonly inChannelsPerGroup: number;
  readonly groups: number;

  /** @internal use packQConv2dWeights / packQDenseWeights */
  constructor(handle: NativeQHandle, shape: readonly number[], groups: number, bits: QWeightBits) {
    this.handle = handle;
    [this.outChannels, this.kernelH, this.kernelW, this.inChannelsPerGroup] = shape;
    this.groups = groups;
    this.bits = bits;
  }

  /** Bytes of packed weights (INT4: two per byte, about half of INT8). */
  get bytes(): number {
    return this.handle.bytes;
  }
}

/**
 * Integer weight widths: 8 (values in [-128, 127]; symmetric quantization uses [-127, 127]), 7
 * (values in [-64, 64], stored as 8: exact `vpmaddubsw` on AVX2 CPUs without VNNI, about 1.5x the
 * 8-bit GEMM there; the same results as 8 on every ISA) or 4 (values in [-8, 7]).
 */
export type QWeightBits = 8 | 7 | 4;

export interface PackQWeightsOptions {
  /** 8, 7 or 4: see {@link QWeightBits} */
  bits: QWeightBits;
  /** grouped convolution (outChannels a multiple of groups); default 1. groups = C with one input
   * channel per group is a depthwise conv, which runs on its own channel-vectorized path */
  groups?: number;
}

function bitsOption(options: PackQWeightsOptions): QWeightBits {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('options: expected { bits: 8 | 7 | 4, groups? }');
  if (options.bits !== 8 && options.bits !== 7 && options.bits !== 4)
    throw new RangeError(`bits: expected 8, 7 or 4, got ${String(options.bits)}`);
  return options.bits;
}

/**
 * Packs integer conv weights (one int8 value per weight; 7-bit values must be in [-64, 64], 4-bit
 * values in [-8, 7], see
 * {@link quantizeWeights}) into the kernels' layout, with every input-independent term (weight
 * sums for zero-point folding, accumulator bounds) computed once.
 * @param weights OHWI s8 tensor [outChannels, kernelH, kernelW, inChannels / groups]
 * @throws TypeError, ShapeError, RangeError (a 7- or 4-bit value out of range, kernelH * kernelW * inChannels / groups > 65536)
 * @example const w = packQConv2dWeights(tensor('s8', [64, 3, 3, 64], q.data), { bits: 8 });
 */
export function packQConv2dWeights(weights: Tensor<'s8'>, options: PackQWeightsOptions): PackedQWeights {
  expectTensor(weights, 'weights', ['s8'], 4);
  const bits = bitsOption(options);
  const groups = positiveInt(options.groups ?? 1, 'groups');
  if (weights.shape[0] % groups !== 0)
    throw new ShapeError(`weights: output channels (${weights.shape[0]}) must be a multiple of groups (${groups})`);
  const handle = callNative(() => native.packQConv2dWeights(weights.data, [...weights.shape], groups, bits));
  return new PackedQWeights(handle, weights.shape, groups, bits);
}

/**
 * Packs integer dense weights [outFeatures, inFeatures] (s8 values; [-64, 64] for 7 bits, [-8, 7] for 4).
 * @throws TypeError, ShapeError, RangeError
 */
export function packQDenseWeights(weights: Tensor<'s8'>, options: { bits: QWeightBits }): PackedQWeights {
  expectTensor(weights, 'weights', ['s8'], 2);
  const bits = bitsOption(options);
  const [o, i] = weights.shape;
  const handle = callNative(() => native.packQConv2dWeights(weights.data, [o, 1, 1, i], 1, bits));
  return new PackedQWeights(handle, [o, 1, 1, i], 1, bits);
}

/** Quantization of a qconv2d / qdense call. */
export interface QLayerOptions<D extends QDType = QDType> {
  /** zero point of the input (u8: [0, 255], s8: [-128, 127]); default 0 */
  inputZeroPoint?: number;
  /** int32 per output channel, at the accumulator's scale S_x * S_w[c]; default 0 */
  bias?: Numbers;
  /** dyadic multiplier per output channel (toDyadic(S_x * S_w[c] / S_y)); needed unless dtype is 's32' */
  multiplier?: Numbers;
  /** dyadic shift per output channel, in [0, 62] */
  shift?: Numbers;
  /** zero point of the output, added after the shift; default 0 */
  outputZeroPoint?: number;
  /** 's8' (default), 'u8', or 's32' for the accumulators themselves (no requantization) */
  dtype?: D;
  /** default the dtype's range; ReLU is [outputZeroPoint, max], INT4 activations [0, 15] or [-8, 7] */
  clamp?: readonly [lo: number, hi: number];
}

export type QPadding = 'valid' | 'same' | { pads: readonly [top: number, left: number, bottom: number, right: number] };

export interface QConv2dOptions<D extends QDType = QDType> extends QLayerOptions<D> {
  strides?: Pair;
  dilations?: Pair;
  /** 'valid' (default), 'same' (TF/ONNX SAME_UPPER) or explicit pads; padded pixels are zeros */
  padding?: QPadding;
}

/** Sync calls may write into a preallocated output tensor (same dtype and shape). */
export interface QOutOption<D extends QDType> {
  out?: Tensor<D>;
}

function expectQWeights(w: unknown): PackedQWeights {
  if (!(w instanceof PackedQWeights))
    throw new TypeError(`weights: expected PackedQWeights from packQConv2dWeights(), got ${describe(w)}`);
  return w;
}

function quantOptions(
  x: Tensor<'s8' | 'u8'>,
  w: PackedQWeights,
  options: QLayerOptions,
): { dtype: QDType; native: NativeQOptions } {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('options: expected { multiplier, shift, ... }');
  const dtype = options.dtype ?? 's8';
  if (dtype !== 's8' && dtype !== 'u8' && dtype !== 's32')
    throw new RangeError(`dtype: expected 's8', 'u8' or 's32', got ${String(dtype)}`);
  const oc = w.outChannels;
  const q: NativeQOptions = {
    dtype,
    inputZeroPoint: zeroPointOf(options.inputZeroPoint, 'inputZeroPoint', x.dtype),
    bias: perChannel(Int32Array, options.bias, 'bias', oc, isInt32, 'an int32'),
  };
  if (dtype !== 's32') {
    if (options.multiplier === undefined || options.shift === undefined)
      throw new TypeError(`options: an ${dtype} output needs multiplier and shift (see toDyadic), or dtype 's32'`);
    q.multiplier = perChannel(
      Int32Array,
      options.multiplier,
      'multiplier',
      oc,
      isMultiplier,
      'an int32 other than -2^31',
    );
    q.shift = perChannel(Uint8Array, options.shift, 'shift', oc, isShift, 'an integer in [0, 62]');
    q.zeroPoint = zeroPointOf(options.outputZeroPoint, 'outputZeroPoint', dtype);
    [q.lo, q.hi] = clamp8(dtype, options.clamp);
  }
  return { dtype, native: q };
}

function convGeometry(x: Tensor, w: PackedQWeights, options: QConv2dOptions): NativeConvGeometry {
  const strides = pair(options.strides, 'strides');
  const dilations = pair(options.dilations, 'dilations');
  const padding = options.padding ?? 'valid';
  if (padding === 'valid') return { strides, dilations, pads: [0, 0, 0, 0] };
  if (padding === 'same') {
    const [top, bottom] = samePads(x.shape[1], w.kernelH, strides[0], dilations[0]);
    const [left, right] = samePads(x.shape[2], w.kernelW, strides[1], dilations[1]);
    return { strides, dilations, pads: [top, left, bottom, right] };
  }
  if (typeof padding === 'object' && padding !== null && Array.isArray(padding.pads) && padding.pads.length === 4)
    return { strides, dilations, pads: explicitPads(padding.pads, 'padding.pads') };
  throw new RangeError(`padding: expected 'valid', 'same' or { pads: [t, l, b, r] }, got ${JSON.stringify(padding)}`);
}

function qconv2dArgs(x: Tensor<'s8' | 'u8'>, w: PackedQWeights, options: QConv2dOptions) {
  expectTensor(x, 'input', ['u8', 's8'], 4);
  expectQWeights(w);
  const c = x.shape[3];
  if (c !== w.inChannelsPerGroup * w.groups)
    throw new ShapeError(
      `input: has ${c} channels but the weights expect ${w.inChannelsPerGroup * w.groups} (${w.inChannelsPerGroup} x ${w.groups} groups)`,
    );
  return { geometry: convGeometry(x, w, options), ...quantOptions(x, w, options) };
}

/**
 * Integer 2-D convolution, NHWC u8/s8 input, any kernel, stride, dilation, padding and groups
 * (depthwise convs take their own fast path).
 * @param x input [N, H, W, C]
 * @param w weights from {@link packQConv2dWeights}
 * @returns [N, OH, OW, O] as s8, u8 or s32 (`dtype`)
 * @throws TypeError, ShapeError, RangeError (including a bias that could overflow the int32 accumulator)
 * @example
 * const { multiplier, shift } = toDyadic(sx * sw / sy);
 * const y = qconv2d(x, w, { padding: 'same', inputZeroPoint: 128, multiplier: [multiplier], ... });
 */
export function qconv2d<D extends QDType = 's8'>(
  x: Tensor<'s8' | 'u8'>,
  w: PackedQWeights,
  options: QConv2dOptions<D> & QOutOption<D>,
): Tensor<D> {
  const { geometry, dtype, native: q } = qconv2dArgs(x, w, options);
  const dst = expectOut(options.out, dtype, convOutputShape(x.shape, w.kernelH, w.kernelW, w.outChannels, geometry));
  const r = callNative(
    () =>
      native.qconv2d(x.data, [...x.shape], w.handle, geometry, q, {
        async: false,
        out: dst?.data as Int8Array | undefined,
      }) as NativeResult,
  );
  return (dst ?? fromBuffer(dtype, r.shape, r.data)) as Tensor<D>;
}

/** Async {@link qconv2d}: validates now, computes on the libuv pool on a private copy of the input. */
export async function qconv2dAsync<D extends QDType = 's8'>(
  x: Tensor<'s8' | 'u8'>,
  w: PackedQWeights,
  options: QConv2dOptions<D>,
): Promise<Tensor<D>> {
  const { geometry, dtype, native: q } = qconv2dArgs(x, w, options);
  const r = await awaitNative(
    () => native.qconv2d(x.data, [...x.shape], w.handle, geometry, q, { async: true }) as Promise<NativeResult>,
  );
  return fromBuffer(dtype, r.shape, r.data) as Tensor<D>;
}

function qdenseArgs(x: Tensor<'s8' | 'u8'>, w: PackedQWeights, options: QLayerOptions) {
  expectTensor(x, 'input', ['u8', 's8'], 2);
  expectQWeights(w);
  if (w.kernelH !== 1 || w.kernelW !== 1 || w.groups !== 1)
    throw new ShapeError(
      `weights: qdense needs weights from packQDenseWeights() (1x1, one group), got kernel ${w.kernelH}x${w.kernelW} with ${w.groups} groups`,
    );
  if (x.shape[1] !== w.inChannelsPerGroup)
    throw new ShapeError(`input: has ${x.shape[1]} features but the weights expect ${w.inChannelsPerGroup}`);
  return quantOptions(x, w, options);
}

/**
 * Integer fully connected layer: [rows, inFeatures] x [outFeatures, inFeatures]^T, batch 1 or N,
 * with the same quantization as {@link qconv2d}.
 * @throws TypeError, ShapeError, RangeError
 */
export function qdense<D extends QDType = 's8'>(
  x: Tensor<'s8' | 'u8'>,
  w: PackedQWeights,
  options: QLayerOptions<D> & QOutOption<D>,
): Tensor<D> {
  const { dtype, native: q } = qdenseArgs(x, w, options);
  const dst = expectOut(options.out, dtype, [x.shape[0], w.outChannels]);
  const r = callNative(
    () =>
      native.qdense(x.data, x.shape[0], x.shape[1], w.handle, q, {
        async: false,
        out: dst?.data as Int8Array | undefined,
      }) as NativeResult,
  );
  return (dst ?? fromBuffer(dtype, r.shape, r.data)) as Tensor<D>;
}

/** Async {@link qdense} on the libuv pool. */
export async function qdenseAsync<D extends QDType = 's8'>(
  x: Tensor<'s8' | 'u8'>,
  w: PackedQWeights,
  options: QLayerOptions<D>,
): Promise<Tensor<D>> {
  const { dtype, native: q } = qdenseArgs(x, w, options);
  const r = await awaitNative(
    () => native.qdense(x.data, x.shape[0], x.shape[1], w.handle, q, { async: true }) as Promise<NativeResult>,
  );
  return fromBuffer(dtype, r.shape, r.data) as Tensor<D>;
}
