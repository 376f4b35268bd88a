/**
 * Named error classes. Every failure lowbit reports is one of these or a built-in `TypeError`
 * (wrong kind of value) / `RangeError` (a value outside its allowed range).
 */

/** Base class of lowbit's own errors. */
export class LowbitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Tensor shapes, ranks or buffer lengths disagree with what an operator needs. */
export class ShapeError extends LowbitError {}

/** The CPU or this build cannot do what was asked (for example `setIsa('avx2')` on an ARM CPU). */
export class UnsupportedError extends LowbitError {}

/** A scale or multiplier with no integer (dyadic) representation: zero, negative, NaN, infinite or out of range. */
export class QuantizationError extends LowbitError {}

/**
 * A model file (`.lowbit`) or an ONNX model that cannot be read: truncated, corrupted, or with a
 * field out of range. The message names the section (or JSON path / ONNX node) and the field.
 */
export class ModelFormatError extends LowbitError {}

/**
 * A converted model whose output differs from the float model's far more than its bits explain
 * (a conversion the engine got wrong). `output` names the output, `error` its relative RMS error
 * on the measuring samples, `limit` the bound it broke (`ConvertOptions.maxOutputError`).
 */
export class AccuracyError extends LowbitError {
  constructor(
    message: string,
    readonly output: string,
    readonly error: number,
    readonly limit: number,
  ) {
    super(message);
  }
}

/** An error as it crosses a thread (a worker's postMessage keeps only plain data). */
export interface ErrorClone {
  name: string;
  message: string;
  stack?: string;
  accuracy?: { output: string; error: number; limit: number };
}

export function cloneError(e: unknown): ErrorClone {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const accuracy = e instanceof AccuracyError ? { output: e.output, error: e.error, limit: e.limit } : undefined;
  return { name: e.name, message: e.message, stack: e.stack, accuracy };
}

/** The error of the class `clone` names (lowbit's, TypeError, RangeError), or a plain Error. */
export function errorFromClone(clone: ErrorClone): Error {
  const classes: Record<string, new (message: string) => Error> = {
    LowbitError,
    ShapeError,
    UnsupportedError,
    QuantizationError,
    ModelFormatError,
    TypeError,
    RangeError,
  };
  const a = clone.accuracy;
  const error = a
    ? new AccuracyError(clone.message, a.output, a.error, a.limit)
    : new (classes[clone.name] ?? Error)(clone.message);
  if (clone.stack) error.stack = clone.stack;
  return error;
}

/** Maps an error thrown by the native addon (tagged with a `code`) to the matching class. */
export function fromNative(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const code = (error as Error & { code?: string }).code;
  switch (code) {
    case 'LOWBIT_SHAPE':
      return new ShapeError(error.message);
    case 'LOWBIT_UNSUPPORTED':
      return new UnsupportedError(error.message);
    case 'LOWBIT_QUANTIZATION':
      return new QuantizationError(error.message);
    case 'LOWBIT_FORMAT':
      return new ModelFormatError(error.message);
    case 'LOWBIT_TYPE':
      return new TypeError(error.message);
    case 'LOWBIT_RANGE':
      return new RangeError(error.message);
    default:
      return error;
  }
}

/** Calls into the addon, rethrowing its errors as lowbit's named classes. */
export function callNative<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw fromNative(error);
  }
}

/** Awaits an addon Promise, rejecting with lowbit's named classes. */
export async function awaitNative<T>(promise: () => Promise<T>): Promise<T> {
  try {
    return await promise();
  } catch (error) {
    throw fromNative(error);
  }
}
