/** Argument checks shared by the operators: per-channel parameter arrays and integer ranges. */
import { QuantizationError, ShapeError } from './errors.js';

export const isInt32 = (v: number) => Number.isInteger(v) && v >= -2147483648 && v <= 2147483647;
/** A dyadic multiplier: any int32 but -2^31 (its sign may carry a negative scale). */
export const isMultiplier = (v: number) => isInt32(v) && v !== -2147483648;
/** A dyadic shift, in [0, 62]. */
export const isShift = (v: number) => Number.isInteger(v) && v >= 0 && v <= 62;

/**
 * Copies one value per output channel into a typed array, checking each one.
 * @returns undefined when `values` is undefined (the caller's default applies)
 * @throws TypeError for a non-array, ShapeError for a wrong length, RangeError for a bad value
 */
export function perChannel<T extends Float32Array | Int32Array | Uint8Array>(
  Ctor: new (n: number) => T,
  values: ArrayLike<number | boolean> | undefined,
  name: string,
  count: number,
  check: (v: number) => boolean,
  expected: string,
): T | undefined {
  if (values === undefined) return undefined;
  if (typeof values !== 'object' || values === null || typeof values.length !== 'number')
    throw new TypeError(`${name}: expected an array or typed array of ${count} values`);
  if (values.length !== count)
    throw new ShapeError(`${name}: expected ${count} values (one per output channel), got ${values.length}`);
  const out = new Ctor(count);
  for (let c = 0; c < count; ++c) {
    const v = Number(values[c]);
    if (!check(v)) throw new RangeError(`${name}[${c}]: expected ${expected}, got ${String(values[c])}`);
    out[c] = v;
  }
  return out;
}

/**
 * The clamp of an 8-bit output: `clamp` or the dtype's whole range, checked against that range.
 * @throws RangeError
 */
export function clamp8(dtype: 's8' | 'u8', clamp: readonly [number, number] | undefined): [lo: number, hi: number] {
  const [min, max] = dtype === 's8' ? [-128, 127] : [0, 255];
  const [lo, hi] = clamp ?? [min, max];
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < min || hi > max || lo > hi)
    throw new RangeError(`clamp: expected integers ${min} <= lo <= hi <= ${max} for ${dtype}, got [${lo}, ${hi}]`);
  return [lo, hi];
}

/** The value range of an 8-bit dtype. */
export function byteRange(dtype: 's8' | 'u8'): [min: number, max: number] {
  return dtype === 's8' ? [-128, 127] : [0, 255];
}

/**
 * A quantization scale: finite and > 0, also as float32 (the native side stores float32).
 * @throws QuantizationError naming the argument
 */
export function checkScale(scale: unknown, name = 'scale'): number {
  if (
    typeof scale !== 'number' ||
    !Number.isFinite(scale) ||
    !(scale > 0) ||
    !(Math.fround(scale) > 0) ||
    !Number.isFinite(Math.fround(scale))
  )
    throw new QuantizationError(`${name}: expected a finite number > 0 (as float32), got ${String(scale)}`);
  return scale;
}

/**
 * A zero point of an 8-bit dtype (default 0).
 * @throws RangeError naming the argument
 */
export function zeroPointOf(value: unknown, name: string, dtype: 's8' | 'u8'): number {
  const [min, max] = byteRange(dtype);
  const v = value ?? 0;
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max)
    throw new RangeError(`${name}: expected an integer in [${min}, ${max}] for ${dtype}, got ${String(value)}`);
  return v as number;
}
