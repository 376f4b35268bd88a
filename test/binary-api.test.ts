/**
 * The public binary API against TypeScript oracles: bitpack, bdense, bmaxpool2d,
 * thresholdsFromAffine, and the async forms (equal to sync, concurrent, and immune to the caller
 * mutating or transferring its input right after the call).
 */
import { describe, expect, it } from 'vitest';
import {
  b1Words,
  bconv2d,
  bconv2dAsync,
  bdense,
  bdenseAsync,
  bitpack,
  bitpackAsync,
  bmaxpool2d,
  bmaxpool2dAsync,
  packBinaryConv2dWeights,
  packBinaryDenseWeights,
  ShapeError,
  tensor,
  thresholdsFromAffine,
  type BMaxPool2dOptions,
  type Tensor,
} from '../lib/index.js';
import { native } from '../lib/native.js';
import { describeConv, randomConvCase } from './helpers/cases.js';
import {
  actualData,
  AWKWARD_CHANNELS,
  bytesDiff,
  denseOracle,
  describeEpilogue,
  diff,
  expectEpilogue,
  maxPoolOracle,
  packOracle,
  randomEpilogue,
  randomSource,
  samePadsOracle,
  toOutputOption,
  u32View,
  type Pads,
} from './helpers/oracle.js';
import { childEnv, compiledLib, ROOT, spawnNode } from './helpers/compile-lib.js';
import { fileSeed, rngFor, type Rng } from './helpers/rng.js';

const SEED = fileSeed('binary-api');

// ---- bitpack ----------------------------------------------------------------------------------------

describe(`bitpack (seed ${SEED})`, () => {
  it('f32: negative -> bit 1; 0, -0, NaN (either sign), +Inf and positive denormals -> bit 0', () => {
    const negNaN = new Float32Array(new Uint32Array([0xffc00001]).buffer)[0];
    const values = [0, -0, Number.NaN, negNaN, Infinity, -Infinity, 1e-45, -1e-45, -1, 1, -3.4e38, 3.4e38];
    const bits = [0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 1, 0];
    const out = bitpack(tensor('f32', [values.length], Float32Array.from(values)));
    expect(out.dtype).toBe('b1');
    expect([...out.shape]).toEqual([values.length]);
    expect(out.data.length).toBe(1);
    const want = bits.reduce((acc, b, i) => acc | (BigInt(b) << BigInt(i)), 0n);
    expect(out.data[0].toString(2)).toBe(want.toString(2));
  });

  it('s8: negative -> bit 1, zero and positive -> bit 0', () => {
    const values = [0, -1, 1, -128, 127, 0, -0, -2];
    const out = bitpack(tensor('s8', [1, 8], Int8Array.from(values)));
    expect([...out.shape]).toEqual([1, 8]);
    expect(out.data[0]).toBe(0b10001010n); // channels 1, 3 and 7
  });

  it('bit c of word w is channel 64 w + c (little-endian words)', () => {
    const src = new Float32Array(130).fill(1);
    for (const c of [0, 63, 64, 127, 129]) src[c] = -1;
    const out = bitpack(tensor('f32', [130], src));
    expect(Array.from(out.data)).toEqual([(1n << 63n) | 1n, (1n << 63n) | 1n, 2n]);
  });

  it('random awkward shapes of rank 1 to 5: bits match the oracle, tail bits are zero, shape preserved', () => {
    for (let i = 0; i < 60; ++i) {
      const rng = rngFor(SEED, `pack ${i}`);
      const c = rng.pick([...AWKWARD_CHANNELS, 2, 31, 32, 33, 129, 191, 192, 193, 1000]);
      const lead = Array.from({ length: rng.int(0, 4) }, () => rng.int(1, 3));
      const shape = [...lead, c];
      const rows = lead.reduce((a, b) => a * b, 1);
      const dtype = rng.pick(['f32', 's8'] as const);
      const src = randomSource(rng, dtype, rows * c);
      const out = bitpack(tensor(dtype, shape, src));
      const ctx = `seed=${SEED} bitpack ${dtype}[${shape}]`;
      expect(out.dtype, ctx).toBe('b1');
      expect([...out.shape], ctx).toEqual(shape);
      expect(out.data.length, ctx).toBe(rows * b1Words(c));
      // the oracle has zero tail bits, so an exact comparison also checks every tail bit
      expect(diff(u32View(out.data), packOracle(src, rows, c), [rows, c], true), ctx).toBe('');
    }
  });

  it('empty tensors (zero channels or zero rows) pack to empty b1 tensors of the same shape', async () => {
    for (const shape of [
      [3, 0],
      [0, 64],
      [2, 0, 5],
    ]) {
      for (const dtype of ['f32', 's8'] as const) {
        const x = tensor(dtype, shape);
        const out = bitpack(x);
        expect([...out.shape], `${dtype}[${shape}]`).toEqual(shape);
        expect(out.data.length).toBe(0);
        const a = await bitpackAsync(x);
        expect([...a.shape]).toEqual(shape);
        expect(a.data.length).toBe(0);
      }
    }
  });

  it('bitpackAsync resolves to the same words', async () => {
    for (let i = 0; i < 10; ++i) {
      const rng = rngFor(SEED, `pack async ${i}`);
      const c = rng.pick(AWKWARD_CHANNELS);
      const dtype = rng.pick(['f32', 's8'] as const);
      const x = tensor(dtype, [3, c], randomSource(rng, dtype, 3 * c));
      const a = await bitpackAsync(x);
      expect([...a.shape]).toEqual([3, c]);
      expect(bytesDiff(a.data, bitpack(x).data), `seed=${SEED} ${dtype}[3,${c}]`).toBe('');
    }
  });
});

