/**
 * API misuse that used to return garbage instead of an error (issue 11, items 4 and 5):
 * - an `out` tensor sharing memory with the input (every operator with `out`: bconv2d, bdense,
 *   qconv2d, qdense) is refused with a RangeError, while disjoint views of one buffer still work;
 * - a hand-built `b1` tensor whose unused tail bits are not 0 is refused by bconv2d, bdense and
 *   bmaxpool2d (sync and async) with a RangeError naming the first offending row and word.
 */
import { describe, expect, it } from 'vitest';
import {
  bconv2d,
  bconv2dAsync,
  bdense,
  bdenseAsync,
  bitpack,
  bmaxpool2d,
  bmaxpool2dAsync,
  packBinaryConv2dWeights,
  packBinaryDenseWeights,
  packQConv2dWeights,
  packQDenseWeights,
  qconv2d,
  qdense,
  tensor,
  Tensor,
} from '../lib/index.js';
import { rngFor } from './helpers/rng.js';

const rng = rngFor(11, 'misuse');
const randomF32 = (n: number) => Float32Array.from({ length: n }, () => rng.float() - 0.5);
const randomBits = (n: number) =>
  BigUint64Array.from({ length: n }, () =>
    BigInt.asUintN(64, (BigInt(rng.int(0, 2 ** 31)) << 33n) ^ BigInt(rng.int(0, 2 ** 31))),
  );
const randomS8 = (n: number) => Int8Array.from({ length: n }, () => rng.int(-128, 128));

const overlap = /out: shares (\d+) bytes of memory with input; this operator cannot write in place/;

describe('out sharing memory with the input is refused', () => {
  // 1x1 binary conv 64 -> 64 channels: a b1 output has exactly the input's size.
  const w1 = packBinaryConv2dWeights(tensor('f32', [64, 1, 1, 64], randomF32(64 * 64)));
  const b1Out = { kind: 'b1' as const, threshold: new Int32Array(64) };
  const shape = [1, 4, 4, 64];

  it('bconv2d: b1 out over the input array itself, or over an overlapping view', () => {
    const x = tensor('b1', shape, randomBits(16));
    expect(() => bconv2d(x, w1, { output: b1Out, out: tensor('b1', shape, x.data) })).toThrow(RangeError);
    expect(() => bconv2d(x, w1, { output: b1Out, out: tensor('b1', shape, x.data) })).toThrow(/out: shares 128 bytes/);
    const buffer = new ArrayBuffer(24 * 8);
    const xv = tensor('b1', shape, new BigUint64Array(buffer, 0, 16));
    xv.data.set(randomBits(16));
    const outView = tensor('b1', shape, new BigUint64Array(buffer, 8 * 8, 16));
    expect(() => bconv2d(xv, w1, { output: b1Out, out: outView })).toThrow(/out: shares 64 bytes of memory with input/);
  });

  it('bconv2d: an f32 out over the bytes of a b1 input, and an alias of the same SharedArrayBuffer', () => {
    const w = packBinaryConv2dWeights(tensor('f32', [8, 1, 1, 64], randomF32(8 * 64)));
    const buffer = new ArrayBuffer(16 * 4 * 8);
    const x = tensor('b1', shape, new BigUint64Array(buffer, 0, 16));
    expect(() => bconv2d(x, w, { out: tensor('f32', [1, 4, 4, 8], new Float32Array(buffer)) })).toThrow(overlap);
    // Two SharedArrayBuffer objects over one memory: only an address check sees the alias.
    const shared = new SharedArrayBuffer(16 * 8);
    const alias = structuredClone(shared);
    expect(alias).not.toBe(shared);
    const xs = tensor('b1', shape, new BigUint64Array(shared));
    expect(() => bconv2d(xs, w1, { output: b1Out, out: tensor('b1', shape, new BigUint64Array(alias)) })).toThrow(
      /out: shares 128 bytes/,
    );
  });

  it('bdense', () => {
    const w = packBinaryDenseWeights(tensor('f32', [2, 64], randomF32(2 * 64)));
    const buffer = new ArrayBuffer(32);
    const x = tensor('b1', [4, 64], new BigUint64Array(buffer));
    expect(() => bdense(x, w, { out: tensor('f32', [4, 2], new Float32Array(buffer)) })).toThrow(
      /out: shares 32 bytes of memory with input/,
    );
  });

  it('qconv2d (8-bit and s32 outputs) and qdense', () => {
    const w = packQConv2dWeights(tensor('s8', [8, 1, 1, 8], randomS8(64)), { bits: 8 });
    const q = { multiplier: new Array(8).fill(1 << 30), shift: new Array(8).fill(36) };
    const x = tensor('s8', [1, 4, 4, 8], randomS8(128));
    expect(() => qconv2d(x, w, { ...q, out: tensor('s8', [1, 4, 4, 8], x.data) })).toThrow(RangeError);
    expect(() => qconv2d(x, w, { ...q, out: tensor('s8', [1, 4, 4, 8], x.data) })).toThrow(/out: shares 128 bytes/);
    const buffer = new ArrayBuffer(512);
    const xu = tensor('u8', [1, 4, 4, 8], new Uint8Array(buffer, 384, 128));
    expect(() => qconv2d(xu, w, { dtype: 's32', out: tensor('s32', [1, 4, 4, 8], new Int32Array(buffer)) })).toThrow(
      /out: shares 128 bytes/,
    );
    const wd = packQDenseWeights(tensor('s8', [16, 16], randomS8(256)), { bits: 8 });
    const xd = tensor('s8', [2, 16], randomS8(32));
    const qd = { multiplier: new Array(16).fill(1 << 30), shift: new Array(16).fill(36) };
    expect(() => qdense(xd, wd, { ...qd, out: tensor('s8', [2, 16], xd.data) })).toThrow(/out: shares 32 bytes/);
  });

  it('disjoint views of one buffer are accepted and give the same result as separate arrays', () => {
    const buffer = new ArrayBuffer(32 * 8);
    const x = tensor('b1', shape, new BigUint64Array(buffer, 0, 16));
    x.data.set(randomBits(16));
    const out = tensor('b1', shape, new BigUint64Array(buffer, 16 * 8, 16)); // starts where x ends
    const want = bconv2d(tensor('b1', shape, x.data.slice()), w1, { output: b1Out });
    expect(bconv2d(x, w1, { output: b1Out, out })).toBe(out);
    expect([...out.data]).toEqual([...want.data]);
  });

  it('in place where the operator reads a copy: an f32 input is bit-packed before the conv writes', () => {
    const w = packBinaryConv2dWeights(tensor('f32', [8, 1, 1, 8], randomF32(64)));
    const x = tensor('f32', [1, 4, 4, 8], randomF32(128));
    const want = bconv2d(x, w);
    expect([...bconv2d(x, w, { out: tensor('f32', [1, 4, 4, 8], x.data) }).data]).toEqual([...want.data]);
    expect([...x.data]).toEqual([...want.data]);
  });
});

