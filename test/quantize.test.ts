// toDyadic, requantize, quantize/dequantize. toDyadic: the TypeScript definition keeps its documented error bound and ranges, agrees bit for
// bit with the C++ definition, and refuses multipliers that have no dyadic form.
import { describe, expect, it } from 'vitest';
import {
  dequantize,
  QuantizationError,
  quantize,
  quantizeAsync,
  quantizeWeights,
  packInt4,
  unpackInt4,
  roundHalfEven,
  requantize,
  requantizeAsync,
  setIsa,
  ShapeError,
  supportedIsas,
  tensor,
  toDyadic,
} from '../lib/index.js';
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
    1,
    0.75,
    2 ** -32,
    2 ** 31 * 0.99,
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

// The exact int64 formula, in BigInt: clamp(((acc * m + round) >> e) + bias, lo, hi).
function requantizeOracle(acc: number, m: number, e: number, bias: number, lo: number, hi: number): number {
  const round = e > 0 ? 1n << BigInt(e - 1) : 0n;
  const v = ((BigInt(acc) * BigInt(m) + round) >> BigInt(e)) + BigInt(bias);
  return Number(v < BigInt(lo) ? BigInt(lo) : v > BigInt(hi) ? BigInt(hi) : v);
}

describe(`requantize (seed ${SEED})`, () => {
  const rng = rngFor(SEED, 'requantize');
  const extremeAcc = [-2147483648, -2147483647, -1, 0, 1, 2147483647, 1 << 24, -(1 << 24)];
  const extremeMult = [2147483647, -2147483647, 1, -1, 1 << 30, 12345];

  function randomCase(rows: number, channels: number) {
    const acc = tensor(
      's32',
      [rows, channels],
      Int32Array.from({ length: rows * channels }, () =>
        rng.bool(0.3) ? extremeAcc[rng.int(0, 7)] : rng.int(-100000, 100000),
      ),
    );
    const multiplier = Array.from({ length: channels }, () =>
      rng.bool(0.3) ? extremeMult[rng.int(0, 5)] : rng.int(1, 2147483647),
    );
    const shift = Array.from({ length: channels }, () =>
      rng.bool(0.2) ? [0, 1, 31, 32, 62][rng.int(0, 4)] : rng.int(20, 40),
    );
    const bias = Array.from({ length: channels }, () => rng.int(-300, 300));
    return { acc, multiplier, shift, bias };
  }

  it('s8, u8 and INT4 ranges equal the exact int64 formula, on every ISA, at the extremes', async () => {
    const isas = supportedIsas();
    try {
      for (const isa of isas) {
        setIsa(isa);
        for (const [rows, channels] of [
          [1, 1],
          [3, 7],
          [5, 33],
          [17, 64],
          [2, 129],
        ]) {
          for (const [dtype, clamp] of [
            ['s8', [-128, 127]],
            ['u8', [0, 255]],
            ['s8', [-8, 7]],
            ['u8', [0, 15]],
          ] as const) {
            const { acc, multiplier, shift, bias } = randomCase(rows, channels);
            const q = requantize(acc, { multiplier, shift, bias, dtype, clamp });
            expect(q.dtype).toBe(dtype);
            expect(q.shape).toEqual(acc.shape);
            const qa = await requantizeAsync(acc, { multiplier, shift, bias, dtype, clamp });
            expect(Array.from(qa.data)).toEqual(Array.from(q.data));
            for (let i = 0; i < acc.data.length; ++i) {
              const c = i % channels;
              const want = requantizeOracle(acc.data[i], multiplier[c], shift[c], bias[c], clamp[0], clamp[1]);
              if (q.data[i] !== want)
                expect.fail(
                  `${isa} ${dtype} [${clamp}] i=${i} acc=${acc.data[i]} m=${multiplier[c]} e=${shift[c]} b=${bias[c]}: got ${q.data[i]}, want ${want}`,
                );
            }
          }
        }
      }
    } finally {
      setIsa(isas[isas.length - 1]);
    }
  });

  it('rounds half up: 3/2 -> 2, -3/2 -> -1, 5/4 -> 1', () => {
    const acc = tensor('s32', [3, 1], Int32Array.from([3, -3, 5]));
    expect(Array.from(requantize(acc, { multiplier: [1], shift: [1] }).data.slice(0, 2))).toEqual([2, -1]);
    expect(requantize(tensor('s32', [1], Int32Array.from([5])), { multiplier: [1], shift: [2] }).data[0]).toBe(1);
  });

  it('bad parameters throw named errors before any work', () => {
    const acc = tensor('s32', [2, 3]);
    const ok = { multiplier: [1, 1, 1], shift: [0, 0, 0] };
    expect(() => requantize(acc, { ...ok, shift: [0, 63, 0] })).toThrow(
      /shift\[1\]: expected an integer in \[0, 62\], got 63/,
    );
    expect(() => requantize(acc, { ...ok, multiplier: [1, -2147483648, 1] })).toThrow(RangeError);
    expect(() => requantize(acc, { ...ok, multiplier: [1, 1] })).toThrow(ShapeError);
    expect(() => requantize(acc, { ...ok, dtype: 'u8', clamp: [-1, 10] })).toThrow(
      /clamp: expected integers 0 <= lo <= hi <= 255 for u8, got \[-1, 10\]/,
    );
    expect(() => requantize(tensor('f32', [2, 3]) as never, ok)).toThrow(TypeError);
    expect(() =>
      native.requantize(
        new Int32Array(5),
        2,
        3,
        { multiplier: new Int32Array(3), shift: new Uint8Array(3), lo: -128, hi: 127 },
        false,
      ),
    ).toThrow(/acc: 2 x 3 needs 6 values, got 5/);
  });
});

