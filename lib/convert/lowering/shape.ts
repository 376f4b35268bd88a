/** concat (lowered as add is), flatten -> reshape (a spatial map stays HWC, marked flattened). */
import { sampleShape, type LoweringTable } from '../graph-builder.js';
import { lowerJoin } from './arithmetic.js';

export const SHAPE_LOWERINGS: LoweringTable<'concat' | 'flatten'> = {
  concat: { lower: lowerJoin },
  flatten: {
    lower(b, n) {
      const shape = sampleShape(b.dims(n.output));
      let v = b.value(n.input);
      // A graph input flattens in ONNX's CHW order; everything else is HWC.
      const chw = b.isChw(v.t);
      const src = b.tensors[v.t];
      const inDims = b.dims(n.input);
      const spatial = inDims.length === 4 && inDims[2] * inDims[3] > 1;
      // Packed bits flatten in place only when every pixel's words are full.
      if (v.kind === 'b1' && spatial && src.shape[2] % 64 !== 0) v = b.asQ8(n.input, v);
      const t = b.addTensorLike(n.output, v.t, shape);
      b.addNode(n.name, 'reshape', [v.t], [t]);
      b.values.set(n.output, {
        kind: v.kind,
        t,
        flattened: spatial && !chw ? [inDims[1], inDims[2], inDims[3]] : undefined,
      });
    },
    readsFlattened: true,
  },
};
