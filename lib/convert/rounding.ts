/**
 * Weight rounding that minimizes the layer's output error rather than the weights' own: during
 * calibration each integer conv / dense layer collects the Gram matrix H = X^T X and the mean of its
 * input rows X (im2col'd patches in OHWI order, one per output pixel; a sample of them for large
 * layers), then its weights are rounded GPTQ-style (columns one by one, each rounding error
 * compensated in the columns not yet rounded, against H: lowbit/ptq.h, native) with the per-channel
 * scales of round-to-nearest, and the bias absorbs the mean output shift the rounding leaves
 * (bias correction: bias += (W - Q) mean(x)).
 */
import { native } from '../native.js';
import { weightQmax } from '../ops/quantize.js';
import type { QWeightBits } from '../ops/qconv.js';
import type { FloatGraph, FloatNode } from '../onnx/ir.js';
import type { FloatTensor } from '../onnx/evaluate.js';
import { permuteFlattenedColumns, quantizeChannels, type OhwiWeights, type QuantizedWeights } from './weights.js';

/** At most this many input rows per layer go into H (rows x K^2 / 2 multiply-adds). */
export const MAX_ROWS = 16384;
/** Layers with a longer reduction (K x K floats of H) keep round-to-nearest, with bias correction. */
export const MAX_K = 8192;
/** H's diagonal is raised by this fraction of its mean before factoring (GPTQ's damping). */
const DAMP = 0.01;

type Linear = Extract<FloatNode, { op: 'conv' | 'dense' }>;

interface LayerStats {
  node: Linear;
  groups: number;
  /** reduction length per group */
  k: number;
  /** per group: the Gram matrix of its input rows (k x k), or null past MAX_K; once the layer is
   *  first rounded, its factor (the same for every bits) in its place: null where it fails */
  gram: (Float32Array | null)[];
  factor?: ({ l: Float32Array; perm: Uint32Array } | null)[];
  /** per group: the sum of its input rows */
  sum: Float64Array[];
  rows: number;
  /** rows kept per sample row (one output pixel's patch), for sampling */
  keep: number;
  state: number;
}

/** What rounding a layer gives: its quantized weights and the bias to pair them with. */
export interface RoundedLayer {
  weights: QuantizedWeights;
  bias: Float32Array;
}

export class LayerRounding {
  private readonly stats = new Map<string, LayerStats>();
  private readonly cache = new Map<string, RoundedLayer>();

  /**
   * @param layers the conv / dense nodes to collect statistics for
   * @param samples the number of calibration samples that will be observed
   * @param onRound called after each layer is rounded (a new layer and bits)
   */
  constructor(
    graph: FloatGraph,
    layers: Set<string>,
    samples: number,
    private readonly onRound?: () => void,
  ) {
    for (const n of graph.nodes) {
      if ((n.op !== 'conv' && n.op !== 'dense') || !layers.has(n.name)) continue;
      const groups = n.op === 'conv' ? n.attrs.groups : 1;
      const k = n.weight.data.length / n.weight.dims[0];
      const outDims = graph.tensors.get(n.output)!.dims;
      const perSample = n.op === 'conv' ? outDims[2] * outDims[3] : 1;
      this.stats.set(n.name, {
        node: n,
        groups,
        k,
        gram: Array.from({ length: groups }, () => (k <= MAX_K ? new Float32Array(k * k) : null)),
        sum: Array.from({ length: groups }, () => new Float64Array(k)),
        rows: 0,
        keep: Math.min(1, MAX_ROWS / Math.max(1, samples * perSample)),
        state: 0x2545f491,
      });
    }
  }

  /** Adds one calibration batch (every tensor of the float graph, NCHW). */
  observe(values: Map<string, FloatTensor>): void {
    for (const s of this.stats.values()) {
      const x = values.get(s.node.input)!;
      const picked = this.pick(s, s.node.op === 'conv' ? values.get(s.node.output)!.dims : [x.dims[0], 1, 1, 1]);
      if (picked.length === 0) continue;
      for (let g = 0; g < s.groups; ++g) {
        const rows = s.node.op === 'conv' ? patches(s.node, x, g, picked) : denseRows(x, picked, s.k);
        const sum = s.sum[g];
        for (let r = 0; r < picked.length; ++r) for (let i = 0; i < s.k; ++i) sum[i] += rows[r * s.k + i];
        if (s.gram[g]) native.gramAccumulate(s.gram[g]!, rows, picked.length, s.k);
      }
      s.rows += picked.length;
    }
  }

  /** Sampled output positions (sample * pixels + pixel) of one batch: each kept with probability `keep`. */
  private pick(s: LayerStats, [n, , oh, ow]: number[]): number[] {
    const all = n * oh * ow;
    if (s.keep >= 1) return Array.from({ length: all }, (_, i) => i);
    const picked: number[] = [];
    for (let i = 0; i < all; ++i) {
      s.state = (Math.imul(s.state, 1664525) + 1013904223) >>> 0;
      if (s.state / 2 ** 32 < s.keep) picked.push(i);
    }
    return picked;
  }