// ---- bdense -----------------------------------------------------------------------------------------

describe(`bdense vs oracle (seed ${SEED})`, () => {
  for (const rowsKind of ['batch 1', 'batch N'] as const)
    for (const kind of ['f32', 's8', 'b1'] as const)
      it(`${rowsKind}, ${kind} output`, () => {
        for (let i = 0; i < 8; ++i) {
          const rng = rngFor(SEED, `dense ${rowsKind} ${kind} ${i}`);
          const rows = rowsKind === 'batch 1' ? 1 : rng.pick([2, 3, 7, 8, 9, 33]);
          const k = rng.pick([...AWKWARD_CHANNELS, 129, 1000, 2049]);
          const o = rng.pick([1, 3, 7, 8, 9, 63, 64, 65, 127, 128, 200]);
          const xDtype = rng.pick(['f32', 's8', 'b1'] as const);
          const xSrc = randomSource(rng, xDtype === 's8' ? 's8' : 'f32', rows * k);
          const wSrc = randomSource(rng, rng.pick(['f32', 's8'] as const), o * k);
          const xf = tensor(xSrc instanceof Int8Array ? 's8' : 'f32', [rows, k], xSrc);
          const x: Tensor = xDtype === 'b1' ? bitpack(xf) : xf;
          const w = packBinaryDenseWeights(tensor(wSrc instanceof Int8Array ? 's8' : 'f32', [o, k], wSrc));
          const spec = randomEpilogue(rng, kind, o, k);
          const ctx = `seed=${SEED} bdense x[${rows},${k}](${xDtype}) w[${o},${k}] out=${describeEpilogue(spec)}`;
          const out = bdense(x, w, { output: toOutputOption(spec, rng.bool()) });
          expect(out.dtype, ctx).toBe(kind);
          expect([...out.shape], ctx).toEqual([rows, o]);
          const y = denseOracle(xSrc, wSrc, rows, k, o);
          expect(
            diff(actualData(out.data), expectEpilogue(y, o, spec), [rows, o], kind === 'b1', (j) =>
              kind === 'b1' ? '' : `(y=${y[j]})`,
            ),
            ctx,
          ).toBe('');
        }
      });

  it('default output is the f32 dot product itself', () => {
    const rng = rngFor(SEED, 'dense default');
    const xSrc = randomSource(rng, 'f32', 5 * 70);
    const wSrc = randomSource(rng, 'f32', 3 * 70);
    const out = bdense(tensor('f32', [5, 70], xSrc), packBinaryDenseWeights(tensor('f32', [3, 70], wSrc)));
    expect(out.dtype).toBe('f32');
    expect(Array.from(out.data)).toEqual(Array.from(denseOracle(xSrc, wSrc, 5, 70, 3)));
  });
});

// ---- bmaxpool2d ------------------------------------------------------------------------------------

