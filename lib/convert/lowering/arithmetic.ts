/**
 * add (and, sharing its lowering, concat): in float when the stream is float, else 8-bit, with a
 * fused clip; affine (a per-channel scale and shift that did not fold into a layer): float only.
 */
import { UnsupportedError } from '../../errors.js';
import type { FloatNode } from '../../onnx/ir.js';
import { floatClamp, quantClamp, sampleShape, type GraphBuilder, type LoweringTable } from '../graph-builder.js';

/** add / concat of 8-bit inputs, requantized to the output's parameters, or of float inputs; a sole following clip fused. */
export function lowerJoin(b: GraphBuilder, n: Extract<FloatNode, { op: 'add' | 'concat' }>): void {
  const { out, clip } = b.fuseClip(n.output);
  const shape = sampleShape(b.dims(out));
  if (b.inFloat(...n.inputs)) {
    const ins = n.inputs.map((i) => b.asF32(i, b.value(i)).t);
    const t = b.addF32(out, shape);
    b.addNode(n.name, n.op, ins, [t], clip ? { clamp: floatClamp(clip) } : {});
    b.values.set(out, { kind: 'f32', t });
    return;
  }
  const ins = n.inputs.map((i) => b.asQ8(i, b.value(i)).t);
  const q = b.quant(out);
  const t = b.q8Tensor(out, shape, q);
  b.addNode(n.name, n.op, ins, [t], { clamp: quantClamp(q, clip?.min, clip?.max) });
  b.values.set(out, { kind: 'q8', t });
}

export const ARITHMETIC_LOWERINGS: LoweringTable<'add' | 'affine'> = {
  add: { lower: lowerJoin },
  affine: {
    lower(b, n) {
      if (!b.inFloat(n.input))
        throw new UnsupportedError(
          `node '${n.name}': a per-channel scale/shift (BatchNormalization or Mul/Add by a constant) that does not follow a Conv or Gemm is supported only in float (convert with floatLayers 'boundary')`,
        );
      const { out, clip } = b.fuseClip(n.output);
      const x = b.asF32(n.input, b.value(n.input));
      const t = b.addF32(out, sampleShape(b.dims(out)));
      const data = { scale: Float32Array.from(n.scale.data), bias: Float32Array.from(n.bias.data) };
      b.addNode(n.name, 'affine', [x.t], [t], { clamp: floatClamp(clip) }, data);
      b.values.set(out, { kind: 'f32', t });
    },
  },
};
