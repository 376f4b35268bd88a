/** clip -> clamp, prelu (8-bit, two rescales); softmax (float, after dequantizing its input). */
import { dyadicArrays, quantClamp, sampleShape, type LoweringTable } from '../graph-builder.js';

export const ACTIVATION_LOWERINGS: LoweringTable<'clip' | 'prelu' | 'softmax'> = {
  clip: {
    lower(b, n) {
      const shape = sampleShape(b.dims(n.output));
      const v = b.asQ8(n.input, b.value(n.input));
      const q = b.quantOfTensor(v.t);
      const t = b.q8Tensor(n.output, shape, q);
      b.addNode(n.name, 'clamp', [v.t], [t], { clamp: quantClamp(q, n.min, n.max) });
      b.values.set(n.output, { kind: 'q8', t });
    },
  },
  prelu: {
    lower(b, n) {
      const shape = sampleShape(b.dims(n.output));
      const v = b.asQ8(n.input, b.value(n.input));
      const inScale = b.tensors[v.t].scale!;
      const q = b.quant(n.output);
      const channels = shape[shape.length - 1];
      const slope = n.slope.data.length === 1 ? new Float32Array(channels).fill(n.slope.data[0]) : n.slope.data;
      const pos = dyadicArrays(new Array(channels).fill(inScale / q.scale));
      const neg = dyadicArrays(Array.from(slope, (s) => (s * inScale) / q.scale));
      const t = b.q8Tensor(n.output, shape, q);
      b.addNode(
        n.name,
        'prelu',
        [v.t],
        [t],
        { clamp: quantClamp(q) },
        {
          multiplier_pos: pos.multiplier,
          shift_pos: pos.shift,
          multiplier_neg: neg.multiplier,
          shift_neg: neg.shift,
        },
      );
      b.values.set(n.output, { kind: 'q8', t });
    },
  },
  softmax: {
    lower(b, n) {
      const shape = sampleShape(b.dims(n.output));
      const t = b.addTensor(n.output, 'f32', shape);
      b.addNode(n.name, 'softmax', [b.toF32(n.input, b.value(n.input))], [t]);
      b.values.set(n.output, { kind: 'f32', t });
    },
  },
};
