/**
 * Binary (1-bit) operators: bitpack, bconv2d, bdense, bmaxpool2d (the packed weights are
 * binary-weights.ts, re-exported here).
 * Dot products are XNOR + popcount on packed sign bits: for +-1 vectors of K values,
 * `y = K - 2 * popcount(x XOR w)`, then a fused per-channel epilogue turns y into float,
 * int8 (dyadic rescale, no float) or packed bits for the next binary layer.
 * Every operator has a sync form and an async form that runs on the libuv pool.
 */
import { awaitNative, callNative, ShapeError } from '../errors.js';
import {
  native,
  type NativeBinaryConvGeometry,
  type NativeEpilogue,
  type NativeMstHandle,
  type NativeResult,
} from '../native.js';
import { describe, expectTensor, fromBuffer, Tensor, type DType } from '../tensor.js';
import { isInt32, isMultiplier, isShift, perChannel } from '../validate.js';
import {
  convOutputShape,
  expectOut,
  explicitPads,
  pair,
  poolGeometry,
  samePads,
  type Pair,
  type Pool2dOptions,
} from './geometry.js';
import { PackedBinaryWeights } from './binary-weights.js';
import { MstSchedule } from './mst.js';

export { PackedBinaryWeights, packBinaryConv2dWeights, packBinaryDenseWeights } from './binary-weights.js';

type Numbers = ArrayLike<number>;

/** Padding of a binary conv. `same-*` pads like TF/ONNX SAME_UPPER (extra row/column at the end). */
export type BinaryPadding =
  | 'valid'
  /** padded pixels are +1: free, the packed 0 bit */
  | 'same-one'
  /** padded pixels are 0: exact, through a per-channel correction of border pixels */
  | 'same-zero'
  | { pads: readonly [top: number, left: number, bottom: number, right: number]; value: 'one' | 'zero' };

/** Float output: `y * scale[c] + bias[c]`, then clamped (`relu` is clamp [0, +inf)). */
export interface F32Output {
  kind: 'f32';
  scale?: Numbers;
  bias?: Numbers;
  clamp?: readonly [lo: number, hi: number];
  relu?: boolean;
}

/**
 * Integer-only INT8 output:
 * `clamp(((int64)y * multiplier[c] + 2^(shift[c]-1)) >> shift[c] + bias[c], lo, hi)`.
 * multiplier may be negative (a negative folded scale), shift in [0, 62], bias in output units.
 */
export interface S8Output {
  kind: 's8';
  multiplier: Numbers;
  shift: Numbers;
  bias?: Numbers;
  clamp?: readonly [lo: number, hi: number];
}

/** Packed output for the next binary layer: bit c (1 = -1) is `(y < threshold[c]) XOR flip[c]`. */
export interface B1Output {
  kind: 'b1';
  threshold: Numbers;
  flip?: ArrayLike<number | boolean>;
}

export type BinaryOutput = F32Output | S8Output | B1Output;
type OutputDType<O> = O extends { kind: 's8' } ? 's8' : O extends { kind: 'b1' } ? 'b1' : 'f32';

/**
 * Running a layer through its MST schedule ({@link buildMst} or {@link loadMst} on the same weights).
 * Outputs are identical either way; only the time differs.
 */
export interface MstOptions {
  /** the schedule of these weights */
  mst?: MstSchedule;
  /** 'auto' (default): the cost model picks dense or MST per call, so MST never makes a layer
   * slower; 'always': through the tree (for tests and benchmarks) */
  mstPolicy?: 'auto' | 'always';
}

export interface BConv2dOptions<O extends BinaryOutput = BinaryOutput> extends MstOptions {
  strides?: Pair;
  dilations?: Pair;
  padding?: BinaryPadding;
  output?: O;
}

export interface BDenseOptions<O extends BinaryOutput = BinaryOutput> extends MstOptions {
  output?: O;
}