describe(`bmaxpool2d vs oracle (seed ${SEED})`, () => {
  function check(rng: Rng, label: string, shape: number[], options: BMaxPool2dOptions, pads: Pads) {
    const [n, h, w, c] = shape;
    // mostly negative values, so that windows that are all -1 occur
    const src = randomSource(rng, 'f32', n * h * w * c).map((v) => (rng.bool(0.75) ? -Math.abs(v) - 0.25 : v));
    const x = bitpack(tensor('f32', shape, src));
    const kernel = typeof options.kernel === 'number' ? [options.kernel, options.kernel] : options.kernel;
    const strides =
      options.strides === undefined
        ? kernel
        : typeof options.strides === 'number'
          ? [options.strides, options.strides]
          : options.strides;
    const want = maxPoolOracle(src, shape, kernel[0], kernel[1], strides[0], strides[1], pads);
    const ctx = `seed=${SEED} ${label} x[${shape}] ${JSON.stringify(options)} pads=[${pads}]`;
    const out = bmaxpool2d(x, options);
    expect(out.dtype, ctx).toBe('b1');
    expect([...out.shape], ctx).toEqual(want.shape);
    expect(diff(u32View(out.data), want.words, want.shape, true), ctx).toBe('');
  }

  function randomShape(rng: Rng, kh: number, kw: number): number[] {
    const c = rng.pick(AWKWARD_CHANNELS);
    const side = c >= 128 ? rng.int(1, 8) : rng.int(1, 20);
    return [rng.int(1, 2), Math.max(side, kh), Math.max(rng.bool(0.7) ? side : rng.int(1, 20), kw), c];
  }

  it('valid padding, default strides (= kernel) and explicit strides', () => {
    for (let i = 0; i < 25; ++i) {
      const rng = rngFor(SEED, `pool valid ${i}`);
      const kh = rng.int(1, 4),
        kw = rng.int(1, 4);
      const shape = randomShape(rng, kh, kw);
      const options: BMaxPool2dOptions = {
        kernel: [kh, kw],
        strides: rng.bool(0.4) ? undefined : [rng.int(1, 3), rng.int(1, 3)],
      };
      if (rng.bool(0.5)) options.padding = 'valid';
      check(rng, `valid #${i}`, shape, options, [0, 0, 0, 0]);
    }
  });

  it("'same' padding (SAME_UPPER: output ceil(H / stride))", () => {
    for (let i = 0; i < 25; ++i) {
      const rng = rngFor(SEED, `pool same ${i}`);
      const k = rng.int(1, 4);
      const s = rng.int(1, 3);
      const shape = randomShape(rng, 1, 1);
      const [t, b] = samePadsOracle(shape[1], k, s, 1);
      const [l, r] = samePadsOracle(shape[2], k, s, 1);
      check(rng, `same #${i}`, shape, { kernel: k, strides: s, padding: 'same' }, [t, l, b, r]);
      const out = bmaxpool2d(bitpack(tensor('f32', shape, new Float32Array(shape.reduce((a, b) => a * b)))), {
        kernel: k,
        strides: s,
        padding: 'same',
      });
      expect([...out.shape]).toEqual([shape[0], Math.ceil(shape[1] / s), Math.ceil(shape[2] / s), shape[3]]);
    }
  });

  it('explicit pads (each below the kernel); padding never wins the max', () => {
    for (let i = 0; i < 25; ++i) {
      const rng = rngFor(SEED, `pool explicit ${i}`);
      const kh = rng.int(1, 4),
        kw = rng.int(1, 4);
      const pads: Pads = [rng.int(0, kh - 1), rng.int(0, kw - 1), rng.int(0, kh - 1), rng.int(0, kw - 1)];
      const shape = randomShape(rng, kh, kw);
      check(
        rng,
        `explicit #${i}`,
        shape,
        { kernel: [kh, kw], strides: [rng.int(1, 3), rng.int(1, 3)], padding: pads },
        pads,
      );
    }
    // All -1 input: every window (even a mostly padded one) is -1, since padding never wins.
    const x = bitpack(tensor('f32', [1, 2, 2, 70], new Float32Array(280).fill(-1)));
    const out = bmaxpool2d(x, { kernel: 3, strides: 1, padding: [2, 2, 2, 2] });
    expect([...out.shape]).toEqual([1, 4, 4, 70]);
    for (let p = 0; p < 16; ++p)
      expect([out.data[2 * p], out.data[2 * p + 1]]).toEqual([~0n & ((1n << 64n) - 1n), (1n << 6n) - 1n]);
  });
});

// ---- thresholdsFromAffine ----------------------------------------------------------------------------

