/**
 * Quantization math of the dyadic (integer-only) family. Every real rescale M = S_in * S_w / S_out
 * runs as an integer multiply and a rounding right shift: M ~ multiplier / 2^shift.
 */
import { QuantizationError } from './errors.js';

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
