/** concat (along the channels), flatten (to [N, rest]). */
import { formatDims, size } from '../tensor.js';
import { checkRank, fail, type FloatOpTable } from './common.js';

export const SHAPE_OPS: FloatOpTable<'concat' | 'flatten'> = {
  concat: {
    infer(node, x, dimsOf) {
      const all = node.inputs.map(dimsOf);
      checkRank(node, x, [2, 4]);
      for (const d of all) {
        if (d.length !== x.length || d.some((v, i) => i !== 1 && v !== x[i]))
          fail(node, `inputs ${all.map(formatDims).join(', ')} differ outside axis 1`);
      }
      return [x[0], all.reduce((s, d) => s + d[1], 0), ...x.slice(2)];
    },
    evaluate(_node, ins, outDims) {
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
    },
  },
  flatten: {
    infer(node, x) {
      if (x.length < 2) fail(node, `input ${formatDims(x)} has rank ${x.length}, expected at least 2`);
      return [x[0], size(x.slice(1))];
    },
    evaluate: (_node, [x]) => x.data,
  },
};
