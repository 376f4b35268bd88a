/**
 * Integer conv / dense layers: every ISA against an exact integer oracle (zero points, bias,
 * dyadic requantization in BigInt) on random awkward shapes, extreme operands that would saturate
 * vpmaddubsw, depthwise and grouped layers, INT4 weights and activations; a float oracle within the
 * documented rounding bound; async = sync, thread counts, `out`, and bad input.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  dequantize,
  isa,
  packQConv2dWeights,
  packQDenseWeights,
  qconv2d,
  qconv2dAsync,
  qdense,
  qdenseAsync,
  quantize,
  quantizeWeights,
  QuantizationError,
  setIsa,
  setThreads,
  ShapeError,
  supportedIsas,
  tensor,
  threads,
  toDyadic,
  type QConv2dOptions,
  type QPadding,
  type Tensor,
} from '../lib/index.js';
import { forceThreads } from './helpers/threads.js';
import { randomConvCase, describeConv, type PaddingKind } from './helpers/cases.js';
import { bytesDiff, convOutSize, type ConvGeometry } from './helpers/oracle.js';
import { fileSeed, rngFor, type Rng } from './helpers/rng.js';

const SEED = fileSeed('qconv');
const ISAS = supportedIsas();
const ORIGINAL_ISA = isa();
const ORIGINAL_THREADS = threads();
afterAll(() => {
  setIsa(ORIGINAL_ISA);
  setThreads(ORIGINAL_THREADS);
});

type Bytes = Int8Array | Uint8Array;

interface QCase {
  g: ConvGeometry;
  padding: QPadding;
  bits: 8 | 7 | 4;
  x: Bytes;
  xDtype: 's8' | 'u8';
  w: Int8Array;
  opts: QConv2dOptions;
}

/** The exact int32 accumulators: bias + sum (x - zx) * w, padded taps contribute 0. */
function accOracle(c: QCase): Int32Array {
  const { g, x, w } = c;
  const zx = c.opts.inputZeroPoint ?? 0;
  const [oh, ow] = convOutSize(g);
  const cg = g.c / g.groups,
    og = g.o / g.groups;
  const y = new Int32Array(g.n * oh * ow * g.o);
  let out = 0;
  for (let n = 0; n < g.n; ++n)
    for (let yy = 0; yy < oh; ++yy)
      for (let xx = 0; xx < ow; ++xx)
        for (let o = 0; o < g.o; ++o, ++out) {
          const c0 = Math.floor(o / og) * cg;
          let acc = c.opts.bias ? c.opts.bias[o] : 0;
          for (let ky = 0; ky < g.kh; ++ky) {
            const iy = yy * g.sh + ky * g.dh - g.pads[0];
            if (iy < 0 || iy >= g.h) continue;
            for (let kx = 0; kx < g.kw; ++kx) {
              const ix = xx * g.sw + kx * g.dw - g.pads[1];
              if (ix < 0 || ix >= g.w) continue;
              const wBase = ((o * g.kh + ky) * g.kw + kx) * cg;
              const xBase = ((n * g.h + iy) * g.w + ix) * g.c + c0;
              for (let ci = 0; ci < cg; ++ci) acc += (x[xBase + ci] - zx) * w[wBase + ci];
            }
          }
          y[out] = acc;
        }
  return y;
}

/** The 8-bit output of the accumulators: the dyadic rescale in BigInt, rounding half up. */
function requantOracle(acc: Int32Array, o: number, opts: QConv2dOptions): Int32Array {
  const dtype = opts.dtype ?? 's8';
  if (dtype === 's32') return acc;
  const [lo, hi] = opts.clamp ?? (dtype === 's8' ? [-128, 127] : [0, 255]);
  const out = new Int32Array(acc.length);
  for (let i = 0; i < acc.length; ++i) {
    const c = i % o;
    const e = BigInt(opts.shift![c]);
    const round = e > 0n ? 1n << (e - 1n) : 0n;
    const v = Number((BigInt(acc[i]) * BigInt(opts.multiplier![c]) + round) >> e) + (opts.outputZeroPoint ?? 0);
    out[i] = Math.min(hi, Math.max(lo, v));
  }
  return out;
}

function randomBytes(rng: Rng, n: number, dtype: 's8' | 'u8', lo: number, hi: number): Bytes {
  const a = dtype === 's8' ? new Int8Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; ++i) a[i] = rng.int(lo, hi);
  return a;
}

