/** conv, dense: the layers. */
import { native } from '../../native.js';
import type { FloatNode } from '../ir.js';
import { formatDims, size } from '../tensor.js';
import { checkRank, fail, windowed, type FloatOpTable, type FloatTensor } from './common.js';

/** x zero-padded by [top, left, bottom, right] around every plane. */
function padPlanes(x: FloatTensor, pads: readonly number[]): { data: Float32Array; hp: number; wp: number } {
  const [n, c, h, w] = x.dims;
  const [pt, pl, pb, pr] = pads;
  if (pt + pl + pb + pr === 0) return { data: x.data, hp: h, wp: w };
  const hp = h + pt + pb;
  const wp = w + pl + pr;
  const data = new Float32Array(n * c * hp * wp);
  for (let p = 0; p < n * c; ++p) {
    for (let y = 0; y < h; ++y)
      data.set(x.data.subarray((p * h + y) * w, (p * h + y + 1) * w), (p * hp + y + pt) * wp + pl);
  }
  return { data, hp, wp };
}

type ConvNode = Extract<FloatNode, { op: 'conv' }>;
type DenseNode = Extract<FloatNode, { op: 'dense' }>;

/**
 * The JavaScript reference of the native conv that evaluation runs ({@link conv}: lowbit/ptq.h,
 * the same sums bit for bit; the tests compare them). Every output starts at its bias in float64
 * and adds w * x over (input channel, ky, kx) in that order, then is rounded to float32 once.
 *
 * Direct convolution over a zero-padded copy of the input, four output channels at a time (each
 * input value loaded once for four multiply-adds). Stride 1: an output plane is accumulated as
 * one contiguous run over the padded width (acc[oy * wp + ox]; the columns past ow are dropped),
 * so the innermost loop is long and contiguous for every tap.
 */
export function convReference(node: ConvNode, x: FloatTensor, outDims: number[]): Float32Array {
  const [n, c] = x.dims;
  const [, oc, oh, ow] = outDims;
  const [, cg, kh, kw] = node.weight.dims;
  const { stride, dilation, pads, groups } = node.attrs;
  const [sh, sw] = stride;
  const [dh, dw] = dilation;
  const og = oc / groups;
  const wt = node.weight.data;
  const bias = node.bias?.data;
  const { data: xp, hp, wp } = padPlanes(x, pads);
  const unit = sh === 1 && sw === 1;
  const len = unit ? (oh - 1) * wp + ow : oh * ow;
  const accs = [0, 1, 2, 3].map(() => new Float64Array(len));
  const [a0, a1, a2, a3] = accs;
  const ksize = cg * kh * kw;
  const out = new Float32Array(n * oc * oh * ow);
  for (let b = 0; b < n; ++b) {
    for (let g = 0; g < groups; ++g) {
      for (let o = g * og; o < (g + 1) * og; o += 4) {
        const block = Math.min(4, (g + 1) * og - o);
        for (let k = 0; k < 4; ++k) accs[k].fill(k < block && bias ? bias[o + k] : 0);
        for (let ci = 0; ci < cg; ++ci) {
          const plane = (b * c + g * cg + ci) * hp * wp;
          for (let ky = 0; ky < kh; ++ky) {
            for (let kx = 0; kx < kw; ++kx) {
              const wi = o * ksize + (ci * kh + ky) * kw + kx;
              const w0 = wt[wi];
              const w1 = block > 1 ? wt[wi + ksize] : 0;
              const w2 = block > 2 ? wt[wi + 2 * ksize] : 0;
              const w3 = block > 3 ? wt[wi + 3 * ksize] : 0;
              const tap = plane + ky * dh * wp + kx * dw;
              if (unit) {
                for (let j = 0; j < len; ++j) {
                  const v = xp[tap + j];
                  a0[j] += w0 * v;
                  a1[j] += w1 * v;
                  a2[j] += w2 * v;
                  a3[j] += w3 * v;
                }
              } else {
                for (let oy = 0; oy < oh; ++oy) {
                  const row = tap + oy * sh * wp;
                  const r = oy * ow;
                  for (let ox = 0; ox < ow; ++ox) {
                    const v = xp[row + ox * sw];
                    a0[r + ox] += w0 * v;
                    a1[r + ox] += w1 * v;
                    a2[r + ox] += w2 * v;
                    a3[r + ox] += w3 * v;
                  }
                }
              }
            }
          }
        }
        for (let k = 0; k < block; ++k) {
          const acc = accs[k];
          const dst = (b * oc + o + k) * oh * ow;
          if (unit) {
            for (let oy = 0; oy < oh; ++oy) for (let ox = 0; ox < ow; ++ox) out[dst + oy * ow + ox] = acc[oy * wp + ox];
          } else out.set(acc, dst);
        }
      }
    }
  }
  return out;
}

