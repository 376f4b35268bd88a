/** sign: lowbit's binarization, x >= 0 (zero, -0 and NaN included) -> +1, else -1. */
import type { FloatOpTable } from './common.js';

export const BINARIZE_OPS: FloatOpTable<'sign'> = {
  sign: {
    infer: (_node, x) => [...x],
    evaluate: (_node, [x]) => x.data.map((v) => (v < 0 ? -1 : 1)),
  },
};