/** A random layer on the geometry: random bits, input dtype/range (A8 or A4), zero points, output. */
function randomQCase(rng: Rng, g: ConvGeometry, padding: QPadding): QCase {
  const bits = rng.pick([8, 7, 4] as const);
  const xDtype = rng.pick(['s8', 'u8'] as const);
  const a4 = rng.bool(0.25);
  const [xlo, xhi] = xDtype === 's8' ? (a4 ? [-8, 7] : [-128, 127]) : a4 ? [0, 15] : [0, 255];
  const k = g.kh * g.kw * (g.c / g.groups);
  const wmax = bits === 8 ? 127 : bits === 7 ? 64 : 7;
  const w = new Int8Array(g.o * k);
  const extreme = rng.bool(0.2); // operands at the ends of their ranges (vpmaddubsw saturation cases)
  for (let i = 0; i < w.length; ++i)
    w[i] = extreme ? rng.pick(bits === 8 ? [-128, -127, 127] : bits === 7 ? [-64, 64] : [-8, 7]) : rng.int(-wmax, wmax);
  const x = extreme
    ? randomBytes(rng, g.n * g.h * g.w * g.c, xDtype, xlo, xlo)
    : randomBytes(rng, g.n * g.h * g.w * g.c, xDtype, xlo, xhi);
  if (extreme) for (let i = 0; i < x.length; ++i) x[i] = rng.pick([xlo, xhi]);
  const dtype = rng.pick(['s8', 'u8', 's32'] as const);
  const spread = Math.sqrt(k) * 80 * (bits === 8 ? 73 : bits === 7 ? 37 : 4) + 1;
  const opts: QConv2dOptions = {
    inputZeroPoint: rng.int(xlo, xhi),
    bias: rng.bool(0.7) ? Array.from({ length: g.o }, () => rng.int(-100000, 100000)) : undefined,
    dtype,
  };
  if (dtype !== 's32') {
    opts.multiplier = [];
    opts.shift = [];
    for (let c = 0; c < g.o; ++c) {
      // scale so that +-2 spreads cover the output range, and sometimes extreme dyadic pairs
      const d = rng.bool(0.1)
        ? { multiplier: 2147483647, shift: rng.int(0, 62) }
        : toDyadic((64 / spread) * (0.5 + rng.float()));
      (opts.multiplier as number[]).push(d.multiplier);
      (opts.shift as number[]).push(d.shift);
    }
    const [min, max] = dtype === 's8' ? [-128, 127] : [0, 255];
    opts.outputZeroPoint = rng.int(min, max);
    if (rng.bool(0.3)) opts.clamp = dtype === 's8' ? [-8, 7] : [opts.outputZeroPoint, max];
  }
  return { g, padding, bits, x, xDtype, w, opts };
}

function paddingOf(kind: PaddingKind, pads: readonly number[]): QPadding {
  if (kind === 'valid') return 'valid';
  if (kind.startsWith('same')) return 'same';
  return { pads: pads as [number, number, number, number] };
}

function runConv(c: QCase): Tensor {
  const g = c.g;
  const w = packQConv2dWeights(tensor('s8', [g.o, g.kh, g.kw, g.c / g.groups], c.w), {
    bits: c.bits,
    groups: g.groups,
  });
  const x = tensor(c.xDtype, [g.n, g.h, g.w, g.c], c.x as never);
  return qconv2d(x, w, { ...c.opts, strides: [g.sh, g.sw], dilations: [g.dh, g.dw], padding: c.padding });
}

function expectOracle(c: QCase, y: Tensor, ctx: string): void {
  const want = requantOracle(accOracle(c), c.g.o, c.opts);
  const got = Int32Array.from(y.data as ArrayLike<number>);
  const bad = got.findIndex((v, i) => v !== want[i]);
  expect(bad, `${ctx}: element ${bad} got ${got[bad]} want ${want[bad]}`).toBe(-1);
  expect(got.length).toBe(want.length);
}

function describeQ(c: QCase): string {
  return `bits=${c.bits} x=${c.xDtype} zx=${c.opts.inputZeroPoint} out=${c.opts.dtype} ${describeConv({ ...c.g, paddingKind: 'valid', padding: 'valid', inDtype: 'f32', wDtype: 's8' }).replace(/pad=\S+/, `pads=[${c.g.pads}]`)}`;
}

