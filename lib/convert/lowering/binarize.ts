/** sign -> packed bits (a sign not fused into the layer before it; a sign of bits is the bits). */
import type { LoweringTable } from '../graph-builder.js';

export const BINARIZE_LOWERINGS: LoweringTable<'sign'> = {
  sign: {
    lower(b, n) {
      const v = b.value(n.input);
      if (v.kind === 'b1') {
        b.values.set(n.output, v);
        return;
      }
      const q8 = b.asQ8(n.input, v);
      const t = b.addTensor(n.output, 'b1', b.tensors[q8.t].shape);
      b.addNode(n.name, 'sign', [q8.t], [t]);
      b.values.set(n.output, { kind: 'b1', t, flattened: q8.flattened });
    },
    readsFlattened: true,
  },
};
