/**
 * Integer element-wise and pooling operators of the dyadic (HAWQ-V3) family, on per-tensor
 * quantized 8-bit tensors: `real = scale * (q - zeroPoint)`, stored as `s8` or `u8` (INT4
 * activations are the same dtypes with the clamps [-8, 7] / [0, 15]). Every rescale is integer
 * only, `rs(v, m, e) = ((int64)v * m + (e > 0 ? 2^(e-1) : 0)) >> e` (round half up), with
 * `{ multiplier: m, shift: e } = toDyadic(ratio)` computed once per call from the scales, in double
 * precision, exactly as each function's documentation writes the ratio. No float touches the values.
 * Every operator has a sync form and an async form that runs on the libuv pool on private copies
 * of its inputs.
 */
import { awaitNative, callNative, ShapeError } from '../errors.js';
import { native, type NativeQuantOutput, type NativeQuantParams, type NativeResult } from '../native.js';
import { describe, expectTensor, fromBuffer, type Tensor } from '../tensor.js';
import { byteRange, checkScale, clamp8, zeroPointOf } from '../validate.js';
import { poolGeometry, type Pool2dOptions } from './geometry.js';

type Q8 = 's8' | 'u8';
type Clamp = readonly [lo: number, hi: number];

/** Per-tensor quantization parameters: `real = scale * (q - zeroPoint)`. */
export interface QuantParams {
  /** the real value of one integer step: finite and > 0 */
  scale: number;
  /** the integer that represents 0.0, inside the tensor's dtype range; default 0 */
  zeroPoint?: number;
}

/** The quantization of an operator's output. */
export interface QuantOutputParams<D extends Q8 = Q8> extends QuantParams {
  /** output dtype; each operator documents its default */
  dtype?: D;
  /** default the dtype's range; INT4 values use [-8, 7] (s8) or [0, 15] (u8). zeroPoint must lie inside it */
  clamp?: Clamp;
}

export interface QAddOptions<D extends Q8 = Q8> {
  a: QuantParams;
  b: QuantParams;
  /** dtype defaults to a's */
  output: QuantOutputParams<D>;
}

export interface QReluOptions {
  /** the input's zero point (the integer of real 0); default 0 */
  zeroPoint?: number;
  /** default the dtype's range (INT4: [-8, 7] / [0, 15]) */
  clamp?: Clamp;
}

/** Max pool options: those of {@link bmaxpool2d} (strides default to the kernel size). */
export type QMaxPool2dOptions = Pool2dOptions;

export interface QAvgPool2dOptions<D extends Q8 = Q8> extends Pool2dOptions {
  /** divide by every tap of the window, padding included (true), or by its in-image taps only (false, the default, as ONNX) */
  countIncludePad?: boolean;
  input: QuantParams;
  /** default: the input's scale, zero point and dtype */
  output?: QuantOutputParams<D>;
}

export interface QGlobalAvgPoolOptions<D extends Q8 = Q8> {
  input: QuantParams;
  /** default: the input's scale, zero point and dtype */
  output?: QuantOutputParams<D>;
}

export interface QConcatOptions<D extends Q8 = Q8> {
  /** the axis to join along; negative counts from the end; default -1 (channels in NHWC) */
  axis?: number;
  /** one per input tensor */
  inputs: readonly QuantParams[];
  /** dtype defaults to the first input's; the clamp is the dtype's range */
  output: Omit<QuantOutputParams<D>, 'clamp'>;
}

// ---- argument checks ---------------------------------------------------------------------------

function options<T>(value: T, expected: string): T {
  if (typeof value !== 'object' || value === null)
    throw new TypeError(`options: expected ${expected}, got ${describe(value)}`);
  return value;
}

/** The parameters of an input of dtype `dtype`; the zero point must lie in the dtype's range. */
function inputParams(params: QuantParams | undefined, name: string, dtype: Q8): NativeQuantParams {
  if (typeof params !== 'object' || params === null)
    throw new TypeError(`${name}: expected { scale, zeroPoint? }, got ${describe(params)}`);
  const scale = checkScale(params.scale, `${name}.scale`);
  return { scale, zeroPoint: zeroPointOf(params.zeroPoint, `${name}.zeroPoint`, dtype) };
}