describe('qconv2d: every ISA equals the exact integer oracle', () => {
  it('random layers with awkward channels, kernels, strides, dilations, groups and paddings', () => {
    const rng = rngFor(SEED, 'random');
    for (let i = 0; i < 40; ++i) {
      const cc = randomConvCase(
        rng,
        400_000,
        [1, 3, 4, 15, 16, 17, 63, 64, 65, 128, 200],
        rng.pick(['valid', 'same-zero', 'explicit-zero'] as const),
      );
      const c = randomQCase(rng, cc, paddingOf(cc.paddingKind, cc.pads));
      for (const name of ISAS) {
        setIsa(name);
        expectOracle(c, runConv(c), `${name} case ${i} ${describeQ(c)} (seed ${SEED})`);
      }
    }
  });

  it('depthwise layers (one channel per group) take their own path and stay exact', () => {
    const rng = rngFor(SEED, 'depthwise');
    for (const ch of [1, 3, 16, 17, 64, 100]) {
      const k = rng.pick([3, 5]);
      const s = rng.int(1, 2);
      const h = rng.int(1, 12);
      const g: ConvGeometry = {
        n: rng.int(1, 2),
        h,
        w: rng.int(1, 12),
        c: ch,
        o: ch,
        kh: k,
        kw: k,
        groups: ch,
        sh: s,
        sw: s,
        dh: 1,
        dw: 1,
        pads: [0, 0, 0, 0],
        padValue: 'zero',
      };
      const [t, l] = [rng.int(0, k - 1), rng.int(0, k - 1)];
      g.pads = [t, l, t, l];
      if (g.h + 2 * t < k || g.w + 2 * l < k) g.pads = [k - 1, k - 1, k - 1, k - 1];
      const c = randomQCase(rng, g, { pads: g.pads });
      for (const name of ISAS) {
        setIsa(name);
        expectOracle(c, runConv(c), `${name} depthwise ${describeQ(c)} (seed ${SEED})`);
      }
    }
  });

  it('extreme operands: u8 255 x -127, s8 -128 x -128, INT4 -8, deep K', () => {
    const cases: Array<[bits: 8 | 4, xDtype: 's8' | 'u8', x: number, w: number, k: number]> = [
      [8, 'u8', 255, -127, 4608],
      [8, 'u8', 255, 127, 4608],
      [8, 'u8', 0, -128, 4608],
      [8, 's8', -128, -128, 4608],
      [8, 's8', -128, 127, 4607],
      [8, 's8', 127, -128, 1153],
      [4, 'u8', 255, -8, 4608],
      [4, 's8', -128, -8, 4607],
      [4, 's8', 127, 7, 65],
    ];
    for (const [bits, xDtype, xv, wv, k] of cases) {
      const g: ConvGeometry = {
        n: 1,
        h: 3,
        w: 2,
        c: k,
        o: 19,
        kh: 1,
        kw: 1,
        groups: 1,
        sh: 1,
        sw: 1,
        dh: 1,
        dw: 1,
        pads: [0, 0, 0, 0],
        padValue: 'zero',
      };
      const x = xDtype === 's8' ? new Int8Array(6 * k).fill(xv) : new Uint8Array(6 * k).fill(xv);
      const c: QCase = {
        g,
        padding: 'valid',
        bits,
        x,
        xDtype,
        w: new Int8Array(19 * k).fill(wv),
        opts: { dtype: 's32' },
      };
      for (const name of ISAS) {
        setIsa(name);
        expectOracle(c, runConv(c), `${name} x=${xv} w=${wv} k=${k} bits=${bits}`);
      }
    }
  });
});

describe('qdense', () => {
  it('batch 1 and N, W8 and W4, equals the oracle on every ISA', () => {
    const rng = rngFor(SEED, 'dense');
    for (const [rows, inF, outF] of [
      [1, 4096, 40],
      [1, 5, 3],
      [7, 1000, 33],
      [64, 64, 17],
      [3, 1, 1],
    ]) {
      const g: ConvGeometry = {
        n: rows,
        h: 1,
        w: 1,
        c: inF,
        o: outF,
        kh: 1,
        kw: 1,
        groups: 1,
        sh: 1,
        sw: 1,
        dh: 1,
        dw: 1,
        pads: [0, 0, 0, 0],
        padValue: 'zero',
      };
      const c = randomQCase(rng, g, 'valid');
      const w = packQDenseWeights(tensor('s8', [outF, inF], c.w), { bits: c.bits });
      for (const name of ISAS) {
        setIsa(name);
        const y = qdense(tensor(c.xDtype, [rows, inF], c.x as never), w, c.opts);
        expect(y.shape).toEqual([rows, outF]);
        expectOracle(c, y, `${name} dense ${rows}x${inF}x${outF} ${describeQ(c)}`);
      }
    }
  });

  it('INT4 weights take half the bytes of INT8', () => {
    const w = new Int8Array(4096 * 4096).fill(3);
    const w8 = packQDenseWeights(tensor('s8', [4096, 4096], w), { bits: 8 });
    const w4 = packQDenseWeights(tensor('s8', [4096, 4096], w), { bits: 4 });
    expect(w8.bytes).toBeGreaterThanOrEqual(4096 * 4096);
    expect(w4.bytes / w8.bytes).toBeCloseTo(0.5, 2);
  });
});

