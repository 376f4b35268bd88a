/**
 * Geometry shared by the conv and pool operators of every family: strides/dilations, SAME
 * padding, output shapes, and preallocated-output checks.
 */
import { ShapeError } from '../errors.js';
import type { NativeConvGeometry, NativePoolGeometry } from '../native.js';
import { expectTensor, type DType, type Tensor } from '../tensor.js';

export type Pair = number | readonly [number, number];

export function positiveInt(value: unknown, name: string): number {
  if (!Number.isInteger(value) || (value as number) < 1)
    throw new RangeError(`${name}: expected an integer >= 1, got ${String(value)}`);
  return value as number;
}

export function pair(value: Pair | undefined, name: string): [number, number] {
  if (value === undefined) return [1, 1];
  const [a, b] = typeof value === 'number' ? [value, value] : value;
  return [positiveInt(a, `${name}[0]`), positiveInt(b, `${name}[1]`)];
}

/** TF/ONNX SAME_UPPER pads [before, after] of one axis (the extra pixel goes at the end). */
export function samePads(size: number, kernel: number, stride: number, dilation: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** The NHWC output shape of a conv with the given geometry. */
export function convOutputShape(
  inputShape: readonly number[],
  kernelH: number,
  kernelW: number,
  outChannels: number,
  geometry: NativeConvGeometry,
): number[] {
  const { strides, dilations, pads } = geometry;
  const [top, left, bottom, right] = pads;
  const dim = (size: number, k: number, s: number, d: number, a: number, b: number) =>
    Math.floor((size + a + b - d * (k - 1) - 1) / s) + 1;
  return [
    inputShape[0],
    dim(inputShape[1], kernelH, strides[0], dilations[0], top, bottom),
    dim(inputShape[2], kernelW, strides[1], dilations[1], left, right),
    outChannels,
  ];
}

/** Explicit [top, left, bottom, right] pads, each a non-negative integer, as a tuple. */
export function explicitPads(pads: readonly unknown[], name: string): [number, number, number, number] {
  pads.forEach((p, i) => {
    if (!Number.isInteger(p) || (p as number) < 0)
      throw new RangeError(`${name}[${i}]: expected a non-negative integer, got ${String(p)}`);
  });
  return [pads[0], pads[1], pads[2], pads[3]] as [number, number, number, number];
}

/** Checks a preallocated output against the exact dtype and shape the call produces. */
export function expectOut(out: Tensor | undefined, dtype: DType, shape: readonly number[]): Tensor | undefined {
  if (out === undefined) return undefined;
  expectTensor(out, 'out', [dtype]);
  if (out.shape.length !== shape.length || out.shape.some((d, i) => d !== shape[i]))
    throw new ShapeError(`out: expected shape [${shape.join(', ')}], got [${out.shape.join(', ')}]`);
  return out;
}

export interface Pool2dOptions {
  kernel: Pair;
  /** default: the kernel size */
  strides?: Pair;
  /** 'valid' (default), 'same' (SAME_UPPER) or explicit [top, left, bottom, right]; padding never wins a max */
  padding?: 'valid' | 'same' | readonly [number, number, number, number];
}

/** The geometry of a pool over the NHWC input x. */
export function poolGeometry(x: Tensor, options: Pool2dOptions): NativePoolGeometry {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('options: expected { kernel, strides?, padding? }');
  const [kh, kw] = pair(options.kernel, 'kernel');
  const [sh, sw] = options.strides === undefined ? [kh, kw] : pair(options.strides, 'strides');
  const padding = options.padding ?? 'valid';
  let pads: [number, number, number, number];
  if (padding === 'valid') pads = [0, 0, 0, 0];
  else if (padding === 'same') {
    const [t, b] = samePads(x.shape[1], kh, sh, 1);
    const [l, r] = samePads(x.shape[2], kw, sw, 1);
    pads = [t, l, b, r];
  } else if (Array.isArray(padding) && padding.length === 4 && padding.every((p) => Number.isInteger(p) && p >= 0))
    pads = [padding[0], padding[1], padding[2], padding[3]];
  else
    throw new RangeError(
      `padding: expected 'valid', 'same' or [top, left, bottom, right], got ${JSON.stringify(padding)}`,
    );
  return { kernel: [kh, kw], strides: [sh, sw], pads };
}