/** The output's parameters and clamp; the zero point must lie in the clamp. */
function outputParams(
  params: QuantOutputParams | undefined,
  fallbackDtype: Q8,
  allowClamp = true,
): { dtype: Q8; out: NativeQuantOutput } {
  if (typeof params !== 'object' || params === null)
    throw new TypeError(
      `output: expected { scale, zeroPoint?, dtype?${allowClamp ? ', clamp?' : ''} }, got ${describe(params)}`,
    );
  const scale = checkScale(params.scale, 'output.scale');
  const dtype = params.dtype ?? fallbackDtype;
  if (dtype !== 's8' && dtype !== 'u8')
    throw new RangeError(`output.dtype: expected 's8' or 'u8', got ${String(dtype)}`);
  if (!allowClamp && params.clamp !== undefined) throw new TypeError('output.clamp: this operator has no output clamp');
  const [lo, hi] = clamp8(dtype, params.clamp);
  const zeroPoint = params.zeroPoint ?? 0;
  if (!Number.isInteger(zeroPoint) || zeroPoint < lo || zeroPoint > hi)
    throw new RangeError(`output.zeroPoint: expected an integer in the clamp [${lo}, ${hi}], got ${String(zeroPoint)}`);
  return { dtype, out: { scale, zeroPoint, lo, hi } };
}

type Data = Int8Array | Uint8Array;
const data = (t: Tensor<Q8>) => t.data as Data;

// ---- qadd --------------------------------------------------------------------------------------

function qaddArgs(a: Tensor, b: Tensor, opts: QAddOptions) {
  expectTensor(a, 'a', ['s8', 'u8']);
  expectTensor(b, 'b', ['s8', 'u8']);
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i]))
    throw new ShapeError(`b: expected the shape of a [${a.shape.join(', ')}], got [${b.shape.join(', ')}]`);
  options(opts, '{ a, b, output }');
  const pa = inputParams(opts.a, 'a', a.dtype as Q8);
  const pb = inputParams(opts.b, 'b', b.dtype as Q8);
  const { dtype, out } = outputParams(opts.output, a.dtype as Q8);
  return { pa, pb, dtype, out };
}

/**
 * Residual add of two quantized tensors of the same shape (HAWQ-V3): each input is rescaled to the
 * output scale by its own dyadic pair, then the two are added:
 * `out = clamp(rs(a - za, ma, ea) + rs(b - zb, mb, eb) + zo, lo, hi)` with
 * `(ma, ea) = toDyadic(a.scale / output.scale)`, `(mb, eb) = toDyadic(b.scale / output.scale)`.
 * a and b may be s8 or u8 independently. Fuse a ReLU with `output.clamp: [zo, hi]`.
 * @returns a tensor of a's shape, dtype `output.dtype` (default a's)
 * @throws QuantizationError for a bad scale or a ratio outside toDyadic's range; RangeError for
 *   zero points and clamps; TypeError, ShapeError
 * @example
 * const y = qadd(x, identity, { a: { scale: 0.05 }, b: { scale: 0.04 }, output: { scale: 0.06, dtype: 'u8', zeroPoint: 0 } });
 */
export function qadd<D extends Q8 = Q8, O extends Q8 = D>(
  a: Tensor<D>,
  b: Tensor<Q8>,
  options: QAddOptions<O>,
): Tensor<O> {
  const { pa, pb, dtype, out } = qaddArgs(a, b, options);
  const r = callNative(() => native.qadd(data(a), data(b), pa, pb, out, false) as NativeResult);
  return fromBuffer(dtype, a.shape, r.data) as Tensor<O>;
}

/** Async {@link qadd} on the libuv pool. */
export async function qaddAsync<D extends Q8 = Q8, O extends Q8 = D>(
  a: Tensor<D>,
  b: Tensor<Q8>,
  options: QAddOptions<O>,
): Promise<Tensor<O>> {
  const { pa, pb, dtype, out } = qaddArgs(a, b, options);
  const r = await awaitNative(() => native.qadd(data(a), data(b), pa, pb, out, true) as Promise<NativeResult>);
  return fromBuffer(dtype, a.shape, r.data) as Tensor<O>;
}

// ---- qrelu / qclamp ----------------------------------------------------------------------------

