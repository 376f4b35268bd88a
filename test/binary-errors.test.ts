/**
 * Negative inputs: bad arguments never crash and throw a named class (TypeError, RangeError,
 * ShapeError, UnsupportedError) whose message says what was expected and what arrived. Table
 * driven: [name, call, class, message regex]. Raw-addon garbage and the calls that could crash run
 * in child processes, so a crash is a failed test naming the case.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  bconv2d,
  bconv2dAsync,
  bdense,
  bdenseAsync,
  bitpack,
  bitpackAsync,
  bmaxpool2d,
  bmaxpool2dAsync,
  LowbitError,
  packBinaryConv2dWeights,
  packBinaryDenseWeights,
  PackedBinaryWeights,
  setIsa,
  setThreads,
  ShapeError,
  supportedIsas,
  tensor,
  Tensor,
  thresholdsFromAffine,
  UnsupportedError,
  type Isa,
} from '../lib/index.js';
import { native } from '../lib/native.js';
import { ADDON, childEnv, compiledLib, ROOT, spawnNode } from './helpers/compile-lib.js';

type ErrorClass = new (...args: any[]) => Error;
type Row = [name: string, call: () => unknown, cls: ErrorClass, message: RegExp];

/** Asserts that `call` throws exactly `cls` (not a subclass of a different kind) with a matching message. */
function expectThrows(name: string, call: () => unknown, cls: ErrorClass, message: RegExp): void {
  let error: unknown;
  try {
    call();
  } catch (e) {
    error = e;
  }
  expect(error, `${name}: did not throw`).toBeDefined();
  expect(error, `${name}: threw ${String(error)}`).toBeInstanceOf(cls);
  expect((error as Error).constructor, `${name}: threw ${(error as Error).constructor?.name}: ${String(error)}`).toBe(
    cls,
  );
  expect((error as Error).message, name).toMatch(message);
}

// ---- fixtures ------------------------------------------------------------------------------------------

const x64 = () => tensor('f32', [1, 4, 4, 64]);
const xb64 = () => bitpack(x64());
const w3 = packBinaryConv2dWeights(tensor('f32', [8, 3, 3, 64])); // 3x3, 64 -> 8
const wd = packBinaryDenseWeights(tensor('f32', [8, 64])); // dense 64 -> 8
const f32x = (n: number) => new Float32Array(n);
const detach = <T extends ArrayBufferView>(t: T): T => {
  structuredClone(t.buffer, { transfer: [t.buffer as ArrayBuffer] });
  return t;
};
const foreignIsa: Isa = process.arch === 'arm64' ? 'avx2' : 'neon';

// ---- the table ----------------------------------------------------------------------------------------------