describe('float oracle', () => {
  it('dequantize(qconv2d) is within half an output step (+ 2^-31 relative) of the float conv of the dequantized operands', () => {
    const rng = rngFor(SEED, 'float');
    for (const bits of [8, 7, 4] as const) {
      const [n, h, wd, c, o, k] = [1, 9, 7, 24, 20, 3];
      const xf = Float32Array.from({ length: n * h * wd * c }, () => rng.float() * 4 - 1);
      const wf = Float32Array.from({ length: o * k * k * c }, () => rng.float() * 2 - 1);
      const bf = Float32Array.from({ length: o }, () => rng.float() - 0.5);
      const sx = 5 / 255,
        zx = 51; // x in [-1, 4) as u8
      const xq = quantize(tensor('f32', [n, h, wd, c], xf), { scale: sx, zeroPoint: zx, dtype: 'u8' });
      const wq = quantizeWeights(tensor('f32', [o, k, k, c], wf), { bits });
      const sy = 0.25,
        zy = -10;
      const bias = Array.from(bf, (b, j) => Math.round(b / (sx * wq.scales[j])));
      const dy = Array.from(wq.scales, (s) => toDyadic((sx * s) / sy));
      const y = qconv2d(xq, packQConv2dWeights(wq.weights, { bits }), {
        padding: 'same',
        inputZeroPoint: zx,
        bias,
        dtype: 's8',
        outputZeroPoint: zy,
        multiplier: dy.map((d) => d.multiplier),
        shift: dy.map((d) => d.shift),
      });
      const yf = dequantize(y, { scale: sy, zeroPoint: zy }).data;
      // float conv of the dequantized operands, in double
      let checked = 0;
      for (let yy = 0; yy < h; ++yy)
        for (let xx = 0; xx < wd; ++xx)
          for (let j = 0; j < o; ++j) {
            let sum = bias[j] * sx * wq.scales[j];
            for (let ky = 0; ky < k; ++ky)
              for (let kx = 0; kx < k; ++kx) {
                const iy = yy + ky - 1,
                  ix = xx + kx - 1;
                if (iy < 0 || ix < 0 || iy >= h || ix >= wd) continue;
                for (let ci = 0; ci < c; ++ci)
                  sum +=
                    sx *
                    (xq.data[(iy * wd + ix) * c + ci] - zx) *
                    wq.scales[j] *
                    wq.weights.data[((j * k + ky) * k + kx) * c + ci];
              }
            const q = yf[(yy * wd + xx) * o + j];
            if (Math.abs(sum / sy + zy) > 127 - 1) continue; // saturated: clamped, not rounded
            expect(
              Math.abs(q - sum),
              `bits ${bits} pixel ${yy},${xx} channel ${j}: ${q} vs ${sum}`,
            ).toBeLessThanOrEqual(sy * 0.5 * (1 + 1e-6) + Math.abs(sum) * 2 ** -31);
            ++checked;
          }
      expect(checked).toBeGreaterThan(h * wd * o * 0.9);
    }
  });
});