describe(`quantize / dequantize (seed ${SEED})`, () => {
  const rng = rngFor(SEED, 'quantize');

  it('equals clamp(roundHalfEven(x / scale) + zeroPoint) with float32 division, NaN -> zero point, Inf saturates', () => {
    const specials = [0, -0, 0.5, 1.5, -0.5, -2.5, 2.5, NaN, Infinity, -Infinity, 3.4e38, -3.4e38, 1e-45];
    for (const [dtype, clamp, zeroPoint] of [
      ['s8', [-128, 127], 0],
      ['u8', [0, 255], 128],
      ['s8', [-8, 7], -1],
      ['u8', [0, 15], 0],
    ] as const) {
      for (const scale of [1, 0.5, 0.0123, 37.5, 1e-30]) {
        const values = Float32Array.from({ length: 300 }, (_, i) =>
          i < specials.length ? specials[i] : (rng.float() - 0.5) * 400 * scale,
        );
        const q = quantize(tensor('f32', [3, 100], values), { scale, zeroPoint, dtype, clamp });
        expect(q.dtype).toBe(dtype);
        expect(q.shape).toEqual([3, 100]);
        for (let i = 0; i < values.length; ++i) {
          const v = Math.fround(values[i] / Math.fround(scale));
          const want = Number.isNaN(v)
            ? zeroPoint
            : Math.min(clamp[1], Math.max(clamp[0], roundHalfEven(v) + zeroPoint));
          if (q.data[i] !== want)
            expect.fail(`${dtype} scale=${scale} zp=${zeroPoint} x=${values[i]}: got ${q.data[i]}, want ${want}`);
        }
      }
    }
  });

  it('ties round to even: 0.5 -> 0, 1.5 -> 2, -0.5 -> 0, -2.5 -> -2', () => {
    const q = quantize(tensor('f32', [4], Float32Array.from([0.5, 1.5, -0.5, -2.5])), { scale: 1 });
    expect(Array.from(q.data)).toEqual([0, 2, 0, -2]);
  });

  it('dequantize inverts quantize within half a step, and async equals sync', async () => {
    const x = tensor(
      'f32',
      [64],
      Float32Array.from({ length: 64 }, () => (rng.float() - 0.5) * 10),
    );
    const q = quantize(x, { scale: 0.05, zeroPoint: 128, dtype: 'u8' });
    expect(Array.from((await quantizeAsync(x, { scale: 0.05, zeroPoint: 128, dtype: 'u8' })).data)).toEqual(
      Array.from(q.data),
    );
    const back = dequantize(q, { scale: 0.05, zeroPoint: 128 });
    expect(back.dtype).toBe('f32');
    for (let i = 0; i < 64; ++i) {
      expect(back.data[i]).toBe(Math.fround((q.data[i] - 128) * Math.fround(0.05)));
      expect(Math.abs(back.data[i] - x.data[i])).toBeLessThanOrEqual(0.025 + 1e-6);
    }
  });

  it('zero, negative and non-finite scales throw QuantizationError; bad zero points and clamps RangeError', () => {
    const x = tensor('f32', [2]);
    for (const scale of [0, -1, NaN, Infinity, 1e-50])
      expect(() => quantize(x, { scale }), String(scale)).toThrow(QuantizationError);
    expect(() => dequantize(tensor('s8', [2]), { scale: 0 })).toThrow(/scale: expected a finite number > 0/);
    expect(() => quantize(x, { scale: 1, zeroPoint: 200 })).toThrow(
      /zeroPoint: expected an integer in the clamp \[-128, 127\], got 200/,
    );
    expect(() => quantize(x, { scale: 1, dtype: 'u8', clamp: [0, 300] })).toThrow(RangeError);
    expect(() => dequantize(tensor('s8', [2]), { scale: 1, zeroPoint: 128 })).toThrow(RangeError);
    expect(() => native.quantize(new Float32Array(2), 0, 0, -128, 127, false)).toThrow(
      /scale must be a finite number > 0/,
    );
  });
});

