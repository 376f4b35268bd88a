/**
 * bconv2d against an independent TypeScript oracle: a plain convolution of the +-1 values computed
 * from the float / int8 source tensors (never from packed bits), on randomized awkward shapes, with
 * all paddings and all three epilogues. Replay a failure with the printed LOWBIT_TEST_SEED.
 */
import { describe, expect, it } from 'vitest';
import {
  bconv2d,
  bitpack,
  isa,
  packBinaryConv2dWeights,
  packBinaryDenseWeights,
  tensor,
  type Tensor,
} from '../lib/index.js';
import { describeConv, fixedConvCase, PADDING_KINDS, randomConvCase, type ConvCase } from './helpers/cases.js';
import {
  actualData,
  convOracle,
  describeEpilogue,
  diff,
  expectEpilogue,
  randomEpilogue,
  randomSource,
  samePadsOracle,
  toOutputOption,
  type Source,
} from './helpers/oracle.js';
import { fileSeed, rngFor, type Rng } from './helpers/rng.js';

const SEED = fileSeed('binary-oracle');
const KINDS = ['f32', 's8', 'b1'] as const;
type Kind = (typeof KINDS)[number];

function pairOption(rng: Rng, a: number, b: number): number | [number, number] | undefined {
  if (a === b && a === 1 && rng.bool(0.3)) return undefined; // the default
  return a === b && rng.bool(0.5) ? a : [a, b];
}

/** Builds the inputs of a case, runs bconv2d and the oracle, and compares exactly. */
function checkCase(label: string, cs: ConvCase, kind: Kind, rng: Rng, data?: { x: Source; w: Source }): void {
  const cg = cs.c / cs.groups;
  const xSrc = data?.x ?? randomSource(rng, cs.inDtype === 's8' ? 's8' : 'f32', cs.n * cs.h * cs.w * cs.c);
  const wSrc = data?.w ?? randomSource(rng, cs.wDtype, cs.o * cs.kh * cs.kw * cg);
  const xShape = [cs.n, cs.h, cs.w, cs.c];
  const xf = tensor(xSrc instanceof Int8Array ? 's8' : 'f32', xShape, xSrc);
  const x: Tensor = cs.inDtype === 'b1' ? bitpack(xf) : xf;
  const w = packBinaryConv2dWeights(tensor(wSrc instanceof Int8Array ? 's8' : 'f32', [cs.o, cs.kh, cs.kw, cg], wSrc), {
    groups: cs.groups,
  });
  const spec = randomEpilogue(rng, kind, cs.o, cs.kh * cs.kw * cg);
  const ctx = `seed=${SEED} test="${label}" isa=${isa()} ${describeConv(cs)} out=${describeEpilogue(spec)}`;

  const { y, shape } = convOracle(xSrc, wSrc, cs);
  const out = bconv2d(x, w, {
    strides: pairOption(rng, cs.sh, cs.sw),
    dilations: pairOption(rng, cs.dh, cs.dw),
    padding: cs.paddingKind === 'valid' && rng.bool(0.3) ? undefined : cs.padding,
    output: toOutputOption(spec, rng.bool()),
  });
  expect(out.dtype, ctx).toBe(kind);
  expect([...out.shape], ctx).toEqual(shape);
  const expected = expectEpilogue(y, cs.o, spec);
  const o = cs.o;
  const message = diff(actualData(out.data), expected, shape, kind === 'b1', (i) =>
    kind === 'b1' ? `y[0..3]=${Array.from(y.subarray(i * o, i * o + Math.min(o, 4)))}` : `(y=${y[i]})`,
  );
  expect(message, ctx).toBe('');
}

describe(`bconv2d vs oracle, every padding x epilogue (seed ${SEED})`, () => {
  for (const paddingKind of PADDING_KINDS)
    for (const kind of KINDS)
      for (let i = 0; i < 4; ++i) {
        const label = `${paddingKind} ${kind} #${i}`;
        const cs = randomConvCase(rngFor(SEED, `case ${label}`), undefined, undefined, paddingKind);
        it(`${label}: ${describeConv(cs)}`, () => {
          checkCase(label, cs, kind, rngFor(SEED, `data ${label}`));
        });
      }
});

describe(`bconv2d vs oracle, fully random (seed ${SEED})`, () => {
  for (let i = 0; i < 30; ++i) {
    const label = `random #${i}`;
    const rng = rngFor(SEED, `case ${label}`);
    const cs = randomConvCase(rng);
    const kind = rng.pick(KINDS);
    it(`${label} ${kind}: ${describeConv(cs)}`, () => {
      checkCase(label, cs, kind, rngFor(SEED, `data ${label}`));
    });
  }
});