/** Sync calls may write into a preallocated output tensor (same dtype and shape), to reuse memory. */
export interface OutOption<O extends BinaryOutput> {
  out?: Tensor<OutputDType<O>>;
}

/**
 * Sign-binarizes and bit-packs a float32 or int8 tensor along its last axis (channels, NHWC).
 * @returns a `b1` tensor of the same shape
 * @throws TypeError for another dtype, ShapeError for a scalar
 * @example const xb = bitpack(tensor('f32', [1, 56, 56, 64], data));
 */
export function bitpack(x: Tensor<'f32' | 's8'>): Tensor<'b1'> {
  const [rows, channels] = bitpackArgs(x);
  const r = callNative(() => native.bitpack(x.data as Float32Array | Int8Array, rows, channels, false) as NativeResult);
  return fromBuffer('b1', x.shape, r.data);
}

/** Async {@link bitpack}: runs on the libuv thread pool. */
export async function bitpackAsync(x: Tensor<'f32' | 's8'>): Promise<Tensor<'b1'>> {
  const [rows, channels] = bitpackArgs(x);
  const r = await awaitNative(
    () => native.bitpack(x.data as Float32Array | Int8Array, rows, channels, true) as Promise<NativeResult>,
  );
  return fromBuffer('b1', x.shape, r.data);
}

function bitpackArgs(x: Tensor<'f32' | 's8'>): [number, number] {
  expectTensor(x, 'input', ['f32', 's8']);
  if (x.shape.length === 0) throw new ShapeError('input: a scalar has no channel axis to pack');
  const channels = x.shape[x.shape.length - 1];
  return [channels === 0 ? 0 : x.size / channels, channels];
}

function convGeometry(x: Tensor, w: PackedBinaryWeights, options: BConv2dOptions): NativeBinaryConvGeometry {
  const strides = pair(options.strides, 'strides');
  const dilations = pair(options.dilations, 'dilations');
  const padding = options.padding ?? 'valid';
  if (padding === 'valid') return { strides, dilations, pads: [0, 0, 0, 0], padValue: 'one' };
  if (padding === 'same-one' || padding === 'same-zero') {
    const [top, bottom] = samePads(x.shape[1], w.kernelH, strides[0], dilations[0]);
    const [left, right] = samePads(x.shape[2], w.kernelW, strides[1], dilations[1]);
    return { strides, dilations, pads: [top, left, bottom, right], padValue: padding === 'same-zero' ? 'zero' : 'one' };
  }
  if (typeof padding === 'object' && padding !== null && Array.isArray(padding.pads) && padding.pads.length === 4) {
    const pads = explicitPads(padding.pads, 'padding.pads');
    if (padding.value !== 'one' && padding.value !== 'zero')
      throw new RangeError(`padding.value: expected 'one' or 'zero', got ${String(padding.value)}`);
    return { strides, dilations, pads, padValue: padding.value };
  }
  throw new RangeError(
    `padding: expected 'valid', 'same-one', 'same-zero' or { pads: [t, l, b, r], value }, got ${JSON.stringify(padding)}`,
  );
}

