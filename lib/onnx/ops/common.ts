/**
 * What a canonical float operator is to the passes that run it: one record per FloatOp kind with
 * its shape inference (shapes.ts) and its float reference evaluation (evaluate.ts), plus the
 * checks and loops several records share.
 */
import { ModelFormatError } from '../../errors.js';
import type { FloatNode, FloatOp } from '../ir.js';
import { formatDims, size } from '../tensor.js';

/** A float tensor (row-major, NCHW or [N, C]). */
export interface FloatTensor {
  dims: number[];
  data: Float32Array;
}

export type FloatOpKind = FloatOp['op'];
export type FloatNodeOf<K extends FloatOpKind> = Extract<FloatNode, { op: K }>;

export interface FloatOpDef<K extends FloatOpKind> {
  /** The output dims, checking the inputs' dims (`x`: the first input's) and the node's constants. */
  infer(node: FloatNodeOf<K>, x: number[], dimsOf: (name: string) => number[]): number[];
  /** The output values, given the inputs (in nodeInputs order) and the inferred output dims. */
  evaluate(node: FloatNodeOf<K>, ins: FloatTensor[], outDims: number[]): Float32Array;
}

export type FloatOpTable<K extends FloatOpKind = FloatOpKind> = { [P in K]: FloatOpDef<P> };

export function fail(node: FloatNode, what: string): never {
  throw new ModelFormatError(`node "${node.name}" (${node.op}): ${what}`);
}

export function checkRank(node: FloatNode, dims: number[], ranks: number[], what = 'input'): void {
  if (!ranks.includes(dims.length))
    fail(node, `${what} ${formatDims(dims)} has rank ${dims.length}, expected ${ranks.join(' or ')}`);
}

/** `n` values, one per channel (axis 1) of `dims`. */
export function checkPerChannel(node: FloatNode, dims: number[], n: number, what: string): void {
  if (n !== dims[1]) fail(node, `${what} has ${n} values for ${dims[1]} channels of ${formatDims(dims)}`);
}

/** The output dims of one window axis: floor((x + pads - ((k - 1) * d + 1)) / s) + 1. */
export function windowOut(x: number, k: number, s: number, d: number, padBegin: number, padEnd: number): number {
  return Math.floor((x + padBegin + padEnd - ((k - 1) * d + 1)) / s) + 1;
}

/** The output dims [N, channels, oh, ow] of a 2-D window over NCHW `dims`. */
export function windowed(
  node: FloatNode,
  dims: number[],
  channels: number,
  kernel: [number, number],
  stride: [number, number],
  dilation: [number, number],
  pads: number[],
): number[] {
  const [h, w] = [dims[2], dims[3]];
  if (
    kernel.some((k) => !Number.isInteger(k) || k < 1) ||
    stride.some((s) => !Number.isInteger(s) || s < 1) ||
    dilation.some((d) => !Number.isInteger(d) || d < 1)
  ) {
    fail(node, `bad kernel [${kernel}], strides [${stride}] or dilations [${dilation}]`);
  }
  if (pads.some((p) => !Number.isInteger(p) || p < 0)) fail(node, `bad pads [${pads}]`);
  const oh = windowOut(h, kernel[0], stride[0], dilation[0], pads[0], pads[2]);
  const ow = windowOut(w, kernel[1], stride[1], dilation[1], pads[1], pads[3]);
  if (oh < 1 || ow < 1)
    fail(
      node,
      `a ${kernel[0]}x${kernel[1]} window (dilation [${dilation}], pads [${pads}]) does not fit the input ${formatDims(dims)}`,
    );
  return [dims[0], channels, oh, ow];
}

/** Applies f(value, channel) over a [N, C, ...] tensor. */
export function mapPerChannel(x: FloatTensor, f: (v: number, c: number) => number): Float32Array {
  const [n, c] = x.dims;
  const inner = size(x.dims.slice(2));
  const out = new Float32Array(x.data.length);
  for (let b = 0; b < n; ++b) {
    for (let ch = 0; ch < c; ++ch) {
      const base = (b * c + ch) * inner;
      for (let i = base; i < base + inner; ++i) out[i] = f(x.data[i], ch);
    }
  }
  return out;
}