describe(`bconv2d vs oracle, edge shapes (seed ${SEED})`, () => {
  const edges: Array<[string, Parameters<typeof fixedConvCase>[1]]> = [
    ['C=512 small image deep K', { h: 3, w: 3, c: 512, o: 65, kh: 3, kw: 3, paddingKind: 'same-zero' }],
    ['C=512 5x5 deep K (>31 AVX2 steps), O=9', { h: 5, w: 5, c: 512, o: 9, kh: 5, kw: 5, paddingKind: 'same-zero' }],
    ['C=512 5x5 deep K, O=7 (narrow path)', { h: 4, w: 5, c: 512, o: 7, kh: 5, kw: 5, paddingKind: 'same-one' }],
    ['C=3 56x56 stride 2', { h: 56, w: 56, c: 3, o: 8, kh: 3, kw: 3, sh: 2, sw: 2, paddingKind: 'same-one' }],
    ['C=1 56x56 5x5 dilation 2', { h: 56, w: 56, c: 1, o: 3, kh: 5, kw: 5, dh: 2, dw: 2, paddingKind: 'same-zero' }],
    ['C=1 1x1 image 5x5 kernel', { h: 1, w: 1, c: 1, o: 1, kh: 5, kw: 5, paddingKind: 'same-zero' }],
    ['C=65 1x1 kernel direct path', { h: 1, w: 1, c: 65, o: 200, kh: 1, kw: 1, paddingKind: 'valid' }],
    ['C=128 direct path N=2', { n: 2, h: 7, w: 7, c: 128, o: 64, kh: 1, kw: 1, paddingKind: 'valid' }],
    [
      'C=200 groups=4 asymmetric zero pads',
      { h: 6, w: 6, c: 200, o: 8, kh: 5, kw: 5, groups: 4, paddingKind: 'explicit-zero', pads: [4, 0, 1, 3] },
    ],
    [
      'C=64 groups=2 windows wholly in padding (one)',
      {
        h: 3,
        w: 3,
        c: 64,
        o: 4,
        kh: 3,
        kw: 3,
        dh: 2,
        dw: 2,
        groups: 2,
        paddingKind: 'explicit-one',
        pads: [5, 5, 5, 5],
      },
    ],
    [
      'C=64 groups=2 windows wholly in padding (zero)',
      {
        h: 3,
        w: 3,
        c: 64,
        o: 4,
        kh: 3,
        kw: 3,
        dh: 2,
        dw: 2,
        groups: 2,
        paddingKind: 'explicit-zero',
        pads: [5, 5, 5, 5],
      },
    ],
    [
      'C=127 non-square kernel 1x5 stride 2x1',
      { h: 9, w: 11, c: 127, o: 63, kh: 1, kw: 5, sh: 2, sw: 1, paddingKind: 'same-zero' },
    ],
    [
      'C=63 groups=1 s8 inputs',
      {
        h: 8,
        w: 8,
        c: 63,
        o: 127,
        kh: 3,
        kw: 3,
        inDtype: 's8',
        wDtype: 's8',
        paddingKind: 'explicit-zero',
        pads: [0, 2, 2, 0],
      },
    ],
    [
      'C=4 groups=4 (depthwise-like), O=4',
      { h: 10, w: 10, c: 4, o: 4, kh: 3, kw: 3, groups: 4, paddingKind: 'same-zero' },
    ],
    [
      'C=64 b1 input, stride 2 dilation 2',
      { h: 13, w: 13, c: 64, o: 64, kh: 3, kw: 3, sh: 2, sw: 2, dh: 2, dw: 2, inDtype: 'b1', paddingKind: 'same-zero' },
    ],
  ];
  for (const [name, g] of edges)
    for (const kind of KINDS) {
      const label = `edge ${name} ${kind}`;
      const cs = fixedConvCase(rngFor(SEED, `case ${label}`), g);
      it(`${name} ${kind}: ${describeConv(cs)}`, () => {
        checkCase(label, cs, kind, rngFor(SEED, `data ${label}`));
      });
    }

  it('all-negative and all-positive inputs reach the extremes y = +-K', () => {
    const rng = rngFor(SEED, 'extremes');
    const cs = fixedConvCase(rng, { h: 4, w: 4, c: 200, o: 3, kh: 3, kw: 3, paddingKind: 'valid' });
    for (const fill of [-1, 1]) {
      const x = new Float32Array(cs.h * cs.w * cs.c).fill(fill);
      const w = new Float32Array(cs.o * 9 * cs.c).fill(-1);
      checkCase(`extremes ${fill}`, cs, 'f32', rng, { x, w });
    }
  });

  it('dense-packed weights work as a 1x1 convolution', () => {
    const rng = rngFor(SEED, 'dense as conv');
    const xSrc = randomSource(rng, 'f32', 2 * 3 * 5 * 65);
    const wSrc = randomSource(rng, 'f32', 9 * 65);
    const w = packBinaryDenseWeights(tensor('f32', [9, 65], wSrc));
    const out = bconv2d(tensor('f32', [2, 3, 5, 65], xSrc), w);
    const cs = fixedConvCase(rng, { n: 2, h: 3, w: 5, c: 65, o: 9, kh: 1, kw: 1, paddingKind: 'valid' });
    const { y, shape } = convOracle(xSrc, wSrc, cs);
    expect([...out.shape]).toEqual(shape);
    expect(diff(out.data as Float32Array, Float32Array.from(y), shape, false), `seed=${SEED}`).toBe('');
  });
});

