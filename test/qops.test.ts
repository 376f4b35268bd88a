/**
 * Integer element-wise and pooling operators (qadd, qrelu/qclamp, qmaxpool2d, qavgpool2d,
 * qglobalavgpool, qconcat) against exact oracles written here from the formulas: the rescale
 * rs(v, m, e) = (v * m + 2^(e-1)) >> e in BigInt, (m, e) from toDyadic of the documented ratio.
 * Random shapes with awkward channel counts and 1x1 images, both dtypes, INT4 clamps, extreme
 * values and zero points, shifts near 0 and 62; async equals sync; every bad argument is a named
 * error naming it. The operators are plain C++ with no per-ISA dispatch, so one ISA is enough;
 * thread counts must not change results.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  QuantizationError,
  ShapeError,
  qadd,
  qaddAsync,
  qavgpool2d,
  qavgpool2dAsync,
  qclamp,
  qclampAsync,
  qconcat,
  qconcatAsync,
  qglobalavgpool,
  qglobalavgpoolAsync,
  qmaxpool2d,
  qmaxpool2dAsync,
  qrelu,
  qreluAsync,
  setThreads,
  tensor,
  threads,
  toDyadic,
  type Tensor,
} from '../lib/index.js';
import { native } from '../lib/native.js';
import { fileSeed, rngFor, type Rng } from './helpers/rng.js';

const SEED = fileSeed('qops');
const ORIGINAL_THREADS = threads();
afterAll(() => setThreads(ORIGINAL_THREADS));

type Q8 = 's8' | 'u8';
type Pads = [number, number, number, number];
const CHANNELS = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 100] as const;

// ---- oracle -----------------------------------------------------------------------------------

const range = (dtype: Q8): [number, number] => (dtype === 's8' ? [-128, 127] : [0, 255]);

/** rs(v, m, e) in BigInt, from the definition. */
function rs(v: bigint, m: number, e: number): bigint {
  return (v * BigInt(m) + (e > 0 ? 1n << BigInt(e - 1) : 0n)) >> BigInt(e);
}

function clampBig(v: bigint, lo: number, hi: number): number {
  return v < BigInt(lo) ? lo : v > BigInt(hi) ? hi : Number(v);
}

function rescale(v: number, ratio: number): bigint {
  const { multiplier, shift } = toDyadic(ratio);
  return rs(BigInt(v), multiplier, shift);
}

/** Random 8-bit data: uniform, with the dtype's ends, 0 and the zero point over-represented. */
function randomData(rng: Rng, dtype: Q8, n: number, zeroPoint = 0): Int8Array | Uint8Array {
  const [min, max] = range(dtype);
  const out = dtype === 's8' ? new Int8Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; ++i) {
    const r = rng.float();
    out[i] = r < 0.05 ? min : r < 0.1 ? max : r < 0.13 ? 0 : r < 0.16 ? zeroPoint : rng.int(min, max);
  }
  return out;
}

function randomTensor(rng: Rng, dtype: Q8, shape: number[], zeroPoint = 0): Tensor<Q8> {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(dtype, shape, randomData(rng, dtype, n, zeroPoint) as never);
}

/** A zero point of the dtype: often an end or 0. */
function randomZeroPoint(rng: Rng, dtype: Q8, lo = range(dtype)[0], hi = range(dtype)[1]): number {
  const r = rng.float();
  return r < 0.2 ? lo : r < 0.4 ? hi : r < 0.6 ? Math.min(hi, Math.max(lo, 0)) : rng.int(lo, hi);
}

/** A scale log-uniform over [2^-12, 2^4], as float32. */
const randomScale = (rng: Rng) => Math.fround(2 ** (rng.float() * 16 - 12));

/** An output clamp: the dtype's range, INT4, a ReLU-like [zp, hi] or random. */
function randomClamp(rng: Rng, dtype: Q8): [number, number] {
  const [min, max] = range(dtype);
  switch (rng.int(0, 3)) {
    case 0:
      return [min, max];
    case 1:
      return dtype === 's8' ? [-8, 7] : [0, 15];
    case 2: {
      const a = rng.int(min, max);
      const b = rng.int(min, max);
      return [Math.min(a, b), Math.max(a, b)];
    }
    default:
      return [rng.int(min, Math.floor((min + max) / 2)), max];
  }
}

function randomOutput(rng: Rng, fallback: Q8) {
  const dtype: Q8 = rng.bool(0.5) ? fallback : rng.pick(['s8', 'u8'] as const);
  const clamp = randomClamp(rng, dtype);
  return { scale: randomScale(rng), zeroPoint: randomZeroPoint(rng, dtype, clamp[0], clamp[1]), dtype, clamp };
}

function expectSame(
  actual: Tensor,
  expected: ArrayLike<number>,
  shape: readonly number[],
  dtype: Q8,
  ctx: string,
): void {
  expect(actual.dtype, ctx).toBe(dtype);
  expect([...actual.shape], ctx).toEqual([...shape]);
  expect(actual.data.length, ctx).toBe(expected.length);
  for (let i = 0; i < expected.length; ++i)
    if (actual.data[i] !== expected[i])
      expect(`${ctx}: at flat index ${i} got ${actual.data[i]}`).toBe(`${ctx}: at flat index ${i} got ${expected[i]}`);
}

function randomShape(rng: Rng, maxRank = 4): number[] {
  const rank = rng.int(1, maxRank);
  const shape = Array.from({ length: rank }, () => (rng.bool(0.3) ? 1 : rng.int(1, 6)));
  shape[rank - 1] = rng.pick(CHANNELS);
  return shape;
}

const describeParams = (o: object) => JSON.stringify(o);

// ---- qadd -------------------------------------------------------------------------------------

function qaddOracle(
  a: Tensor<Q8>,
  b: Tensor<Q8>,
  pa: { scale: number; zeroPoint: number },
  pb: { scale: number; zeroPoint: number },
  out: { scale: number; zeroPoint: number; clamp: [number, number] },
): number[] {
  const { multiplier: ma, shift: ea } = toDyadic(pa.scale / out.scale);
  const { multiplier: mb, shift: eb } = toDyadic(pb.scale / out.scale);
  const r: number[] = [];
  for (let i = 0; i < a.data.length; ++i) {
    const v =
      rs(BigInt(a.data[i] - pa.zeroPoint), ma, ea) +
      rs(BigInt(b.data[i] - pb.zeroPoint), mb, eb) +
      BigInt(out.zeroPoint);
    r.push(clampBig(v, out.clamp[0], out.clamp[1]));
  }
  return r;
}