const rows: Row[] = [
  // dtype
  [
    's32 tensor into bitpack',
    () => bitpack(tensor('s32', [4]) as any),
    TypeError,
    /input: expected dtype f32 or s8, got s32/,
  ],
  ['u8 tensor into bitpack', () => bitpack(tensor('u8', [4]) as any), TypeError, /expected dtype f32 or s8, got u8/],
  ['b1 tensor into bitpack', () => bitpack(tensor('b1', [4]) as any), TypeError, /expected dtype f32 or s8, got b1/],
  [
    's32 tensor into bconv2d',
    () => bconv2d(tensor('s32', [1, 4, 4, 64]), w3),
    TypeError,
    /input: expected dtype b1 or f32 or s8, got s32/,
  ],
  ['s32 tensor into bdense', () => bdense(tensor('s32', [2, 64]), wd), TypeError, /expected dtype .*got s32/],
  [
    'f32 tensor into bmaxpool2d',
    () => bmaxpool2d(x64() as any, { kernel: 2 }),
    TypeError,
    /input: expected dtype b1, got f32/,
  ],
  [
    's32 weights',
    () => packBinaryConv2dWeights(tensor('s32', [8, 3, 3, 64]) as any),
    TypeError,
    /weights: expected dtype f32 or s8, got s32/,
  ],
  [
    'b1 dense weights',
    () => packBinaryDenseWeights(tensor('b1', [8, 64]) as any),
    TypeError,
    /weights: expected dtype f32 or s8, got b1/,
  ],
  // rank
  [
    'rank-3 input into bconv2d',
    () => bconv2d(tensor('f32', [4, 4, 64]), w3),
    ShapeError,
    /input: expected rank 4, got shape \[4, 4, 64\] \(rank 3\)/,
  ],
  [
    'rank-4 input into bdense',
    () => bdense(x64(), wd),
    ShapeError,
    /input: expected rank 2, got shape \[1, 4, 4, 64\] \(rank 4\)/,
  ],
  [
    'rank-3 input into bmaxpool2d',
    () => bmaxpool2d(tensor('b1', [4, 4, 64]), { kernel: 2 }),
    ShapeError,
    /expected rank 4, got shape \[4, 4, 64\]/,
  ],
  [
    'rank-2 conv weights',
    () => packBinaryConv2dWeights(tensor('f32', [8, 64])),
    ShapeError,
    /weights: expected rank 4, got shape \[8, 64\] \(rank 2\)/,
  ],
  [
    'rank-4 dense weights',
    () => packBinaryDenseWeights(tensor('f32', [8, 1, 1, 64])),
    ShapeError,
    /weights: expected rank 2, got shape \[8, 1, 1, 64\]/,
  ],
  ['rank-0 bitpack', () => bitpack(tensor('f32', [])), ShapeError, /scalar has no channel axis/],
  // channels / features
  [
    'conv channel mismatch',
    () => bconv2d(tensor('f32', [1, 4, 4, 65]), w3),
    ShapeError,
    /input: has 65 channels but the weights expect 64/,
  ],
  [
    'grouped conv channel mismatch',
    () => bconv2d(x64(), packBinaryConv2dWeights(tensor('f32', [8, 3, 3, 30]), { groups: 2 })),
    ShapeError,
    /has 64 channels but the weights expect 60 \(30 x 2 groups\)/,
  ],
  [
    'dense feature mismatch',
    () => bdense(tensor('f32', [2, 65]), wd),
    ShapeError,
    /input: has 65 features but the weights expect 64/,
  ],
  // Tensor constructor
  [
    'Tensor data too short',
    () => tensor('f32', [2, 3], f32x(5)),
    ShapeError,
    /data: shape \[2, 3\] \(f32\) needs 6 elements, got 5/,
  ],
  ['Tensor data too long', () => tensor('s8', [2, 3], new Int8Array(7)), ShapeError, /needs 6 elements, got 7/],
  [
    'b1 Tensor data too short',
    () => tensor('b1', [2, 65], new BigUint64Array(3)),
    ShapeError,
    /shape \[2, 65\] \(b1\) needs 4 64-bit words, got 3/,
  ],
  [
    'Tensor wrong data kind',
    () => tensor('f32', [4], new Int8Array(4) as any),
    TypeError,
    /data: a f32 tensor needs a Float32Array, got Int8Array/,
  ],
  ['Tensor plain array data', () => tensor('f32', [2], [1, 2] as any), TypeError, /needs a Float32Array, got Array/],
  [
    'Tensor unknown dtype',
    () => tensor('f16' as any, [4]),
    TypeError,
    /dtype: expected one of f32, s8, u8, s32, b1, got f16/,
  ],
  [
    'Tensor shape not an array',
    () => tensor('f32', 4 as any),
    TypeError,
    /shape: expected an array of dimensions, got number/,
  ],
  [
    'Tensor negative dim',
    () => tensor('f32', [2, -1]),
    RangeError,
    /shape\[1\]: expected a non-negative integer, got -1/,
  ],
  [
    'Tensor fractional dim',
    () => tensor('f32', [1.5]),
    RangeError,
    /shape\[0\]: expected a non-negative integer, got 1.5/,
  ],
  ['Tensor NaN dim', () => tensor('f32', [NaN]), RangeError, /shape\[0\]: expected a non-negative integer, got NaN/],
  [
    'Tensor [2^40, 2^40, 1, 1] (product overflows)',
    () => tensor('f32', [2 ** 40, 2 ** 40, 1, 1]),
    RangeError,
    /shape \[1099511627776, 1099511627776, 1, 1\] is too large/,
  ],
  ['b1 Tensor [2^40, 2^40, 1, 64]', () => tensor('b1', [2 ** 40, 2 ** 40, 1, 64]), RangeError, /is too large/],
  ['Tensor [2^31, 2^31] with data', () => tensor('f32', [2 ** 31, 2 ** 31], f32x(4)), RangeError, /is too large/],
  ['Tensor dim 2^53', () => tensor('f32', [2 ** 53]), RangeError, /shape\[0\]: expected a non-negative integer/],
  // data swapped or detached after construction
  [
    'detached b1 input into bconv2d',
    () => {
      const x = xb64();
      const y = tensor('b1', x.shape, x.data.slice());
      detach(y.data);
      return bconv2d(y, w3);
    },
    ShapeError,
    /input: shape \[1, 4, 4, 64\] needs 16 values, its data has 0/,
  ],
  [
    'detached f32 input into bconv2d',
    () => {
      const x = x64();
      detach(x.data);
      return bconv2d(x, w3);
    },
    ShapeError,
    /needs 1024 values, its data has 0/,
  ],
  [
    'detached input into bdense',
    () => {
      const x = tensor('f32', [2, 64]);
      detach(x.data);
      return bdense(x, wd);
    },
    ShapeError,
    /needs 128 values, its data has 0/,
  ],
  [
    'detached input into bmaxpool2d',
    () => {
      const x = tensor('b1', [1, 4, 4, 64]);
      detach(x.data);
      return bmaxpool2d(x, { kernel: 2 });
    },
    ShapeError,
    /its data has 0/,
  ],
  [
    'detached input into bitpack',
    () => {
      const x = tensor('s8', [3, 5]);
      detach(x.data);
      return bitpack(x);
    },
    ShapeError,
    /needs 15 values, its data has 0/,
  ],
  [
    'detached weights tensor',
    () => {
      const w = tensor('f32', [8, 64]);
      detach(w.data);
      return packBinaryDenseWeights(w);
    },
    ShapeError,
    /weights: .*its data has 0/,
  ],
  [
    'data replaced by a shorter array',
    () => {
      const x = xb64();
      Object.defineProperty(x, 'data', { value: new BigUint64Array(3) });
      return bconv2d(x, w3);
    },
    ShapeError,
    /needs 16 values, its data has 3/,
  ],
  [
    'b1 data replaced by a Float64Array of the right length',
    () => {
      const x = xb64();
      Object.defineProperty(x, 'data', { value: new Float64Array(16) });
      return bconv2d(x, w3);
    },
    TypeError,
    /input: a b1 tensor needs a BigUint64Array, its data is a Float64Array/,
  ],
  [
    'f32 data replaced by an Int32Array of the right length',
    () => {
      const x = x64();
      Object.defineProperty(x, 'data', { value: new Int32Array(1024) });
      return bitpack(x);
    },
    TypeError,
    /input: a f32 tensor needs a Float32Array, its data is a Int32Array/,
  ],
  // weights of the wrong kind
  [
    '3x3 conv weights into bdense',
    () => bdense(tensor('f32', [2, 64]), w3),
    ShapeError,
    /bdense needs weights from packBinaryDenseWeights/,
  ],
  [
    'grouped 1x1 weights into bdense',
    () => bdense(tensor('f32', [2, 64]), packBinaryConv2dWeights(tensor('f32', [8, 1, 1, 32]), { groups: 2 })),
    ShapeError,
    /bdense needs weights from packBinaryDenseWeights/,
  ],
  ['plain object as weights', () => bconv2d(x64(), {} as any), TypeError, /weights: expected PackedBinaryWeights/],
  [
    'a Tensor as weights',
    () => bconv2d(x64(), tensor('f32', [8, 3, 3, 64]) as any),
    TypeError,
    /weights: expected PackedBinaryWeights/,
  ],
  [
    'the raw handle as weights',
    () => bdense(tensor('f32', [2, 64]), wd.handle as any),
    TypeError,
    /weights: expected PackedBinaryWeights/,
  ],
  [
    'groups 0',
    () => packBinaryConv2dWeights(tensor('f32', [8, 3, 3, 64]), { groups: 0 }),
    RangeError,
    /groups: expected an integer >= 1, got 0/,
  ],
  [
    'groups 1.5',
    () => packBinaryConv2dWeights(tensor('f32', [8, 3, 3, 64]), { groups: 1.5 }),
    RangeError,
    /groups: expected an integer >= 1, got 1.5/,
  ],
  [
    'groups not dividing outputs',
    () => packBinaryConv2dWeights(tensor('f32', [8, 3, 3, 64]), { groups: 3 }),
    ShapeError,
    /output channels \(8\) must be a multiple of groups \(3\)/,
  ],
  [
    'zero-size weights',
    () => packBinaryConv2dWeights(tensor('f32', [0, 3, 3, 64])),
    ShapeError,
    /every dimension must be at least 1 \(O=0/,
  ],
  [
    'weights over the kh*kw*I limit',
    () => packBinaryConv2dWeights(tensor('s8', [1, 4097, 4097, 1])),
    RangeError,
    /16785409 bits per output channel exceeds the limit of 16777216/,
  ],
  // non-finite epilogue values
  [
    'NaN scale',
    () => bconv2d(x64(), w3, { output: { kind: 'f32', scale: [1, NaN, 1, 1, 1, 1, 1, 1] } }),
    RangeError,
    /output\.scale\[1\]: expected a finite number, got NaN/,
  ],
  [
    'Infinity scale',
    () => bconv2d(x64(), w3, { output: { kind: 'f32', scale: new Array(8).fill(Infinity) } }),
    RangeError,
    /output\.scale\[0\]: expected a finite number, got Infinity/,
  ],
  [
    'NaN bias',
    () => bdense(tensor('f32', [2, 64]), wd, { output: { kind: 'f32', bias: new Float32Array(8).fill(NaN) } }),
    RangeError,
    /output\.bias\[0\]: expected a finite number, got NaN/,
  ],
  [
    '-Infinity bias',
    () => bconv2d(x64(), w3, { output: { kind: 'f32', bias: [0, 0, 0, 0, 0, 0, 0, -Infinity] } }),
    RangeError,
    /output\.bias\[7\]: expected a finite number, got -Infinity/,
  ],
  [
    'NaN clamp',
    () => bconv2d(x64(), w3, { output: { kind: 'f32', clamp: [NaN, 1] } }),
    RangeError,
    /output\.clamp: expected lo <= hi, got \[NaN, 1\]/,
  ],
  [
    'clamp lo > hi',
    () => bconv2d(x64(), w3, { output: { kind: 'f32', clamp: [1, 0] } }),
    RangeError,
    /expected lo <= hi, got \[1, 0\]/,
  ],
  [
    'relu with negative hi',
    () => bconv2d(x64(), w3, { output: { kind: 'f32', clamp: [-2, -1], relu: true } }),
    RangeError,
    /expected lo <= hi, got \[0, -1\]/,
  ],
  [
    'NaN s8 bias',
    () =>
      bconv2d(x64(), w3, {
        output: {
          kind: 's8',
          multiplier: new Array(8).fill(1),
          shift: new Array(8).fill(0),
          bias: new Array(8).fill(NaN),
        },
      }),
    RangeError,
    /output\.bias\[0\]: expected an int32, got NaN/,
  ],
  [
    'NaN threshold',
    () => bconv2d(x64(), w3, { output: { kind: 'b1', threshold: new Array(8).fill(NaN) } }),
    RangeError,
    /output\.threshold\[0\]: expected an int32, got NaN/,
  ],
  [
    'thresholdsFromAffine NaN scale',
    () => thresholdsFromAffine([1, NaN], [0, 0]),
    RangeError,
    /scale\/bias\[1\]: expected finite numbers, got NaN, 0/,
  ],
  [
    'thresholdsFromAffine Infinity bias',
    () => thresholdsFromAffine([1], [Infinity]),
    RangeError,
    /expected finite numbers, got 1, Infinity/,
  ],
  [
    'thresholdsFromAffine length mismatch',
    () => thresholdsFromAffine([1, 2], [0]),
    ShapeError,
    /bias: expected 2 values like scale, got 1/,
  ],
  // strides / dilations
  ...([0, -1, 1.5, NaN, '2', Infinity] as any[]).map(
    (s): Row => [
      `stride ${String(s)}`,
      () => bconv2d(x64(), w3, { strides: s }),
      RangeError,
      new RegExp(`strides\\[0\\]: expected an integer >= 1, got ${String(s)}`),
    ],
  ),
  [
    'strides [1, 0]',
    () => bconv2d(x64(), w3, { strides: [1, 0] }),
    RangeError,
    /strides\[1\]: expected an integer >= 1, got 0/,
  ],
  ...([0, -2, 0.5] as any[]).map(
    (d): Row => [
      `dilation ${d}`,
      () => bconv2d(x64(), w3, { dilations: [1, d] }),
      RangeError,
      new RegExp(`dilations\\[1\\]: expected an integer >= 1, got ${d}`),
    ],
  ),
  [
    'pool kernel 0',
    () => bmaxpool2d(xb64(), { kernel: 0 }),
    RangeError,
    /kernel\[0\]: expected an integer >= 1, got 0/,
  ],
  [
    'pool stride -1',
    () => bmaxpool2d(xb64(), { kernel: 2, strides: [1, -1] }),
    RangeError,
    /strides\[1\]: expected an integer >= 1, got -1/,
  ],
  [
    'pool options missing',
    () => bmaxpool2d(xb64(), undefined as any),
    TypeError,
    /options: expected \{ kernel, strides\?, padding\? \}/,
  ],
  // padding specs
  [
    "conv padding 'same'",
    () => bconv2d(x64(), w3, { padding: 'same' as any }),
    RangeError,
    /padding: expected 'valid', 'same-one', 'same-zero' or \{ pads: \[t, l, b, r\], value \}, got "same"/,
  ],
  ['conv padding 42', () => bconv2d(x64(), w3, { padding: 42 as any }), RangeError, /padding: expected .* got 42/],
  ['conv padding {}', () => bconv2d(x64(), w3, { padding: {} as any }), RangeError, /padding: expected .* got \{\}/],
  [
    'conv padding 3 pads',
    () => bconv2d(x64(), w3, { padding: { pads: [1, 1, 1] as any, value: 'one' } }),
    RangeError,
    /padding: expected .*got \{"pads":\[1,1,1\],"value":"one"\}/,
  ],
  [
    'conv padding negative pad',
    () => bconv2d(x64(), w3, { padding: { pads: [0, -1, 0, 0], value: 'zero' } }),
    RangeError,
    /padding\.pads\[1\]: expected a non-negative integer, got -1/,
  ],
  [
    'conv padding fractional pad',
    () => bconv2d(x64(), w3, { padding: { pads: [0, 0, 0.5, 0], value: 'zero' } }),
    RangeError,
    /padding\.pads\[2\]: expected a non-negative integer, got 0.5/,
  ],
  [
    'conv padding bad value',
    () => bconv2d(x64(), w3, { padding: { pads: [1, 1, 1, 1], value: 'two' as any } }),
    RangeError,
    /padding\.value: expected 'one' or 'zero', got two/,
  ],
  [
    'conv pad >= kernel extent',
    () => bconv2d(x64(), w3, { padding: { pads: [3, 0, 0, 0], value: 'one' } }),
    RangeError,
    /pads \[3, 0, 0, 0\] must each be smaller than the dilated kernel extent \(3 x 3\)/,
  ],
  [
    "pool padding 'same-one'",
    () => bmaxpool2d(xb64(), { kernel: 2, padding: 'same-one' as any }),
    RangeError,
    /padding: expected 'valid', 'same' or \[top, left, bottom, right\], got "same-one"/,
  ],
  [
    'pool padding negative',
    () => bmaxpool2d(xb64(), { kernel: 2, padding: [0, 0, -1, 0] }),
    RangeError,
    /got \[0,0,-1,0\]/,
  ],
  [
    'pool pad >= kernel',
    () => bmaxpool2d(xb64(), { kernel: 2, padding: [2, 0, 0, 0] }),
    RangeError,
    /pads \[2, 0, 0, 0\] must each be smaller than the pool kernel \(2 x 2\)/,
  ],
  // s8 epilogue ranges
  [
    's8 shift 63',
    () =>
      bconv2d(x64(), w3, {
        output: { kind: 's8', multiplier: new Array(8).fill(1), shift: [0, 0, 0, 63, 0, 0, 0, 0] },
      }),
    RangeError,
    /output\.shift\[3\]: expected an integer in \[0, 62\], got 63/,
  ],
  [
    's8 shift -1',
    () =>
      bconv2d(x64(), w3, { output: { kind: 's8', multiplier: new Array(8).fill(1), shift: new Array(8).fill(-1) } }),
    RangeError,
    /output\.shift\[0\]: expected an integer in \[0, 62\], got -1/,
  ],
  [
    's8 multiplier -2^31',
    () =>
      bconv2d(x64(), w3, {
        output: { kind: 's8', multiplier: new Int32Array(8).fill(-(2 ** 31)), shift: new Array(8).fill(0) },
      }),
    RangeError,
    /output\.multiplier\[0\]: expected an int32 other than -2\^31, got -2147483648/,
  ],
  [
    's8 multiplier 2^31',
    () =>
      bconv2d(x64(), w3, {
        output: { kind: 's8', multiplier: new Array(8).fill(2 ** 31), shift: new Array(8).fill(0) },
      }),
    RangeError,
    /output\.multiplier\[0\]: expected an int32 other than -2\^31, got 2147483648/,
  ],
  [
    's8 clamp [-129, 0]',
    () =>
      bconv2d(x64(), w3, {
        output: { kind: 's8', multiplier: new Array(8).fill(1), shift: new Array(8).fill(0), clamp: [-129, 0] },
      }),
    RangeError,
    /output\.clamp: expected integers -128 <= lo <= hi <= 127, got \[-129, 0\]/,
  ],
  [
    's8 without multiplier',
    () => bconv2d(x64(), w3, { output: { kind: 's8', shift: new Array(8).fill(0) } as any }),
    TypeError,
    /output: s8 needs multiplier and shift/,
  ],
  [
    'output kind f16',
    () => bconv2d(x64(), w3, { output: { kind: 'f16' } as any }),
    RangeError,
    /output\.kind: expected 'f32', 's8' or 'b1', got f16/,
  ],
  // per-channel lengths
  [
    'threshold length 7 of 8',
    () => bconv2d(x64(), w3, { output: { kind: 'b1', threshold: new Int32Array(7) } }),
    ShapeError,
    /output\.threshold: expected 8 values \(one per output channel\), got 7/,
  ],
  [
    'threshold length 9 of 8',
    () => bdense(tensor('f32', [2, 64]), wd, { output: { kind: 'b1', threshold: new Array(9).fill(0) } }),
    ShapeError,
    /expected 8 values \(one per output channel\), got 9/,
  ],
  [
    'flip length 1',
    () => bconv2d(x64(), w3, { output: { kind: 'b1', threshold: new Int32Array(8), flip: [1] } }),
    ShapeError,
    /output\.flip: expected 8 values .*got 1/,
  ],
  [
    'flip value 2',
    () => bconv2d(x64(), w3, { output: { kind: 'b1', threshold: new Int32Array(8), flip: new Uint8Array(8).fill(2) } }),
    RangeError,
    /output\.flip\[0\]: expected 0, 1, false or true, got 2/,
  ],
  [
    'b1 without threshold',
    () => bconv2d(x64(), w3, { output: { kind: 'b1' } as any }),
    TypeError,
    /output: b1 needs threshold/,
  ],
  [
    'scale length 3',
    () => bconv2d(x64(), w3, { output: { kind: 'f32', scale: [1, 2, 3] } }),
    ShapeError,
    /output\.scale: expected 8 values \(one per output channel\), got 3/,
  ],
  [
    'scale as a number',
    () => bconv2d(x64(), w3, { output: { kind: 'f32', scale: 2 as any } }),
    TypeError,
    /output\.scale: expected an array or typed array of 8 values/,
  ],
  // non-Tensor inputs
  ...(
    [
      ['Float32Array', () => f32x(1024), /got Float32Array/],
      ['null', () => null, /got null/],
      ['undefined', () => undefined, /got undefined/],
      ['plain object', () => ({ dtype: 'f32', shape: [1, 4, 4, 64], data: f32x(1024) }), /got Object/],
      ['number', () => 3, /got number/],
    ] as Array<[string, () => unknown, RegExp]>
  ).flatMap(([what, make, got]): Row[] => [
    [
      `bconv2d(${what})`,
      () => bconv2d(make() as any, w3),
      TypeError,
      new RegExp(`input: expected a Tensor, ${got.source}`),
    ],
    [
      `bdense(${what})`,
      () => bdense(make() as any, wd),
      TypeError,
      new RegExp(`input: expected a Tensor, ${got.source}`),
    ],
    [
      `bmaxpool2d(${what})`,
      () => bmaxpool2d(make() as any, { kernel: 2 }),
      TypeError,
      new RegExp(`input: expected a Tensor, ${got.source}`),
    ],
    [
      `bitpack(${what})`,
      () => bitpack(make() as any),
      TypeError,
      new RegExp(`input: expected a Tensor, ${got.source}`),
    ],
    [
      `packBinaryConv2dWeights(${what})`,
      () => packBinaryConv2dWeights(make() as any),
      TypeError,
      new RegExp(`weights: expected a Tensor, ${got.source}`),
    ],
  ]),
  // runtime settings
  ['setThreads(0)', () => setThreads(0), RangeError, /threads: expected an integer in \[1, 256\], got 0/],
  ['setThreads(257)', () => setThreads(257), RangeError, /expected an integer in \[1, 256\], got 257/],
  ['setThreads(1.5)', () => setThreads(1.5), RangeError, /got 1\.5/],
  ["setThreads('2')", () => setThreads('2' as any), RangeError, /got 2/],
  [
    "setIsa('bogus')",
    () => setIsa('bogus' as Isa),
    RangeError,
    /unknown ISA 'bogus': expected one of scalar, avx2, avx512, neon/,
  ],
  ["setIsa('')", () => setIsa('' as Isa), RangeError, /unknown ISA '': expected one of scalar, avx2, avx512, neon/],
  ['setIsa(3)', () => setIsa(3 as any), TypeError, /isa: expected 'scalar', 'avx2', 'avx512' or 'neon', got number/],
  [
    `setIsa('${foreignIsa}') on ${process.arch}`,
    () => setIsa(foreignIsa),
    UnsupportedError,
    new RegExp(`ISA '${foreignIsa}' is not supported by this CPU or build`),
  ],
  // geometry
  [
    'kernel larger than input',
    () => bconv2d(tensor('f32', [1, 2, 5, 64]), w3),
    ShapeError,
    /the dilated kernel \(3\) is larger than the padded input height \(2\)/,
  ],
  [
    'dilated kernel larger than input',
    () => bconv2d(tensor('f32', [1, 5, 4, 64]), w3, { dilations: 2 }),
    ShapeError,
    /the dilated kernel \(5\) is larger than the padded input width \(4\)/,
  ],
  [
    'pool kernel larger than input',
    () => bmaxpool2d(xb64(), { kernel: 5 }),
    ShapeError,
    /pool kernel is larger than the padded input/,
  ],
  [
    'zero-height b1 input',
    () => bconv2d(tensor('b1', [1, 0, 4, 64]), w3),
    ShapeError,
    /every dimension of \[N, H, W, C\] must be at least 1, got \[1, 0, 4, 64\]/,
  ],
  ['zero-row b1 dense input', () => bdense(tensor('b1', [0, 64]), wd), ShapeError, /rows must be at least 1/],
  // the same through an f32 input, which is bit-packed (to an empty tensor) first
  [
    'zero-height f32 input',
    () => bconv2d(tensor('f32', [1, 0, 4, 64]), w3),
    ShapeError,
    /every dimension of \[N, H, W, C\] must be at least 1, got \[1, 0, 4, 64\]/,
  ],
  ['zero-row f32 dense input', () => bdense(tensor('f32', [0, 64]), wd), ShapeError, /rows must be at least 1/],
  [
    'huge-but-empty input [2^20, 2^20, 2^20, 0] into bmaxpool2d',
    () => bmaxpool2d(tensor('b1', [2 ** 20, 2 ** 20, 2 ** 20, 0]), { kernel: 1 }),
    ShapeError,
    /must be at least 1/,
  ],
  [
    'huge-but-empty input [2^20, 2^20, 2^12, 0] into bconv2d',
    () => bconv2d(tensor('b1', [2 ** 20, 2 ** 20, 2 ** 12, 0]), w3),
    ShapeError,
    /has 0 channels but the weights expect 64/,
  ],
];

describe('bad input throws a named class with an informative message', () => {
  it('the error classes are what index.ts exports', () => {
    expect(new ShapeError('x')).toBeInstanceOf(LowbitError);
    expect(new ShapeError('x').name).toBe('ShapeError');
    expect(new UnsupportedError('x').name).toBe('UnsupportedError');
  });

  for (const [name, call, cls, message] of rows)
    it(`${name} -> ${cls.name}`, () => {
      expectThrows(name, call, cls, message);
    });

  it('the process is still healthy after all of the above', () => {
    const out = bconv2d(tensor('f32', [1, 3, 3, 64], new Float32Array(576).fill(-1)), w3);
    expect(Array.from(out.data)).toEqual(new Array(8).fill(-576));
  });
});

describe('async forms reject with the same classes (and never throw synchronously)', () => {
  const cases: Array<[string, () => Promise<unknown>, ErrorClass, RegExp]> = [
    [
      'bconv2dAsync channel mismatch',
      () => bconv2dAsync(tensor('f32', [1, 4, 4, 65]), w3),
      ShapeError,
      /has 65 channels/,
    ],
    [
      'bconv2dAsync NaN scale',
      () => bconv2dAsync(x64(), w3, { output: { kind: 'f32', scale: new Array(8).fill(NaN) } }),
      RangeError,
      /finite/,
    ],
    [
      'bconv2dAsync kernel larger than input',
      () => bconv2dAsync(tensor('f32', [1, 2, 2, 64]), w3),
      ShapeError,
      /larger than the padded input/,
    ],
    ['bdenseAsync 3x3 weights', () => bdenseAsync(tensor('f32', [2, 64]), w3), ShapeError, /packBinaryDenseWeights/],
    [
      'bmaxpool2dAsync f32 input',
      () => bmaxpool2dAsync(x64() as any, { kernel: 2 }),
      TypeError,
      /expected dtype b1, got f32/,
    ],
    ['bitpackAsync s32', () => bitpackAsync(tensor('s32', [4]) as any), TypeError, /got s32/],
    [
      'bitpackAsync detached',
      () => {
        const x = tensor('f32', [4]);
        detach(x.data);
        return bitpackAsync(x);
      },
      ShapeError,
      /its data has 0/,
    ],
  ];
  for (const [name, call, cls, message] of cases)
    it(name, async () => {
      let promise: Promise<unknown> | undefined;
      expect(() => {
        promise = call();
      }).not.toThrow();
      const error = await promise!.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, `${name}: resolved`).toBeInstanceOf(cls);
      expect((error as Error).constructor).toBe(cls);
      expect((error as Error).message).toMatch(message);
    });
});

