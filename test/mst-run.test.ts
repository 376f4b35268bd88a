/**
 * Running binary layers through MST schedules: bconv2d / bdense with `{ mst, mstPolicy: 'always' }`
 * give byte-identical outputs to the dense kernel for random geometries (awkward channels, groups,
 * strides, dilations, every padding kind), every epilogue, every ISA, sync and async, and schedules
 * of every shape (chains, depth bounds, negated parents, identical and complementary channels).
 * Plus the 'auto' policy, the cost model and bad arguments.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  bconv2d,
  bconv2dAsync,
  bdense,
  bdenseAsync,
  buildMst,
  isa,
  loadMst,
  packBinaryConv2dWeights,
  packBinaryDenseWeights,
  setIsa,
  setThreads,
  ShapeError,
  supportedIsas,
  tensor,
  threads,
  type BinaryOutput,
  type BuildMstOptions,
  type MstSchedule,
} from '../lib/index.js';
import { forceThreads } from './helpers/threads.js';
import { describeConv, randomConvCase } from './helpers/cases.js';
import { bytesDiff, randomEpilogue, toOutputOption } from './helpers/oracle.js';
import { fileSeed, rngFor, type Rng } from './helpers/rng.js';

const SEED = fileSeed('mst-run');
const ORIGINAL_ISA = isa();
const ORIGINAL_THREADS = threads();
afterAll(() => {
  setIsa(ORIGINAL_ISA);
  setThreads(ORIGINAL_THREADS);
});

/**
 * o channels of k ±1 values: each a copy of an earlier channel with a fraction `flip` of its values
 * negated (the one before it: chains), or an exact copy, a complement, a near-complement, or unrelated.
 */
function structuredWeights(rng: Rng, o: number, k: number, flip: number): Float32Array {
  const w = new Float32Array(o * k);
  for (let c = 0; c < o; ++c) {
    const kind =
      c === 0
        ? 'random'
        : rng.pick(['random', 'chain', 'flips', 'flips', 'flips', 'copy', 'complement', 'near-complement'] as const);
    const from = kind === 'chain' ? c - 1 : rng.int(0, Math.max(0, c - 1));
    for (let i = 0; i < k; ++i) {
      const v = w[from * k + i];
      w[c * k + i] =
        kind === 'random'
          ? rng.bool()
            ? 1
            : -1
          : kind === 'copy'
            ? v
            : kind === 'complement'
              ? -v
              : kind === 'near-complement'
                ? rng.bool(0.9)
                  ? -v
                  : v
                : rng.bool(flip)
                  ? -v
                  : v;
    }
  }
  return w;
}

function randomScheduleOptions(rng: Rng): BuildMstOptions {
  return { maxDepth: rng.pick([undefined, undefined, 0, 1, 2]), allowNegation: rng.bool() };
}

describe('bconv2d through an MST schedule equals the dense kernel', () => {
  const rng = rngFor(SEED, 'conv');
  for (let i = 0; i < 24; ++i) {
    const c = randomConvCase(rng, 1_500_000);
    const options = randomScheduleOptions(rng);
    const kind = rng.pick(['f32', 's8', 'b1'] as const);
    const k = c.kh * c.kw * (c.c / c.groups);
    const output = toOutputOption(randomEpilogue(rng, kind, c.o, k), rng.bool()) as BinaryOutput;
    const flip = rng.pick([0.01, 0.05, 0.2]);
    it(`${describeConv(c)} ${kind} maxDepth=${options.maxDepth} negation=${options.allowNegation}`, () => {
      const w = packBinaryConv2dWeights(
        tensor('f32', [c.o, c.kh, c.kw, c.c / c.groups], structuredWeights(rng, c.o, k, flip)),
        { groups: c.groups },
      );
      const mst = buildMst(w, options);
      const x = tensor(
        'f32',
        [c.n, c.h, c.w, c.c],
        Float32Array.from({ length: c.n * c.h * c.w * c.c }, () => rng.float() - 0.5),
      );
      const conv = {
        strides: [c.sh, c.sw] as [number, number],
        dilations: [c.dh, c.dw] as [number, number],
        padding: c.padding,
        output,
      };
      for (const name of supportedIsas()) {
        setIsa(name);
        const want = bconv2d(x, w, conv);
        const got = bconv2d(x, w, { ...conv, mst, mstPolicy: 'always' });
        expect(got.shape).toEqual(want.shape);
        expect(bytesDiff(got.data, want.data), `${name}, schedule depth ${mst.stats.depth}`).toBe('');
        expect(bytesDiff(bconv2d(x, w, { ...conv, mst }).data, want.data), `${name} auto`).toBe('');
      }
    });
  }

  it('async, several threads and many tiles give the same bytes', async () => {
    const rng2 = rngFor(SEED, 'async');
    const w = packBinaryConv2dWeights(tensor('f32', [40, 3, 3, 24], structuredWeights(rng2, 40, 216, 0.05)));
    const mst = buildMst(w, { allowNegation: true });
    const x = tensor(
      'f32',
      [3, 17, 19, 24],
      Float32Array.from({ length: 3 * 17 * 19 * 24 }, () => rng2.float() - 0.5),
    );
    const conv = {
      padding: 'same-zero' as const,
      output: { kind: 's8' as const, multiplier: new Array(40).fill(1 << 20), shift: new Array(40).fill(22) },
    };
    const want = bconv2d(x, w, conv);
    for (const n of [1, 2, 3]) {
      forceThreads(n);
      expect(bytesDiff(bconv2d(x, w, { ...conv, mst, mstPolicy: 'always' }).data, want.data), `${n} threads`).toBe('');
      expect(
        bytesDiff((await bconv2dAsync(x, w, { ...conv, mst, mstPolicy: 'always' })).data, want.data),
        `async, ${n} threads`,
      ).toBe('');
    }
    setThreads(ORIGINAL_THREADS);
  });

  it('a schedule read back from its file runs the layer it describes', () => {
    const rng2 = rngFor(SEED, 'file');
    const w = packBinaryConv2dWeights(tensor('f32', [33, 3, 3, 10], structuredWeights(rng2, 33, 90, 0.03)));
    const loaded = loadMst(buildMst(w, { allowNegation: true, maxDepth: 3 }).serialize());
    const x = tensor(
      'f32',
      [1, 9, 9, 10],
      Float32Array.from({ length: 810 }, () => rng2.float() - 0.5),
    );
    const want = bconv2d(x, w, { padding: 'same-one' });
    const got = bconv2d(x, loaded.weights, { padding: 'same-one', mst: loaded.schedule, mstPolicy: 'always' });
    expect(bytesDiff(got.data, want.data)).toBe('');
  });
});

