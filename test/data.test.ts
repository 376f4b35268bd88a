import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  encodeF32,
  encodeLbds,
  FASHION_MNIST_DIR,
  readF32,
  readFashionMnist,
  readLbds,
  toInput,
  type Dataset,
} from '../lib/data.js';
import { ModelFormatError } from '../lib/errors.js';
import { ROOT } from './helpers/compile-lib.js';

const SLICE = join(ROOT, 'models/fashion-mnist-test-1000.lbds');
const HAS_DEBIAN =
  existsSync(join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz')) &&
  existsSync(join(FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte.gz'));

function sample(): Dataset {
  const count = 3,
    channels = 2,
    height = 3,
    width = 4;
  return {
    count,
    channels,
    height,
    width,
    pixels: Uint8Array.from({ length: count * channels * height * width }, (_, i) => (i * 37) & 255),
    labels: Uint8Array.of(7, 0, 255),
  };
}

/** The LBDS bytes of `sample()` with header field `index` (0 magic, 1 version, 2 count, ...) set to `value`. */
function withField(index: number, value: number): Uint8Array {
  const bytes = encodeLbds(sample());
  new DataView(bytes.buffer).setUint32(4 * index, value, true);
  return bytes;
}

describe('LBDS', () => {
  it('round-trips through bytes and files', () => {
    const ds = sample();
    const bytes = encodeLbds(ds);
    expect(bytes.length).toBe(24 + 72 + 3);
    expect(String.fromCharCode(...bytes.subarray(0, 4))).toBe('LBDS');
    expect(readLbds(bytes)).toEqual(ds);
    const path = join(mkdtempSync(join(tmpdir(), 'lowbit-data-')), 'ds.lbds');
    writeFileSync(path, bytes);
    const back = readLbds(path);
    expect(back).toEqual(ds);
    expect(back.pixels.constructor).toBe(Uint8Array);
  });

  it('rejects malformed data with a ModelFormatError naming the field', () => {
    const good = encodeLbds(sample());
    const cases: [Uint8Array, RegExp][] = [
      [good.subarray(0, good.length - 1), /count: 3 images of 2x3x4 need 99 bytes .* got 98/],
      [Uint8Array.of(...good, 0), /count: .* got 100/],
      [good.subarray(0, 10), /header: expected at least 24 bytes, got 10/],
      [Uint8Array.from(good, (b, i) => (i === 0 ? 0x58 : b)), /magic: expected "LBDS", got "XBDS"/],
      [withField(1, 2), /version: expected 1, got 2/],
      [withField(2, 4), /count: 4 images/],
      [withField(2, 0), /count: expected at least 1, got 0/],
      [withField(5, 0), /width: expected at least 1, got 0/],
      // sizes whose product overflows 32 and 53 bits must not wrap around to a plausible length
      [withField(2, 0xffffffff), /count: 4294967295 images/],
      [
        (() => {
          const b = withField(3, 0x10000);
          new DataView(b.buffer).setUint32(16, 0x10000, true);
          new DataView(b.buffer).setUint32(20, 0x10000, true);
          return b;
        })(),
        /count: 3 images of 65536x65536x65536/,
      ],
    ];
    for (const [bytes, message] of cases) {
      expect(() => readLbds(bytes)).toThrow(ModelFormatError);
      expect(() => readLbds(bytes)).toThrow(message);
    }
    expect(() => readLbds(42 as unknown as Uint8Array)).toThrow(TypeError);
  });

  it('refuses to encode inconsistent datasets', () => {
    expect(() => encodeLbds({ ...sample(), labels: new Uint8Array(2) })).toThrow(/labels: expected 3 values, got 2/);
    expect(() => encodeLbds({ ...sample(), width: 0 })).toThrow(RangeError);
  });
});

describe('toInput', () => {
  it('gives float32 NCHW pixel / 255 for a range of images', () => {
    const ds = sample();
    const x = toInput(ds);
    expect(x).toBeInstanceOf(Float32Array);
    expect(x.length).toBe(72);
    x.forEach((v, i) => expect(v).toBe(Math.fround(ds.pixels[i] / 255)));
    const one = toInput(ds, 1, 1);
    expect(Array.from(one)).toEqual(Array.from(x.subarray(24, 48)));
    expect(toInput(ds, 2).length).toBe(24);
    expect(() => toInput(ds, 3)).toThrow(RangeError);
    expect(() => toInput(ds, 1, 3)).toThrow(RangeError);
    expect(() => toInput(ds, 0, 0)).toThrow(RangeError);
  });
});

describe('.f32 samples', () => {
  it('reads little-endian float32 values, a whole number of samples', () => {
    const values = Float32Array.of(1.5, -2, 0, 3e-8, Infinity, -0);
    const bytes = encodeF32(values);
    expect(bytes.length).toBe(24);
    expect(new DataView(bytes.buffer).getFloat32(0, true)).toBe(1.5);
    expect(readF32(bytes)).toEqual(values);
    expect(readF32(bytes, 3)).toEqual(values);
    const path = join(mkdtempSync(join(tmpdir(), 'lowbit-data-')), 'x.f32');
    writeFileSync(path, bytes);
    expect(readF32(path, 2)).toEqual(values);
    expect(() => readF32(bytes.subarray(0, 10))).toThrow(ModelFormatError);
    expect(() => readF32(new Uint8Array(0))).toThrow(ModelFormatError);
    expect(() => readF32(bytes, 4)).toThrow(/6 values are not a whole number of samples of 4 values/);
  });
});

describe('readFashionMnist', () => {
  it('explains how to get the data when it is missing', () => {
    expect(() => readFashionMnist('/nonexistent/fashion')).toThrow(
      /apt-get install dataset-fashion-mnist.*fashion-mnist-test-1000\.lbds/,
    );
  });

  it.skipIf(!HAS_DEBIAN)(
    "reads the 10000 test images of Debian's dataset-fashion-mnist, the slice being their first 1000",
    () => {
      const ds = readFashionMnist();
      expect([ds.count, ds.channels, ds.height, ds.width]).toEqual([10000, 1, 28, 28]);
      expect(ds.pixels.length).toBe(10000 * 784);
      expect(Math.max(...ds.labels)).toBe(9);
      const perClass = new Array(10).fill(0);
      for (const l of ds.labels) perClass[l]++;
      expect(perClass).toEqual(new Array(10).fill(1000));
      if (!existsSync(SLICE)) return; // the shipped slice is optional here
      const slice = readLbds(SLICE);
      expect([slice.count, slice.channels, slice.height, slice.width]).toEqual([1000, 1, 28, 28]);
      expect(Buffer.compare(slice.pixels, ds.pixels.subarray(0, 1000 * 784))).toBe(0);
      expect(Buffer.compare(slice.labels, ds.labels.subarray(0, 1000))).toBe(0);
    },
  );
});
