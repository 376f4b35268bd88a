/** MaxPool, AveragePool -> maxpool / avgpool; GlobalAveragePool -> global_avgpool. */
import { UnsupportedError } from '../../errors.js';
import type { PoolAttrs } from '../ir.js';
import { nodeLabel, type RawNode } from '../proto.js';
import type { Canonicalizer } from '../canon.js';
import { rank4, windowAttrs, type CanonRule, type Inputs } from './common.js';

function windowPool(c: Canonicalizer, node: RawNode, ins: Inputs): void {
  const a = node.attrs;
  const x = c.activation(node, ins, 0);
  rank4(node, x);
  c.onlyFirstOutput(node);
  if (a.int('ceil_mode', 0) !== 0)
    throw new UnsupportedError(
      `${nodeLabel(node)}: ceil_mode = 1 is not supported (attribute "ceil_mode"); supported: ceil_mode 0`,
    );
  if (a.int('storage_order', 0) !== 0)
    throw new UnsupportedError(`${nodeLabel(node)}: storage_order = 1 is not supported (attribute "storage_order")`);
  const win = windowAttrs(node, x);
  if (win.dilation.some((d) => d !== 1))
    throw new UnsupportedError(
      `${nodeLabel(node)}: dilations [${win.dilation}] are not supported for pooling (attribute "dilations"); supported: 1`,
    );
  const attrs: PoolAttrs = { kernel: win.kernel, stride: win.stride, pads: win.pads };
  if (node.opType === 'MaxPool') c.emit(node, { op: 'maxpool', input: x.tensor, attrs });
  else c.emit(node, { op: 'avgpool', input: x.tensor, attrs, countIncludePad: a.int('count_include_pad', 0) !== 0 });
}

export const POOL_RULES: Record<string, CanonRule> = {
  MaxPool: {
    attrs: ['auto_pad', 'ceil_mode', 'dilations', 'kernel_shape', 'pads', 'storage_order', 'strides'],
    canonicalize: windowPool,
  },
  AveragePool: {
    attrs: ['auto_pad', 'ceil_mode', 'count_include_pad', 'dilations', 'kernel_shape', 'pads', 'strides'],
    canonicalize: windowPool,
  },
  GlobalAveragePool: {
    attrs: [],
    canonicalize(c, node, ins) {
      const x = c.activation(node, ins, 0);
      rank4(node, x);
      c.emit(node, { op: 'global_avgpool', input: x.tensor });
    },
  },
};