describe('messages name what was received, not only what was expected', () => {
  // The lib's own convention ("expected X, got Y"); these rows are the places that only say X.
  it('bdense with 3x3 conv weights names the kernel it got', () => {
    expectThrows(
      '3x3 into bdense',
      () => bdense(tensor('f32', [2, 64]), w3),
      ShapeError,
      /3x3|\[8, 3, 3, 64\]|kernel 3/,
    );
  });
  it('a non-PackedBinaryWeights argument is named', () => {
    expectThrows(
      '{} as weights',
      () => bconv2d(x64(), {} as any),
      TypeError,
      /expected PackedBinaryWeights.*got Object/,
    );
    expectThrows(
      'Tensor as weights',
      () => bdense(tensor('f32', [2, 64]), tensor('f32', [8, 64]) as any),
      TypeError,
      /expected PackedBinaryWeights.*got Tensor/,
    );
  });
  it('a pad too large for the kernel names the pad and the kernel extent', () => {
    expectThrows(
      'pad 3 with 3x3',
      () => bconv2d(x64(), w3, { padding: { pads: [3, 0, 0, 0], value: 'one' } }),
      RangeError,
      /3.*3|got 3/,
    );
    expectThrows(
      'pool pad 2 with kernel 2',
      () => bmaxpool2d(xb64(), { kernel: 2, padding: [2, 0, 0, 0] }),
      RangeError,
      /2.*2|got 2/,
    );
  });
});

