/**
 * A plain float reference executor of the canonical graph (NCHW): calibration runs every tensor
 * of hundreds of samples through it, and conversion error is measured against it.
 *
 * Numerics: tensors are Float32Array; sums (conv, dense, pools, softmax) accumulate in float64 (a
 * JavaScript number; conv and dense run natively, the same sums bit for bit: ops/linear.ts) and are
 * rounded to float32 once when stored, so results can differ from an
 * all-float32 runtime in the last bits. `fakequant` follows ONNX QuantizeLinear / DequantizeLinear
 * in float32 (x / scale rounded to float32, then round half to even). `sign` is lowbit's: x >= 0
 * (zero, -0 and NaN included) gives +1, else -1.
 *
 * The batch is the leading dimension of the inputs and may differ from the graph's dims[0]; every
 * other dimension must match. Each operator's evaluation is its record's `evaluate` (ops/*.ts).
 */
import { ShapeError } from '../errors.js';
import type { FloatGraph } from './ir.js';
import type { FloatTensor } from './ops/common.js';
import { floatOp } from './ops/index.js';
import { inferDims, nodeInputs } from './shapes.js';
import { size } from './tensor.js';

export type { FloatTensor };

export interface EvaluateOptions {
  /** also return these tensors ('all': every tensor, graph inputs included) */
  keep?: 'all' | string[];
}

/**
 * Runs the graph on float32 inputs (one per graph input, NCHW, any batch).
 * @returns the graph outputs, plus the tensors `options.keep` names ('all': every tensor)
 * @throws TypeError (a missing or non-Float32Array input), ShapeError (dims that disagree with the graph)
 */
export function evaluate(
  graph: FloatGraph,
  inputs: Map<string, FloatTensor>,
  options: EvaluateOptions = {},
): Map<string, FloatTensor> {
  const keep = options.keep ?? [];
  const values = new Map<string, FloatTensor>();
  let batch: number | undefined;
  for (const name of graph.inputs) {
    const t = inputs.get(name);
    if (!t) throw new TypeError(`inputs: graph input "${name}" is missing`);
    if (!(t.data instanceof Float32Array)) throw new TypeError(`inputs "${name}": data must be a Float32Array`);
    const want = graph.tensors.get(name)?.dims;
    if (!want) throw new TypeError(`graph: no dims for input "${name}"`);
    const dims = t.dims;
    if (
      !Array.isArray(dims) ||
      dims.length !== want.length ||
      dims.some((d, i) => !Number.isInteger(d) || d < 1 || (i > 0 && d !== want[i]))
    ) {
      throw new ShapeError(`inputs "${name}": dims [${dims}], expected [N, ${want.slice(1).join(', ')}]`);
    }
    if (batch !== undefined && dims[0] !== batch)
      throw new ShapeError(`inputs "${name}": batch ${dims[0]}, another input has ${batch}`);
    batch = dims[0];
    if (t.data.length !== size(dims))
      throw new ShapeError(`inputs "${name}": ${t.data.length} values for dims [${dims}] (${size(dims)})`);
    values.set(name, { dims: [...dims], data: t.data });
  }
  const wanted = new Set<string>(graph.outputs);
  if (keep !== 'all') {
    for (const name of keep) {
      if (!graph.tensors.has(name)) throw new RangeError(`keep: no tensor "${name}" in the graph`);
      wanted.add(name);
    }
  }
  // last reader of each tensor, so unwanted intermediates can be dropped early
  const lastUse = new Map<string, number>();
  graph.nodes.forEach((n, i) => nodeInputs(n).forEach((t) => lastUse.set(t, i)));

  graph.nodes.forEach((node, index) => {
    const ins = nodeInputs(node).map((name) => {
      const t = values.get(name);
      if (!t)
        throw new ShapeError(
          `node "${node.name}" (${node.op}): input "${name}" has not been computed (graph not topologically sorted?)`,
        );
      return t;
    });
    const dims = inferDims(node, (name) => values.get(name)!.dims);
    values.set(node.output, { dims, data: floatOp(node).evaluate(node, ins, dims) });
    if (keep !== 'all') {
      for (const name of nodeInputs(node)) if (lastUse.get(name) === index && !wanted.has(name)) values.delete(name);
    }
  });
  if (keep === 'all') return values;
  const out = new Map<string, FloatTensor>();
  for (const name of wanted) {
    const t = values.get(name);
    if (t) out.set(name, t);
  }
  return out;
}
