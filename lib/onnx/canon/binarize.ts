/**
 * The binarization forms. Each stays symbolic until it is complete, and becomes a `sign` node only
 * when something reads it as an activation (Canonicalizer.materialize):
 *
 *  - a condition ("cond"): `x >= 0` (GreaterOrEqual(x, 0), LessOrEqual(0, x)) or `x < 0` (Less(x, 0),
 *    Greater(0, x)), negated by Not;
 *  - a sign: `Where(cond, 1, -1)` (or `Where(x < 0, -1, 1)`), `Sign(x)` (the straight-through
 *    `a + (S - a)` is rewritten to S on the raw graph, canon.ts dropStraightThrough);
 *  - a straight-through half `S - a` ("ste") that something other than its completion reads.
 *
 * Every form is read as sign(0) = +1 (see canon.ts). Operators that exist only for these forms are
 * rules here (BINARIZE_RULES); forms built from operators that also have a general meaning (Add,
 * Sub) are patterns (BINARIZE_PATTERNS), tried in order before that operator's rule: a new
 * binarization form is one more pattern, or one more symbolic value kind in common.ts.
 */
import { UnsupportedError } from '../../errors.js';
import { nodeLabel, type RawNode } from '../proto.js';
import { allEqual } from '../tensor.js';
import type { Canonicalizer } from '../canon.js';
import { fitsOnto, type CanonPattern, type CanonRule, type Inputs, type SignSym } from './common.js';

/** The sign of `x` that node's first output stands for. */
function signSym(node: RawNode, x: string, dims: number[]): SignSym {
  return { kind: 'sign', x, dims, out: node.outputs[0], node: node.name };
}

/** x >= 0: GreaterOrEqual(x, 0), LessOrEqual(0, x); x < 0: Less(x, 0), Greater(0, x). */
function comparison(c: Canonicalizer, node: RawNode, ins: Inputs): void {
  const p = c.present(node, ins, 0);
  const q = c.present(node, ins, 1);
  const op = node.opType;
  const xFirst = op === 'GreaterOrEqual' || op === 'Less';
  const [xv, zero] = xFirst ? [p, q] : [q, p];
  if (xv.kind !== 'const' && zero.kind === 'const' && allEqual(zero.t, 0)) {
    const x = c.activation(node, ins, xFirst ? 0 : 1);
    if (fitsOnto(zero.t.dims, x.dims))
      return c.set(node, {
        kind: 'cond',
        x: x.tensor,
        ge: op === 'GreaterOrEqual' || op === 'LessOrEqual',
        dims: x.dims,
        node,
      });
  }
  throw new UnsupportedError(
    `${nodeLabel(node)}: ${op} on an activation is supported only as a binarization condition x >= 0 (GreaterOrEqual(x, 0), LessOrEqual(0, x)) or x < 0 (Less(x, 0), Greater(0, x))`,
  );
}

export const BINARIZE_RULES: Record<string, CanonRule> = {
  Sign: {
    attrs: [],
    canonicalize(c, node, ins) {
      const v = c.present(node, ins, 0);
      if (v.kind === 'sign') return c.set(node, v);
      const x = c.activation(node, ins, 0);
      c.set(node, signSym(node, x.tensor, x.dims));
    },
  },
  GreaterOrEqual: { attrs: [], canonicalize: comparison },
  LessOrEqual: { attrs: [], canonicalize: comparison },
  Less: { attrs: [], canonicalize: comparison },
  Greater: { attrs: [], canonicalize: comparison },
  Not: {
    attrs: [],
    canonicalize(c, node, ins) {
      const cond = c.present(node, ins, 0);
      if (cond.kind !== 'cond')
        throw new UnsupportedError(
          `${nodeLabel(node)}: Not on an activation is supported only on a binarization condition (x >= 0 or x < 0)`,
        );
      c.set(node, { ...cond, ge: !cond.ge, node });
    },
  },
  Where: {
    attrs: [],
    canonicalize(c, node, ins) {
      const cond = c.present(node, ins, 0);
      const yes = ins[1];
      const no = ins[2];
      if (cond.kind === 'cond' && yes?.kind === 'const' && no?.kind === 'const') {
        const [pos, neg] = cond.ge ? [yes.t, no.t] : [no.t, yes.t];
        if (allEqual(pos, 1) && allEqual(neg, -1) && fitsOnto(pos.dims, cond.dims) && fitsOnto(neg.dims, cond.dims)) {
          return c.set(node, signSym(node, cond.x, cond.dims));
        }
      }
      throw new UnsupportedError(
        `${nodeLabel(node)}: Where on activations is supported only as the binarization Where(x >= 0, 1, -1) (or Where(x < 0, -1, 1)) with constant branches of all 1 and all -1`,
      );
    },
  },
};

/**
 * The straight-through half S - a, with S a sign and a an activation. Its completion a + (S - a)
 * never reaches here (canon.ts rewrites every Add(Sub(s, b), b) to s first): a half read by
 * anything else stays an "ste", which is refused by name.
 */
const straightThroughDifference: CanonPattern = (c, node, ins) => {
  const p = c.present(node, ins, 0);
  const q = c.present(node, ins, 1);
  if (p.kind === 'const' || q.kind === 'const') return false;
  const x = c.signOf(p);
  if (x === undefined) return false;
  const a = c.activation(node, ins, 1);
  c.set(node, { kind: 'ste', x, a: a.tensor, dims: a.dims, node });
  return true;
};

/** Forms tried, in order, before the rule of the operator they are keyed by. */
export const BINARIZE_PATTERNS: Record<string, readonly CanonPattern[]> = {
  Sub: [straightThroughDifference],
};