/** The JavaScript reference of {@link dense}: the same order of float64 sums as a 1 x 1 conv. */
export function denseReference(node: DenseNode, x: FloatTensor): Float32Array {
  const [n, inDim] = x.dims;
  const outDim = node.weight.dims[0];
  const wt = node.weight.data;
  const bias = node.bias?.data;
  const out = new Float32Array(n * outDim);
  for (let b = 0; b < n; ++b) {
    const xo = b * inDim;
    for (let o = 0; o < outDim; ++o) {
      let s = bias ? bias[o] : 0;
      const wo = o * inDim;
      for (let i = 0; i < inDim; ++i) s += x.data[xo + i] * wt[wo + i];
      out[b * outDim + o] = s;
    }
  }
  return out;
}

/** The conv of the float evaluator, natively (ResNet-18 at 224: 0.2 s an image on one core, the
 *  JavaScript loop 3.5 s; the same bits). */
export function conv(node: ConvNode, x: FloatTensor): Float32Array {
  const { stride, dilation, pads, groups } = node.attrs;
  const w = node.weight;
  return native.referenceConv(x.data, x.dims, w.data, w.dims, node.bias?.data ?? null, stride, dilation, pads, groups);
}

/** Dense as a 1 x 1 conv over a 1 x 1 image: the same sums, in the same order, as {@link denseReference}. */
export function dense(node: DenseNode, x: FloatTensor): Float32Array {
  const [n, k] = x.dims;
  const w = node.weight;
  return native.referenceConv(
    x.data,
    [n, k, 1, 1],
    w.data,
    [w.dims[0], k, 1, 1],
    node.bias?.data ?? null,
    [1, 1],
    [1, 1],
    [0, 0, 0, 0],
    1,
  );
}

export const LINEAR_OPS: FloatOpTable<'conv' | 'dense'> = {
  conv: {
    infer(node, x) {
      checkRank(node, x, [4]);
      const { kernel, stride, dilation, pads, groups } = node.attrs;
      const wd = node.weight.dims;
      if (wd.length !== 4) fail(node, `weight ${formatDims(wd)} is not rank 4`);
      if (!Number.isInteger(groups) || groups < 1 || wd[0] % groups !== 0 || x[1] !== wd[1] * groups) {
        fail(node, `input ${formatDims(x)} and weight ${formatDims(wd)} do not agree with ${groups} group(s)`);
      }
      if (wd[2] !== kernel[0] || wd[3] !== kernel[1])
        fail(node, `kernel [${kernel}] does not match the weight ${formatDims(wd)}`);
      if (node.weight.data.length !== size(wd))
        fail(node, `weight holds ${node.weight.data.length} values for ${formatDims(wd)}`);
      if (node.bias && node.bias.data.length !== wd[0])
        fail(node, `bias has ${node.bias.data.length} values for ${wd[0]} output channels`);
      return windowed(node, x, wd[0], kernel, stride, dilation, pads);
    },
    evaluate: (node, ins) => conv(node, ins[0]),
  },
  dense: {
    infer(node, x) {
      checkRank(node, x, [2]);
      const wd = node.weight.dims;
      if (wd.length !== 2 || wd[1] !== x[1])
        fail(node, `input ${formatDims(x)} and weight ${formatDims(wd)} ([out, in]) do not agree`);
      if (node.weight.data.length !== size(wd))
        fail(node, `weight holds ${node.weight.data.length} values for ${formatDims(wd)}`);
      if (node.bias && node.bias.data.length !== wd[0])
        fail(node, `bias has ${node.bias.data.length} values for ${wd[0]} outputs`);
      return [x[0], wd[0]];
    },
    evaluate: (node, ins) => dense(node, ins[0]),
  },
};