function qreluArgs(x: Tensor, opts: QReluOptions): [number, number] {
  expectTensor(x, 'input', ['s8', 'u8']);
  options(opts, '{ zeroPoint?, clamp? }');
  const dtype = x.dtype as Q8;
  const [lo, hi] = clamp8(dtype, opts.clamp);
  const zeroPoint = opts.zeroPoint ?? 0;
  const [min, max] = byteRange(dtype);
  if (!Number.isInteger(zeroPoint) || zeroPoint < min || zeroPoint > max)
    throw new RangeError(`zeroPoint: expected an integer in [${min}, ${max}] for ${dtype}, got ${String(zeroPoint)}`);
  if (zeroPoint > hi)
    throw new RangeError(`zeroPoint: ${zeroPoint} lies above the clamp [${lo}, ${hi}]: every output would be clamped`);
  return [Math.max(zeroPoint, lo), hi];
}

function qclampArgs(x: Tensor, clamp: Clamp): [number, number] {
  expectTensor(x, 'input', ['s8', 'u8']);
  if (!Array.isArray(clamp) || clamp.length !== 2)
    throw new TypeError(`clamp: expected [lo, hi], got ${describe(clamp)}`);
  return clamp8(x.dtype as Q8, clamp);
}

/**
 * ReLU in the quantized domain: a clamp at the zero point (the integer of real 0),
 * `out = clamp(x, max(zeroPoint, lo), hi)`, same dtype and quantization parameters as x.
 * @throws RangeError for a zero point outside the dtype or above the clamp, or a bad clamp; TypeError
 * @example const y = qrelu(x, { zeroPoint: 3, clamp: [0, 15] }); // a u8 tensor holding INT4 values
 */
export function qrelu<D extends Q8>(x: Tensor<D>, options: QReluOptions = {}): Tensor<D> {
  const [lo, hi] = qreluArgs(x, options);
  const r = callNative(() => native.qclamp(data(x), lo, hi, false) as NativeResult);
  return fromBuffer(x.dtype, x.shape, r.data);
}

/** Async {@link qrelu} on the libuv pool. */
export async function qreluAsync<D extends Q8>(x: Tensor<D>, options: QReluOptions = {}): Promise<Tensor<D>> {
  const [lo, hi] = qreluArgs(x, options);
  const r = await awaitNative(() => native.qclamp(data(x), lo, hi, true) as Promise<NativeResult>);
  return fromBuffer(x.dtype, x.shape, r.data);
}

/**
 * Clamps a quantized tensor: `out = clamp(x, lo, hi)`, same dtype (ReLU6 and INT4 saturation).
 * @throws RangeError unless lo <= hi are integers inside the dtype's range; TypeError
 */
export function qclamp<D extends Q8>(x: Tensor<D>, clamp: Clamp): Tensor<D> {
  const [lo, hi] = qclampArgs(x, clamp);
  const r = callNative(() => native.qclamp(data(x), lo, hi, false) as NativeResult);
  return fromBuffer(x.dtype, x.shape, r.data);
}

/** Async {@link qclamp} on the libuv pool. */
export async function qclampAsync<D extends Q8>(x: Tensor<D>, clamp: Clamp): Promise<Tensor<D>> {
  const [lo, hi] = qclampArgs(x, clamp);
  const r = await awaitNative(() => native.qclamp(data(x), lo, hi, true) as Promise<NativeResult>);
  return fromBuffer(x.dtype, x.shape, r.data);
}

// ---- pooling -----------------------------------------------------------------------------------

/**
 * Max pooling of an NHWC quantized tensor; padded taps never win. The output keeps x's dtype and
 * quantization parameters (the max commutes with a positive-scale dequantization).
 * @returns [N, OH, OW, C]
 * @throws TypeError, ShapeError, RangeError (each pad must be smaller than the kernel)
 */
export function qmaxpool2d<D extends Q8>(x: Tensor<D>, options: QMaxPool2dOptions): Tensor<D> {
  expectTensor(x, 'input', ['s8', 'u8'], 4);
  const geometry = poolGeometry(x, options);
  const r = callNative(() => native.qmaxpool2d(data(x), [...x.shape], geometry, false) as NativeResult);
  return fromBuffer(x.dtype, r.shape, r.data);
}

/** Async {@link qmaxpool2d} on the libuv pool. */
export async function qmaxpool2dAsync<D extends Q8>(x: Tensor<D>, options: QMaxPool2dOptions): Promise<Tensor<D>> {
  expectTensor(x, 'input', ['s8', 'u8'], 4);
  const geometry = poolGeometry(x, options);
  const r = await awaitNative(() => native.qmaxpool2d(data(x), [...x.shape], geometry, true) as Promise<NativeResult>);
  return fromBuffer(x.dtype, r.shape, r.data);
}

