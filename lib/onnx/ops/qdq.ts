/** fakequant: a QDQ pair, in float32 as ONNX QuantizeLinear / DequantizeLinear compute it. */
import { roundHalfEven } from '../tensor.js';
import type { FloatOpTable } from './common.js';

export const QDQ_OPS: FloatOpTable<'fakequant'> = {
  fakequant: {
    infer: (_node, x) => [...x],
    evaluate(node, [x]) {
      const { scale, zeroPoint, dtype } = node.quant;
      const [lo, hi] = dtype === 'u8' ? [0, 255] : [-128, 127];
      return x.data.map((v) => {
        let q = roundHalfEven(Math.fround(v / scale)) + zeroPoint;
        q = Number.isNaN(q) ? zeroPoint : q < lo ? lo : q > hi ? hi : q;
        return (q - zeroPoint) * scale;
      });
    },
  },
};
