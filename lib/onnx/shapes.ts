/**
 * Shape inference and checks for the canonical operators (NCHW activations, [N, C] after flatten
 * or dense). dims[0] is the batch, -1 when dynamic; every other dimension is known.
 */
import { ModelFormatError } from '../errors.js';
import type { FloatGraph, FloatNode, FloatTensorInfo } from './ir.js';
import { formatDims, size } from './tensor.js';

function fail(node: FloatNode, what: string): never {
  throw new ModelFormatError(`node "${node.name}" (${node.op}): ${what}`);
}

/** The inputs a node reads, in order. */
export function nodeInputs(node: FloatNode): string[] {
  return 'inputs' in node ? [...node.inputs] : [node.input];
}

/** The output dims of one window axis: floor((x + pads - ((k - 1) * d + 1)) / s) + 1. */
export function windowOut(x: number, k: number, s: number, d: number, padBegin: number, padEnd: number): number {
  return Math.floor((x + padBegin + padEnd - ((k - 1) * d + 1)) / s) + 1;
}

function rank(node: FloatNode, dims: number[], ranks: number[], what = 'input'): void {
  if (!ranks.includes(dims.length)) fail(node, `${what} ${formatDims(dims)} has rank ${dims.length}, expected ${ranks.join(' or ')}`);
}

function perChannel(node: FloatNode, dims: number[], n: number, what: string): void {
  if (n !== dims[1]) fail(node, `${what} has ${n} values for ${dims[1]} channels of ${formatDims(dims)}`);
}

function windowed(node: FloatNode, dims: number[], channels: number, kernel: [number, number], stride: [number, number], dilation: [number, number], pads: number[]): number[] {
  const [h, w] = [dims[2], dims[3]];
  if (kernel.some((k) => !Number.isInteger(k) || k < 1) || stride.some((s) => !Number.isInteger(s) || s < 1) || dilation.some((d) => !Number.isInteger(d) || d < 1)) {
    fail(node, `bad kernel [${kernel}], strides [${stride}] or dilations [${dilation}]`);
  }
  if (pads.some((p) => !Number.isInteger(p) || p < 0)) fail(node, `bad pads [${pads}]`);
  const oh = windowOut(h, kernel[0], stride[0], dilation[0], pads[0], pads[2]);
  const ow = windowOut(w, kernel[1], stride[1], dilation[1], pads[1], pads[3]);
  if (oh < 1 || ow < 1) fail(node, `a ${kernel[0]}x${kernel[1]} window (dilation [${dilation}], pads [${pads}]) does not fit the input ${formatDims(dims)}`);
  return [dims[0], channels, oh, ow];
}

/** The output dims of a canonical node, checking its inputs' dims and its constants. */
export function inferDims(node: FloatNode, dimsOf: (name: string) => number[]): number[] {
  const x = dimsOf(nodeInputs(node)[0]);
  switch (node.op) {
    case 'conv': {
      rank(node, x, [4]);
      const { kernel, stride, dilation, pads, groups } = node.attrs;
      const wd = node.weight.dims;
      if (wd.length !== 4) fail(node, `weight ${formatDims(wd)} is not rank 4`);
      if (!Number.isInteger(groups) || groups < 1 || wd[0] % groups !== 0 || x[1] !== wd[1] * groups) {
        fail(node, `input ${formatDims(x)} and weight ${formatDims(wd)} do not agree with ${groups} group(s)`);
      }
      if (wd[2] !== kernel[0] || wd[3] !== kernel[1]) fail(node, `kernel [${kernel}] does not match the weight ${formatDims(wd)}`);
      if (node.weight.data.length !== size(wd)) fail(node, `weight holds ${node.weight.data.length} values for ${formatDims(wd)}`);
      if (node.bias && node.bias.data.length !== wd[0]) fail(node, `bias has ${node.bias.data.length} values for ${wd[0]} output channels`);
      return windowed(node, x, wd[0], kernel, stride, dilation, pads);
    }
    case 'dense': {
      rank(node, x, [2]);
      const wd = node.weight.dims;
      if (wd.length !== 2 || wd[1] !== x[1]) fail(node, `input ${formatDims(x)} and weight ${formatDims(wd)} ([out, in]) do not agree`);
      if (node.weight.data.length !== size(wd)) fail(node, `weight holds ${node.weight.data.length} values for ${formatDims(wd)}`);
      if (node.bias && node.bias.data.length !== wd[0]) fail(node, `bias has ${node.bias.data.length} values for ${wd[0]} outputs`);
      return [x[0], wd[0]];
    }
    case 'affine':
      rank(node, x, [2, 4]);
      perChannel(node, x, node.scale.data.length, 'scale');
      perChannel(node, x, node.bias.data.length, 'bias');
      return [...x];
    case 'prelu':
      rank(node, x, [2, 4]);
      perChannel(node, x, node.slope.data.length, 'slope');
      return [...x];
    case 'clip':
      if (!(node.min <= node.max)) fail(node, `min ${node.min} > max ${node.max}`);
      return [...x];
    case 'sign':
    case 'fakequant':
      return [...x];
    case 'maxpool':
    case 'avgpool': {
      rank(node, x, [4]);
      const { kernel, stride, pads } = node.attrs;
      if (pads[0] >= kernel[0] || pads[2] >= kernel[0] || pads[1] >= kernel[1] || pads[3] >= kernel[1]) {
        fail(node, `pads [${pads}] must be smaller than the kernel [${kernel}]`);
      }
      return windowed(node, x, x[1], kernel, stride, [1, 1], pads);
    }
    case 'global_avgpool':
      rank(node, x, [4]);
      return [x[0], x[1], 1, 1];
    case 'add': {
      const y = dimsOf(node.inputs[1]);
      if (x.length !== y.length || x.some((d, i) => d !== y[i])) fail(node, `inputs ${formatDims(x)} and ${formatDims(y)} differ`);
      return [...x];
    }
    case 'concat': {
      const all = node.inputs.map(dimsOf);
      rank(node, x, [2, 4]);
      for (const d of all) {
        if (d.length !== x.length || d.some((v, i) => i !== 1 && v !== x[i])) fail(node, `inputs ${all.map(formatDims).join(', ')} differ outside axis 1`);
      }
      return [x[0], all.reduce((s, d) => s + d[1], 0), ...x.slice(2)];
    }
    case 'flatten':
      if (x.length < 2) fail(node, `input ${formatDims(x)} has rank ${x.length}, expected at least 2`);
      return [x[0], size(x.slice(1))];
    case 'softmax':
      rank(node, x, [2]);
      return [...x];
  }
}

/** Dims of every tensor of a graph, given the graph inputs' dims; checks every node. */
export function inferShapes(graph: Pick<FloatGraph, 'nodes'>, inputs: Map<string, number[]>): Map<string, FloatTensorInfo> {
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