describe(`thresholdsFromAffine (seed ${SEED})`, () => {
  /**
   * Runs the b1 epilogue with thresholds from (scale, bias) over every reachable y in [-k, k]
   * (row d of x has d negative values against all-positive weights, so y = k - 2d) and returns
   * the mismatches against sign(y * scale + bias) computed in JS (sign(0) = +1).
   */
  function mismatches(scale: number[], bias: number[], k: number): string[] {
    const o = scale.length;
    const { threshold, flip } = thresholdsFromAffine(scale, bias);
    expect(threshold).toBeInstanceOf(Int32Array);
    expect(flip).toBeInstanceOf(Uint8Array);
    const rows = k + 1;
    const x = new Float32Array(rows * k).fill(1);
    for (let d = 0; d < rows; ++d) for (let j = 0; j < d; ++j) x[d * k + j] = -1;
    const w = packBinaryDenseWeights(tensor('f32', [o, k], new Float32Array(o * k).fill(1)));
    const out = bdense(tensor('f32', [rows, k], x), w, { output: { kind: 'b1', threshold, flip } });
    const bits = u32View(out.data);
    const per = 2 * b1Words(o);
    const problems: string[] = [];
    for (let d = 0; d < rows; ++d) {
      const y = k - 2 * d;
      for (let c = 0; c < o; ++c) {
        const got = (bits[d * per + (c >>> 5)] >>> (c & 31)) & 1;
        const want = y * scale[c] + bias[c] < 0 ? 1 : 0;
        if (got !== want)
          problems.push(
            `y=${y} scale=${scale[c]} bias=${bias[c]}: y*scale+bias=${y * scale[c] + bias[c]} wants bit ${want}, got ${got} (threshold ${threshold[c]}, flip ${flip[c]})`,
          );
      }
    }
    return problems;
  }

  it('flip is set exactly for negative scales', () => {
    const { flip } = thresholdsFromAffine([1, -1, 0, -0.5, 2], [0, 0, 0, 1, -1]);
    expect(Array.from(flip)).toEqual([0, 1, 0, 1, 0]);
  });

  it('random positive, negative and zero scales (even and odd K)', () => {
    for (const k of [64, 65, 127]) {
      const rng = rngFor(SEED, `thresholds random ${k}`);
      const scale: number[] = [];
      const bias: number[] = [];
      for (let c = 0; c < 70; ++c) {
        const mode = c % 5;
        scale.push(mode === 0 ? 0 : mode === 1 ? -0 : (rng.float() * 4 - 2) * (rng.bool(0.2) ? 1e-6 : 1));
        bias.push(rng.bool(0.1) ? 0 : (rng.float() * 2 - 1) * k * (rng.bool(0.1) ? 1e6 : 1));
      }
      expect(mismatches(scale, bias, k), `seed=${SEED} K=${k}`).toEqual([]);
    }
  });

  it('float32 (folded batch-norm) scales and biases', () => {
    const rng = rngFor(SEED, 'thresholds f32');
    const k = 99;
    const scale = Array.from({ length: 64 }, () =>
      Math.fround(rng.bool(0.5) ? rng.float() + 0.01 : -rng.float() - 0.01),
    );
    const bias = Array.from({ length: 64 }, () => Math.fround((rng.float() * 2 - 1) * 50));
    expect(mismatches(scale, bias, k), `seed=${SEED}`).toEqual([]);
  });

  it('exact ties y * scale + bias == 0 give +1 (bit 0)', () => {
    // Integer-valued and power-of-two scales: y * scale + bias is exact, so the tie is a real 0.
    const scale = [1, -1, 2, -2, 0.5, -0.5, 0.25, 4];
    const bias = [-3, 3, -6, 6, -1.5, 1.5, 0.25, 12];
    expect(mismatches(scale, bias, 15)).toEqual([]);
  });

  it('near-ties with inexact quotients (-bias / scale rounds across an integer)', () => {
    // 3 * 0.1 + -0.30000000000000004 === 0 in JS, so sign is +1 at y = 3, but
    // -bias / scale = 3.0000000000000004 and ceil() puts the threshold at 4.
    expect(3 * 0.1 + -0.30000000000000004).toBe(0);
    const rng = rngFor(SEED, 'thresholds near ties');
    const scale: number[] = [0.1, -0.1];
    const bias: number[] = [-0.30000000000000004, 0.30000000000000004];
    for (let c = 0; c < 62; ++c) {
      const s = rng.float() * 4 - 2 || 1;
      const y = 2 * rng.int(-16, 16) + 1; // odd, reachable with K = 33
      scale.push(s);
      bias.push(-y * s);
    }
    expect(mismatches(scale, bias, 33), `seed=${SEED}`).toEqual([]);
  });
});

// ---- async ----------------------------------------------------------------------------------------------

