/** maxpool, avgpool, global_avgpool, pad. */
import type { FloatNode } from '../ir.js';
import { size } from '../tensor.js';
import { checkRank, fail, windowed, type FloatNodeOf, type FloatOpTable, type FloatTensor } from './common.js';

function pool(
  node: Extract<FloatNode, { op: 'maxpool' | 'avgpool' }>,
  x: FloatTensor,
  outDims: number[],
): Float32Array {
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

const windowPool = {
  infer(node: FloatNodeOf<'maxpool' | 'avgpool'>, x: number[]): number[] {
    checkRank(node, x, [4]);
    const { kernel, stride, pads } = node.attrs;
    if (pads[0] >= kernel[0] || pads[2] >= kernel[0] || pads[1] >= kernel[1] || pads[3] >= kernel[1]) {
      fail(node, `pads [${pads}] must be smaller than the kernel [${kernel}]`);
    }
    return windowed(node, x, x[1], kernel, stride, [1, 1], pads);
  },
  evaluate: (node: FloatNodeOf<'maxpool' | 'avgpool'>, ins: FloatTensor[], outDims: number[]) =>
    pool(node, ins[0], outDims),
};

export const POOL_OPS: FloatOpTable<'maxpool' | 'avgpool' | 'global_avgpool' | 'pad'> = {
  pad: {
    infer(node, x) {
      checkRank(node, x, [4]);
      const [top, left, bottom, right] = node.pads;
      return [x[0], x[1], x[2] + top + bottom, x[3] + left + right];
    },
    evaluate(node, [x], outDims) {
      const [n, c, h, w] = x.dims;
      const [, , oh, ow] = outDims;
      const [top, left] = node.pads;
      const out = new Float32Array(n * c * oh * ow).fill(node.value);
      for (let p = 0; p < n * c; ++p)
        for (let y = 0; y < h; ++y)
          out.set(x.data.subarray((p * h + y) * w, (p * h + y + 1) * w), (p * oh + y + top) * ow + left);
      return out;
    },
  },
  maxpool: windowPool,
  avgpool: windowPool,
  global_avgpool: {
    infer(node, x) {
      checkRank(node, x, [4]);
      return [x[0], x[1], 1, 1];
    },
    evaluate(_node, [x]) {
      const inner = size(x.dims.slice(2));
      const out = new Float32Array(x.dims[0] * x.dims[1]);
      for (let p = 0; p < out.length; ++p) {
        let s = 0;
        for (let i = p * inner; i < (p + 1) * inner; ++i) s += x.data[i];
        out[p] = s / inner;
      }
      return out;
    },
  },
};