describe(`qadd (seed ${SEED})`, () => {
  it('equals the oracle on random shapes, dtypes, zero points, scales and clamps', async () => {
    const rng = rngFor(SEED, 'qadd');
    for (let t = 0; t < 80; ++t) {
      const shape = randomShape(rng);
      const da = rng.pick(['s8', 'u8'] as const),
        db = rng.pick(['s8', 'u8'] as const);
      const pa = { scale: randomScale(rng), zeroPoint: randomZeroPoint(rng, da) };
      const pb = { scale: randomScale(rng), zeroPoint: randomZeroPoint(rng, db) };
      const a = randomTensor(rng, da, shape, pa.zeroPoint),
        b = randomTensor(rng, db, shape, pb.zeroPoint);
      const output = randomOutput(rng, da);
      const ctx = `qadd ${da}${JSON.stringify(shape)} + ${db} ${describeParams({ pa, pb, output })}`;
      const y = qadd(a, b, { a: pa, b: pb, output });
      expectSame(y, qaddOracle(a, b, pa, pb, output), shape, output.dtype, ctx);
      if (t % 8 === 0)
        expectSame(await qaddAsync(a, b, { a: pa, b: pb, output }), y.data, shape, output.dtype, `${ctx} async`);
    }
  });

  it("shifts near 0 and 62, ties rounding half up, the default output dtype (a's), an empty tensor", () => {
    const rng = rngFor(SEED, 'qadd-edges');
    const out = { scale: 1, zeroPoint: 0, clamp: [-128, 127] as [number, number] };
    const cases: [number, number, number][] = [
      [2 ** 30, 1, 0], // a: shift 0
      [2 ** 29.5, 0.5, 1], // a: shift 1, b: a pure half (ties)
      [2 ** -32, 2 ** -31.5, 62], // a: shift 62
      [0.25, 0.75, 32],
    ];
    for (const [ra, rb, shift] of cases) {
      expect(toDyadic(ra).shift).toBe(shift);
      for (const [da, db] of [
        ['s8', 'u8'],
        ['u8', 's8'],
      ] as const) {
        const pa = { scale: ra, zeroPoint: da === 's8' ? 0 : 255 },
          pb = { scale: rb, zeroPoint: db === 's8' ? -128 : 7 };
        const a = randomTensor(rng, da, [3, 67], pa.zeroPoint),
          b = randomTensor(rng, db, [3, 67], pb.zeroPoint);
        const y = qadd(a, b, { a: pa, b: pb, output: { scale: 1 } });
        expectSame(
          y,
          qaddOracle(a, b, pa, pb, { ...out, clamp: range(da) }),
          [3, 67],
          da,
          `ratios ${ra}, ${rb} ${da}+${db}`,
        );
      }
    }
    // every pair of byte values, ratio 0.5 each (rs rounds half up: -1 -> 0, 1 -> 1, -3 -> -1)
    const a = tensor('s8', [256, 256]),
      b = tensor('s8', [256, 256]);
    for (let i = 0; i < 256; ++i)
      for (let j = 0; j < 256; ++j) ((a.data[i * 256 + j] = i - 128), (b.data[i * 256 + j] = j - 128));
    const half = { scale: 0.5 };
    const y = qadd(a, b, { a: half, b: half, output: { scale: 1, dtype: 's8' } });
    expectSame(
      y,
      qaddOracle(a, b, { scale: 0.5, zeroPoint: 0 }, { scale: 0.5, zeroPoint: 0 }, out),
      [256, 256],
      's8',
      'all pairs',
    );
    expect(y.data[127 * 256 + 128]).toBe(0); // -1/2 + 0 -> 0
    expect(y.data[129 * 256 + 128]).toBe(1); // 1/2 -> 1
    expect(qadd(tensor('u8', [0, 3]), tensor('s8', [0, 3]), { a: half, b: half, output: { scale: 1 } }).shape).toEqual([
      0, 3,
    ]);
  });

  it('large tensors (many parallel blocks) equal the oracle, at 1 and 2 threads', () => {
    const rng = rngFor(SEED, 'qadd-large');
    const shape = [1, 97, 89, 33];
    const pa = { scale: 0.02, zeroPoint: -3 },
      pb = { scale: 0.035, zeroPoint: 128 };
    const a = randomTensor(rng, 's8', shape),
      b = randomTensor(rng, 'u8', shape);
    const output = { scale: 0.04, zeroPoint: 0, dtype: 'u8' as const, clamp: [0, 255] as [number, number] };
    const expected = qaddOracle(a, b, pa, pb, output);
    for (const n of [1, 2]) {
      setThreads(n);
      expectSame(qadd(a, b, { a: pa, b: pb, output }), expected, shape, 'u8', `threads ${n}`);
    }
    setThreads(ORIGINAL_THREADS);
  });
});

// ---- qrelu / qclamp ---------------------------------------------------------------------------

describe(`qrelu and qclamp (seed ${SEED})`, () => {
  it('qrelu = clamp(x, max(zeroPoint, lo), hi); qclamp = clamp(x, lo, hi); same dtype; async equals sync', async () => {
    const rng = rngFor(SEED, 'qrelu');
    for (let t = 0; t < 60; ++t) {
      const dtype = rng.pick(['s8', 'u8'] as const);
      const shape = randomShape(rng);
      const clamp = randomClamp(rng, dtype);
      const zeroPoint = randomZeroPoint(rng, dtype, range(dtype)[0], clamp[1]);
      const x = randomTensor(rng, dtype, shape, zeroPoint);
      const lo = Math.max(zeroPoint, clamp[0]);
      const ctx = `${dtype}${JSON.stringify(shape)} zp ${zeroPoint} clamp ${clamp}`;
      const y = qrelu(x, { zeroPoint, clamp });
      expectSame(
        y,
        Array.from(x.data, (v) => Math.min(clamp[1], Math.max(lo, v))),
        shape,
        dtype,
        `qrelu ${ctx}`,
      );
      expectSame(await qreluAsync(x, { zeroPoint, clamp }), y.data, shape, dtype, `qreluAsync ${ctx}`);
      const z = qclamp(x, clamp);
      expectSame(
        z,
        Array.from(x.data, (v) => Math.min(clamp[1], Math.max(clamp[0], v))),
        shape,
        dtype,
        `qclamp ${ctx}`,
      );
      expectSame(await qclampAsync(x, clamp), z.data, shape, dtype, `qclampAsync ${ctx}`);
    }
    // defaults: zero point 0, the dtype's range
    const x = tensor('s8', [4], new Int8Array([-128, -1, 0, 127]));
    expect([...qrelu(x).data]).toEqual([0, 0, 0, 127]);
    expect([...qrelu(tensor('u8', [3], new Uint8Array([0, 9, 255])), { zeroPoint: 10, clamp: [0, 15] }).data]).toEqual([
      10, 10, 15,
    ]);
  });
});

// ---- pooling ----------------------------------------------------------------------------------

interface PoolCase {
  shape: [number, number, number, number];
  kernel: [number, number];
  strides: [number, number];
  pads: Pads;
  /** what is passed as options.padding */
  padding: 'valid' | 'same' | Pads;
}

