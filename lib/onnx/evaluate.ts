/**
 * A plain float reference executor of the canonical graph (NCHW): calibration runs every tensor
 * of hundreds of samples through it, and conversion error is measured against it.
 *
 * Numerics: tensors are Float32Array; sums (conv, dense, pools, softmax) accumulate in float64 (a
 * JavaScript number) and are rounded to float32 once when stored, so results can differ from an
 * all-float32 runtime in the last bits. `fakequant` follows ONNX QuantizeLinear / DequantizeLinear
 * in float32 (x / scale rounded to float32, then round half to even). `sign` is lowbit's: x >= 0
 * (zero, -0 and NaN included) gives +1, else -1.
 *
 * The batch is the leading dimension of the inputs and may differ from the graph's dims[0]; every
 * other dimension must match.
 */
import { ShapeError } from '../errors.js';
import type { FloatGraph, FloatNode } from './ir.js';
import { inferDims, nodeInputs } from './shapes.js';
import { roundHalfEven, size } from './tensor.js';

export interface FloatTensor {
  dims: number[];
  data: Float32Array;
}

export interface EvaluateOptions {
  /** also return these tensors ('all': every tensor, graph inputs included) */
  keep?: 'all' | string[];
}

/** x zero-padded by [top, left, bottom, right] around every plane. */
function padPlanes(x: FloatTensor, pads: readonly number[]): { data: Float32Array; hp: number; wp: number } {
  const [n, c, h, w] = x.dims;
  const [pt, pl, pb, pr] = pads;
  if (pt + pl + pb + pr === 0) return { data: x.data, hp: h, wp: w };
  const hp = h + pt + pb;
  const wp = w + pl + pr;
  const data = new Float32Array(n * c * hp * wp);
  for (let p = 0; p < n * c; ++p) {
    for (let y = 0; y < h; ++y) data.set(x.data.subarray((p * h + y) * w, (p * h + y + 1) * w), (p * hp + y + pt) * wp + pl);
  }
  return { data, hp, wp };
}

/**
 * Direct convolution over a zero-padded copy of the input, four output channels at a time (each
 * input value loaded once for four multiply-adds). Stride 1: an output plane is accumulated as
 * one contiguous run over the padded width (acc[oy * wp + ox]; the columns past ow are dropped),
 * so the innermost loop is long and contiguous for every tap.
 */
