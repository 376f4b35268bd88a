/**
 * ONNX import: bytes -> the canonical float graph of ir.ts.
 *
 *   decode (proto.ts) -> fold constants and canonicalize the operators (fold.ts, canon.ts)
 *   -> simplify: fold affines into layers, commute sign(maxpool), drop dead nodes (simplify.ts)
 *   -> infer and check every tensor's dims (shapes.ts)
 */
import { UnsupportedError } from '../errors.js';
import { canonicalize } from './canon.js';
import type { FloatGraph } from './ir.js';
import { decodeModel } from './proto.js';
import { inferShapes } from './shapes.js';
import { simplify } from './simplify.js';
import { formatDims } from './tensor.js';

export interface ImportOptions {
  /** the batch size to fix where the model's batch axis is dynamic (default: left dynamic, dims[0] = -1) */
  batch?: number;
}

/**
 * Reads an ONNX model (opset 11 or later) as a canonical float graph.
 * @throws ModelFormatError (unreadable or inconsistent model: names the node or tensor and field),
 *   UnsupportedError (an operator, attribute or form lowbit does not take: names the node and what
 *   is supported), RangeError (a bad option), TypeError (bytes not a Uint8Array)
 */
export function importOnnx(bytes: Uint8Array, options: ImportOptions = {}): FloatGraph {
  const batch = options.batch;
  if (batch !== undefined && !(Number.isSafeInteger(batch) && batch >= 1))
    throw new RangeError(`options.batch: expected a positive integer, got ${String(batch)}`);
  const model = decodeModel(bytes);
  const canonical = canonicalize(model, batch);
  const nodes = simplify({ inputs: canonical.inputs, outputs: canonical.outputs, nodes: canonical.nodes });
  const tensors = inferShapes({ nodes }, canonical.inputDims);
  for (const [name, t] of tensors) {
    if (t.dims.length !== 2 && t.dims.length !== 4) {
      throw new UnsupportedError(
        `tensor "${name}": dims ${formatDims(t.dims)} of rank ${t.dims.length}; supported: rank 4 (NCHW) or rank 2 ([N, C])`,
      );
    }
  }
  return { inputs: canonical.inputs, outputs: canonical.outputs, nodes, tensors };
}