describe('b1 tensors with unused tail bits set are refused', () => {
  // 100 channels: two words per row, the second uses bits 0..35.
  const dirty = (shape: number[], row: number) => {
    const x = bitpack(tensor('f32', shape, randomF32(shape.reduce((a, b) => a * b, 1))));
    x.data[row * 2 + 1] |= 1n << 40n;
    return x;
  };
  const tail = (row: number) =>
    new RegExp(
      `input: row ${row} \\(word ${row * 2 + 1}\\) has bits set above its 100 channels; the unused tail bits of a b1 tensor must be 0`,
    );

  it('bconv2d 1x1 and bdense, sync and async', async () => {
    const w = packBinaryConv2dWeights(tensor('f32', [8, 1, 1, 100], randomF32(800)));
    const x = dirty([1, 2, 2, 100], 3);
    expect(() => bconv2d(x, w)).toThrow(RangeError);
    expect(() => bconv2d(x, w)).toThrow(tail(3));
    await expect(bconv2dAsync(x, w)).rejects.toThrow(tail(3));
    const wd = packBinaryDenseWeights(tensor('f32', [8, 100], randomF32(800)));
    const xd = dirty([3, 100], 2);
    expect(() => bdense(xd, wd)).toThrow(tail(2));
    await expect(bdenseAsync(xd, wd)).rejects.toThrow(RangeError);
  });

  it('bmaxpool2d, sync and async', async () => {
    const x = dirty([1, 2, 2, 100], 0);
    expect(() => bmaxpool2d(x, { kernel: 2 })).toThrow(tail(0));
    await expect(bmaxpool2dAsync(x, { kernel: 2 })).rejects.toThrow(RangeError);
  });

  it('clean tails pass, and channel counts that fill whole words have no tail to check', () => {
    const w = packBinaryConv2dWeights(tensor('f32', [8, 1, 1, 100], randomF32(800)));
    const clean = bitpack(tensor('f32', [1, 2, 2, 100], randomF32(400)));
    expect(bconv2d(clean, w).shape).toEqual([1, 2, 2, 8]);
    const full = new Tensor('b1', [1, 2, 2, 64], new BigUint64Array(4).fill(0xffffffffffffffffn));
    expect(bmaxpool2d(full, { kernel: 2 }).data[0]).toBe(0xffffffffffffffffn);
  });
});
