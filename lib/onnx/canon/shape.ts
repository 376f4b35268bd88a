/**
 * Concat, Flatten, Reshape, Shape and the pass-through operators (Identity, Dropout, Cast): a
 * canonical concat / flatten, or the input value itself when nothing changes.
 */
import { ModelFormatError, UnsupportedError } from '../../errors.js';
import { reshapeDims, shapeOf } from '../fold.js';
import { nodeLabel } from '../proto.js';
import { dtypeName, formatDims, isFloatType, size } from '../tensor.js';
import type { CanonRule, Const, Value } from './common.js';

export const SHAPE_RULES: Record<string, CanonRule> = {
  Concat: {
    attrs: ['axis'],
    canonicalize(c, node, ins) {
      const xs = node.inputs.map((_, i) => c.activation(node, ins, i));
      const rank = xs[0].dims.length;
      const axisAttr = node.attrs.int('axis', NaN);
      if (Number.isNaN(axisAttr)) throw new ModelFormatError(`${nodeLabel(node)}: attribute "axis" is required`);
      const axis = axisAttr < 0 ? axisAttr + rank : axisAttr;
      if (axis !== 1 || (rank !== 2 && rank !== 4)) {
        throw new UnsupportedError(
          `${nodeLabel(node)}: concatenation on axis ${axisAttr} of rank-${rank} tensors; supported: the channel axis 1 of rank-2 or rank-4 tensors`,
        );
      }
      if (xs.length === 1) return c.set(node, xs[0]);
      c.emit(node, { op: 'concat', inputs: xs.map((x) => x.tensor) });
    },
  },

  Flatten: {
    attrs: ['axis'],
    canonicalize(c, node, ins) {
      const x = c.activation(node, ins, 0);
      const axisAttr = node.attrs.int('axis', 1);
      const axis = axisAttr < 0 ? axisAttr + x.dims.length : axisAttr;
      if (axis !== 1)
        throw new UnsupportedError(
          `${nodeLabel(node)}: Flatten with axis ${axisAttr} is not supported (attribute "axis"); supported: axis 1`,
        );
      if (x.dims.length === 2) return c.set(node, x);
      c.emit(node, { op: 'flatten', input: x.tensor });
    },
  },

  Reshape: {
    attrs: ['allowzero'],
    canonicalize(c, node, ins) {
      const x = c.activation(node, ins, 0);
      const shape = c.constant(node, ins, 1, 'shape');
      const target = Array.from(shape.data);
      const allowZero = node.attrs.int('allowzero', 0) !== 0;
      const batch = x.dims[0];
      const shown = `[${target.map((v) => (Number.isNaN(v) ? 'N' : v)).join(', ')}]`;
      const refuse = (why: string): never => {
        throw new UnsupportedError(
          `${nodeLabel(node)}: Reshape of ${formatDims(x.dims)} to ${shown}: ${why}; supported: reshapes that keep the batch and flatten ([N, -1], [N, C*H*W], [-1, C*H*W]) or change nothing`,
        );
      };
      if (target.length === 0) refuse('a scalar target');
      if (target.slice(1).some((v) => Number.isNaN(v))) refuse('the batch size appears outside axis 0');
      const t0 = target[0];
      const perSample = size(x.dims.slice(1));
      let rest: number[];
      if (Number.isNaN(t0) || (t0 === 0 && !allowZero) || (t0 > 0 && t0 === batch)) {
        rest = reshapeDims(
          node,
          x.dims.slice(1),
          target
            .slice(1)
            .map((v, i) => (v === 0 && !allowZero ? (x.dims[i + 1] ?? refuse('0 copies a missing axis')) : v)),
          true,
        );
      } else if (t0 === -1) {
        rest = target
          .slice(1)
          .map((v, i) => (v === 0 && !allowZero ? (x.dims[i + 1] ?? refuse('0 copies a missing axis')) : v));
        if (rest.some((v) => v < 1) || size(rest) !== perSample) refuse('the batch axis would change');
      } else if (t0 > 0 && batch < 0) {
        return refuse(
          `the target fixes the batch to ${t0} while the input's batch is dynamic (import with { batch: ${t0} } to fix it)`,
        );
      } else {
        return refuse('the batch axis would change');
      }
      if (rest.length === x.dims.length - 1 && rest.every((d, i) => d === x.dims[i + 1])) return c.set(node, x);
      if (rest.length === 1 && rest[0] === perSample) {
        c.emit(node, { op: 'flatten', input: x.tensor });
        return;
      }
      refuse('not a flattening reshape');
    },
  },

  /** Shape of an activation: a constant (its dynamic batch NaN); Shape of a constant was folded. */
  Shape: {
    attrs: ['start', 'end'],
    canonicalize(c, node, ins) {
      const v = c.present(node, ins, 0) as Exclude<Value, Const>;
      c.set(node, { kind: 'const', t: shapeOf(node, v.dims) });
    },
  },

  Identity: {
    attrs: [],
    canonicalize(c, node, ins) {
      c.set(node, c.present(node, ins, 0));
    },
  },

  Dropout: {
    attrs: ['seed', 'ratio'],
    canonicalize(c, node, ins) {
      c.onlyFirstOutput(node);
      const mode = ins[2];
      if (mode && (mode.kind !== 'const' || mode.t.data[0] !== 0))
        throw new UnsupportedError(
          `${nodeLabel(node)}: Dropout in training mode (input "training_mode") is not supported`,
        );
      c.set(node, c.present(node, ins, 0));
    },
  },

  /** A float cast of an activation, or a binarization condition / sign passed on unchanged. */
  Cast: {
    attrs: ['to', 'saturate'],
    canonicalize(c, node, ins) {
      const v = c.present(node, ins, 0);
      const to = node.attrs.int('to', 0);
      if (v.kind === 'cond' || v.kind === 'sign') return c.set(node, v);
      if (!isFloatType(to))
        throw new UnsupportedError(
          `${nodeLabel(node)}: Cast of an activation to ${dtypeName(to)}; supported: FLOAT, DOUBLE (or a binarization condition)`,
        );
      c.set(node, c.activation(node, ins, 0));
    },
  },
};