describe('SAME padding geometry', () => {
  it('output size is ceil(H / stride) for every small H, kernel, stride and dilation', () => {
    const problems: string[] = [];
    for (const padding of ['same-one', 'same-zero'] as const)
      for (const k of [1, 2, 3, 4, 5])
        for (const s of [1, 2, 3])
          for (const d of [1, 2])
            for (const h of [1, 2, 3, 4, 5, 6, 7, 8, 9]) {
              const w = packBinaryConv2dWeights(tensor('f32', [1, k, k, 1], new Float32Array(k * k).fill(1)));
              const x = tensor('f32', [1, h, h + 1, 1], new Float32Array(h * (h + 1)).fill(1));
              const out = bconv2d(x, w, { strides: s, dilations: d, padding });
              const want = [1, Math.ceil(h / s), Math.ceil((h + 1) / s), 1];
              if (out.shape.join() !== want.join())
                problems.push(`${padding} k=${k} s=${s} d=${d} H=${h}: got [${out.shape}], want [${want}]`);
            }
    expect(problems).toEqual([]);
  });

  it('the extra pad goes at the bottom/right (k=2, stride 1: pads [0, 0, 1, 1])', () => {
    // All +1 input and weights with zero padding: y counts the taps that land inside the image.
    const w = packBinaryConv2dWeights(tensor('f32', [1, 2, 2, 1], new Float32Array(4).fill(1)));
    const x = tensor('f32', [1, 4, 4, 1], new Float32Array(16).fill(1));
    const out = bconv2d(x, w, { padding: 'same-zero' });
    expect([...out.shape]).toEqual([1, 4, 4, 1]);
    // prettier-ignore
    expect(Array.from(out.data)).toEqual([
      4, 4, 4, 2,
      4, 4, 4, 2,
      4, 4, 4, 2,
      2, 2, 2, 1,
    ]);
    // With 'one' padding the padded taps count as +1.
    expect(Array.from(bconv2d(x, w, { padding: 'same-one' }).data)).toEqual(new Array(16).fill(4));
  });

  it('the extra pad goes at the bottom/right (6x7, k=3, stride 2)', () => {
    // H=6: out 3, total pad 1 -> [0, 1]; W=7: out 4, total 2 -> [1, 1].
    expect(samePadsOracle(6, 3, 2, 1)).toEqual([0, 1]);
    expect(samePadsOracle(7, 3, 2, 1)).toEqual([1, 1]);
    const w = packBinaryConv2dWeights(tensor('f32', [1, 3, 3, 1], new Float32Array(9).fill(1)));
    const x = tensor('f32', [1, 6, 7, 1], new Float32Array(42).fill(1));
    const out = bconv2d(x, w, { strides: 2, padding: 'same-zero' });
    expect([...out.shape]).toEqual([1, 3, 4, 1]);
    // rows: taps in-image per output row = 3, 3, 2; columns: 2, 3, 3, 2
    // prettier-ignore
    expect(Array.from(out.data)).toEqual([
      6, 9, 9, 6,
      6, 9, 9, 6,
      4, 6, 6, 4,
    ]);
  });

  it('SAME with dilation: 5x5 image, k=3, d=2 pads [2, 2] on each side', () => {
    const w = packBinaryConv2dWeights(tensor('f32', [1, 3, 3, 1], new Float32Array(9).fill(1)));
    const x = tensor('f32', [1, 5, 5, 1], new Float32Array(25).fill(1));
    const out = bconv2d(x, w, { dilations: 2, padding: 'same-zero' });
    // taps at offsets -2, 0, +2: inside counts per position 2, 2, 3, 2, 2
    const per = [2, 2, 3, 2, 2];
    expect(Array.from(out.data)).toEqual(per.flatMap((a) => per.map((b) => a * b)));
  });
});