/** The input's parameters, and the output's (default: the input's scale, zero point and dtype). */
function averageParams(x: Tensor, input: QuantParams, output: QuantOutputParams | undefined) {
  const pi = inputParams(input, 'input', x.dtype as Q8);
  return { pi, ...outputParams(output ?? { scale: pi.scale, zeroPoint: pi.zeroPoint }, x.dtype as Q8) };
}

function qavgpool2dArgs(x: Tensor, opts: QAvgPool2dOptions) {
  expectTensor(x, 'input', ['s8', 'u8'], 4);
  options(opts, '{ kernel, strides?, padding?, countIncludePad?, input, output? }');
  const geometry = poolGeometry(x, opts);
  const include = opts.countIncludePad ?? false;
  if (typeof include !== 'boolean')
    throw new TypeError(`countIncludePad: expected a boolean, got ${describe(include)}`);
  return { geometry, include, ...averageParams(x, opts.input, opts.output) };
}

/**
 * Average pooling of an NHWC quantized tensor, integer only: the window sum of `x - zi` is divided
 * by the window's tap count n through a dyadic multiply,
 * `out = clamp(rs(sum(x - zi), m_n, e_n) + zo, lo, hi)`, `(m_n, e_n) = toDyadic(input.scale / (output.scale * n))`,
 * one pair per distinct n, computed once per call. n counts every tap with `countIncludePad`, else
 * the in-image taps (ONNX's default); padded taps add 0 either way. A window may hold at most
 * 8421504 taps (its sum stays in int32).
 * @returns [N, OH, OW, C] of `output.dtype` (default x's)
 * @throws QuantizationError for a bad scale or a ratio outside toDyadic's range; RangeError, TypeError, ShapeError
 */
export function qavgpool2d<D extends Q8, O extends Q8 = D>(x: Tensor<D>, options: QAvgPool2dOptions<O>): Tensor<O> {
  const { geometry, include, pi, dtype, out } = qavgpool2dArgs(x, options);
  const r = callNative(
    () => native.qavgpool2d(data(x), [...x.shape], geometry, include, pi, out, false) as NativeResult,
  );
  return fromBuffer(dtype, r.shape, r.data) as Tensor<O>;
}

/** Async {@link qavgpool2d} on the libuv pool. */
export async function qavgpool2dAsync<D extends Q8, O extends Q8 = D>(
  x: Tensor<D>,
  options: QAvgPool2dOptions<O>,
): Promise<Tensor<O>> {
  const { geometry, include, pi, dtype, out } = qavgpool2dArgs(x, options);
  const r = await awaitNative(
    () => native.qavgpool2d(data(x), [...x.shape], geometry, include, pi, out, true) as Promise<NativeResult>,
  );
  return fromBuffer(dtype, r.shape, r.data) as Tensor<O>;
}

function qglobalArgs(x: Tensor, opts: QGlobalAvgPoolOptions) {
  expectTensor(x, 'input', ['s8', 'u8'], 4);
  options(opts, '{ input, output? }');
  return averageParams(x, opts.input, opts.output);
}

/**
 * Global average pooling: {@link qavgpool2d} over the whole H x W (n = H * W, at most 8421504),
 * `out = clamp(rs(sum(x - zi), m, e) + zo, lo, hi)`, `(m, e) = toDyadic(input.scale / (output.scale * H * W))`.
 * @returns [N, 1, 1, C] of `output.dtype` (default x's)
 * @throws QuantizationError, RangeError, TypeError, ShapeError
 */
export function qglobalavgpool<D extends Q8, O extends Q8 = D>(
  x: Tensor<D>,
  options: QGlobalAvgPoolOptions<O>,
): Tensor<O> {
  const { pi, dtype, out } = qglobalArgs(x, options);
  const r = callNative(() => native.qglobalavgpool(data(x), [...x.shape], pi, out, false) as NativeResult);
  return fromBuffer(dtype, r.shape, r.data) as Tensor<O>;
}

