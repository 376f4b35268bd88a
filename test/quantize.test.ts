// toDyadic: the TypeScript definition keeps its documented error bound and ranges, agrees bit for
// bit with the C++ definition, and refuses multipliers that have no dyadic form.
import { describe, expect, it } from 'vitest';
import { QuantizationError, toDyadic } from '../lib/index.js';
import { native } from '../lib/native.js';
import { fileSeed, rngFor } from './helpers/rng.js';

const SEED = fileSeed('quantize');

describe(`toDyadic (seed ${SEED})`, () => {
  const rng = rngFor(SEED, 'toDyadic');
  const next = () => rng.float();
  // log-uniform over [2^-32, 2^31), plus values just below powers of two (the round-up case)
  const samples = [
    ...Array.from({ length: 20000 }, () => (0.5 + next() / 2) * 2 ** (Math.floor(next() * 63) - 31)),
    ...Array.from({ length: 62 }, (_, i) => 2 ** (i - 31) * (1 - 2 ** -40)),
    1, 0.75, 2 ** -32, 2 ** 31 * 0.99,
  ];

  it('multiplier in [2^30, 2^31 - 1], shift in [0, 62], relative error <= 2^-31', () => {
    for (const M of samples) {
      const { multiplier, shift } = toDyadic(M);
      expect(Number.isInteger(multiplier) && multiplier >= 2 ** 30 && multiplier < 2 ** 31, `M=${M}`).toBe(true);
      expect(Number.isInteger(shift) && shift >= 0 && shift <= 62, `M=${M}`).toBe(true);
      // multiplier / 2^shift is exact in a double (31-bit integer times a power of two)
      expect(Math.abs(multiplier / 2 ** shift - M) / M, `M=${M}`).toBeLessThanOrEqual(2 ** -31);
    }
  });

  it('documented values: 1 -> (2^30, 30), 0.75 -> (3 * 2^29, 31), a round-up to 2^31 renormalises', () => {
    expect(toDyadic(1)).toEqual({ multiplier: 2 ** 30, shift: 30 });
    expect(toDyadic(0.75)).toEqual({ multiplier: 3 * 2 ** 29, shift: 31 });
    expect(toDyadic(1 - 2 ** -40)).toEqual({ multiplier: 2 ** 30, shift: 30 });
  });

  it('equals the C++ definition bit for bit', () => {
    for (const M of samples) {
      const [m, e] = native.toDyadic(M);
      expect(toDyadic(M), `M=${M}`).toEqual({ multiplier: m, shift: e });
    }
  });

  it('refuses zero, negatives, NaN, infinities and out-of-range values with QuantizationError in both languages', () => {
    for (const bad of [0, -0, -1, NaN, Infinity, -Infinity, 2 ** 31, 2 ** -33]) {
      expect(() => toDyadic(bad), String(bad)).toThrow(QuantizationError);
      expect(() => native.toDyadic(bad), String(bad)).toThrow(/multiplier/);
    }
    expect(() => toDyadic(0)).toThrow(/multiplier must be a finite number > 0, got 0/);
    expect(() => toDyadic(2 ** 31)).toThrow(/outside the dyadic range \[2\^-32, 2\^31\)/);
    expect(() => toDyadic('1' as unknown as number)).toThrow(QuantizationError);
  });
});