describe('bdense through an MST schedule equals the dense kernel', () => {
  const rng = rngFor(SEED, 'dense');
  for (const rows of [1, 7, 256, 300]) {
    it(`rows ${rows}`, async () => {
      const inF = rng.pick([1, 63, 64, 65, 200, 513]);
      const o = rng.pick([1, 8, 65, 130]);
      const w = packBinaryDenseWeights(tensor('f32', [o, inF], structuredWeights(rng, o, inF, 0.04)));
      const mst = buildMst(w, randomScheduleOptions(rng));
      const x = tensor(
        'f32',
        [rows, inF],
        Float32Array.from({ length: rows * inF }, () => rng.float() - 0.5),
      );
      const output = toOutputOption(randomEpilogue(rng, 'b1', o, inF), true) as BinaryOutput;
      for (const name of supportedIsas()) {
        setIsa(name);
        const want = bdense(x, w, { output });
        expect(bytesDiff(bdense(x, w, { output, mst, mstPolicy: 'always' }).data, want.data), name).toBe('');
        expect(
          bytesDiff((await bdenseAsync(x, w, { output, mst, mstPolicy: 'always' })).data, want.data),
          `${name} async`,
        ).toBe('');
      }
    });
  }
});

describe('the cost model and bad arguments', () => {
  const rng = rngFor(SEED, 'cost');
  const w = packBinaryConv2dWeights(tensor('f32', [128, 3, 3, 64], structuredWeights(rng, 128, 576, 0.02)));
  const mst: MstSchedule = buildMst(w, { allowNegation: true });

  it('predicts dense for a single pixel and MST for conv3x3-c256-14 at d/K 2%', () => {
    setThreads(1);
    const one = mst.predictCost(1);
    expect(one.runnable).toBe(true);
    expect(one.useMst).toBe(false);
    expect(one.dense).toBeLessThan(one.mst);
    // Each channel the one before with 2% of its bits flipped: measured 2-3x faster through the tree.
    const chain = new Float32Array(256 * 2304);
    for (let c = 0; c < 256; ++c)
      for (let i = 0; i < 2304; ++i)
        chain[c * 2304 + i] = c === 0 ? (rng.bool() ? 1 : -1) : chain[(c - 1) * 2304 + i] * (rng.bool(0.02) ? -1 : 1);
    const near = buildMst(packBinaryConv2dWeights(tensor('f32', [256, 3, 3, 256], chain)));
    const layer = near.predictCost(14 * 14);
    expect(layer.useMst).toBe(true);
    expect(layer.mst * 1.1).toBeLessThanOrEqual(layer.dense);
    setThreads(ORIGINAL_THREADS);
    expect(() => mst.predictCost(0)).toThrow(RangeError);
  });

  it('refuses a schedule of other weights, a bad policy and a non-schedule', () => {
    const other = packBinaryConv2dWeights(tensor('f32', [128, 3, 3, 64], structuredWeights(rng, 128, 576, 0.02)));
    const x = tensor('f32', [1, 5, 5, 64], new Float32Array(1600));
    expect(() => bconv2d(x, other, { mst })).toThrow(ShapeError);
    expect(() => bconv2d(x, other, { mst })).toThrow(/built for other weights/);
    expect(() => bconv2d(x, w, { mst, mstPolicy: 'sometimes' as 'auto' })).toThrow(RangeError);
    expect(() => bconv2d(x, w, { mst: {} as MstSchedule })).toThrow(TypeError);
    expect(() => bconv2d(x, w, { mst: { handle: {} } as unknown as MstSchedule })).toThrow(TypeError);
    const dense = packBinaryDenseWeights(tensor('f32', [4, 10], new Float32Array(40)));
    expect(() => bdense(tensor('f32', [1, 10], new Float32Array(10)), dense, { mst })).toThrow(ShapeError);
  });
});
