/**
 * Shape inference and checks for the canonical operators (NCHW activations, [N, C] after flatten
 * or dense). dims[0] is the batch, -1 when dynamic; every other dimension is known. Each
 * operator's rule is its record's `infer` (ops/*.ts).
 */
import type { FloatGraph, FloatNode, FloatTensorInfo } from './ir.js';
import { fail } from './ops/common.js';
import { floatOp } from './ops/index.js';

/** The inputs a node reads, in order. */
export function nodeInputs(node: FloatNode): string[] {
  return 'inputs' in node ? [...node.inputs] : [node.input];
}

/** The nodes reading each tensor, in graph order (a node reading a tensor twice is listed twice). */
export function consumerMap(nodes: readonly FloatNode[]): Map<string, FloatNode[]> {
  const consumers = new Map<string, FloatNode[]>();
  for (const n of nodes) {
    for (const i of nodeInputs(n)) {
      const list = consumers.get(i);
      if (list) list.push(n);
      else consumers.set(i, [n]);
    }
  }
  return consumers;
}

/** The output dims of a canonical node, checking its inputs' dims and its constants. */
export function inferDims(node: FloatNode, dimsOf: (name: string) => number[]): number[] {
  const x = dimsOf(nodeInputs(node)[0]);
  return floatOp(node).infer(node, x, dimsOf);
}

/** Dims of every tensor of a graph, given the graph inputs' dims; checks every node. */
export function inferShapes(
  graph: Pick<FloatGraph, 'nodes'>,
  inputs: Map<string, number[]>,
): Map<string, FloatTensorInfo> {
  const tensors = new Map<string, FloatTensorInfo>();
  for (const [name, dims] of inputs) tensors.set(name, { dims: [...dims] });
  for (const node of graph.nodes) {
    const dims = inferDims(node, (name) => {
      const t = tensors.get(name);
      if (!t) fail(node, `input "${name}" is not defined before this node`);
      return t.dims;
    });
    if (tensors.has(node.output)) fail(node, `output "${node.output}" is written twice`);
    tensors.set(node.output, { dims });
  }
  return tensors;
}