function randomConvOperands(rng: Rng, kind: 'f32' | 's8' | 'b1', budget = 400_000) {
  const cs = randomConvCase(rng, budget);
  const cg = cs.c / cs.groups;
  const x = bitpack(tensor('f32', [cs.n, cs.h, cs.w, cs.c], randomSource(rng, 'f32', cs.n * cs.h * cs.w * cs.c)));
  const w = packBinaryConv2dWeights(
    tensor('f32', [cs.o, cs.kh, cs.kw, cg], randomSource(rng, 'f32', cs.o * cs.kh * cs.kw * cg)),
    {
      groups: cs.groups,
    },
  );
  const spec = randomEpilogue(rng, kind, cs.o, cs.kh * cs.kw * cg);
  const options = {
    strides: [cs.sh, cs.sw] as [number, number],
    dilations: [cs.dh, cs.dw] as [number, number],
    padding: cs.padding,
    output: toOutputOption(spec, true),
  };
  return { x, w, options, ctx: `seed=${SEED} ${describeConv(cs)} out=${describeEpilogue(spec)}` };
}

describe(`async forms (seed ${SEED})`, () => {
  it('bconv2dAsync / bdenseAsync / bmaxpool2dAsync / bitpackAsync resolve to the sync results', async () => {
    for (let i = 0; i < 12; ++i) {
      const rng = rngFor(SEED, `async eq ${i}`);
      const kind = (['f32', 's8', 'b1'] as const)[i % 3];
      const { x, w, options, ctx } = randomConvOperands(rng, kind);
      const a = await bconv2dAsync(x, w, options);
      const s = bconv2d(x, w, options);
      expect(a.dtype, ctx).toBe(s.dtype);
      expect([...a.shape], ctx).toEqual([...s.shape]);
      expect(bytesDiff(a.data, s.data), ctx).toBe('');

      const k = rng.pick(AWKWARD_CHANNELS),
        o = rng.pick([1, 8, 65, 200]),
        rows = rng.int(1, 9);
      const xd = tensor('s8', [rows, k], randomSource(rng, 's8', rows * k) as Int8Array);
      const wd = packBinaryDenseWeights(tensor('f32', [o, k], randomSource(rng, 'f32', o * k) as Float32Array));
      const out = { output: toOutputOption(randomEpilogue(rng, kind, o, k), false) };
      const ad = await bdenseAsync(xd, wd, out);
      expect(bytesDiff(ad.data, bdense(xd, wd, out).data), `seed=${SEED} bdense [${rows},${k}]x[${o},${k}] #${i}`).toBe(
        '',
      );
      expect([...ad.shape]).toEqual([rows, o]);

      const po: BMaxPool2dOptions = { kernel: [2, 3], strides: 1, padding: 'same' };
      const ap = await bmaxpool2dAsync(x, po);
      const sp = bmaxpool2d(x, po);
      expect([...ap.shape], ctx).toEqual([...sp.shape]);
      expect(bytesDiff(ap.data, sp.data), ctx).toBe('');
    }
  });

  it('64 concurrent bconv2dAsync calls with distinct inputs all equal their sync results', async () => {
    const rng = rngFor(SEED, 'async concurrent');
    const calls = Array.from({ length: 64 }, (_, i) =>
      randomConvOperands(rngFor(SEED, `async concurrent ${i}`), (['f32', 's8', 'b1'] as const)[i % 3], 150_000),
    );
    const expected = calls.map(({ x, w, options }) => bconv2d(x, w, options));
    const results = await Promise.all(calls.map(({ x, w, options }) => bconv2dAsync(x, w, options)));
    results.forEach((r, i) => {
      expect([...r.shape], calls[i].ctx).toEqual([...expected[i].shape]);
      expect(bytesDiff(r.data, expected[i].data), `call ${i}: ${calls[i].ctx}`).toBe('');
    });
  });

  it('mixed concurrent async operators (conv, dense, pool, pack) all equal sync', async () => {
    const jobs: Array<{ run: () => Promise<Tensor>; want: Tensor; ctx: string }> = [];
    for (let i = 0; i < 48; ++i) {
      const rng = rngFor(SEED, `async mixed ${i}`);
      const { x, w, options, ctx } = randomConvOperands(rng, 'b1', 100_000);
      switch (i % 4) {
        case 0:
          jobs.push({ run: () => bconv2dAsync(x, w, options), want: bconv2d(x, w, options), ctx });
          break;
        case 1: {
          const xd = tensor('b1', [x.shape[0] * x.shape[1] * x.shape[2], x.shape[3]], x.data);
          const wd = packBinaryDenseWeights(
            tensor('f32', [9, x.shape[3]], randomSource(rng, 'f32', 9 * x.shape[3]) as Float32Array),
          );
          jobs.push({ run: () => bdenseAsync(xd, wd), want: bdense(xd, wd), ctx: `dense ${ctx}` });
          break;
        }
        case 2:
          jobs.push({
            run: () => bmaxpool2dAsync(x, { kernel: 2, padding: 'same' }),
            want: bmaxpool2d(x, { kernel: 2, padding: 'same' }),
            ctx: `pool ${ctx}`,
          });
          break;
        default: {
          const xf = tensor('f32', [7, 130], randomSource(rng, 'f32', 910) as Float32Array);
          jobs.push({ run: () => bitpackAsync(xf), want: bitpack(xf), ctx: `pack ${i}` });
        }
      }
    }
    const results = await Promise.all(jobs.map((j) => j.run()));
    results.forEach((r, i) => expect(bytesDiff(r.data, jobs[i].want.data), jobs[i].ctx).toBe(''));
  });

  describe('the binding copies inputs: mutating or transferring them after the call does not change the result', () => {
    function bigConv(label: string) {
      // large enough that the pool is still working when the caller scribbles on the input
      const rng = rngFor(SEED, label);
      const [n, h, w, c, o] = [1, 48, 48, 256, 128];
      const x = bitpack(tensor('f32', [n, h, w, c], randomSource(rng, 'f32', n * h * w * c, false)));
      const weights = packBinaryConv2dWeights(tensor('f32', [o, 3, 3, c], randomSource(rng, 'f32', o * 9 * c, false)));
      const options = {
        padding: 'same-zero' as const,
        output: { kind: 's8' as const, multiplier: new Int32Array(o).fill(1 << 30), shift: new Uint8Array(o).fill(36) },
      };
      return { x, weights, options, want: bconv2d(x, weights, options) };
    }

    it('bconv2dAsync, input words overwritten right after the call', async () => {
      const { x, weights, options, want } = bigConv('copy conv mutate');
      const pending = bconv2dAsync(x, weights, options);
      x.data.fill(0xffffffffffffffffn);
      options.output.multiplier.fill(0);
      expect(bytesDiff((await pending).data, want.data)).toBe('');
    });

    it('bconv2dAsync, input buffer transferred (detached) right after the call', async () => {
      const conv = bigConv('copy conv transfer');
      const { weights, options, want } = conv;
      // bitpack's result sits on an addon-owned (external) ArrayBuffer, which cannot be detached: copy it
      const x = tensor('b1', conv.x.shape, conv.x.data.slice());
      const pending = bconv2dAsync(x, weights, options);
      const moved = structuredClone(x.data.buffer, { transfer: [x.data.buffer] });
      expect(x.data.length).toBe(0); // really detached
      new BigUint64Array(moved).fill(0xaaaaaaaaaaaaaaaan);
      expect(bytesDiff((await pending).data, want.data)).toBe('');
    });

    it('bdenseAsync, input mutated and transferred', async () => {
      const rng = rngFor(SEED, 'copy dense');
      const [rows, k, o] = [512, 2049, 256];
      const packed = bitpack(tensor('f32', [rows, k], randomSource(rng, 'f32', rows * k, false)));
      const x = tensor('b1', packed.shape, packed.data.slice());
      const w = packBinaryDenseWeights(tensor('f32', [o, k], randomSource(rng, 'f32', o * k, false)));
      const want = bdense(x, w);
      const pending = bdenseAsync(x, w);
      x.data.fill(0n);
      structuredClone(x.data.buffer, { transfer: [x.data.buffer] });
      expect(x.data.length).toBe(0);
      expect(bytesDiff((await pending).data, want.data)).toBe('');
    });

    it('bmaxpool2dAsync, input transferred', async () => {
      const rng = rngFor(SEED, 'copy pool');
      const packed = bitpack(tensor('f32', [2, 64, 64, 200], randomSource(rng, 'f32', 2 * 64 * 64 * 200, false)));
      const x = tensor('b1', packed.shape, packed.data.slice());
      const want = bmaxpool2d(x, { kernel: 3, strides: 1, padding: 'same' });
      const pending = bmaxpool2dAsync(x, { kernel: 3, strides: 1, padding: 'same' });
      structuredClone(x.data.buffer, { transfer: [x.data.buffer] });
      expect(x.data.length).toBe(0);
      expect(bytesDiff((await pending).data, want.data)).toBe('');
    });

    it('bitpackAsync, f32 and s8 inputs mutated and transferred', async () => {
      const rng = rngFor(SEED, 'copy pack');
      const f = tensor('f32', [1000, 1000], randomSource(rng, 'f32', 1e6) as Float32Array);
      const s = tensor('s8', [1000, 1000], randomSource(rng, 's8', 1e6) as Int8Array);
      const wantF = bitpack(f),
        wantS = bitpack(s);
      const pf = bitpackAsync(f);
      f.data.fill(-1);
      const ps = bitpackAsync(s);
      structuredClone(s.data.buffer, { transfer: [s.data.buffer] });
      expect(s.data.length).toBe(0);
      expect(bytesDiff((await pf).data, wantF.data)).toBe('');
      expect(bytesDiff((await ps).data, wantS.data)).toBe('');
    });
  });
});