function epilogue(output: BinaryOutput | undefined, outChannels: number): NativeEpilogue {
  const o = output ?? { kind: 'f32' };
  switch (o.kind) {
    case 'f32': {
      let [lo, hi] = o.clamp ?? [-Infinity, Infinity];
      if (o.relu) lo = Math.max(lo, 0);
      if (Number.isNaN(lo) || Number.isNaN(hi) || lo > hi)
        throw new RangeError(`output.clamp: expected lo <= hi, got [${lo}, ${hi}]`);
      return {
        kind: 'f32',
        scale: perChannel(Float32Array, o.scale, 'output.scale', outChannels, Number.isFinite, 'a finite number'),
        bias: perChannel(Float32Array, o.bias, 'output.bias', outChannels, Number.isFinite, 'a finite number'),
        lo,
        hi,
      };
    }
    case 's8': {
      const [lo, hi] = o.clamp ?? [-128, 127];
      if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < -128 || hi > 127 || lo > hi)
        throw new RangeError(`output.clamp: expected integers -128 <= lo <= hi <= 127, got [${lo}, ${hi}]`);
      if (o.multiplier === undefined || o.shift === undefined)
        throw new TypeError('output: s8 needs multiplier and shift');
      return {
        kind: 's8',
        multiplier: perChannel(
          Int32Array,
          o.multiplier,
          'output.multiplier',
          outChannels,
          isMultiplier,
          'an int32 other than -2^31',
        ),
        shift: perChannel(Uint8Array, o.shift, 'output.shift', outChannels, isShift, 'an integer in [0, 62]'),
        bias: perChannel(Int32Array, o.bias, 'output.bias', outChannels, isInt32, 'an int32'),
        lo,
        hi,
      };
    }
    case 'b1':
      if (o.threshold === undefined) throw new TypeError('output: b1 needs threshold');
      return {
        kind: 'b1',
        threshold: perChannel(Int32Array, o.threshold, 'output.threshold', outChannels, isInt32, 'an int32'),
        flip: perChannel(
          Uint8Array,
          o.flip,
          'output.flip',
          outChannels,
          (v) => v === 0 || v === 1,
          '0, 1, false or true',
        ),
      };
    default:
      throw new RangeError(`output.kind: expected 'f32', 's8' or 'b1', got ${String((o as { kind?: unknown }).kind)}`);
  }
}

function outputDType(output: BinaryOutput | undefined): DType {
  return output?.kind === 's8' ? 's8' : output?.kind === 'b1' ? 'b1' : 'f32';
}

function expectWeights(w: unknown): PackedBinaryWeights {
  if (!(w instanceof PackedBinaryWeights))
    throw new TypeError(`weights: expected PackedBinaryWeights from packBinaryConv2dWeights(), got ${describe(w)}`);
  return w;
}

function binaryInput(x: Tensor): Tensor<'b1'> {
  return x.dtype === 'b1' ? (x as Tensor<'b1'>) : bitpack(x as Tensor<'f32' | 's8'>);
}

/** The schedule handle and policy of the native call; none without a schedule. */
function mstArgs(options: MstOptions): { mst?: NativeMstHandle; mstPolicy?: 'auto' | 'always' } {
  const { mst, mstPolicy = 'auto' } = options;
  if (mstPolicy !== 'auto' && mstPolicy !== 'always')
    throw new RangeError(`mstPolicy: expected 'auto' or 'always', got ${String(mstPolicy)}`);
  if (mst === undefined) return {};
  if (!(mst instanceof MstSchedule))
    throw new TypeError(`mst: expected an MstSchedule from buildMst() or loadMst(), got ${describe(mst)}`);
  return { mst: mst.handle, mstPolicy };
}

function bconv2dArgs(x: Tensor, w: PackedBinaryWeights, options: BConv2dOptions) {
  expectTensor(x, 'input', ['b1', 'f32', 's8'], 4);
  expectWeights(w);
  const c = x.shape[3];
  if (c !== w.inChannelsPerGroup * w.groups)
    throw new ShapeError(
      `input: has ${c} channels but the weights expect ${w.inChannelsPerGroup * w.groups} (${w.inChannelsPerGroup} x ${w.groups} groups)`,
    );
  return {
    xb: binaryInput(x),
    geometry: convGeometry(x, w, options),
    out: epilogue(options.output, w.outChannels),
    mst: mstArgs(options),
  };
}

