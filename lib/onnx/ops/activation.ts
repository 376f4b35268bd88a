/** clip (relu included), prelu, softmax. */
import { checkPerChannel, checkRank, fail, mapPerChannel, type FloatOpTable } from './common.js';

export const ACTIVATION_OPS: FloatOpTable<'clip' | 'prelu' | 'softmax'> = {
  clip: {
    infer(node, x) {
      if (!(node.min <= node.max)) fail(node, `min ${node.min} > max ${node.max}`);
      return [...x];
    },
    evaluate(node, [x]) {
      const { min, max } = node;
      // a plain loop: map() with a closure was a tenth of a ResNet-18 float evaluation
      const out = new Float32Array(x.data.length);
      for (let i = 0; i < out.length; ++i) {
        const v = x.data[i];
        out[i] = v < min ? min : v > max ? max : v;
      }
      return out;
    },
  },
  prelu: {
    infer(node, x) {
      checkRank(node, x, [2, 4]);
      checkPerChannel(node, x, node.slope.data.length, 'slope');
      if (node.shiftIn) checkPerChannel(node, x, node.shiftIn.data.length, 'shiftIn');
      if (node.shiftOut) checkPerChannel(node, x, node.shiftOut.data.length, 'shiftOut');
      return [...x];
    },
    evaluate(node, [x]) {
      const s = node.slope.data;
      const pre = node.shiftIn?.data;
      const post = node.shiftOut?.data;
      if (!pre && !post) return mapPerChannel(x, (v, c) => (v >= 0 ? v : v * s[c]));
      // Rounded to float32 after each step, as the graph computes it.
      const f = Math.fround;
      return mapPerChannel(x, (v, c) => {
        const u = pre ? f(v + pre[c]) : v;
        const y = u >= 0 ? u : f(u * s[c]);
        return post ? f(y + post[c]) : y;
      });
    },
  },
  softmax: {
    infer(node, x) {
      checkRank(node, x, [2]);
      return [...x];
    },
    evaluate(_node, [x]) {
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
    },
  },
};
