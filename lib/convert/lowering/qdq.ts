/** fakequant: no node; its output is its input quantized with the imported parameters. */
import type { LoweringTable } from '../graph-builder.js';

export const QDQ_LOWERINGS: LoweringTable<'fakequant'> = {
  fakequant: {
    lower(b, n) {
      const v = b.value(n.input);
      b.values.set(n.output, v.kind === 'f32' ? b.asQ8(n.output, v) : v);
    },
  },
};