describe('inputs on a SharedArrayBuffer', () => {
  it('bitpack of a SAB-backed Float32Array either works or throws TypeError naming the SharedArrayBuffer', () => {
    const data = new Float32Array(new SharedArrayBuffer(4 * 70));
    data[3] = -1;
    let result: Tensor<'b1'> | undefined;
    let error: unknown;
    try {
      result = bitpack(tensor('f32', [70], data));
    } catch (e) {
      error = e;
    }
    if (error !== undefined) {
      expect(error, String(error)).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(/SharedArrayBuffer/);
    } else {
      expect(Array.from(result!.data)).toEqual([8n, 0n]);
    }
  });
});

// ---- child processes: raw addon garbage and crash candidates -----------------------------------------------------

interface GarbageRow {
  name: string;
  expected: string;
  threw: boolean;
  isError?: boolean;
  code?: string;
  errorName?: string;
  message?: string;
}

function runNode(args: string[], env = childEnv()) {
  const r = spawnNode(args, {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 16 << 20,
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

describe('the raw addon with garbage arguments (child process)', () => {
  const script = join(ROOT, 'test/helpers/native-garbage.mjs');

  it('in-process sanity: the raw addon throws tagged errors, not crashes', () => {
    expect(() => (native as any).bitpack()).toThrow(TypeError);
    let e: any;
    try {
      (native as any).bconv2d(
        new BigUint64Array(1),
        [1, 4, 4, 64],
        wd.handle,
        { strides: [1, 1], dilations: [1, 1], pads: [0, 0, 0, 0], padValue: 'one' },
        { kind: 'f32' },
        { async: false },
      );
    } catch (error) {
      e = error;
    }
    expect(e?.code).toBe('LOWBIT_SHAPE');
    expect(e?.message).toMatch(/needs 16 packed 64-bit words, got 1/);
  });

  it('every garbage call throws a JS Error with the expected code; the process exits normally', () => {
    const r = runNode([script]);
    const lastBegun = /BEGIN (.*)\n(?![\s\S]*BEGIN)/.exec(r.stderr)?.[1];
    expect(r.signal, `child died by ${r.signal} during case "${lastBegun}"\n${r.stderr.slice(-2000)}`).toBeNull();
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    expect(r.stderr).toMatch(/END\n$/);
    const results = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as GarbageRow);
    expect(results.length).toBeGreaterThan(90);
    const bad = results
      .filter((row) => !(row.threw && row.isError && (row.expected === 'any' || row.code === row.expected)))
      .map(
        (row) =>
          `${row.name}: expected ${row.expected}, got ${row.threw ? `${row.errorName} ${row.code}: ${row.message}` : 'no error'}`,
      );
    expect(bad).toEqual([]);
  });

  const isolated = JSON.parse(runNode([script, '--list-isolated']).stdout) as string[];
  it('lists the isolated cases', () => expect(isolated.length).toBeGreaterThan(4));
  for (const name of isolated)
    it(`${name}: throws instead of crashing (own child process)`, () => {
      const r = runNode([script, name]);
      const fatal = /FATAL ERROR.*|Segmentation fault.*/.exec(r.stderr)?.[0] ?? '';
      expect(r.signal, `${name}: the child died by ${r.signal} ${fatal}\n${r.stderr.slice(-600)}`).toBeNull();
      expect(r.status, r.stderr.slice(-600)).toBe(0);
      const row = JSON.parse(r.stdout.trim()) as GarbageRow;
      expect(row, `${name}: ${row.errorName} ${row.code}: ${row.message}`).toMatchObject({
        threw: true,
        isError: true,
        code: row.expected,
      });
    });
});

describe('public API crash candidates (child process running the transpiled lib)', () => {
  function runLib(body: string) {
    const lib = compiledLib();
    const code = `import * as L from ${JSON.stringify(lib)};
let out;
try { ${body}; out = { ok: true }; }
catch (e) { out = { ok: false, name: e?.constructor?.name, message: String(e?.message) }; }
console.log(JSON.stringify(out));`;
    return runNode(['--input-type=module', '-e', code]);
  }

  it('the transpiled lib loads and runs in a child', () => {
    const r = runLib(
      `const y = L.bdense(L.tensor('f32', [1, 3], new Float32Array([1, -1, 1])), L.packBinaryDenseWeights(L.tensor('f32', [1, 3], new Float32Array(3).fill(1)))); if (y.data[0] !== 1) throw new Error('wrong ' + y.data[0])`,
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ ok: true });
  });

  for (const op of ['bconv2d', 'bdense'])
    it(`${op} with PackedBinaryWeights around a handle built by the handle's own constructor: TypeError, no crash`, () => {
      const r = runLib(`const w = L.packBinaryDenseWeights(L.tensor('f32', [1, 64]));
const forged = new L.PackedBinaryWeights(new w.handle.constructor(), [1, 1, 1, 64], 1);
${op === 'bconv2d' ? `L.bconv2d(L.tensor('f32', [1, 1, 1, 64]), forged)` : `L.bdense(L.tensor('f32', [1, 64]), forged)`}`);
      expect(r.signal, `the child died by ${r.signal}: ${r.stderr.slice(-500)}`).toBeNull();
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.ok).toBe(false);
      expect(out.name).toBe('TypeError');
      expect(out.message).toMatch(/weights/);
    });

  for (const isAsync of [false, true])
    it(`${isAsync ? 'bconv2dAsync' : 'bconv2d'} whose output would need 128 GiB (from a 32 MiB input): RangeError, no abort`, async () => {
      const r = runLib(`const x = L.tensor('b1', [1, 2048, 2048, 1]);
const w = L.packBinaryConv2dWeights(L.tensor('f32', [8192, 1, 1, 1]));
${isAsync ? 'await L.bconv2dAsync(x, w)' : 'L.bconv2d(x, w)'}`);
      const fatal = /FATAL ERROR.*/.exec(r.stderr)?.[0] ?? '';
      expect(r.signal, `the child died by ${r.signal} ${fatal}`).toBeNull();
      expect(r.status, r.stderr.slice(-600)).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.ok).toBe(false);
      expect(out.name).toBe('RangeError');
      expect(out.message).toMatch(/too large|out of memory|exceeds/);
    });

  it(`LOWBIT_ISA=${foreignIsa}: importing the lib rejects with UnsupportedError (exit 1 uncaught, no signal)`, () => {
    const lib = compiledLib();
    const caught = runNode(
      [
        '--input-type=module',
        '-e',
        `try { await import(${JSON.stringify(lib)}); console.log(JSON.stringify({ loaded: true })); } catch (e) { console.log(JSON.stringify({ name: e.constructor.name, message: e.message })); }`,
      ],
      childEnv({ LOWBIT_ISA: foreignIsa }),
    );
    expect(caught.status, caught.stderr).toBe(0);
    const out = JSON.parse(caught.stdout);
    expect(out.name).toBe('UnsupportedError');
    expect(out.message).toMatch(new RegExp(`LOWBIT_ISA=${foreignIsa}`));
    const uncaught = runNode(
      ['--input-type=module', '-e', `await import(${JSON.stringify(lib)});`],
      childEnv({ LOWBIT_ISA: foreignIsa }),
    );
    expect(uncaught.signal).toBeNull();
    expect(uncaught.status).toBe(1);
    expect(uncaught.stderr).toMatch(/UnsupportedError|LOWBIT_ISA/);
  });

  it('supportedIsas() in the parent matches a fresh child', () => {
    const r = runNode(['-e', `console.log(JSON.stringify(require(${JSON.stringify(ADDON)}).supportedIsas()))`]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(supportedIsas());
  });
});

// PackedBinaryWeights is exported; make sure honest construction through it still works.
it('PackedBinaryWeights built from a real handle works', () => {
  const w = new PackedBinaryWeights(wd.handle, [8, 1, 1, 64], 1);
  expect(bdense(tensor('f32', [1, 64]), w).shape).toEqual([1, 8]);
});