/**
 * Binary 2-D convolution, NHWC input, any kernel size, stride, dilation and groups.
 * The input is a packed `b1` tensor (f32/s8 inputs are bit-packed first).
 * @param x input [N, H, W, C]
 * @param w weights from {@link packBinaryConv2dWeights}
 * @param options strides, dilations (default 1), padding (default 'valid'), output epilogue
 *   (default f32 with scale 1 and bias 0: the +-1 dot products themselves), `mst` / `mstPolicy`
 *   (run through the layer's MST schedule, {@link MstOptions}), and `out`: a preallocated output
 *   tensor to write into (sync form only), so steady inference allocates nothing
 * @returns [N, OH, OW, O] as f32, s8 or b1 by `output.kind`
 * @throws TypeError, ShapeError, RangeError with what was expected and what arrived
 * @example
 * const y = bconv2d(xb, w, { padding: 'same-one', output: { kind: 'f32', scale, bias, relu: true } });
 */
export function bconv2d<O extends BinaryOutput = F32Output>(
  x: Tensor,
  w: PackedBinaryWeights,
  options: BConv2dOptions<O> & OutOption<O> = {},
): Tensor<OutputDType<O>> {
  const { xb, geometry, out, mst } = bconv2dArgs(x, w, options);
  const dst = expectOut(
    options.out,
    outputDType(options.output),
    convOutputShape(xb.shape, w.kernelH, w.kernelW, w.outChannels, geometry),
  );
  const r = callNative(
    () =>
      native.bconv2d(xb.data, [...xb.shape], w.handle, geometry, out, {
        async: false,
        out: dst?.data as Float32Array | undefined,
        ...mst,
      }) as NativeResult,
  );
  return (dst ?? fromBuffer(outputDType(options.output), r.shape, r.data)) as Tensor<OutputDType<O>>;
}

/** Async {@link bconv2d}: validates now, computes on the libuv pool on a private copy of the input. */
export async function bconv2dAsync<O extends BinaryOutput = F32Output>(
  x: Tensor,
  w: PackedBinaryWeights,
  options: BConv2dOptions<O> = {},
): Promise<Tensor<OutputDType<O>>> {
  const { xb, geometry, out, mst } = bconv2dArgs(x, w, options);
  const r = await awaitNative(
    () =>
      native.bconv2d(xb.data, [...xb.shape], w.handle, geometry, out, { async: true, ...mst }) as Promise<NativeResult>,
  );
  return fromBuffer(outputDType(options.output), r.shape, r.data) as Tensor<OutputDType<O>>;
}

function bdenseArgs(x: Tensor, w: PackedBinaryWeights, options: BDenseOptions) {
  expectTensor(x, 'input', ['b1', 'f32', 's8'], 2);
  expectWeights(w);
  if (w.kernelH !== 1 || w.kernelW !== 1 || w.groups !== 1)
    throw new ShapeError(
      `weights: bdense needs weights from packBinaryDenseWeights() (1x1, one group), got kernel ${w.kernelH}x${w.kernelW} with ${w.groups} groups`,
    );
  if (x.shape[1] !== w.inChannelsPerGroup)
    throw new ShapeError(`input: has ${x.shape[1]} features but the weights expect ${w.inChannelsPerGroup}`);
  return { xb: binaryInput(x), out: epilogue(options.output, w.outChannels), mst: mstArgs(options) };
}

/**
 * Binary fully connected layer: [rows, inFeatures] x [outFeatures, inFeatures]^T, batch 1 or N,
 * with the same epilogues and MST options as {@link bconv2d}.
 * @throws TypeError, ShapeError, RangeError
 */
export function bdense<O extends BinaryOutput = F32Output>(
  x: Tensor,
  w: PackedBinaryWeights,
  options: BDenseOptions<O> & OutOption<O> = {},
): Tensor<OutputDType<O>> {
  const { xb, out, mst } = bdenseArgs(x, w, options);
  const dst = expectOut(options.out, outputDType(options.output), [xb.shape[0], w.outChannels]);
  const r = callNative(
    () =>
      native.bdense(xb.data, xb.shape[0], xb.shape[1], w.handle, out, {
        async: false,
        out: dst?.data as Float32Array | undefined,
        ...mst,
      }) as NativeResult,
  );
  return (dst ?? fromBuffer(outputDType(options.output), r.shape, r.data)) as Tensor<OutputDType<O>>;
}

