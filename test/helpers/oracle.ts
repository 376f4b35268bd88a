/**
 * Independent TypeScript oracles for the binary operators. Everything here works on the float
 * (or int8) source values, never on packed bits: sign(v) = v < 0 ? -1 : +1 (so 0, -0 and NaN are
 * +1), padded pixels are +1 ('one') or 0 ('zero'), and the epilogues follow the formulas of
 * native/src/binary/kernels.h written out again in plain JS (Math.fround for f32, BigInt for s8).
 */
import type { Rng } from './rng.js';

export type Source = Float32Array | Int8Array;
export type Pads = [top: number, left: number, bottom: number, right: number];
export type PadValue = 'one' | 'zero';

export const AWKWARD_CHANNELS = [1, 3, 63, 64, 65, 127, 128, 200, 512] as const;

/** +-1 of one source value. */
export function sign(v: number): -1 | 1 {
  return v < 0 ? -1 : 1;
}

/** Random source data: mostly uniform values, with exact zeros, -0 and (f32) a few NaN/Inf thrown in. */
export function randomSource(rng: Rng, dtype: 'f32', n: number, special?: boolean): Float32Array;
export function randomSource(rng: Rng, dtype: 's8', n: number, special?: boolean): Int8Array;
export function randomSource(rng: Rng, dtype: 'f32' | 's8', n: number, special?: boolean): Source;
export function randomSource(rng: Rng, dtype: 'f32' | 's8', n: number, special = true): Source {
  if (dtype === 's8') {
    const out = new Int8Array(n);
    for (let i = 0; i < n; ++i) out[i] = rng.bool(0.1) ? 0 : rng.int(-128, 127);
    return out;
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; ++i) {
    const r = rng.float();
    if (special && r < 0.04) out[i] = 0;
    else if (special && r < 0.08) out[i] = -0;
    else if (special && r < 0.085) out[i] = Number.NaN;
    else if (special && r < 0.09) out[i] = rng.bool() ? Infinity : -Infinity;
    else if (special && r < 0.095)
      out[i] = rng.bool() ? 1e-45 : -1e-45; // denormals
    else out[i] = rng.float() * 2 - 1;
  }
  return out;
}

/** Signs (+-1) of a whole array, as Int8Array. */
export function signs(src: ArrayLike<number>): Int8Array {
  const out = new Int8Array(src.length);
  for (let i = 0; i < src.length; ++i) out[i] = sign(src[i]);
  return out;
}

