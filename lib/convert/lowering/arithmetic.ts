/** add (and, sharing its lowering, concat): 8-bit with a fused clip; affine: refused (simplify.ts folds the supported ones into a layer). */
import { UnsupportedError } from '../../errors.js';
import type { FloatNode } from '../../onnx/ir.js';
import { quantClamp, sampleShape, type GraphBuilder, type LoweringTable } from '../graph-builder.js';

/** add / concat of 8-bit inputs, requantized to the output's parameters, a sole following clip fused. */
export function lowerJoin(b: GraphBuilder, n: Extract<FloatNode, { op: 'add' | 'concat' }>): void {
  const { out, clip } = b.fuseClip(n.output);
  const ins = n.inputs.map((i) => b.asQ8(i, b.value(i)).t);
  const q = b.quant(out);
  const t = b.q8Tensor(out, sampleShape(b.dims(out)), q);
  b.addNode(n.name, n.op, ins, [t], { clamp: quantClamp(q, clip?.min, clip?.max) });
  b.values.set(out, { kind: 'q8', t });
}

export const ARITHMETIC_LOWERINGS: LoweringTable<'add' | 'affine'> = {
  add: { lower: lowerJoin },
  affine: {
    lower(_b, n) {
      throw new UnsupportedError(
        `node '${n.name}': a per-channel scale/shift (BatchNormalization or Mul/Add by a constant) that does not follow a Conv or Gemm is not supported`,
      );
    },
  },
};
