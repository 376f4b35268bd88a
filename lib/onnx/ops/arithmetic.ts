/** affine (per-channel scale and shift), add (of two tensors of one shape). */
import { formatDims } from '../tensor.js';
import { checkPerChannel, checkRank, fail, mapPerChannel, type FloatOpTable } from './common.js';

export const ARITHMETIC_OPS: FloatOpTable<'affine' | 'add'> = {
  affine: {
    infer(node, x) {
      checkRank(node, x, [2, 4]);
      checkPerChannel(node, x, node.scale.data.length, 'scale');
      checkPerChannel(node, x, node.bias.data.length, 'bias');
      return [...x];
    },
    evaluate(node, [x]) {
      const s = node.scale.data;
      const b = node.bias.data;
      return mapPerChannel(x, (v, c) => v * s[c] + b[c]);
    },
  },
  add: {
    infer(node, x, dimsOf) {
      const y = dimsOf(node.inputs[1]);
      if (x.length !== y.length || x.some((d, i) => d !== y[i]))
        fail(node, `inputs ${formatDims(x)} and ${formatDims(y)} differ`);
      return [...x];
    },
    evaluate(_node, [x, y]) {
      const a = x.data;
      const b = y.data;
      return a.map((v, i) => v + b[i]);
    },
  },
};