function samePadsOracle(size: number, kernel: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max(0, (out - 1) * stride + kernel - size);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

function randomPoolCase(rng: Rng): PoolCase {
  for (;;) {
    const n = rng.bool(0.2) ? 2 : 1;
    const h = rng.bool(0.2) ? 1 : rng.int(1, 11);
    const w = rng.bool(0.7) ? h : rng.int(1, 11);
    const c = rng.pick(CHANNELS);
    const kh = rng.int(1, 3),
      kw = rng.bool(0.7) ? kh : rng.int(1, 3);
    const strides: [number, number] = [rng.int(1, 2), rng.int(1, 2)];
    const kind = rng.pick(['valid', 'same', 'explicit'] as const);
    let pads: Pads;
    if (kind === 'valid') pads = [0, 0, 0, 0];
    else if (kind === 'same') {
      const [t, b] = samePadsOracle(h, kh, strides[0]);
      const [l, r] = samePadsOracle(w, kw, strides[1]);
      pads = [t, l, b, r];
    } else pads = [rng.int(0, kh - 1), rng.int(0, kw - 1), rng.int(0, kh - 1), rng.int(0, kw - 1)];
    if (h + pads[0] + pads[2] < kh || w + pads[1] + pads[3] < kw) continue;
    // SAME pads may reach the kernel size on tiny images; the operators need each pad < kernel.
    if (pads[0] >= kh || pads[2] >= kh || pads[1] >= kw || pads[3] >= kw) continue;
    return { shape: [n, h, w, c], kernel: [kh, kw], strides, pads, padding: kind === 'explicit' ? pads : kind };
  }
}

function poolOut(pc: PoolCase): [number, number] {
  const [, h, w] = pc.shape;
  return [
    Math.floor((h + pc.pads[0] + pc.pads[2] - pc.kernel[0]) / pc.strides[0]) + 1,
    Math.floor((w + pc.pads[1] + pc.pads[3] - pc.kernel[1]) / pc.strides[1]) + 1,
  ];
}

/** Visits each output value with the in-image taps of its window. */
function forEachWindow(pc: PoolCase, x: ArrayLike<number>, fn: (taps: number[]) => number): number[] {
  const [n, h, w, c] = pc.shape;
  const [oh, ow] = poolOut(pc);
  const out: number[] = [];
  for (let b = 0; b < n; ++b)
    for (let yy = 0; yy < oh; ++yy)
      for (let xx = 0; xx < ow; ++xx)
        for (let ch = 0; ch < c; ++ch) {
          const taps: number[] = [];
          for (let ky = 0; ky < pc.kernel[0]; ++ky)
            for (let kx = 0; kx < pc.kernel[1]; ++kx) {
              const iy = yy * pc.strides[0] + ky - pc.pads[0],
                ix = xx * pc.strides[1] + kx - pc.pads[1];
              if (iy >= 0 && ix >= 0 && iy < h && ix < w) taps.push(x[((b * h + iy) * w + ix) * c + ch]);
            }
          if (taps.length === 0) throw new Error('oracle: a window lies entirely in the padding');
          out.push(fn(taps));
        }
  return out;
}

function avgOracle(
  pc: PoolCase,
  x: ArrayLike<number>,
  include: boolean,
  pi: { scale: number; zeroPoint: number },
  po: { scale: number; zeroPoint: number; clamp: [number, number] },
): number[] {
  return forEachWindow(pc, x, (taps) => {
    const n = include ? pc.kernel[0] * pc.kernel[1] : taps.length;
    const sum = taps.reduce((s, v) => s + (v - pi.zeroPoint), 0);
    return clampBig(rescale(sum, pi.scale / (po.scale * n)) + BigInt(po.zeroPoint), po.clamp[0], po.clamp[1]);
  });
}

const describePool = (pc: PoolCase) =>
  `x[${pc.shape}] kernel ${pc.kernel} strides ${pc.strides} pads [${pc.pads}] (${Array.isArray(pc.padding) ? 'explicit' : pc.padding})`;

describe(`qmaxpool2d (seed ${SEED})`, () => {
  it('equals the max over the in-image taps (padding never wins), same dtype; async equals sync', async () => {
    const rng = rngFor(SEED, 'qmaxpool2d');
    for (let t = 0; t < 60; ++t) {
      const pc = randomPoolCase(rng);
      const dtype = rng.pick(['s8', 'u8'] as const);
      const x = randomTensor(rng, dtype, pc.shape);
      const ctx = `${dtype} ${describePool(pc)}`;
      const opts = { kernel: pc.kernel, strides: pc.strides, padding: pc.padding };
      const y = qmaxpool2d(x, opts);
      expectSame(
        y,
        forEachWindow(pc, x.data, (taps) => Math.max(...taps)),
        [pc.shape[0], ...poolOut(pc), pc.shape[3]],
        dtype,
        ctx,
      );
      if (t % 6 === 0) expectSame(await qmaxpool2dAsync(x, opts), y.data, y.shape, dtype, `${ctx} async`);
    }
  });

  it('all -128 (s8) / all 0 (u8) inputs stay there under padding; strides default to the kernel', () => {
    const x = tensor('s8', [1, 3, 3, 5], new Int8Array(45).fill(-128));
    const y = qmaxpool2d(x, { kernel: 3, strides: 1, padding: 'same' });
    expect([...y.shape]).toEqual([1, 3, 3, 5]);
    expect(y.data.every((v) => v === -128)).toBe(true);
    const u = qmaxpool2d(
      tensor(
        'u8',
        [1, 4, 4, 1],
        new Uint8Array(16).map((_, i) => i),
      ),
      { kernel: 2 },
    );
    expect([...u.shape]).toEqual([1, 2, 2, 1]);
    expect([...u.data]).toEqual([5, 7, 13, 15]);
  });
});

describe(`qavgpool2d (seed ${SEED})`, () => {
  it('equals the oracle (dyadic division by the in-image or full tap count), random params and clamps; async equals sync', async () => {
    const rng = rngFor(SEED, 'qavgpool2d');
    for (let t = 0; t < 70; ++t) {
      const pc = randomPoolCase(rng);
      const dtype = rng.pick(['s8', 'u8'] as const);
      const include = rng.bool();
      const pi = { scale: randomScale(rng), zeroPoint: randomZeroPoint(rng, dtype) };
      const x = randomTensor(rng, dtype, pc.shape, pi.zeroPoint);
      const sameOut = rng.bool(0.25);
      const po = sameOut
        ? { scale: pi.scale, zeroPoint: pi.zeroPoint, dtype, clamp: range(dtype) }
        : randomOutput(rng, dtype);
      const opts = {
        kernel: pc.kernel,
        strides: pc.strides,
        padding: pc.padding,
        countIncludePad: include,
        input: pi,
        ...(sameOut ? {} : { output: po }),
      };
      const ctx = `${dtype} ${describePool(pc)} include ${include} ${describeParams({ pi, po })}`;
      const y = qavgpool2d(x, opts);
      expectSame(y, avgOracle(pc, x.data, include, pi, po), [pc.shape[0], ...poolOut(pc), pc.shape[3]], po.dtype, ctx);
      if (t % 6 === 0) expectSame(await qavgpool2dAsync(x, opts), y.data, y.shape, po.dtype, `${ctx} async`);
    }
  });

  it('1100 channels (several channel blocks, the last partial) at 1 and 2 threads', () => {
    const rng = rngFor(SEED, 'qavgpool2d-wide');
    const pc: PoolCase = {
      shape: [1, 5, 6, 1100],
      kernel: [3, 3],
      strides: [2, 2],
      pads: [1, 1, 1, 1],
      padding: [1, 1, 1, 1],
    };
    const pi = { scale: 0.03, zeroPoint: -5 };
    const po = { scale: 0.02, zeroPoint: 4, dtype: 's8' as const, clamp: [-128, 127] as [number, number] };
    const x = randomTensor(rng, 's8', pc.shape, pi.zeroPoint);
    const expected = avgOracle(pc, x.data, false, pi, po);
    for (const n of [1, 2]) {
      setThreads(n);
      expectSame(
        qavgpool2d(x, { kernel: 3, strides: 2, padding: pc.padding, input: pi, output: po }),
        expected,
        [1, 3, 3, 1100],
        's8',
        `threads ${n}`,
      );
    }
    setThreads(ORIGINAL_THREADS);
  });

  it('known values: the mean rounds half up; countIncludePad divides by 9 at the corners', () => {
    // 2x2 image, 3x3 kernel, SAME: every window holds all 4 pixels
    const x = tensor('s8', [1, 2, 2, 1], new Int8Array([1, 2, 3, 4]));
    const p = { kernel: 3, strides: 1, padding: 'same' as const, input: { scale: 1 } };
    expect([...qavgpool2d(x, p).data]).toEqual([3, 3, 3, 3]); // 10 / 4 = 2.5 -> 3
    expect([...qavgpool2d(x, { ...p, countIncludePad: true }).data]).toEqual([1, 1, 1, 1]); // 10 / 9
    const neg = tensor('s8', [1, 2, 2, 1], new Int8Array([-1, -2, -3, -4]));
    expect([...qavgpool2d(neg, p).data]).toEqual([-2, -2, -2, -2]); // -2.5 -> -2 (half up)
  });

  it('extreme values and zero points at the ends, large windows, shifts near 62 and near 0', () => {
    const rng = rngFor(SEED, 'qavgpool2d-edges');
    const pc: PoolCase = {
      shape: [1, 9, 7, 19],
      kernel: [5, 7],
      strides: [2, 1],
      pads: [2, 3, 2, 3],
      padding: [2, 3, 2, 3],
    };
    const cases = [
      {
        dtype: 'u8' as const,
        pi: { scale: 1, zeroPoint: 0 },
        po: { scale: 1, zeroPoint: 255, dtype: 'u8' as const, clamp: [0, 255] as [number, number] },
      },
      {
        dtype: 'u8' as const,
        pi: { scale: 1, zeroPoint: 255 },
        po: { scale: 1, zeroPoint: 0, dtype: 's8' as const, clamp: [-128, 127] as [number, number] },
      },
      {
        dtype: 's8' as const,
        pi: { scale: 1, zeroPoint: -128 },
        po: { scale: 1, zeroPoint: 7, dtype: 's8' as const, clamp: [-8, 7] as [number, number] },
      },
      {
        dtype: 's8' as const,
        pi: { scale: 1, zeroPoint: 127 },
        po: { scale: 1, zeroPoint: 0, dtype: 'u8' as const, clamp: [0, 15] as [number, number] },
      },
      // input.scale / (output.scale * n) near 2^-32 (shift 62) and near 2^30 (shift 0)
      {
        dtype: 's8' as const,
        pi: { scale: 2 ** -26, zeroPoint: 0 },
        po: { scale: 1, zeroPoint: 0, dtype: 's8' as const, clamp: [-128, 127] as [number, number] },
      },
      {
        dtype: 'u8' as const,
        pi: { scale: 2 ** 31 * 12 * 0.99, zeroPoint: 9 },
        po: { scale: 1, zeroPoint: 3, dtype: 'u8' as const, clamp: [0, 255] as [number, number] },
      },
    ];
    for (const { dtype, pi, po } of cases)
      for (const include of [false, true])
        for (const fill of ['random', 'min', 'max'] as const) {
          const x = randomTensor(rng, dtype, pc.shape, pi.zeroPoint);
          if (fill !== 'random') x.data.fill(range(dtype)[fill === 'min' ? 0 : 1]);
          const ctx = `${dtype} ${fill} include ${include} ${describeParams({ pi, po })}`;
          const y = qavgpool2d(x, {
            kernel: pc.kernel,
            strides: pc.strides,
            padding: pc.padding,
            countIncludePad: include,
            input: pi,
            output: po,
          });
          expectSame(y, avgOracle(pc, x.data, include, pi, po), [1, 5, 7, 19], po.dtype, ctx);
        }
    // windows of 35 taps (all) and of 12 (a corner without padding) reach the ends of the shift range
    expect(toDyadic(2 ** -26 / 35).shift).toBe(62);
    expect(toDyadic((2 ** 31 * 12 * 0.99) / 12).shift).toBe(0);
  });
});

describe(`qglobalavgpool (seed ${SEED})`, () => {
  it('equals the oracle over the whole image (1x1 images included), output [N, 1, 1, C]; async equals sync', async () => {
    const rng = rngFor(SEED, 'qglobalavgpool');
    for (let t = 0; t < 40; ++t) {
      const dtype = rng.pick(['s8', 'u8'] as const);
      const h = rng.bool(0.3) ? 1 : rng.int(1, 15),
        w = rng.bool(0.3) ? 1 : rng.int(1, 15);
      const shape: [number, number, number, number] = [rng.int(1, 3), h, w, rng.pick(CHANNELS)];
      const pi = { scale: randomScale(rng), zeroPoint: randomZeroPoint(rng, dtype) };
      const x = randomTensor(rng, dtype, shape, pi.zeroPoint);
      const po = randomOutput(rng, dtype);
      const pc: PoolCase = { shape, kernel: [h, w], strides: [1, 1], pads: [0, 0, 0, 0], padding: 'valid' };
      const ctx = `${dtype}[${shape}] ${describeParams({ pi, po })}`;
      const y = qglobalavgpool(x, { input: pi, output: po });
      expectSame(y, avgOracle(pc, x.data, false, pi, po), [shape[0], 1, 1, shape[3]], po.dtype, ctx);
      // the same as qavgpool2d with the whole image as its kernel
      expectSame(
        qavgpool2d(x, { kernel: [h, w], input: pi, output: po }),
        y.data,
        y.shape,
        po.dtype,
        `${ctx} vs qavgpool2d`,
      );
      if (t % 5 === 0)
        expectSame(await qglobalavgpoolAsync(x, { input: pi, output: po }), y.data, y.shape, po.dtype, `${ctx} async`);
    }
  });

  it("a 56x56x200 image at 1 and 2 threads; the default output is the input's parameters", () => {
    const rng = rngFor(SEED, 'qglobalavgpool-large');
    const pi = { scale: 0.05, zeroPoint: 17 };
    const x = randomTensor(rng, 'u8', [1, 56, 56, 200], pi.zeroPoint);
    const pc: PoolCase = {
      shape: [1, 56, 56, 200],
      kernel: [56, 56],
      strides: [1, 1],
      pads: [0, 0, 0, 0],
      padding: 'valid',
    };
    const expected = avgOracle(pc, x.data, false, pi, { ...pi, clamp: [0, 255] });
    for (const n of [1, 2]) {
      setThreads(n);
      expectSame(qglobalavgpool(x, { input: pi }), expected, [1, 1, 1, 200], 'u8', `threads ${n}`);
    }
    setThreads(ORIGINAL_THREADS);
  });
});

// ---- qconcat ----------------------------------------------------------------------------------

describe(`qconcat (seed ${SEED})`, () => {
  it('equals the oracle along every axis (negative too), mixed dtypes, identical params copy; async equals sync', async () => {
    const rng = rngFor(SEED, 'qconcat');
    for (let t = 0; t < 60; ++t) {
      const base = randomShape(rng);
      const rank = base.length;
      const axis = rng.int(-rank, rank - 1);
      const ax = axis < 0 ? axis + rank : axis;
      const count = rng.int(1, 4);
      const outDtype = rng.pick(['s8', 'u8'] as const);
      const output = { scale: randomScale(rng), zeroPoint: randomZeroPoint(rng, outDtype), dtype: outDtype };
      const inputs: Tensor<Q8>[] = [];
      const params: { scale: number; zeroPoint: number }[] = [];
      for (let i = 0; i < count; ++i) {
        const same = rng.bool(0.3);
        const dtype = same ? outDtype : rng.pick(['s8', 'u8'] as const);
        const p = same
          ? { scale: output.scale, zeroPoint: output.zeroPoint }
          : { scale: randomScale(rng), zeroPoint: randomZeroPoint(rng, dtype) };
        const shape = [...base];
        shape[ax] = rng.bool(0.15) ? 0 : rng.int(1, 5);
        inputs.push(randomTensor(rng, dtype, shape, p.zeroPoint));
        params.push(p);
      }
      // oracle: walk the output in order
      const outer = base.slice(0, ax).reduce((a, b) => a * b, 1);
      const inner = base.slice(ax + 1).reduce((a, b) => a * b, 1);
      const expected: number[] = [];
      const [lo, hi] = range(outDtype);
      for (let o = 0; o < outer; ++o)
        inputs.forEach((x, i) => {
          const len = x.shape[ax] * inner;
          for (let k = 0; k < len; ++k)
            expected.push(
              clampBig(
                rescale(x.data[o * len + k] - params[i].zeroPoint, params[i].scale / output.scale) +
                  BigInt(output.zeroPoint),
                lo,
                hi,
              ),
            );
        });
      const shape = [...base];
      shape[ax] = inputs.reduce((s, x) => s + x.shape[ax], 0);
      const ctx = `${inputs.map((x) => `${x.dtype}[${x.shape}]`).join(' ')} axis ${axis} ${describeParams({ params, output })}`;
      const y = qconcat(inputs, { axis, inputs: params, output });
      expectSame(y, expected, shape, outDtype, ctx);
      if (t % 6 === 0)
        expectSame(
          await qconcatAsync(inputs, { axis, inputs: params, output }),
          y.data,
          shape,
          outDtype,
          `${ctx} async`,
        );
    }
  });

  it("defaults: the last axis, the first input's dtype; identical params are a plain copy", () => {
    const rng = rngFor(SEED, 'qconcat-defaults');
    const a = randomTensor(rng, 'u8', [2, 3, 3, 5]),
      b = randomTensor(rng, 'u8', [2, 3, 3, 11]);
    const p = { scale: 0.1, zeroPoint: 128 };
    const y = qconcat([a, b], { inputs: [p, p], output: p });
    expect(y.dtype).toBe('u8');
    expect([...y.shape]).toEqual([2, 3, 3, 16]);
    for (let px = 0; px < 18; ++px) {
      expect([...y.data.subarray(px * 16, px * 16 + 5)]).toEqual([...a.data.subarray(px * 5, px * 5 + 5)]);
      expect([...y.data.subarray(px * 16 + 5, px * 16 + 16)]).toEqual([...b.data.subarray(px * 11, px * 11 + 11)]);
    }
  });
});

// ---- async inputs are private copies ------------------------------------------------------------

describe('async forms work on private copies of their inputs', () => {
  it('mutating or detaching the inputs right after the call does not change the result', async () => {
    const rng = rngFor(SEED, 'async-copies');
    const x = randomTensor(rng, 's8', [2, 9, 9, 33]);
    const y = randomTensor(rng, 'u8', [2, 9, 9, 33]);
    const opts = { a: { scale: 0.1 }, b: { scale: 0.2, zeroPoint: 100 }, output: { scale: 0.15 } };
    const pool = { kernel: 3, strides: 2, padding: 'same' as const, input: { scale: 0.1 } };
    const cat = { inputs: [{ scale: 0.1 }, { scale: 0.2, zeroPoint: 100 }], output: { scale: 0.15 } };
    const want = [
      qadd(x, y, opts),
      qavgpool2d(x, pool),
      qmaxpool2d(x, pool),
      qglobalavgpool(x, pool),
      qconcat([x, y], cat),
      qrelu(x),
    ];
    const xs = tensor('s8', x.shape, x.data.slice() as Int8Array),
      ys = tensor('u8', y.shape, y.data.slice() as Uint8Array);
    const pending = [
      qaddAsync(xs, ys, opts),
      qavgpool2dAsync(xs, pool),
      qmaxpool2dAsync(xs, pool),
      qglobalavgpoolAsync(xs, pool),
      qconcatAsync([xs, ys], cat),
      qreluAsync(xs),
    ];
    xs.data.fill(5);
    ys.data.fill(5);
    structuredClone(xs.data.buffer, { transfer: [xs.data.buffer as ArrayBuffer] });
    const got = await Promise.all(pending);
    got.forEach((g, i) => expectSame(g, want[i].data, want[i].shape, want[i].dtype as Q8, `op ${i}`));
  });
});

// ---- errors -----------------------------------------------------------------------------------

type ErrorClass = new (...args: any[]) => Error;
type Row = [name: string, fn: () => unknown, cls: ErrorClass, message: RegExp];

const detach = <T extends Tensor>(t: T): T => {
  structuredClone(t.data.buffer, { transfer: [t.data.buffer as ArrayBuffer] });
  return t;
};
const s8 = (shape = [1, 4, 4, 3]) => tensor('s8', shape);
const u8 = (shape = [1, 4, 4, 3]) => tensor('u8', shape);
const q = { scale: 0.5 };
const addOpts = { a: q, b: q, output: q };
const avg = { kernel: 2, input: q };

const rows: Row[] = [
  // dtypes
  [
    'f32 a into qadd',
    () => qadd(tensor('f32', [4]) as any, s8([4]), addOpts),
    TypeError,
    /a: expected dtype s8 or u8, got f32/,
  ],
  [
    's32 b into qadd',
    () => qadd(s8([4]), tensor('s32', [4]) as any, addOpts),
    TypeError,
    /b: expected dtype s8 or u8, got s32/,
  ],
  ['f32 into qrelu', () => qrelu(tensor('f32', [4]) as any), TypeError, /input: expected dtype s8 or u8, got f32/],
  [
    'b1 into qmaxpool2d',
    () => qmaxpool2d(tensor('b1', [1, 2, 2, 8]) as any, { kernel: 2 }),
    TypeError,
    /input: expected dtype s8 or u8, got b1/,
  ],
  [
    'f32 into qavgpool2d',
    () => qavgpool2d(tensor('f32', [1, 2, 2, 8]) as any, avg),
    TypeError,
    /input: expected dtype s8 or u8, got f32/,
  ],
  [
    's32 into qglobalavgpool',
    () => qglobalavgpool(tensor('s32', [1, 2, 2, 8]) as any, { input: q }),
    TypeError,
    /got s32/,
  ],
  [
    'f32 into qconcat',
    () => qconcat([s8(), tensor('f32', [1, 4, 4, 3]) as any], { inputs: [q, q], output: q }),
    TypeError,
    /inputs\[1\]: expected dtype s8 or u8, got f32/,
  ],
  [
    'output dtype f32',
    () => qadd(s8(), s8(), { ...addOpts, output: { scale: 1, dtype: 'f32' as any } }),
    RangeError,
    /output\.dtype: expected 's8' or 'u8', got f32/,
  ],
  ['not a tensor', () => qadd([1, 2] as any, s8([2]), addOpts), TypeError, /a: expected a Tensor, got Array/],
  ['options missing', () => qadd(s8(), s8(), undefined as any), TypeError, /options: expected \{ a, b, output \}/],
  [
    'a params missing',
    () => qadd(s8(), s8(), { b: q, output: q } as any),
    TypeError,
    /a: expected \{ scale, zeroPoint\? \}/,
  ],
  ['output missing', () => qadd(s8(), s8(), { a: q, b: q } as any), TypeError, /output: expected \{ scale/],
  [
    'countIncludePad not a boolean',
    () => qavgpool2d(s8(), { ...avg, countIncludePad: 1 as any }),
    TypeError,
    /countIncludePad: expected a boolean/,
  ],
  [
    'qconcat not an array',
    () => qconcat(s8() as any, { inputs: [q], output: q }),
    TypeError,
    /inputs: expected an array of tensors/,
  ],
  [
    'qconcat output clamp',
    () => qconcat([s8()], { inputs: [q], output: { scale: 1, clamp: [0, 1] } as any }),
    TypeError,
    /output\.clamp: this operator has no output clamp/,
  ],
  // shapes
  [
    'qadd shapes differ',
    () => qadd(s8([1, 4, 4, 3]), s8([1, 4, 4, 4]), addOpts),
    ShapeError,
    /b: expected the shape of a \[1, 4, 4, 3\], got \[1, 4, 4, 4\]/,
  ],
  ['qadd ranks differ', () => qadd(s8([12]), s8([3, 4]), addOpts), ShapeError, /b: expected the shape of a \[12\]/],
  [
    'qmaxpool2d rank 3',
    () => qmaxpool2d(s8([4, 4, 3]), { kernel: 2 }),
    ShapeError,
    /input: expected rank 4, got shape \[4, 4, 3\]/,
  ],
  [
    'qavgpool2d kernel larger than the image',
    () => qavgpool2d(s8([1, 2, 2, 3]), { ...avg, kernel: 3 }),
    ShapeError,
    /pool kernel is larger than the padded input/,
  ],
  ['qglobalavgpool rank 2', () => qglobalavgpool(s8([4, 3]), { input: q }), ShapeError, /input: expected rank 4/],
  [
    'qglobalavgpool empty image',
    () => qglobalavgpool(s8([1, 0, 4, 3]), { input: q }),
    ShapeError,
    /every dimension of \[N, H, W, C\] must be at least 1/,
  ],
  [
    'qconcat other dims differ',
    () => qconcat([s8([1, 4, 4, 3]), s8([1, 4, 5, 3])], { inputs: [q, q], output: q }),
    ShapeError,
    /inputs\[1\]: shape \[1, 4, 5, 3\] must equal \[1, 4, 4, 3\] except along axis 3/,
  ],
  [
    'qconcat ranks differ',
    () => qconcat([s8([4, 3]), s8([1, 4, 3])], { inputs: [q, q], output: q }),
    ShapeError,
    /inputs\[1\]: shape/,
  ],
  [
    'qconcat no inputs',
    () => qconcat([], { inputs: [], output: q }),
    ShapeError,
    /inputs: expected at least one tensor/,
  ],
  [
    'qconcat param count',
    () => qconcat([s8(), s8()], { inputs: [q], output: q }),
    ShapeError,
    /options\.inputs: expected 2 parameter objects \(one per tensor\), got 1/,
  ],
  ['qconcat scalar', () => qconcat([s8([])], { inputs: [q], output: q }), ShapeError, /a scalar has no axis/],
  [
    'qconcat axis 4 of rank 4',
    () => qconcat([s8()], { axis: 4, inputs: [q], output: q }),
    RangeError,
    /axis: expected an integer in \[-4, 3\], got 4/,
  ],
  [
    'qconcat axis -5',
    () => qconcat([s8()], { axis: -5, inputs: [q], output: q }),
    RangeError,
    /axis: expected an integer in \[-4, 3\], got -5/,
  ],
  ['qconcat axis 1.5', () => qconcat([s8()], { axis: 1.5, inputs: [q], output: q }), RangeError, /got 1.5/],
  // pool geometry
  ['kernel 0', () => qmaxpool2d(s8(), { kernel: 0 }), RangeError, /kernel\[0\]: expected an integer >= 1, got 0/],
  [
    'stride 0',
    () => qavgpool2d(s8(), { ...avg, strides: [1, 0] }),
    RangeError,
    /strides\[1\]: expected an integer >= 1, got 0/,
  ],
  [
    'pad equal to the kernel',
    () => qmaxpool2d(s8(), { kernel: 2, padding: [0, 2, 0, 0] }),
    RangeError,
    /pads \[0, 2, 0, 0\] must each be smaller than the pool kernel \(2 x 2\)/,
  ],
  [
    'bad padding',
    () => qavgpool2d(s8(), { ...avg, padding: 'full' as any }),
    RangeError,
    /padding: expected 'valid', 'same' or \[top, left, bottom, right\]/,
  ],
  // scales -> QuantizationError
  ...[0, -0.5, NaN, Infinity, -Infinity, '1' as unknown as number].flatMap((bad): Row[] => [
    [
      `a.scale ${String(bad)}`,
      () => qadd(s8(), s8(), { ...addOpts, a: { scale: bad } }),
      QuantizationError,
      /a\.scale: expected a finite number > 0/,
    ],
    [
      `b.scale ${String(bad)}`,
      () => qadd(s8(), u8(), { ...addOpts, b: { scale: bad } }),
      QuantizationError,
      /b\.scale: expected a finite number > 0/,
    ],
    [
      `qadd output.scale ${String(bad)}`,
      () => qadd(s8(), s8(), { ...addOpts, output: { scale: bad } }),
      QuantizationError,
      /output\.scale: expected a finite number > 0/,
    ],
    [
      `qavgpool2d input.scale ${String(bad)}`,
      () => qavgpool2d(s8(), { kernel: 2, input: { scale: bad } }),
      QuantizationError,
      /input\.scale: expected a finite number > 0/,
    ],
    [
      `qglobalavgpool output.scale ${String(bad)}`,
      () => qglobalavgpool(s8(), { input: q, output: { scale: bad } }),
      QuantizationError,
      /output\.scale: expected a finite number > 0/,
    ],
    [
      `qconcat inputs[1].scale ${String(bad)}`,
      () => qconcat([s8(), u8()], { inputs: [q, { scale: bad }], output: q }),
      QuantizationError,
      /inputs\[1\]\.scale: expected a finite number > 0/,
    ],
  ]),
  // ratios outside toDyadic's range
  [
    'a.scale / output.scale = 2^31',
    () => qadd(s8(), s8(), { a: { scale: 2 ** 31 }, b: q, output: { scale: 1 } }),
    QuantizationError,
    /a\.scale \/ output\.scale = 2147483648 has no dyadic form/,
  ],
  [
    'b.scale / output.scale = 2^-40',
    () => qadd(s8(), s8(), { a: q, b: { scale: 2 ** -40 }, output: { scale: 1 } }),
    QuantizationError,
    /b\.scale \/ output\.scale = .* has no dyadic form/,
  ],
  [
    'qavgpool2d ratio below 2^-32',
    () => qavgpool2d(s8(), { kernel: 2, input: { scale: 2 ** -31 }, output: { scale: 1 } }),
    QuantizationError,
    /input\.scale \/ \(output\.scale \* 4 taps\) = .* has no dyadic form/,
  ],
  [
    'qglobalavgpool ratio 2^31',
    () => qglobalavgpool(s8([1, 1, 1, 3]), { input: { scale: 2 ** 31 }, output: { scale: 1 } }),
    QuantizationError,
    /input\.scale \/ \(output\.scale \* 1 taps\)/,
  ],
  [
    'qconcat ratio 1e10',
    () => qconcat([s8(), s8()], { inputs: [q, { scale: 1e10 }], output: { scale: 1 } }),
    QuantizationError,
    /inputs\[1\]\.scale \/ output\.scale = 10000000000 has no dyadic form/,
  ],
  // zero points and clamps -> RangeError
  [
    'a.zeroPoint 128 (s8)',
    () => qadd(s8(), s8(), { ...addOpts, a: { scale: 1, zeroPoint: 128 } }),
    RangeError,
    /a\.zeroPoint: expected an integer in \[-128, 127\] for s8, got 128/,
  ],
  [
    'b.zeroPoint -1 (u8)',
    () => qadd(s8(), u8(), { ...addOpts, b: { scale: 1, zeroPoint: -1 } }),
    RangeError,
    /b\.zeroPoint: expected an integer in \[0, 255\] for u8, got -1/,
  ],
  [
    'input.zeroPoint 1.5',
    () => qavgpool2d(s8(), { kernel: 2, input: { scale: 1, zeroPoint: 1.5 } }),
    RangeError,
    /input\.zeroPoint: expected an integer in \[-128, 127\] for s8, got 1.5/,
  ],
  [
    'inputs[0].zeroPoint 256',
    () => qconcat([u8()], { inputs: [{ scale: 1, zeroPoint: 256 }], output: q }),
    RangeError,
    /inputs\[0\]\.zeroPoint: expected an integer in \[0, 255\] for u8, got 256/,
  ],
  [
    'output.zeroPoint outside the clamp',
    () => qadd(s8(), s8(), { ...addOpts, output: { scale: 1, zeroPoint: 9, clamp: [-8, 7] } }),
    RangeError,
    /output\.zeroPoint: expected an integer in the clamp \[-8, 7\], got 9/,
  ],
  [
    'output.zeroPoint 255 for s8',
    () => qglobalavgpool(s8(), { input: q, output: { scale: 1, zeroPoint: 255, dtype: 's8' } }),
    RangeError,
    /output\.zeroPoint: expected an integer in the clamp \[-128, 127\], got 255/,
  ],
  [
    'output.zeroPoint NaN',
    () => qconcat([s8()], { inputs: [q], output: { scale: 1, zeroPoint: NaN } }),
    RangeError,
    /output\.zeroPoint: .*got NaN/,
  ],
  [
    'clamp [0, 300] (u8)',
    () => qadd(u8(), u8(), { ...addOpts, output: { scale: 1, dtype: 'u8', clamp: [0, 300] } }),
    RangeError,
    /clamp: expected integers 0 <= lo <= hi <= 255 for u8, got \[0, 300\]/,
  ],
  [
    'clamp [5, 4]',
    () => qavgpool2d(s8(), { ...avg, output: { scale: 1, clamp: [5, 4] } }),
    RangeError,
    /clamp: expected integers -128 <= lo <= hi <= 127 for s8, got \[5, 4\]/,
  ],
  [
    'clamp [-1, 10] (u8)',
    () => qclamp(u8(), [-1, 10]),
    RangeError,
    /clamp: expected integers 0 <= lo <= hi <= 255 for u8, got \[-1, 10\]/,
  ],
  ['clamp [0.5, 7]', () => qrelu(s8(), { clamp: [0.5, 7] }), RangeError, /clamp: expected integers/],
  ['qclamp not a pair', () => qclamp(s8(), 7 as any), TypeError, /clamp: expected \[lo, hi\], got number/],
  [
    'qrelu zeroPoint above the clamp',
    () => qrelu(s8(), { zeroPoint: 8, clamp: [-8, 7] }),
    RangeError,
    /zeroPoint: 8 lies above the clamp \[-8, 7\]/,
  ],
  [
    'qrelu zeroPoint -1 (u8)',
    () => qrelu(u8(), { zeroPoint: -1 }),
    RangeError,
    /zeroPoint: expected an integer in \[0, 255\] for u8, got -1/,
  ],
  // detached buffers
  [
    'detached a into qadd',
    () => qadd(detach(s8()), s8(), addOpts),
    ShapeError,
    /a: shape \[1, 4, 4, 3\] needs 48 values, its data has 0/,
  ],
  [
    'detached b into qadd',
    () => qadd(s8(), detach(u8()), addOpts),
    ShapeError,
    /b: shape \[1, 4, 4, 3\] needs 48 values, its data has 0/,
  ],
  ['detached input into qrelu', () => qrelu(detach(s8())), ShapeError, /input: .*its data has 0/],
  [
    'detached input into qmaxpool2d',
    () => qmaxpool2d(detach(u8()), { kernel: 2 }),
    ShapeError,
    /input: .*its data has 0/,
  ],
  ['detached input into qavgpool2d', () => qavgpool2d(detach(s8()), avg), ShapeError, /input: .*its data has 0/],
  [
    'detached input into qglobalavgpool',
    () => qglobalavgpool(detach(s8()), { input: q }),
    ShapeError,
    /input: .*its data has 0/,
  ],
  [
    'detached inputs[1] into qconcat',
    () => qconcat([s8(), detach(s8())], { inputs: [q, q], output: q }),
    ShapeError,
    /inputs\[1\]: .*its data has 0/,
  ],
  // huge shapes
  [
    'huge-but-empty [2^20, 2^20, 2^20, 0] into qmaxpool2d',
    () => qmaxpool2d(tensor('s8', [2 ** 20, 2 ** 20, 2 ** 20, 0]), { kernel: 1 }),
    ShapeError,
    /must be at least 1/,
  ],
  [
    'huge-but-empty into qavgpool2d',
    () => qavgpool2d(tensor('u8', [2 ** 20, 2 ** 20, 2 ** 20, 0]), { kernel: 1, input: q }),
    ShapeError,
    /must be at least 1/,
  ],
  [
    'huge-but-empty into qglobalavgpool',
    () => qglobalavgpool(tensor('u8', [0, 2 ** 20, 2 ** 20, 2 ** 20]), { input: q }),
    ShapeError,
    /must be at least 1/,
  ],
  [
    'kernel 2^40',
    () => qavgpool2d(s8(), { kernel: [2 ** 40, 1], input: q }),
    ShapeError,
    /pool kernel is larger than the padded input/,
  ],
  [
    'a window of 2903 x 2903 taps',
    () => qavgpool2d(tensor('u8', [1, 2903, 2903, 1]), { kernel: 2903, input: q }),
    RangeError,
    /kernel: a window of 8427409 taps could overflow the int32 sum \(at most 8421504 taps\)/,
  ],
  [
    'a global pool of 2903 x 2903 taps',
    () => qglobalavgpool(tensor('s8', [1, 2903, 2903, 1]), { input: q }),
    RangeError,
    /input: a window of 8427409 taps could overflow/,
  ],
];

describe('bad arguments throw named errors that name the argument', () => {
  for (const [name, fn, cls, message] of rows)
    it(name, () => {
      let error: unknown;
      try {
        fn();
      } catch (e) {
        error = e;
      }
      expect(error, `${name}: no error`).toBeInstanceOf(cls);
      expect((error as Error).message).toMatch(message);
    });

  it('huge-but-empty tensors concatenate to an empty tensor', () => {
    const y = qconcat([tensor('s8', [2 ** 20, 2 ** 20, 2 ** 20, 0]), tensor('u8', [2 ** 20, 2 ** 20, 2 ** 20, 0])], {
      axis: 0,
      inputs: [q, q],
      output: q,
    });
    expect([...y.shape]).toEqual([2 ** 21, 2 ** 20, 2 ** 20, 0]);
    expect(y.data.length).toBe(0);
  });
});

describe('async forms reject with the same classes (and never throw synchronously)', () => {
  const asyncRows: Row[] = [
    ['qaddAsync shapes differ', () => qaddAsync(s8([3]), s8([4]), addOpts), ShapeError, /b: expected the shape of a/],
    [
      'qaddAsync ratio 2^31',
      () => qaddAsync(s8(), s8(), { a: { scale: 2 ** 31 }, b: q, output: { scale: 1 } }),
      QuantizationError,
      /a\.scale \/ output\.scale/,
    ],
    ['qreluAsync f32', () => qreluAsync(tensor('f32', [4]) as any), TypeError, /got f32/],
    ['qclampAsync bad clamp', () => qclampAsync(u8(), [3, 2]), RangeError, /clamp:/],
    [
      'qmaxpool2dAsync pad too large',
      () => qmaxpool2dAsync(s8(), { kernel: 2, padding: [2, 0, 0, 0] }),
      RangeError,
      /must each be smaller than the pool kernel/,
    ],
    [
      'qavgpool2dAsync NaN scale',
      () => qavgpool2dAsync(s8(), { kernel: 2, input: { scale: NaN } }),
      QuantizationError,
      /input\.scale/,
    ],
    [
      'qavgpool2dAsync ratio below 2^-32',
      () => qavgpool2dAsync(s8(), { kernel: 2, input: { scale: 2 ** -31 }, output: { scale: 1 } }),
      QuantizationError,
      /4 taps/,
    ],
    [
      'qglobalavgpoolAsync detached',
      () => qglobalavgpoolAsync(detach(s8()), { input: q }),
      ShapeError,
      /its data has 0/,
    ],
    [
      'qconcatAsync zero point',
      () => qconcatAsync([s8()], { inputs: [{ scale: 1, zeroPoint: 200 }], output: q }),
      RangeError,
      /inputs\[0\]\.zeroPoint/,
    ],
  ];
  for (const [name, fn, cls, message] of asyncRows)
    it(name, async () => {
      let promise: unknown;
      expect(() => (promise = fn())).not.toThrow();
      await expect(promise).rejects.toBeInstanceOf(cls);
      await expect(promise).rejects.toThrow(message);
    });
});

describe('the addon validates on its own (direct native calls)', () => {
  const out = { scale: 1, zeroPoint: 0, lo: -128, hi: 127 };
  const p = { scale: 1, zeroPoint: 0 };
  const cases: [string, () => unknown, string, RegExp][] = [
    [
      'qadd Float32Array',
      () => native.qadd(new Float32Array(2) as any, new Int8Array(2), p, p, out, false),
      'LOWBIT_TYPE',
      /a: expected an Int8Array \(s8\) or a Uint8Array \(u8\)/,
    ],
    [
      'qadd lengths differ',
      () => native.qadd(new Int8Array(2), new Int8Array(3), p, p, out, false),
      'LOWBIT_SHAPE',
      /b: expected 2 values like a, got 3/,
    ],
    [
      'qadd zero point for u8',
      () => native.qadd(new Uint8Array(2), new Int8Array(2), { scale: 1, zeroPoint: -1 }, p, out, false),
      'LOWBIT_RANGE',
      /a\.zeroPoint: expected an integer in \[0, 255\] for u8, got -1/,
    ],
    [
      'qadd scale missing',
      () => native.qadd(new Int8Array(2), new Int8Array(2), {} as any, p, out, false),
      'LOWBIT_TYPE',
      /a\.scale: expected a number/,
    ],
    [
      'qadd scale 0',
      () => native.qadd(new Int8Array(2), new Int8Array(2), p, { scale: 0, zeroPoint: 0 }, out, false),
      'LOWBIT_QUANTIZATION',
      /b\.scale: expected a finite number > 0/,
    ],
    [
      'qadd clamp mixing signs',
      () => native.qadd(new Int8Array(2), new Int8Array(2), p, p, { ...out, lo: -1, hi: 200 }, false),
      'LOWBIT_RANGE',
      /clamp \[-1, 200\]/,
    ],
    [
      'qadd output zero point outside the clamp',
      () => native.qadd(new Int8Array(2), new Int8Array(2), p, p, { ...out, lo: 1, hi: 5 }, false),
      'LOWBIT_RANGE',
      /output\.zeroPoint/,
    ],
    [
      'qclamp outside the dtype',
      () => native.qclamp(new Int8Array(2), 0, 200, false),
      'LOWBIT_RANGE',
      /clamp \[0, 200\] must have lo <= hi inside \[-128, 127\]/,
    ],
    [
      'qmaxpool2d length',
      () =>
        native.qmaxpool2d(
          new Int8Array(5),
          [1, 2, 2, 1],
          { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0] },
          false,
        ),
      'LOWBIT_SHAPE',
      /input: \[N, H, W, C\] needs 4 values, got 5/,
    ],
    [
      'qavgpool2d countIncludePad',
      () =>
        native.qavgpool2d(
          new Int8Array(4),
          [1, 2, 2, 1],
          { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0] },
          1 as any,
          p,
          out,
          false,
        ),
      'LOWBIT_TYPE',
      /countIncludePad: expected a boolean/,
    ],
    [
      'qglobalavgpool size overflow',
      () => native.qglobalavgpool(new Int8Array(4), [2 ** 40, 2 ** 40, 1, 1], p, out, false),
      'LOWBIT_RANGE',
      /input size overflows/,
    ],
    [
      'qconcat lengths',
      () => native.qconcat([new Int8Array(6), new Uint8Array(5)], 2, 1, [3, 3], [p, p], out, false),
      'LOWBIT_SHAPE',
      /inputs\[1\]: \[outer, axis, inner\] = \[2, 3, 1\] needs 6 values, got 5/,
    ],
    [
      'qconcat params count',
      () => native.qconcat([new Int8Array(6)], 2, 1, [3], [], out, false),
      'LOWBIT_SHAPE',
      /expected 1 quantization parameter objects/,
    ],
    [
      'qconcat size overflow',
      () => native.qconcat([new Int8Array(0)], 2 ** 40, 2 ** 40, [1], [p], out, false),
      'LOWBIT_RANGE',
      /size overflows/,
    ],
  ];
  for (const [name, fn, code, message] of cases)
    it(name, () => {
      let error: any;
      try {
        fn();
      } catch (e) {
        error = e;
      }
      expect(error?.code, name).toBe(code);
      expect(error.message).toMatch(message);
    });
});