describe(`weight quantization and INT4 packing (seed ${SEED})`, () => {
  const rng = rngFor(SEED, 'weights');

  it('roundHalfEven rounds ties to even', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6].map((v) => roundHalfEven(v) + 0)).toEqual([
      0, 2, 2, 0, -2, -2, 2, -3,
    ]);
  });

  for (const bits of [8, 7, 4] as const) {
    it(`${bits}-bit per-channel symmetric: scale = max|w| / qmax, values in [-qmax, qmax], error <= scale / 2`, () => {
      const qmax = bits === 8 ? 127 : bits === 7 ? 64 : 7;
      const o = 5,
        k = 3 * 3 * 7;
      const data = Float32Array.from({ length: o * k }, (_, i) =>
        Math.floor(i / k) === 3 ? 0 : (rng.float() - 0.5) * (1 + Math.floor(i / k)),
      );
      const { weights, scales } = quantizeWeights(tensor('f32', [o, 3, 3, 7], data), { bits });
      expect(weights.shape).toEqual([o, 3, 3, 7]);
      for (let c = 0; c < o; ++c) {
        let max = 0;
        for (let i = c * k; i < (c + 1) * k; ++i) max = Math.max(max, Math.abs(data[i]));
        expect(scales[c]).toBe(max > 0 ? Math.fround(max / qmax) : 1);
        for (let i = c * k; i < (c + 1) * k; ++i) {
          expect(Math.abs(weights.data[i])).toBeLessThanOrEqual(qmax);
          expect(weights.data[i]).toBe(Math.min(qmax, Math.max(-qmax, roundHalfEven(data[i] / scales[c]))));
          expect(Math.abs(weights.data[i] * scales[c] - data[i])).toBeLessThanOrEqual(scales[c] / 2 + 1e-7);
        }
      }
      expect(Array.from(weights.data.slice(3 * k, 4 * k)).every((v) => v === 0)).toBe(true); // the all-zero channel
    });
  }

  it('non-finite weights throw QuantizationError naming the channel', () => {
    const data = new Float32Array(8);
    data[6] = NaN;
    expect(() => quantizeWeights(tensor('f32', [2, 4], data), { bits: 8 })).toThrow(
      /channel 1 holds NaN at flat index 6/,
    );
    expect(() => quantizeWeights(tensor('f32', [2, 4], data), { bits: 2 as 8 })).toThrow(RangeError);
  });

  it('INT4 packs two per byte, low nibble first, odd rows end with a zero nibble, and unpacks back', () => {
    const packed = packInt4(tensor('s8', [1, 3], Int8Array.from([1, -1, 7])));
    expect(packed.shape).toEqual([1, 2]);
    expect(Array.from(packed.data)).toEqual([0xf1, 0x07]);
    for (const k of [1, 2, 7, 8, 33]) {
      const values = tensor(
        's8',
        [3, k],
        Int8Array.from({ length: 3 * k }, () => rng.int(-8, 7)),
      );
      const p = packInt4(values);
      expect(p.data.length).toBe(3 * Math.ceil(k / 2)); // half the bytes of INT8
      expect(Array.from(unpackInt4(p, k).data)).toEqual(Array.from(values.data));
    }
    expect(() => packInt4(tensor('s8', [2], Int8Array.from([0, 8])))).toThrow(
      /expected an INT4 value in \[-8, 7\], got 8/,
    );
    expect(() => unpackInt4(packed, 5)).toThrow(ShapeError);
  });
});