/** Async {@link qglobalavgpool} on the libuv pool. */
export async function qglobalavgpoolAsync<D extends Q8, O extends Q8 = D>(
  x: Tensor<D>,
  options: QGlobalAvgPoolOptions<O>,
): Promise<Tensor<O>> {
  const { pi, dtype, out } = qglobalArgs(x, options);
  const r = await awaitNative(
    () => native.qglobalavgpool(data(x), [...x.shape], pi, out, true) as Promise<NativeResult>,
  );
  return fromBuffer(dtype, r.shape, r.data) as Tensor<O>;
}

// ---- qconcat -----------------------------------------------------------------------------------

function qconcatArgs(inputs: readonly Tensor[], opts: QConcatOptions) {
  if (!Array.isArray(inputs)) throw new TypeError(`inputs: expected an array of tensors, got ${describe(inputs)}`);
  if (inputs.length === 0) throw new ShapeError('inputs: expected at least one tensor');
  inputs.forEach((t, i) => expectTensor(t, `inputs[${i}]`, ['s8', 'u8']));
  options(opts, '{ axis?, inputs, output }');
  const first: Tensor = inputs[0];
  const rank = first.shape.length;
  if (rank === 0) throw new ShapeError('inputs[0]: a scalar has no axis to concatenate along');
  const axisOption = opts.axis ?? -1;
  if (!Number.isInteger(axisOption) || axisOption < -rank || axisOption >= rank)
    throw new RangeError(`axis: expected an integer in [${-rank}, ${rank - 1}], got ${String(axisOption)}`);
  const axis = axisOption < 0 ? axisOption + rank : axisOption;
  inputs.forEach((t: Tensor, i: number) => {
    if (t.shape.length !== rank || t.shape.some((d, k) => k !== axis && d !== first.shape[k]))
      throw new ShapeError(
        `inputs[${i}]: shape [${t.shape.join(', ')}] must equal [${first.shape.join(', ')}] except along axis ${axis}`,
      );
  });
  if (!Array.isArray(opts.inputs))
    throw new TypeError(`options.inputs: expected an array of { scale, zeroPoint? }, got ${describe(opts.inputs)}`);
  if (opts.inputs.length !== inputs.length)
    throw new ShapeError(
      `options.inputs: expected ${inputs.length} parameter objects (one per tensor), got ${opts.inputs.length}`,
    );
  const params = inputs.map((t, i) => inputParams(opts.inputs[i], `inputs[${i}]`, t.dtype as Q8));
  const { dtype, out } = outputParams(opts.output, first.dtype as Q8, false);
  const outer = first.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = first.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const axisSizes = inputs.map((t) => t.shape[axis]);
  const shape = [...first.shape];
  shape[axis] = axisSizes.reduce((a, b) => a + b, 0);
  return { data: inputs.map((t) => data(t as Tensor<Q8>)), outer, inner, axisSizes, params, dtype, out, shape };
}

/**
 * Concatenates quantized tensors along one axis, each rescaled to the common output parameters:
 * `out = clamp(rs(x - zi, mi, ei) + zo)` with `(mi, ei) = toDyadic(inputs[i].scale / output.scale)`
 * and the clamp the output dtype's range (a plain copy for an input whose scale, zero point and
 * dtype equal the output's). All other dimensions must match; inputs may mix s8 and u8.
 * @returns dtype `output.dtype` (default the first input's)
 * @throws QuantizationError, RangeError, TypeError, ShapeError
 * @example const y = qconcat([a, b], { inputs: [{ scale: 0.1 }, { scale: 0.2 }], output: { scale: 0.2 } });
 */
export function qconcat<O extends Q8 = Q8>(inputs: readonly Tensor<Q8>[], options: QConcatOptions<O>): Tensor<O> {
  const a = qconcatArgs(inputs, options);
  const r = callNative(
    () => native.qconcat(a.data, a.outer, a.inner, a.axisSizes, a.params, a.out, false) as NativeResult,
  );
  return fromBuffer(a.dtype, a.shape, r.data) as Tensor<O>;
}

/** Async {@link qconcat} on the libuv pool. */
export async function qconcatAsync<O extends Q8 = Q8>(
  inputs: readonly Tensor<Q8>[],
  options: QConcatOptions<O>,
): Promise<Tensor<O>> {
  const a = qconcatArgs(inputs, options);
  const r = await awaitNative(
    () => native.qconcat(a.data, a.outer, a.inner, a.axisSizes, a.params, a.out, true) as Promise<NativeResult>,
  );
  return fromBuffer(a.dtype, a.shape, r.data) as Tensor<O>;
}