/** SAME_UPPER pads for one axis, written from the definition: output ceil(in / stride), extra at the end. */
export function samePadsOracle(size: number, kernel: number, stride: number, dilation: number): [number, number] {
  const out = Math.ceil(size / stride);
  const needed = (out - 1) * stride + (kernel - 1) * dilation + 1;
  const total = Math.max(0, needed - size);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

export interface ConvGeometry {
  n: number;
  h: number;
  w: number;
  c: number;
  o: number;
  kh: number;
  kw: number;
  groups: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  pads: Pads;
  padValue: PadValue;
}

export function convOutSize(g: ConvGeometry): [number, number] {
  const oh = Math.floor((g.h + g.pads[0] + g.pads[2] - ((g.kh - 1) * g.dh + 1)) / g.sh) + 1;
  const ow = Math.floor((g.w + g.pads[1] + g.pads[3] - ((g.kw - 1) * g.dw + 1)) / g.sw) + 1;
  return [oh, ow];
}

/**
 * Plain integer convolution of the +-1 values: x [N, H, W, C] (NHWC), w [O, KH, KW, C / groups] (OHWI).
 * @returns y [N, OH, OW, O] as Int32Array
 */
export function convOracle(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  g: ConvGeometry,
): { y: Int32Array; shape: number[] } {
  const xs = signs(x);
  const ws = signs(w);
  const padPixel = g.padValue === 'one' ? 1 : 0;
  const [oh, ow] = convOutSize(g);
  const cg = g.c / g.groups;
  const og = g.o / g.groups;
  const y = new Int32Array(g.n * oh * ow * g.o);
  let out = 0;
  for (let n = 0; n < g.n; ++n)
    for (let yy = 0; yy < oh; ++yy)
      for (let xx = 0; xx < ow; ++xx)
        for (let o = 0; o < g.o; ++o, ++out) {
          const c0 = Math.floor(o / og) * cg;
          let acc = 0;
          for (let ky = 0; ky < g.kh; ++ky) {
            const iy = yy * g.sh + ky * g.dh - g.pads[0];
            for (let kx = 0; kx < g.kw; ++kx) {
              const ix = xx * g.sw + kx * g.dw - g.pads[1];
              const wBase = ((o * g.kh + ky) * g.kw + kx) * cg;
              if (iy < 0 || ix < 0 || iy >= g.h || ix >= g.w) {
                if (padPixel !== 0) for (let ci = 0; ci < cg; ++ci) acc += ws[wBase + ci];
                continue;
              }
              const xBase = ((n * g.h + iy) * g.w + ix) * g.c + c0;
              for (let ci = 0; ci < cg; ++ci) acc += xs[xBase + ci] * ws[wBase + ci];
            }
          }
          y[out] = acc;
        }
  return { y, shape: [g.n, oh, ow, g.o] };
}

/** Dense: x [rows, K] times w [O, K]^T on the +-1 values. */
export function denseOracle(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  rows: number,
  k: number,
  o: number,
): Int32Array {
  const xs = signs(x);
  const ws = signs(w);
  const y = new Int32Array(rows * o);
  for (let r = 0; r < rows; ++r)
    for (let j = 0; j < o; ++j) {
      let acc = 0;
      for (let i = 0; i < k; ++i) acc += xs[r * k + i] * ws[j * k + i];
      y[r * o + j] = acc;
    }
  return y;
}

/** Max pool of the +-1 values (padding never wins): bit 1 (= -1) iff every in-image tap is negative. */
export function maxPoolOracle(
  x: ArrayLike<number>,
  [n, h, w, c]: readonly number[],
  kh: number,
  kw: number,
  sh: number,
  sw: number,
  pads: Pads,
): { words: Uint32Array; shape: number[] } {
  const oh = Math.floor((h + pads[0] + pads[2] - kh) / sh) + 1;
  const ow = Math.floor((w + pads[1] + pads[3] - kw) / sw) + 1;
  const u32PerPixel = 2 * Math.ceil(c / 64);
  const words = new Uint32Array(n * oh * ow * u32PerPixel);
  for (let b = 0; b < n; ++b)
    for (let yy = 0; yy < oh; ++yy)
      for (let xx = 0; xx < ow; ++xx) {
        const pixel = (b * oh + yy) * ow + xx;
        for (let ch = 0; ch < c; ++ch) {
          let max = -Infinity;
          for (let ky = 0; ky < kh; ++ky)
            for (let kx = 0; kx < kw; ++kx) {
              const iy = yy * sh + ky - pads[0];
              const ix = xx * sw + kx - pads[1];
              if (iy < 0 || ix < 0 || iy >= h || ix >= w) continue;
              max = Math.max(max, sign(x[((b * h + iy) * w + ix) * c + ch]));
            }
          if (max === -Infinity) throw new Error('maxPoolOracle: a window lies entirely in the padding');
          if (max < 0) words[pixel * u32PerPixel + (ch >>> 5)] |= 1 << (ch & 31);
        }
      }
  return { words: words, shape: [n, oh, ow, c] };
}

/** Bits of a packed tensor as little-endian uint32 halves (channel c is bit c & 31 of half c >> 5). */
export function u32View(data: BigUint64Array): Uint32Array {
  return new Uint32Array(data.buffer, data.byteOffset, data.length * 2);
}

/** Packs +-1 signs of rows x channels source values into uint32 halves, the layout of u32View. */
export function packOracle(src: ArrayLike<number>, rows: number, channels: number): Uint32Array {
  const u32PerRow = 2 * Math.ceil(channels / 64);
  const out = new Uint32Array(rows * u32PerRow);
  for (let r = 0; r < rows; ++r)
    for (let ch = 0; ch < channels; ++ch)
      if (src[r * channels + ch] < 0) out[r * u32PerRow + (ch >>> 5)] |= 1 << (ch & 31);
  return out;
}

// ---- epilogues ----------------------------------------------------------------------------------

export interface F32Spec {
  kind: 'f32';
  scale?: number[];
  bias?: number[];
  clamp?: [number, number];
  relu?: boolean;
}
export interface S8Spec {
  kind: 's8';
  multiplier: number[];
  shift: number[];
  bias?: number[];
  clamp?: [number, number];
}
export interface B1Spec {
  kind: 'b1';
  threshold: number[];
  flip?: number[];
}
export type EpilogueSpec = F32Spec | S8Spec | B1Spec;

/** The `output` option for the lib: sometimes plain arrays, sometimes typed arrays (both are accepted). */
export function toOutputOption(spec: EpilogueSpec, typed: boolean): any {
  const f = (v: number[] | undefined) => (v === undefined || !typed ? v : Float32Array.from(v));
  const i = (v: number[] | undefined) => (v === undefined || !typed ? v : Int32Array.from(v));
  switch (spec.kind) {
    case 'f32':
      return { ...spec, scale: f(spec.scale), bias: f(spec.bias) };
    case 's8':
      return { ...spec, multiplier: i(spec.multiplier), shift: spec.shift, bias: i(spec.bias) };
    case 'b1':
      return { kind: 'b1', threshold: i(spec.threshold), flip: spec.flip?.map((v) => (typed ? v : v === 1)) };
  }
}

/**
 * A random epilogue for O channels whose dot products lie in [-k, k]; the ranges are chosen so
 * that clamps, ties and sign changes actually occur.
 */
export function randomEpilogue(rng: Rng, kind: 'f32' | 's8' | 'b1', o: number, k: number): EpilogueSpec {
  const int32 = () => rng.int(-2147483647, 2147483647);
  switch (kind) {
    case 'f32': {
      const spec: F32Spec = { kind: 'f32' };
      if (rng.bool(0.8))
        spec.scale = Array.from({ length: o }, () =>
          Math.fround(rng.bool(0.05) ? 0 : rng.bool(0.1) ? rng.int(-4, 4) : (rng.float() * 4 - 2) / Math.sqrt(k)),
        );
      if (rng.bool(0.8))
        spec.bias = Array.from({ length: o }, () => Math.fround(rng.bool(0.1) ? 0 : rng.float() * 4 - 2));
      if (rng.bool(0.4)) {
        const a = Math.fround(rng.float() * 2 - 1.5),
          b = Math.fround(rng.float() * 2 - 0.5);
        spec.clamp = [Math.min(a, b), Math.max(a, b)];
      }
      // relu raises lo to 0, so it only goes with a clamp whose hi is not negative
      if (rng.bool(0.3) && (spec.clamp === undefined || spec.clamp[1] >= 0)) spec.relu = true;
      return spec;
    }
    case 's8': {
      const logK = Math.ceil(Math.log2(k + 1));
      const multiplier: number[] = [];
      const shift: number[] = [];
      for (let c = 0; c < o; ++c) {
        const mode = rng.int(0, 9);
        if (mode === 0) {
          multiplier.push(int32()); // anything: mostly saturates
          shift.push(rng.int(0, 62));
        } else if (mode === 1) {
          multiplier.push(rng.int(-8, 8)); // tiny, small shifts: exact ties of the rounding
          shift.push(rng.int(0, 3));
        } else if (mode === 2) {
          multiplier.push(rng.pick([2147483647, -2147483647, 1, -1]));
          shift.push(rng.pick([0, 1, 31, 32, 61, 62]));
        } else {
          // a realistic Q31 multiplier landing y in about [-200, 200]
          const m = rng.int(1 << 30, 2147483647);
          multiplier.push(rng.bool(0.25) ? -m : m);
          shift.push(Math.min(62, Math.max(0, 31 + logK - 8 + rng.int(-1, 1))));
        }
      }
      const spec: S8Spec = { kind: 's8', multiplier, shift };
      if (rng.bool(0.7)) spec.bias = Array.from({ length: o }, () => (rng.bool(0.05) ? int32() : rng.int(-60, 60)));
      if (rng.bool(0.4)) {
        const a = rng.int(-128, 127),
          b = rng.int(-128, 127);
        spec.clamp = [Math.min(a, b), Math.max(a, b)];
      }
      return spec;
    }
    case 'b1': {
      const threshold = Array.from({ length: o }, () =>
        rng.bool(0.05) ? rng.pick([-2147483648, 2147483647, -k, k, k + 1, -k - 1]) : rng.int(-k - 1, k + 1),
      );
      const spec: B1Spec = { kind: 'b1', threshold };
      if (rng.bool(0.6)) spec.flip = Array.from({ length: o }, () => rng.int(0, 1));
      return spec;
    }
  }
}

export function describeEpilogue(spec: EpilogueSpec): string {
  const short = (v: number[] | undefined) =>
    v === undefined ? '-' : v.length > 4 ? `[${v.slice(0, 4).join(',')},...]` : `[${v.join(',')}]`;
  switch (spec.kind) {
    case 'f32':
      return `f32(scale=${short(spec.scale)} bias=${short(spec.bias)} clamp=${spec.clamp ?? '-'} relu=${!!spec.relu})`;
    case 's8':
      return `s8(mult=${short(spec.multiplier)} shift=${short(spec.shift)} bias=${short(spec.bias)} clamp=${spec.clamp ?? '-'})`;
    case 'b1':
      return `b1(threshold=${short(spec.threshold)} flip=${short(spec.flip)})`;
  }
}

/** f32 epilogue: fround(fround(y * scale) + bias), then clamped; a separate multiply and add. */
export function expectF32(y: Int32Array, o: number, spec: F32Spec): Float32Array {
  let lo = spec.clamp ? Math.fround(spec.clamp[0]) : -Infinity;
  const hi = spec.clamp ? Math.fround(spec.clamp[1]) : Infinity;
  if (spec.relu) lo = Math.max(lo, 0);
  const out = new Float32Array(y.length);
  for (let i = 0; i < y.length; ++i) {
    const c = i % o;
    const s = spec.scale ? Math.fround(spec.scale[c]) : 1;
    const b = spec.bias ? Math.fround(spec.bias[c]) : 0;
    const v = Math.fround(Math.fround(y[i] * s) + b);
    out[i] = v < lo ? lo : v > hi ? hi : v;
  }
  return out;
}

/** s8 epilogue, the exact int64 formula in BigInt: clamp(((y*m + round) >> shift) + bias, lo, hi). */
export function expectS8(y: Int32Array, o: number, spec: S8Spec): Int8Array {
  const [lo, hi] = spec.clamp ? spec.clamp.map(BigInt) : [-128n, 127n];
  const m = spec.multiplier.map(BigInt);
  const sh = spec.shift.map(BigInt);
  const rnd = spec.shift.map((s) => (s > 0 ? 1n << BigInt(s - 1) : 0n));
  const bias = (spec.bias ?? new Array<number>(o).fill(0)).map(BigInt);
  const out = new Int8Array(y.length);
  for (let i = 0; i < y.length; ++i) {
    const c = i % o;
    let v = ((BigInt(y[i]) * m[c] + rnd[c]) >> sh[c]) + bias[c]; // BigInt >> floors, like an arithmetic shift
    if (v < lo) v = lo;
    if (v > hi) v = hi;
    out[i] = Number(v);
  }
  return out;
}

/** b1 epilogue: bit c = (y < threshold[c]) XOR flip[c], ceil(O / 64) words per pixel, zero tail bits. */
export function expectB1(y: Int32Array, o: number, spec: B1Spec): Uint32Array {
  const pixels = y.length / o;
  const u32PerPixel = 2 * Math.ceil(o / 64);
  const out = new Uint32Array(pixels * u32PerPixel);
  for (let p = 0; p < pixels; ++p)
    for (let c = 0; c < o; ++c) {
      const bit = (y[p * o + c] < spec.threshold[c] ? 1 : 0) ^ (spec.flip ? spec.flip[c] : 0);
      if (bit) out[p * u32PerPixel + (c >>> 5)] |= 1 << (c & 31);
    }
  return out;
}

/** Expected output of an epilogue as a typed array comparable with the lib's output data (b1: u32 halves). */
export function expectEpilogue(y: Int32Array, o: number, spec: EpilogueSpec): Float32Array | Int8Array | Uint32Array {
  return spec.kind === 'f32' ? expectF32(y, o, spec) : spec.kind === 's8' ? expectS8(y, o, spec) : expectB1(y, o, spec);
}

/** The lib's output data in the same form as expectEpilogue's. */
export function actualData(
  data: Float32Array | Int8Array | BigUint64Array | Int32Array | Uint8Array,
): Float32Array | Int8Array | Uint32Array {
  if (data instanceof BigUint64Array) return u32View(data);
  return data as Float32Array | Int8Array;
}

// ---- comparison ---------------------------------------------------------------------------------

function coordinates(index: number, shape: readonly number[]): string {
  const out: number[] = [];
  for (let d = shape.length - 1; d >= 0; --d) {
    out.unshift(index % shape[d]);
    index = Math.floor(index / shape[d]);
  }
  return `[${out.join(', ')}]`;
}

/**
 * Exact comparison (Object.is per element, so -0 vs +0 and NaN count). Returns '' when equal,
 * else a message naming the first few mismatches by NHWC coordinate (b1: pixel and bit).
 * @param shape the logical output shape; for b1 data the last axis is channels, packed 64 per word
 */
export function diff(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  shape: readonly number[],
  packed: boolean,
  extra?: (index: number) => string,
): string {
  if (actual.length !== expected.length) return `length ${actual.length}, expected ${expected.length}`;
  const lines: string[] = [];
  let count = 0;
  const channels = shape[shape.length - 1];
  const u32PerPixel = 2 * Math.ceil(channels / 64);
  for (let i = 0; i < actual.length; ++i) {
    if (Object.is(actual[i], expected[i])) continue;
    if (++count > 5) continue;
    if (packed) {
      const pixel = Math.floor(i / u32PerPixel);
      const half = i % u32PerPixel;
      const bits: string[] = [];
      const x = (actual[i] ^ expected[i]) >>> 0;
      for (let b = 0; b < 32; ++b)
        if ((x >>> b) & 1) {
          const ch = half * 32 + b;
          bits.push(
            ch < channels
              ? `c${ch}: got ${(actual[i] >>> b) & 1}, want ${(expected[i] >>> b) & 1}`
              : `tail bit ${ch} set`,
          );
        }
      lines.push(
        `  pixel ${coordinates(pixel, shape.slice(0, -1).concat([1]))} ${bits.slice(0, 4).join('; ')}${extra ? ' ' + extra(pixel) : ''}`,
      );
    } else {
      lines.push(`  at ${coordinates(i, shape)}: got ${actual[i]}, want ${expected[i]}${extra ? ' ' + extra(i) : ''}`);
    }
  }
  return count === 0
    ? ''
    : `${count} mismatching ${packed ? 'words' : 'values'} of ${actual.length}:\n${lines.join('\n')}`;
}

/** Byte-exact equality of two typed arrays' contents; '' when equal, else the first differing byte. */
export function bytesDiff(a: ArrayBufferView, b: ArrayBufferView): string {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (x.length !== y.length) return `byte length ${x.length} vs ${y.length}`;
  let count = 0;
  let first = -1;
  for (let i = 0; i < x.length; ++i)
    if (x[i] !== y[i]) {
      if (first < 0) first = i;
      ++count;
    }
  return count === 0 ? '' : `${count} of ${x.length} bytes differ, first at byte ${first} (${x[first]} vs ${y[first]})`;
}