  /**
   * The rounded weights of layer `name` (OHWI, columns permuted for a `flattened` input as the
   * lowering does) with its bias corrected; undefined for a layer without statistics.
   */
  round(
    name: string,
    w: OhwiWeights,
    bits: QWeightBits,
    bias: ArrayLike<number>,
    flattened?: [number, number, number],
  ): RoundedLayer | undefined {
    const s = this.stats.get(name);
    if (!s || s.rows === 0) return undefined;
    const key = `${bits}:${name}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const q = quantizeChannels(w, bits);
    const perm = flattened ? columnOrder(s.k, flattened) : undefined;
    const og = w.out / s.groups,
      k = s.k;
    const corrected = Float32Array.from(bias);
    // The layer's factor is computed on its first rounding (the column order of a flattened
    // input is the same every time) and the Gram matrices dropped.
    s.factor ??= s.gram.map((h) => (h ? native.gptqFactor(perm ? permuteSymmetric(h, perm) : h, k, DAMP, true) : null));
    s.gram.fill(null);
    for (let g = 0; g < s.groups; ++g) {
      const factor = s.factor[g];
      const mean = Float64Array.from({ length: k }, (_, i) => s.sum[g][perm ? perm[i] : i] / s.rows);
      const rows = w.data.subarray(g * og * k, (g + 1) * og * k);
      const scales = q.scales.subarray(g * og, (g + 1) * og);
      const rounded = factor
        ? native.gptqRoundFactored(factor.l, factor.perm, k, rows, og, scales, weightQmax(bits))
        : null;
      if (rounded) q.values.set(rounded, g * og * k);
      for (let o = 0; o < og; ++o) {
        let shift = 0;
        for (let i = 0; i < k; ++i) shift += (rows[o * k + i] - q.values[(g * og + o) * k + i] * scales[o]) * mean[i];
        corrected[g * og + o] = bias[g * og + o] + shift;
      }
    }
    const result = { weights: q, bias: corrected };
    this.cache.set(key, result);
    this.onRound?.();
    return result;
  }
}

/** Input rows of a conv for group g at the picked output positions: patches in (ky, kx, c) order. */
function patches(node: Extract<FloatNode, { op: 'conv' }>, x: FloatTensor, g: number, picked: number[]): Float32Array {
  const [, c, h, wd] = x.dims;
  const [, cg, kh, kw] = node.weight.dims;
  const { stride, dilation, pads } = node.attrs;
  const oh = Math.floor((h + pads[0] + pads[2] - dilation[0] * (kh - 1) - 1) / stride[0]) + 1;
  const ow = Math.floor((wd + pads[1] + pads[3] - dilation[1] * (kw - 1) - 1) / stride[1]) + 1;
  const k = kh * kw * cg;
  const out = new Float32Array(picked.length * k);
  picked.forEach((p, r) => {
    const b = Math.floor(p / (oh * ow)),
      oy = Math.floor(p / ow) % oh,
      ox = p % ow;
    for (let ky = 0; ky < kh; ++ky) {
      const y = oy * stride[0] - pads[0] + ky * dilation[0];
      if (y < 0 || y >= h) continue;
      for (let kx = 0; kx < kw; ++kx) {
        const xx = ox * stride[1] - pads[1] + kx * dilation[1];
        if (xx < 0 || xx >= wd) continue;
        const dst = r * k + (ky * kw + kx) * cg;
        const src = ((b * c + g * cg) * h + y) * wd + xx;
        for (let ci = 0; ci < cg; ++ci) out[dst + ci] = x.data[src + ci * h * wd];
      }
    }
  });
  return out;
}

function denseRows(x: FloatTensor, picked: number[], k: number): Float32Array {
  const out = new Float32Array(picked.length * k);
  picked.forEach((p, r) => out.set(x.data.subarray(p * k, (p + 1) * k), r * k));
  return out;
}

/** perm[i]: the ONNX (c, h, w) column that lowbit's flattened (h, w, c) column i reads. */
function columnOrder(k: number, flattened: [number, number, number]): Int32Array {
  const index = Float32Array.from({ length: k }, (_, i) => i);
  const moved = permuteFlattenedColumns({ out: 1, kh: 1, kw: 1, icg: k, data: index }, flattened);
  return Int32Array.from(moved.data);
}

function permuteSymmetric(h: Float32Array, perm: Int32Array): Float32Array {
  const k = perm.length;
  const out = new Float32Array(k * k);
  for (let a = 0; a < k; ++a) for (let b = 0; b < k; ++b) out[a * k + b] = h[perm[a] * k + perm[b]];
  return out;
}
