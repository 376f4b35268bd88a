/** sign: lowbit's binarization, x >= threshold[c] (0 when absent; NaN included) -> +1, else -1. */
import { checkPerChannel, checkRank, mapPerChannel, type FloatOpTable } from './common.js';

export const BINARIZE_OPS: FloatOpTable<'sign'> = {
  sign: {
    infer(node, x) {
      if (node.threshold) {
        checkRank(node, x, [2, 4]);
        checkPerChannel(node, x, node.threshold.data.length, 'threshold');
      }
      return [...x];
    },
    evaluate(node, [x]) {
      const t = node.threshold?.data;
      return t ? mapPerChannel(x, (v, c) => (v < t[c] ? -1 : 1)) : x.data.map((v) => (v < 0 ? -1 : 1));
    },
  },
};