/** Async {@link bdense} on the libuv pool. */
export async function bdenseAsync<O extends BinaryOutput = F32Output>(
  x: Tensor,
  w: PackedBinaryWeights,
  options: BDenseOptions<O> = {},
): Promise<Tensor<OutputDType<O>>> {
  const { xb, out, mst } = bdenseArgs(x, w, options);
  const r = await awaitNative(
    () =>
      native.bdense(xb.data, xb.shape[0], xb.shape[1], w.handle, out, { async: true, ...mst }) as Promise<NativeResult>,
  );
  return fromBuffer(outputDType(options.output), r.shape, r.data) as Tensor<OutputDType<O>>;
}

/**
 * Max pooling on a packed tensor: the max of +-1 values is the AND of their sign bits.
 * @returns a `b1` tensor [N, OH, OW, C]
 * @throws TypeError, ShapeError, RangeError
 */
export function bmaxpool2d(x: Tensor<'b1'>, options: Pool2dOptions): Tensor<'b1'> {
  expectTensor(x, 'input', ['b1'], 4);
  const geometry = poolGeometry(x, options);
  const r = callNative(() => native.bmaxpool2d(x.data, [...x.shape], geometry, false) as NativeResult);
  return fromBuffer('b1', r.shape, r.data);
}

/** Async {@link bmaxpool2d} on the libuv pool. */
export async function bmaxpool2dAsync(x: Tensor<'b1'>, options: Pool2dOptions): Promise<Tensor<'b1'>> {
  expectTensor(x, 'input', ['b1'], 4);
  const geometry = poolGeometry(x, options);
  const r = await awaitNative(() => native.bmaxpool2d(x.data, [...x.shape], geometry, true) as Promise<NativeResult>);
  return fromBuffer('b1', r.shape, r.data);
}

/**
 * Integer thresholds for a `b1` output that reproduce the sign of `y * scale[c] + bias[c]`
 * (evaluated in double precision, as JavaScript does) for every integer y, with sign(0) = +1:
 * the bit (1 = negative) is `(y < threshold[c]) XOR flip[c]`. Negative scales use `flip`.
 * @throws ShapeError for lengths that differ, RangeError for non-finite values
 */
export function thresholdsFromAffine(scale: Numbers, bias: Numbers): { threshold: Int32Array; flip: Uint8Array } {
  if (scale.length !== bias.length)
    throw new ShapeError(`bias: expected ${scale.length} values like scale, got ${bias.length}`);
  const n = scale.length;
  const threshold = new Int32Array(n);
  const flip = new Uint8Array(n);
  const clampInt32 = (v: number) => Math.min(2147483647, Math.max(-2147483648, v));
  for (let c = 0; c < n; ++c) {
    const s = scale[c],
      b = bias[c];
    if (!Number.isFinite(s) || !Number.isFinite(b))
      throw new RangeError(`scale/bias[${c}]: expected finite numbers, got ${s}, ${b}`);
    const negative = (y: number) => y * s + b < 0;
    if (s === 0) {
      threshold[c] = b < 0 ? 2147483647 : -2147483648; // a constant sign
      continue;
    }
    // negative(y) is monotone in y. Start from the estimate -b/s (kept inside the int32 range,
    // where y lives) and correct it with the very expression it must agree with: the division
    // can round across an integer.
    const lo = -2147483648,
      hi = 2147483647;
    let t = Math.min(hi + 1, Math.max(lo, Math.ceil(-b / s)));
    if (s > 0) {
      // the smallest t with: negative(y) <=> y < t
      while (t <= hi && negative(t)) ++t;
      while (t > lo && !negative(t - 1)) --t;
    } else {
      // the smallest t with: negative(y) <=> y >= t, i.e. !(y < t)
      while (t <= hi && !negative(t)) ++t;
      while (t > lo && negative(t - 1)) --t;
      flip[c] = 1;
    }
    threshold[c] = clampInt32(t);
  }
  return { threshold, flip };
}
