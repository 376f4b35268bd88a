/**
 * sign -> packed bits (a sign not fused into the layer before it; a sign of bits is the bits). A
 * float input, or a per-channel threshold (ReActNet's RSign), takes the float sign; an 8-bit input
 * without a threshold compares with its zero point.
 */
import { UnsupportedError } from '../../errors.js';
import type { FloatNode } from '../../onnx/ir.js';
import type { GraphBuilder, LoweringTable } from '../graph-builder.js';

export function lowerSign(b: GraphBuilder, n: Extract<FloatNode, { op: 'sign' }>): void {
  const v = b.value(n.input);
  const threshold = n.threshold?.data;
  if (v.kind === 'b1') {
    // +-1 values keep their bits for any threshold in (-1, 1].
    if (threshold && !threshold.every((t) => t > -1 && t <= 1))
      throw new UnsupportedError(
        `node '${n.name}' (sign): thresholds outside (-1, 1] on a binarized input are not supported`,
      );
    b.values.set(n.output, v);
    return;
  }
  const x = threshold || b.inFloat(n.input) ? b.asF32(n.input, v) : b.asQ8(n.input, v);
  const t = b.addTensor(n.output, 'b1', b.tensors[x.t].shape);
  b.addNode(n.name, 'sign', [x.t], [t], {}, threshold ? { threshold: Float32Array.from(threshold) } : undefined);
  b.values.set(n.output, { kind: 'b1', t, flattened: x.flattened });
}

export const BINARIZE_LOWERINGS: LoweringTable<'sign'> = {
  sign: { lower: lowerSign, readsFlattened: true },
};