describe('API behaviour', () => {
  const rng = rngFor(SEED, 'api');
  const g: ConvGeometry = {
    n: 2,
    h: 9,
    w: 8,
    c: 20,
    o: 33,
    kh: 3,
    kw: 3,
    groups: 1,
    sh: 2,
    sw: 1,
    dh: 1,
    dw: 1,
    pads: [1, 1, 1, 1],
    padValue: 'zero',
  };
  const c = randomQCase(rng, g, { pads: [1, 1, 1, 1] });
  c.opts.dtype = 's32';
  const w = packQConv2dWeights(tensor('s8', [g.o, 3, 3, g.c], c.w), { bits: c.bits });
  const x = tensor(c.xDtype, [g.n, g.h, g.w, g.c], c.x as never);
  const geometry = { strides: [2, 1] as const, padding: c.padding };

  it('async equals sync, thread counts do not change results, `out` is written in place', async () => {
    setIsa(ORIGINAL_ISA);
    const sync = qconv2d(x, w, { ...c.opts, ...geometry });
    const results = await Promise.all(Array.from({ length: 16 }, () => qconv2dAsync(x, w, { ...c.opts, ...geometry })));
    for (const r of results) expect(bytesDiff(r.data, sync.data)).toBe('');
    for (const t of [1, 2, 3, 8]) {
      forceThreads(t);
      expect(bytesDiff(qconv2d(x, w, { ...c.opts, ...geometry }).data, sync.data), `threads ${t}`).toBe('');
    }
    setThreads(ORIGINAL_THREADS);
    const out = tensor('s32', sync.shape);
    expect(qconv2d(x, w, { ...c.opts, ...geometry, dtype: 's32', out })).toBe(out);
    expect(bytesDiff(out.data, sync.data)).toBe('');
    const dense = packQDenseWeights(tensor('s8', [5, 4], new Int8Array(20).fill(1)), { bits: 8 });
    const xd = tensor('u8', [2, 4], Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    expect([...(await qdenseAsync(xd, dense, { dtype: 's32' })).data]).toEqual([
      10, 10, 10, 10, 10, 26, 26, 26, 26, 26,
    ]);
  });

  it('bad input throws named errors that say what was expected', async () => {
    const ok = { ...c.opts, ...geometry };
    expect(() => packQConv2dWeights(tensor('s8', [2, 1, 1, 3], Int8Array.of(1, 2, 3, 8, 0, 0)), { bits: 4 })).toThrow(
      /\[-8, 7\].*output channel 1/,
    );
    expect(() => packQConv2dWeights(tensor('s8', [2, 1, 1, 3]), { bits: 3 as 8 })).toThrow(RangeError);
    expect(() =>
      packQConv2dWeights(tensor('s8', [2, 1, 1, 3], Int8Array.of(1, 2, 3, 64, -65, 0)), { bits: 7 }),
    ).toThrow(/\[-64, 64\].*-65.*output channel 1, index 1/);
    expect(() => packQConv2dWeights(tensor('f32', [2, 1, 1, 3]) as never, { bits: 8 })).toThrow(TypeError);
    expect(() => packQDenseWeights(tensor('s8', [1, 65537]), { bits: 8 })).toThrow(/65536/);
    expect(() => qconv2d(tensor('f32', [1, 9, 8, 20]) as never, w, ok)).toThrow(TypeError);
    expect(() => qconv2d(tensor('u8', [1, 9, 8, 21]), w, ok)).toThrow(ShapeError);
    expect(() => qconv2d(x, w, { ...ok, inputZeroPoint: x.dtype === 'u8' ? 256 : 128 })).toThrow(/inputZeroPoint/);
    expect(() => qconv2d(x, w, { ...ok, dtype: 's8', multiplier: undefined })).toThrow(/multiplier and shift/);
    expect(() =>
      qconv2d(x, w, { ...ok, dtype: 's8', multiplier: new Array(33).fill(1 << 30), shift: new Array(33).fill(63) }),
    ).toThrow(/shift\[0\]/);
    expect(() =>
      qconv2d(x, w, {
        ...ok,
        dtype: 'u8',
        multiplier: new Array(33).fill(1 << 30),
        shift: new Array(33).fill(31),
        clamp: [-1, 10],
      }),
    ).toThrow(RangeError);
    expect(() => qconv2d(x, w, { ...ok, bias: new Array(32).fill(0) })).toThrow(ShapeError);
    expect(() => qconv2d(x, w, { ...ok, bias: new Array(33).fill(2147483647) })).toThrow(
      /overflow the int32 accumulator/,
    );
    expect(() => qconv2d(x, w, { ...ok, out: tensor('s32', [1, 2, 3, 4]) })).toThrow(ShapeError);
    expect(() => qconv2d(x, {} as never, ok)).toThrow(/PackedQWeights/);
    expect(() => qconv2d(x, w, { ...ok, padding: { pads: [3, 0, 0, 0] } })).toThrow(/pads/);
    expect(() => qdense(tensor('u8', [1, 20]), w, { dtype: 's32' })).toThrow(/packQDenseWeights/);
    const big = packQDenseWeights(tensor('s8', [1, 65536], new Int8Array(65536).fill(-128)), { bits: 8 });
    expect(() => qdense(tensor('u8', [1, 65536]), big, { dtype: 's32', bias: [20_000_000] })).toThrow(/overflow/);
    expect(qdense(tensor('u8', [1, 65536], new Uint8Array(65536).fill(255)), big, { dtype: 's32' }).data[0]).toBe(
      -128 * 255 * 65536,
    );
    const detached = tensor('u8', [1, 9, 8, 20]);
    structuredClone(detached.data.buffer, { transfer: [detached.data.buffer] });
    expect(() => qconv2d(detached, w, ok)).toThrow(ShapeError);
    await expect(
      qconv2dAsync(x, w, { ...ok, dtype: 's8', multiplier: new Array(33).fill(1 << 30), shift: [1] }),
    ).rejects.toThrow(ShapeError);
    expect(() => toDyadic(0)).toThrow(QuantizationError);
  });
});
