/** Relu, Clip -> clip; LeakyRelu, PRelu -> prelu; Softmax -> softmax. */
import { UnsupportedError } from '../../errors.js';
import { nodeLabel } from '../proto.js';
import { formatDims } from '../tensor.js';
import { perChannel, rank2or4, scalarOf, toConstant, type CanonRule } from './common.js';

export const ACTIVATION_RULES: Record<string, CanonRule> = {
  Relu: {
    attrs: [],
    canonicalize(c, node, ins) {
      const x = c.activation(node, ins, 0);
      c.emit(node, { op: 'clip', input: x.tensor, min: 0, max: Infinity });
    },
  },

  Clip: {
    attrs: [],
    canonicalize(c, node, ins) {
      const x = c.activation(node, ins, 0);
      const min = ins[1] ? scalarOf(node, c.constant(node, ins, 1, 'min'), 'min') : -Infinity;
      const max = ins[2] ? scalarOf(node, c.constant(node, ins, 2, 'max'), 'max') : Infinity;
      c.emit(node, { op: 'clip', input: x.tensor, min, max });
    },
  },

  LeakyRelu: {
    attrs: ['alpha'],
    canonicalize(c, node, ins) {
      const x = c.activation(node, ins, 0);
      rank2or4(node, x);
      const alpha = node.attrs.float('alpha', 0.01);
      c.emit(node, {
        op: 'prelu',
        input: x.tensor,
        slope: toConstant(new Float64Array(x.dims[1]).fill(alpha), [x.dims[1]]),
      });
    },
  },

  PRelu: {
    attrs: [],
    canonicalize(c, node, ins) {
      const x = c.activation(node, ins, 0);
      rank2or4(node, x);
      const slope = perChannel(node, c.constant(node, ins, 1, 'slope'), x, 'slope');
      c.emit(node, { op: 'prelu', input: x.tensor, slope: toConstant(slope, [slope.length]) });
    },
  },

  Softmax: {
    attrs: ['axis'],
    canonicalize(c, node, ins) {
      const x = c.activation(node, ins, 0);
      const axisAttr = node.attrs.int('axis', c.opset < 13 ? 1 : -1);
      const axis = axisAttr < 0 ? axisAttr + x.dims.length : axisAttr;
      if (x.dims.length !== 2 || axis !== 1) {
        throw new UnsupportedError(
          `${nodeLabel(node)}: Softmax on axis ${axisAttr} of ${formatDims(x.dims)}; supported: axis 1 (or -1) of a rank-2 [N, C] tensor`,
        );
      }
      c.emit(node, { op: 'softmax', input: x.tensor });
    },
  },
};
