/**
 * One record per canonical float operator (ir.ts's FloatOp kinds): how its output dims follow from
 * its inputs (shapes.ts) and how it is evaluated in float (evaluate.ts). A new FloatOp kind is one
 * entry here, in the file of its kind; the compiler insists on every kind having one.
 */
import type { FloatNode } from '../ir.js';
import { ACTIVATION_OPS } from './activation.js';
import { ARITHMETIC_OPS } from './arithmetic.js';
import { BINARIZE_OPS } from './binarize.js';
import type { FloatOpDef, FloatOpKind, FloatOpTable } from './common.js';
import { LINEAR_OPS } from './linear.js';
import { POOL_OPS } from './pool.js';
import { QDQ_OPS } from './qdq.js';
import { SHAPE_OPS } from './shape.js';

export const FLOAT_OPS: FloatOpTable = {
  ...LINEAR_OPS,
  ...ARITHMETIC_OPS,
  ...ACTIVATION_OPS,
  ...POOL_OPS,
  ...SHAPE_OPS,
  ...BINARIZE_OPS,
  ...QDQ_OPS,
};

/** The record of a node's operator. */
export function floatOp(node: FloatNode): FloatOpDef<FloatOpKind> {
  return FLOAT_OPS[node.op] as FloatOpDef<FloatOpKind>;
}