function conv(node: Extract<FloatNode, { op: 'conv' }>, x: FloatTensor, outDims: number[]): Float32Array {
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

function dense(node: Extract<FloatNode, { op: 'dense' }>, x: FloatTensor): Float32Array {
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

/** Applies f(value, channel) over a [N, C, ...] tensor. */
function perChannel(x: FloatTensor, f: (v: number, c: number) => number): Float32Array {
  const [n, c] = x.dims;
  const inner = size(x.dims.slice(2));
  const out = new Float32Array(x.data.length);
  for (let b = 0; b < n; ++b) {
    for (let ch = 0; ch < c; ++ch) {
      const base = (b * c + ch) * inner;
      for (let i = base; i < base + inner; ++i) out[i] = f(x.data[i], ch);
    }
  }
  return out;
}

function pool(node: Extract<FloatNode, { op: 'maxpool' | 'avgpool' }>, x: FloatTensor, outDims: number[]): Float32Array {
  const [n, c, h, w] = x.dims;
  const [, , oh, ow] = outDims;
  const { kernel, stride, pads } = node.attrs;
  const isMax = node.op === 'maxpool';
  const includePad = node.op === 'avgpool' && node.countIncludePad;
  const out = new Float32Array(n * c * oh * ow);
  for (let p = 0; p < n * c; ++p) {
    const xp = p * h * w;
    for (let oy = 0; oy < oh; ++oy) {
      const y0 = oy * stride[0] - pads[0];
      const yLo = Math.max(0, y0);
      const yHi = Math.min(h, y0 + kernel[0]);
      for (let ox = 0; ox < ow; ++ox) {
        const x0 = ox * stride[1] - pads[1];
        const xLo = Math.max(0, x0);
        const xHi = Math.min(w, x0 + kernel[1]);
        let r = isMax ? -Infinity : 0;
        for (let iy = yLo; iy < yHi; ++iy) {
          for (let ix = xLo; ix < xHi; ++ix) {
            const v = x.data[xp + iy * w + ix];
            if (isMax) r = v > r || Number.isNaN(v) ? v : r;
            else r += v;
          }
        }
        if (!isMax) r /= includePad ? kernel[0] * kernel[1] : (yHi - yLo) * (xHi - xLo);
        out[(p * oh + oy) * ow + ox] = r;
      }
    }
  }
  return out;
}

function run(node: FloatNode, ins: FloatTensor[], outDims: number[]): Float32Array {
  const x = ins[0];
  switch (node.op) {
    case 'conv':
      return conv(node, x, outDims);
    case 'dense':
      return dense(node, x);
    case 'affine': {
      const s = node.scale.data;
      const b = node.bias.data;
      return perChannel(x, (v, c) => v * s[c] + b[c]);
    }
    case 'clip': {
      const { min, max } = node;
      return x.data.map((v) => (v < min ? min : v > max ? max : v));
    }
    case 'prelu': {
      const s = node.slope.data;
      return perChannel(x, (v, c) => (v >= 0 ? v : v * s[c]));
    }
    case 'maxpool':
    case 'avgpool':
      return pool(node, x, outDims);
    case 'global_avgpool': {
      const inner = size(x.dims.slice(2));
      const out = new Float32Array(x.dims[0] * x.dims[1]);
      for (let p = 0; p < out.length; ++p) {
        let s = 0;
        for (let i = p * inner; i < (p + 1) * inner; ++i) s += x.data[i];
        out[p] = s / inner;
      }
      return out;
    }
    case 'add': {
      const a = x.data;
      const b = ins[1].data;
      return a.map((v, i) => v + b[i]);
    }
    case 'concat': {
      const out = new Float32Array(size(outDims));
      const n = outDims[0];
      let o = 0;
      for (let b = 0; b < n; ++b) {
        for (const t of ins) {
          const chunk = t.data.length / n;
          out.set(t.data.subarray(b * chunk, (b + 1) * chunk), o);
          o += chunk;
        }
      }
      return out;
    }
    case 'flatten':
      return x.data;
    case 'sign':
      return x.data.map((v) => (v < 0 ? -1 : 1));
    case 'softmax': {
      const [n, c] = x.dims;
      const out = new Float32Array(n * c);
      const e = new Float64Array(c);
      for (let b = 0; b < n; ++b) {
        const row = x.data.subarray(b * c, (b + 1) * c);
        let max = -Infinity;
        for (const v of row) if (v > max) max = v;
        let sum = 0;
        for (let i = 0; i < c; ++i) sum += e[i] = Math.exp(row[i] - max);
        for (let i = 0; i < c; ++i) out[b * c + i] = e[i] / sum;
      }
      return out;
    }
    case 'fakequant': {
      const { scale, zeroPoint, dtype } = node.quant;
      const [lo, hi] = dtype === 'u8' ? [0, 255] : [-128, 127];
      return x.data.map((v) => {
        let q = roundHalfEven(Math.fround(v / scale)) + zeroPoint;
        q = Number.isNaN(q) ? zeroPoint : q < lo ? lo : q > hi ? hi : q;
        return (q - zeroPoint) * scale;
      });
    }
  }
}

/**
 * Runs the graph on float32 inputs (one per graph input, NCHW, any batch).
 * @returns the graph outputs, plus the tensors `options.keep` names ('all': every tensor)
 * @throws TypeError (a missing or non-Float32Array input), ShapeError (dims that disagree with the graph)
 */
export function evaluate(graph: FloatGraph, inputs: Map<string, FloatTensor>, options: EvaluateOptions = {}): Map<string, FloatTensor> {
  const keep = options.keep ?? [];
  const values = new Map<string, FloatTensor>();
  let batch: number | undefined;
  for (const name of graph.inputs) {
    const t = inputs.get(name);
    if (!t) throw new TypeError(`inputs: graph input "${name}" is missing`);
    if (!(t.data instanceof Float32Array)) throw new TypeError(`inputs "${name}": data must be a Float32Array`);
    const want = graph.tensors.get(name)?.dims;
    if (!want) throw new TypeError(`graph: no dims for input "${name}"`);
    const dims = t.dims;
    if (!Array.isArray(dims) || dims.length !== want.length || dims.some((d, i) => !Number.isInteger(d) || d < 1 || (i > 0 && d !== want[i]))) {
      throw new ShapeError(`inputs "${name}": dims [${dims}], expected [N, ${want.slice(1).join(', ')}]`);
    }
    if (batch !== undefined && dims[0] !== batch) throw new ShapeError(`inputs "${name}": batch ${dims[0]}, another input has ${batch}`);
    batch = dims[0];
    if (t.data.length !== size(dims)) throw new ShapeError(`inputs "${name}": ${t.data.length} values for dims [${dims}] (${size(dims)})`);
    values.set(name, { dims: [...dims], data: t.data });
  }
  const wanted = new Set<string>(graph.outputs);
  if (keep !== 'all') {
    for (const name of keep) {
      if (!graph.tensors.has(name)) throw new RangeError(`keep: no tensor "${name}" in the graph`);
      wanted.add(name);
    }
  }
  // last reader of each tensor, so unwanted intermediates can be dropped early
  const lastUse = new Map<string, number>();
  graph.nodes.forEach((n, i) => nodeInputs(n).forEach((t) => lastUse.set(t, i)));

  graph.nodes.forEach((node, index) => {
    const ins = nodeInputs(node).map((name) => {
      const t = values.get(name);
      if (!t) throw new ShapeError(`node "${node.name}" (${node.op}): input "${name}" has not been computed (graph not topologically sorted?)`);
      return t;
    });
    const dims = inferDims(node, (name) => values.get(name)!.dims);
    values.set(node.output, { dims, data: run(node, ins, dims) });
    if (keep !== 'all') {
      for (const name of nodeInputs(node)) if (lastUse.get(name) === index && !wanted.has(name)) values.delete(name);
    }
  });
  if (keep === 'all') return values;
  const out = new Map<string, FloatTensor>();
  for (const name of wanted) {
    const t = values.get(name);
    if (t) out.set(name, t);
  }
  return out;
}
