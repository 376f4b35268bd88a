/**
 * Add, Sub, Mul, Div on activations: Add of two activations of one shape -> add; an activation
 * and a per-channel or scalar constant -> affine. (The straight-through binarization forms of Add
 * and Sub are patterns in binarize.ts, tried first.)
 */
import { UnsupportedError } from '../../errors.js';
import type { RawNode } from '../proto.js';
import { nodeLabel } from '../proto.js';
import { formatDims } from '../tensor.js';
import type { Canonicalizer } from '../canon.js';
import { perChannel, type CanonRule, type Const, type Inputs } from './common.js';

function arithmetic(c: Canonicalizer, node: RawNode, ins: Inputs): void {
  const op = node.opType;
  const p = c.present(node, ins, 0);
  const q = c.present(node, ins, 1);
  if (p.kind !== 'const' && q.kind !== 'const') {
    if (op !== 'Add')
      throw new UnsupportedError(
        `${nodeLabel(node)}: ${op} of two activations is not supported; supported: Add of two activations, ${op} of an activation and a constant`,
      );
    const x = c.activation(node, ins, 0);
    const y = c.activation(node, ins, 1);
    if (x.dims.length !== y.dims.length || x.dims.some((d, i) => d !== y.dims[i])) {
      throw new UnsupportedError(
        `${nodeLabel(node)}: Add of activations of different shapes ${formatDims(x.dims)} and ${formatDims(y.dims)} (broadcasting) is not supported`,
      );
    }
    c.emit(node, { op: 'add', inputs: [x.tensor, y.tensor] });
    return;
  }
  const constFirst = p.kind === 'const';
  const x = c.activation(node, ins, constFirst ? 1 : 0);
  const k = perChannel(node, ((constFirst ? p : q) as Const).t, x, 'constant');
  const n = k.length;
  const ones = new Float64Array(n).fill(1);
  const zeros = new Float64Array(n);
  switch (op) {
    case 'Add':
      return c.affine(node, x, ones, k);
    case 'Mul':
      return c.affine(node, x, k, zeros);
    case 'Sub':
      return constFirst
        ? c.affine(
            node,
            x,
            ones.map(() => -1),
            k,
          )
        : c.affine(
            node,
            x,
            ones,
            k.map((v) => -v),
          );
    default:
      if (constFirst)
        throw new UnsupportedError(`${nodeLabel(node)}: Div of a constant by an activation is not supported`);
      return c.affine(
        node,
        x,
        k.map((v) => 1 / v),
        zeros,
      );
  }
}

export const ARITHMETIC_RULES: Record<string, CanonRule> = {
  Add: { attrs: [], canonicalize: arithmetic },
  Sub: { attrs: [], canonicalize: arithmetic },
  Mul: { attrs: [], canonicalize: arithmetic },
  Div: { attrs: [], canonicalize: arithmetic },
};