describe(`async lifetimes and thread pools (seed ${SEED})`, () => {
  const gc = (globalThis as { gc?: () => void }).gc;

  it.runIf(gc !== undefined)('weights and inputs dropped and garbage-collected while the async call runs', async () => {
    const pending: Array<Promise<Tensor>> = [];
    const wants: Tensor[] = [];
    for (let i = 0; i < 8; ++i) {
      // everything built inside this block becomes unreachable once the call is queued
      const rng = rngFor(SEED, `gc ${i}`);
      const x = bitpack(tensor('f32', [1, 24, 24, 128], randomSource(rng, 'f32', 24 * 24 * 128, false)));
      const w = packBinaryConv2dWeights(tensor('f32', [64, 3, 3, 128], randomSource(rng, 'f32', 64 * 9 * 128, false)));
      wants.push(bconv2d(x, w, { padding: 'same-zero' }));
      pending.push(bconv2dAsync(x, w, { padding: 'same-zero' }));
    }
    for (let i = 0; i < 5; ++i) gc!();
    const results = await Promise.all(pending);
    for (let i = 0; i < 5; ++i) gc!();
    results.forEach((r, i) => expect(bytesDiff(r.data, wants[i].data), `call ${i}`).toBe(''));
  });

  it('memory stays flat over thousands of calls with 800 KB outputs, sync and async (child process)', () => {
    // Outputs are V8-owned buffers: a tight sync loop must not pile up native memory that only a
    // deferred finalizer would free (it grew to 800 MB here before the outputs moved to V8).
    const script = `import * as L from ${JSON.stringify(compiledLib())};
const x = L.bitpack(L.tensor('f32', [1, 56, 56, 64], Float32Array.from({ length: 56 * 56 * 64 }, (_, i) => Math.sin(i))));
const w = L.packBinaryConv2dWeights(L.tensor('f32', [64, 3, 3, 64], Float32Array.from({ length: 64 * 9 * 64 }, (_, i) => Math.cos(i))));
const opts = { padding: 'same-one' };
const mb = () => { globalThis.gc(); return process.memoryUsage().rss / 2 ** 20; };
const round = async (sync, batches) => {
  for (let i = 0; i < sync; ++i) L.bconv2d(x, w, opts);
  for (let i = 0; i < batches; ++i) await Promise.all(Array.from({ length: 20 }, () => L.bconv2dAsync(x, w, opts)));
};
await round(300, 15); // warm-up: heap, scratch and the allocator arenas of the pool threads
const before = mb();
await round(1500, 60);
const after = mb();
console.log(JSON.stringify({ before, after }));`;
    const r = spawnNode(['--expose-gc', '--input-type=module', '-e', script], {
      cwd: ROOT,
      env: childEnv({}),
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const { before, after } = JSON.parse(r.stdout) as { before: number; after: number };
    // 2,700 outputs of 800 KB = 2.1 GB allocated after the warm-up. The pool threads' allocator
    // arenas swing RSS by +-50 MB from run to run, so the bound is 200 MB: a leak of 10% would show.
    expect(after - before, `RSS ${before.toFixed(0)} MB -> ${after.toFixed(0)} MB`).toBeLessThan(200);
  });

  for (const poolSize of [1, 4])
    it(`UV_THREADPOOL_SIZE=${poolSize}: 128 concurrent async calls equal their sync results (child process)`, () => {
      const script = `import * as L from ${JSON.stringify(compiledLib())};
let state = ${SEED} >>> 0;
const rand = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296);
const jobs = [];
for (let i = 0; i < 128; ++i) {
  const c = [1, 63, 64, 65, 200][i % 5], o = [1, 8, 65][i % 3], h = 1 + (i % 9);
  const x = L.bitpack(L.tensor('f32', [1, h, h + 1, c], Float32Array.from({ length: h * (h + 1) * c }, () => rand() - 0.5)));
  const w = L.packBinaryConv2dWeights(L.tensor('f32', [o, 3, 3, c], Float32Array.from({ length: o * 9 * c }, () => rand() - 0.5)));
  const opts = { padding: i % 2 ? 'same-zero' : 'same-one', output: { kind: 's8', multiplier: new Array(o).fill(1 << 30), shift: new Array(o).fill(31) } };
  jobs.push({ want: L.bconv2d(x, w, opts), got: L.bconv2dAsync(x, w, opts) });
}
const got = await Promise.all(jobs.map((j) => j.got));
let bad = 0;
got.forEach((g, i) => { const a = new Uint8Array(g.data.buffer), b = new Uint8Array(jobs[i].want.data.buffer); if (a.length !== b.length || a.some((v, k) => v !== b[k])) ++bad; });
console.log(JSON.stringify({ n: got.length, bad }));`;
      const r = spawnNode(['--input-type=module', '-e', script], {
        cwd: ROOT,
        env: childEnv({ UV_THREADPOOL_SIZE: String(poolSize) }),
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.signal, r.stderr).toBeNull();
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout), `seed=${SEED}`).toEqual({ n: 128, bad: 0 });
    });
});

describe('preallocated outputs (out)', () => {
  const x = bitpack(
    tensor(
      'f32',
      [1, 9, 7, 70],
      Float32Array.from({ length: 9 * 7 * 70 }, (_, i) => Math.sin(i * 1.7)),
    ),
  );
  const w = packBinaryConv2dWeights(
    tensor(
      'f32',
      [33, 3, 3, 70],
      Float32Array.from({ length: 33 * 9 * 70 }, (_, i) => Math.cos(i * 0.9)),
    ),
  );
  const options = { strides: 2, padding: 'same-zero' as const };

  it('bconv2d writes into out, returns it, and equals a freshly allocated result for each epilogue', () => {
    const outputs = [
      { kind: 'f32' as const, dtype: 'f32' as const },
      {
        kind: 's8' as const,
        dtype: 's8' as const,
        multiplier: new Int32Array(33).fill(3),
        shift: new Uint8Array(33).fill(2),
      },
      { kind: 'b1' as const, dtype: 'b1' as const, threshold: new Int32Array(33) },
    ];
    for (const { dtype, ...output } of outputs) {
      const fresh = bconv2d(x, w, { ...options, output });
      const out = new (fresh.data.constructor as new (n: number) => typeof fresh.data)(fresh.data.length);
      const outTensor = tensor(dtype, fresh.shape, out as never);
      const got = bconv2d(x, w, { ...options, output, out: outTensor as never });
      expect(got).toBe(outTensor);
      expect(Array.from(got.data as ArrayLike<number | bigint>)).toEqual(
        Array.from(fresh.data as ArrayLike<number | bigint>),
      );
    }
  });

  it('bdense writes into out', () => {
    const dw = packBinaryDenseWeights(
      tensor(
        'f32',
        [5, 70],
        Float32Array.from({ length: 350 }, (_, i) => Math.sin(i)),
      ),
    );
    const xd = tensor(
      'f32',
      [3, 70],
      Float32Array.from({ length: 210 }, (_, i) => Math.cos(i)),
    );
    const out = tensor('f32', [3, 5]);
    expect(bdense(xd, dw, { out })).toBe(out);
    expect(Array.from(out.data)).toEqual(Array.from(bdense(xd, dw).data));
  });

  it('a wrong shape, dtype or size is refused before anything is written', () => {
    const shape = bconv2d(x, w, options).shape;
    const wrongShape = tensor('f32', [shape[0], shape[2], shape[1], shape[3]]);
    expect(() => bconv2d(x, w, { ...options, out: wrongShape })).toThrow(ShapeError);
    expect(() => bconv2d(x, w, { ...options, out: wrongShape })).toThrow(
      /out: expected shape \[1, 5, 4, 33\], got \[1, 4, 5, 33\]/,
    );
    expect(wrongShape.data.every((v) => v === 0)).toBe(true);
    expect(() => bconv2d(x, w, { ...options, out: tensor('s8', shape) as never })).toThrow(TypeError);
    expect(() => bconv2d(x, w, { ...options, out: tensor('s8', shape) as never })).toThrow(
      /out: expected dtype f32, got s8/,
    );
  });

  it('the raw async form refuses a preallocated output (it could be detached while the job runs)', () => {
    const shape = bconv2d(x, w, options).shape;
    const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
    expect(() =>
      native.bconv2d(
        x.data,
        [...x.shape],
        w.handle,
        { strides: [2, 2], dilations: [1, 1], pads: [0, 0, 1, 1], padValue: 'zero' },
        { kind: 'f32' },
        { async: true, out },
      ),
    ).toThrow(/out: a preallocated output is only accepted by the sync form/);
  });
});
