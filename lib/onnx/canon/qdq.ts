/** A QuantizeLinear / DequantizeLinear pair on an activation -> fakequant (the Quantize half stays symbolic). */
import { ModelFormatError, UnsupportedError } from '../../errors.js';
import type { ImportedQuant } from '../ir.js';
import { nodeLabel } from '../proto.js';
import { DT, dtypeName, formatDims, size } from '../tensor.js';
import type { CanonRule } from './common.js';

export const QDQ_RULES: Record<string, CanonRule> = {
  QuantizeLinear: {
    attrs: ['axis', 'saturate'],
    canonicalize(c, node, ins) {
      const x = c.activation(node, ins, 0);
      const scale = c.constant(node, ins, 1, 'y_scale');
      const zp = ins[2] ? c.constant(node, ins, 2, 'y_zero_point') : undefined;
      if (size(scale.dims) !== 1 || (zp && size(zp.dims) !== 1)) {
        throw new UnsupportedError(
          `${nodeLabel(node)}: per-axis quantization of an activation (scale ${formatDims(scale.dims)}); supported: per tensor`,
        );
      }
      const dtype = zp ? zp.dtype : DT.UINT8;
      if (dtype !== DT.UINT8 && dtype !== DT.INT8)
        throw new UnsupportedError(
          `${nodeLabel(node)}: zero point of type ${dtypeName(dtype)}; supported for activations: UINT8, INT8`,
        );
      const s = scale.data[0];
      if (!(s > 0) || !Number.isFinite(s))
        throw new ModelFormatError(`${nodeLabel(node)}: scale ${s} must be finite and > 0 (input "y_scale")`);
      const quant: ImportedQuant = {
        scale: Math.fround(s),
        zeroPoint: zp ? zp.data[0] : 0,
        dtype: dtype === DT.UINT8 ? 'u8' : 's8',
      };
      c.set(node, { kind: 'quant', x: x.tensor, quant, dims: x.dims, node });
    },
  },

  DequantizeLinear: {
    attrs: ['axis'],
    canonicalize(c, node, ins) {
      const q = c.present(node, ins, 0);
      if (q.kind !== 'quant')
        throw new UnsupportedError(
          `${nodeLabel(node)}: DequantizeLinear of an activation must read a QuantizeLinear (a QDQ pair)`,
        );
      const scale = c.constant(node, ins, 1, 'x_scale');
      const zp = ins[2] ? c.constant(node, ins, 2, 'x_zero_point') : undefined;
      if (
        size(scale.dims) !== 1 ||
        Math.fround(scale.data[0]) !== q.quant.scale ||
        (zp ? zp.data[0] : 0) !== q.quant.zeroPoint
      ) {
        throw new UnsupportedError(
          `${nodeLabel(node)}: scale / zero point differ from those of ${nodeLabel(q.node)}; supported: a QDQ pair with equal parameters`,
        );
      }
      c.emit(node, { op: 'fakequant', input: q.x, quant: q.quant });
    },
  },
};
