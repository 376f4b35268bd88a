/** clip -> clamp, prelu (8-bit with two rescales, or float with ReActNet's shifts); softmax (float). */
import {
  dyadicArrays,
  floatClamp,
  quantClamp,
  sampleShape,
  type GraphBuilder,
  type LoweringTable,
} from '../graph-builder.js';
import type { FloatNode } from '../../onnx/ir.js';

/** One value per channel: a single value (LeakyRelu's alpha) repeated, or a copy. */
const perChannel = (c: Float32Array, channels: number) =>
  c.length === 1 ? new Float32Array(channels).fill(c[0]) : Float32Array.from(c);

/**
 * A float prelu's per-channel arrays as the format stores them (the `prelu` op's fields, or with
 * `prefix` 'prelu_' a binary layer's fused RPReLU): slope, and the shifts where the node has them.
 */
export function floatPreluData(
  n: Extract<FloatNode, { op: 'prelu' }>,
  channels: number,
  prefix = '',
): Record<string, Float32Array> {
  const data: Record<string, Float32Array> = { [`${prefix}slope`]: perChannel(n.slope.data, channels) };
  // v = x - input_bias: the shift x + s is x - (-s), the same float32 sum.
  if (n.shiftIn) data[`${prefix}input_bias`] = perChannel(n.shiftIn.data, channels).map((s) => -s);
  if (n.shiftOut) data[`${prefix}output_bias`] = perChannel(n.shiftOut.data, channels);
  return data;
}

function lowerFloatPrelu(b: GraphBuilder, n: Extract<FloatNode, { op: 'prelu' }>, channels: number): void {
  const x = b.asF32(n.input, b.value(n.input));
  const t = b.addF32(n.output, sampleShape(b.dims(n.output)));
  b.addNode(n.name, 'prelu', [x.t], [t], {}, floatPreluData(n, channels));
  b.values.set(n.output, { kind: 'f32', t });
}

export const ACTIVATION_LOWERINGS: LoweringTable<'clip' | 'prelu' | 'softmax'> = {
  clip: {
    lower(b, n) {
      const shape = sampleShape(b.dims(n.output));
      if (b.inFloat(n.input)) {
        const x = b.asF32(n.input, b.value(n.input));
        const t = b.addF32(n.output, shape);
        b.addNode(n.name, 'clamp', [x.t], [t], { clamp: floatClamp(n) });
        b.values.set(n.output, { kind: 'f32', t });
        return;
      }
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
      const channels = shape[shape.length - 1];
      // ReActNet's shifts have no 8-bit form: that prelu runs in float.
      if (b.inFloat(n.input) || n.shiftIn || n.shiftOut) return lowerFloatPrelu(b, n, channels);
      const v = b.asQ8(n.input, b.value(n.input));
      const inScale = b.tensors[v.t].scale!;
      const q = b.quant(n.output);
      const slope = perChannel(n.slope.data, channels);
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
