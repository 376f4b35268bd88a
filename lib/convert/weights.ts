/**
 * Weight preparation for the `.lowbit` writer: ONNX layouts to lowbit's OHWI, binary-layer
 * detection, sign-bit packing, and per-channel symmetric INT8 / INT4 quantization.
 */
import type { Constant } from '../onnx/ir.js';
import { roundHalfEven } from '../onnx/tensor.js';
import { packInt4, quantizeWeights } from '../ops/quantize.js';
import type { QWeightBits } from '../ops/qconv.js';
import { Tensor } from '../tensor.js';

/** A conv or dense weight as [O, kh, kw, I/groups] values (OHWI), ready to pack. */
export interface OhwiWeights {
  out: number;
  kh: number;
  kw: number;
  icg: number;
  data: Float32Array;
}

/** Conv weights [O, I, kh, kw] or dense weights [O, I] to OHWI. */
export function toOhwi(w: Constant): OhwiWeights {
  const [o, i, kh = 1, kw = 1] = w.dims;
  const data = new Float32Array(w.data.length);
  for (let a = 0; a < o; ++a)
    for (let c = 0; c < i; ++c)
      for (let y = 0; y < kh; ++y)
        for (let x = 0; x < kw; ++x) data[((a * kh + y) * kw + x) * i + c] = w.data[((a * i + c) * kh + y) * kw + x];
  return { out: o, kh, kw, icg: i, data };
}

/**
 * Dense weights whose input was flattened from a [C, H, W] tensor (ONNX order c, h, w): lowbit
 * flattens the same activations in its own NHWC order (h, w, c), so the columns move to match.
 */
export function permuteFlattenedColumns(w: OhwiWeights, [c, h, wd]: [number, number, number]): OhwiWeights {
  const data = new Float32Array(w.data.length);
  const k = w.icg;
  for (let o = 0; o < w.out; ++o)
    for (let ci = 0; ci < c; ++ci)
      for (let y = 0; y < h; ++y)
        for (let x = 0; x < wd; ++x) data[o * k + (y * wd + x) * c + ci] = w.data[o * k + (ci * h + y) * wd + x];
  return { ...w, data };
}

/**
 * The per-channel magnitudes a[c] when every weight of output channel c is -a[c] or +a[c] up to
 * float rounding (the exported form of `alpha_c * sign(W)`, whose detach trick and batch-norm
 * folding leave relative differences of 1e-7..1e-6), else null: every |w| within relative
 * {@link BINARY_TOLERANCE} of the channel's mean magnitude, which is the a[c] used (exactly the
 * common magnitude when all are equal). A channel of zeros has a = 0.
 */
export function binaryScales(w: OhwiWeights): Float64Array | null {
  const k = w.kh * w.kw * w.icg;
  const scales = new Float64Array(w.out);
  for (let o = 0; o < w.out; ++o) {
    const row = w.data.subarray(o * k, (o + 1) * k);
    let sum = 0;
    for (let i = 0; i < k; ++i) sum += Math.abs(row[i]);
    const a = sum / k;
    for (let i = 0; i < k; ++i) if (Math.abs(Math.abs(row[i]) - a) > BINARY_TOLERANCE * a) return null;
    scales[o] = a;
  }
  return scales;
}

/** Relative spread of |w| around a channel's mean magnitude still read as binary +-a. */
export const BINARY_TOLERANCE = 1e-5;

/** Sign bits of OHWI weights in the packed layout of binary.h: per channel K bits, tap-major, bit 1 = -1. */
export function packSignBits(w: OhwiWeights): BigUint64Array {
  const k = w.kh * w.kw * w.icg;
  const rowWords = Math.ceil(k / 64);
  const words = new BigUint64Array(w.out * rowWords);
  const halves = new Uint32Array(words.buffer);
  for (let o = 0; o < w.out; ++o)
    for (let i = 0; i < k; ++i)
      if (w.data[o * k + i] < 0) halves[(o * rowWords + (i >> 6)) * 2 + ((i >> 5) & 1)] |= 1 << (i & 31);
  return words;
}

/** Sign of each OHWI weight as +1 / -1 int8 values (for building an MST schedule). */
export function signValues(w: OhwiWeights): Int8Array {
  return Int8Array.from(w.data, (v) => (v < 0 ? -1 : 1));
}

export interface QuantizedWeights {
  bits: QWeightBits;
  /** OHWI int8 values in [-qmax, qmax] */
  values: Int8Array;
  /** per output channel: real weight = value * scale */
  scales: Float32Array;
}

/**
 * Per-channel symmetric quantization (zero point 0, values in [-127, 127], [-64, 64] for the
 * reduced-range INT8 of bits 7, or [-7, 7]). INT8 scales by the channel's largest magnitude ({@link quantizeWeights}); INT4, with only 15 levels, also
 * tries clipping that magnitude and keeps the scale with the least squared error per channel.
 */
export function quantizeChannels(w: OhwiWeights, bits: QWeightBits): QuantizedWeights {
  const k = w.kh * w.kw * w.icg;
  const q = quantizeWeights(new Tensor('f32', [w.out, k], w.data), { bits });
  const values = q.weights.data;
  const scales = q.scales;
  if (bits !== 4) return { bits, values, scales };
  const quantize = (scale: number, v: number) => Math.max(-7, Math.min(7, roundHalfEven(v / scale)));
  for (let o = 0; o < w.out; ++o) {
    const row = w.data.subarray(o * k, (o + 1) * k);
    // a plain loop: reduce() with closures took 5 s of a ResNet-18 conversion
    const error = (scale: number) => {
      let sum = 0;
      for (let i = 0; i < k; ++i) sum += (row[i] - quantize(scale, row[i]) * scale) ** 2;
      return sum;
    };
    let best = scales[o],
      bestError = error(best);
    for (let r = 0.95; r >= 0.5; r -= 0.05) {
      const scale = Math.fround(scales[o] * r),
        e = error(scale);
      if (e < bestError) [best, bestError] = [scale, e];
    }
    scales[o] = best;
    for (let i = 0; i < k; ++i) values[o * k + i] = quantize(best, row[i]);
  }
  return { bits, values, scales };
}

/** INT4 values two per byte, low nibble first (the file's form of 4-bit weights). */
export function packNibbles(values: Int8Array): Uint8Array {
  return packInt4(new Tensor('s8', [values.length], values)).data;
}
