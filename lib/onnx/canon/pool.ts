/** MaxPool, AveragePool -> maxpool / avgpool; GlobalAveragePool -> global_avgpool. */
import { UnsupportedError } from '../../errors.js';
import type { PoolAttrs } from '../ir.js';
import { nodeLabel, type RawNode } from '../proto.js';
import type { Canonicalizer } from '../canon.js';
import { paddedDims, rank4, windowAttrs, withPads, type CanonRule, type Inputs } from './common.js';

function windowPool(c: Canonicalizer, node: RawNode, ins: Inputs): void {
  const a = node.attrs;
  // a preceding zero Pad folds only into an average that counts the padded zeros
  const { x, pads: padded } =
    node.opType === 'AveragePool'
      ? c.paddedActivation(node, ins, 0)
      : { x: c.activation(node, ins, 0), pads: [0, 0, 0, 0] };
  const hasPad = padded.some((p) => p > 0);
  rank4(node, x);
  c.onlyFirstOutput(node);
  if (a.int('ceil_mode', 0) !== 0)
    throw new UnsupportedError(
      `${nodeLabel(node)}: ceil_mode = 1 is not supported (attribute "ceil_mode"); supported: ceil_mode 0`,
    );
  if (a.int('storage_order', 0) !== 0)
    throw new UnsupportedError(`${nodeLabel(node)}: storage_order = 1 is not supported (attribute "storage_order")`);
  const own = windowAttrs(node, paddedDims(x, padded));
  let countIncludePad = a.int('count_include_pad', 0) !== 0;
  if (hasPad && !countIncludePad && own.pads.some((p) => p > 0))
    throw new UnsupportedError(
      `${nodeLabel(node)}: a Pad before an AveragePool with pads of its own and count_include_pad = 0 cannot be folded (the average would count only some padded values); supported: a Pad before an AveragePool without pads, or with count_include_pad = 1`,
    );
  if (hasPad) countIncludePad = true;
  const win = withPads(own, padded);
  if (win.dilation.some((d) => d !== 1))
    throw new UnsupportedError(
      `${nodeLabel(node)}: dilations [${win.dilation}] are not supported for pooling (attribute "dilations"); supported: 1`,
    );
  const attrs: PoolAttrs = { kernel: win.kernel, stride: win.stride, pads: win.pads };
  if (node.opType === 'MaxPool') c.emit(node, { op: 'maxpool', input: x.tensor, attrs });
  else c.emit(node, { op: 'avgpool', input: x.tensor, attrs, countIncludePad });
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
