/**
 * What the canonicalization rules share: the symbolic values of the walk (activations, constants,
 * and the binarization / QDQ forms that stay symbolic until they are complete), the shape of a
 * rule, and the attribute and constant checks several rules use.
 */
import { ModelFormatError, UnsupportedError } from '../../errors.js';
import type { Constant, ImportedQuant, PoolAttrs } from '../ir.js';
import { nodeLabel, type RawNode } from '../proto.js';
import { allEqual, formatDims, size, type CTensor } from '../tensor.js';
import type { Canonicalizer } from '../canon.js';

export interface Act {
  kind: 'act';
  /** the canonical tensor name */
  tensor: string;
  dims: number[];
}
export interface Const {
  kind: 'const';
  t: CTensor;
}
/** sign(x) with sign(0) = +1, not yet a node */
export interface SignSym {
  kind: 'sign';
  x: string;
  dims: number[];
  /** the tensor name and node name the sign node gets */
  out: string;
  node: string;
  materialized?: Act;
}
/** x >= 0 (ge) or x < 0 (!ge), for a Where */
export interface Cond {
  kind: 'cond';
  x: string;
  ge: boolean;
  dims: number[];
  node: RawNode;
}
/** S - a with S = sign(x), waiting for `a + (S - a)` */
export interface Ste {
  kind: 'ste';
  x: string;
  a: string;
  dims: number[];
  node: RawNode;
}
/** QuantizeLinear of an activation, waiting for its DequantizeLinear */
export interface Quant {
  kind: 'quant';
  x: string;
  quant: ImportedQuant;
  dims: number[];
  node: RawNode;
}
/** Constant padding of an activation on H and W: a zero one waits for the Conv / AveragePool it folds into */
export interface Padded {
  kind: 'pad';
  x: Act;
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
  value: number;
  /** the pad node, once something other than a Conv / AveragePool read it */
  materialized?: Act;
  /** the padded dims */
  dims: number[];
  node: RawNode;
}
export type Value = Act | Const | SignSym | Cond | Ste | Quant | Padded;

/** A node's inputs as values (undefined: an omitted optional input). */
export type Inputs = (Value | undefined)[];

/** How one ONNX operator on activations becomes canonical nodes or symbolic values. */
export interface CanonRule {
  /** the attributes it accepts (others are refused rather than ignored) */
  attrs: readonly string[];
  canonicalize(c: Canonicalizer, node: RawNode, ins: Inputs): void;
}

/**
 * A form recognised before an operator's rule (binarize.ts): returns true when it took the node,
 * false to leave it to the next pattern and finally the rule.
 */
export type CanonPattern = (c: Canonicalizer, node: RawNode, ins: Inputs) => boolean;

export function toConstant(values: ArrayLike<number>, dims: number[]): Constant {
  return { dims, data: Float32Array.from(values) };
}

/** Does a constant of `cdims` broadcast onto an activation of `xdims` without enlarging it? */
export function fitsOnto(cdims: number[], xdims: number[]): boolean {
  if (cdims.length > xdims.length) return false;
  return cdims.every((d, i) => d === 1 || d === xdims[xdims.length - cdims.length + i]);
}

/** The most a kernel, stride, dilation or pad may be (the .lowbit format's limit). */
const MAX_WINDOW = 65535;

/** A window attribute: `count` integers >= `min` (else malformed), up to MAX_WINDOW (else unsupported). */
function windowInts(node: RawNode, name: string, v: number[], count: number, min: number): void {
  if (v.length !== count || v.some((k) => !Number.isInteger(k) || k < min)) {
    throw new ModelFormatError(
      `${nodeLabel(node)}: attribute "${name}" is [${v.join(', ')}], expected ${count} integers >= ${min}${count === 2 ? ' (2-D windows only)' : ''}`,
    );
  }
  if (v.some((k) => k > MAX_WINDOW))
    throw new UnsupportedError(
      `${nodeLabel(node)}: attribute "${name}" is [${v.join(', ')}]; supported: values in [${min}, ${MAX_WINDOW}]`,
    );
}

export function scalarOf(node: RawNode, t: CTensor, role: string): number {
  if (size(t.dims) !== 1)
    throw new UnsupportedError(`${nodeLabel(node)}: the ${role} must be a single value, got ${formatDims(t.dims)}`);
  return t.data[0];
}

/** A constant as one value per channel (axis 1) of `x`: per-channel or uniform constants only. */
export function perChannel(node: RawNode, c: CTensor, x: Act, role: string): Float64Array {
  const channels = x.dims[1];
  const rank = x.dims.length;
  if (!fitsOnto(c.dims, x.dims)) {
    throw new UnsupportedError(
      `${nodeLabel(node)}: the ${role} ${formatDims(c.dims)} does not broadcast onto the activation ${formatDims(x.dims)} without changing its shape`,
    );
  }
  const aligned = c.dims.map((d, i) => [rank - c.dims.length + i, d]);
  if (aligned.every(([axis, d]) => d === 1 || axis === 1)) {
    const varies = aligned.some(([axis, d]) => axis === 1 && d === channels && d !== 1);
    return Float64Array.from({ length: channels }, (_, ch) => c.data[varies ? ch : 0]);
  }
  if (allEqual(c, c.data[0])) return new Float64Array(channels).fill(c.data[0]);
  // A per-channel constant repeated over the other axes (ReActNet's bias.expand_as(x)).
  const channelAxis = aligned.findIndex(([axis]) => axis === 1);
  if (channelAxis >= 0 && c.dims[channelAxis] === channels) {
    const inner = size(c.dims.slice(channelAxis + 1));
    const channelOf = (i: number) => Math.floor(i / inner) % channels;
    const first = new Float64Array(channels);
    for (let ch = 0; ch < channels; ++ch) first[ch] = c.data[ch * inner];
    if (c.data.every((v, i) => v === first[channelOf(i)])) return first;
  }
  throw new UnsupportedError(
    `${nodeLabel(node)}: the ${role} ${formatDims(c.dims)} varies along an axis other than the channels (axis 1) of ${formatDims(x.dims)}; only scalars and per-channel constants are supported`,
  );
}

export function windowAttrs(
  node: RawNode,
  x: Act,
  kernelDefault?: number[],
): { kernel: [number, number]; stride: [number, number]; dilation: [number, number]; pads: PoolAttrs['pads'] } {
  const a = node.attrs;
  const kernel = a.ints('kernel_shape') ?? kernelDefault;
  if (!kernel) throw new ModelFormatError(`${nodeLabel(node)}: attribute "kernel_shape" is required`);
  const stride = a.ints('strides') ?? [1, 1];
  const dilation = a.ints('dilations') ?? [1, 1];
  windowInts(node, 'kernel_shape', kernel, 2, 1);
  windowInts(node, 'strides', stride, 2, 1);
  windowInts(node, 'dilations', dilation, 2, 1);
  const autoPad = a.string('auto_pad', 'NOTSET');
  let pads: number[];
  if (autoPad === 'NOTSET' || autoPad === '') {
    pads = a.ints('pads') ?? [0, 0, 0, 0];
    windowInts(node, 'pads', pads, 4, 0);
  } else if (autoPad === 'VALID') {
    pads = [0, 0, 0, 0];
  } else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = [0, 0, 0, 0];
    for (const axis of [0, 1]) {
      const inSize = x.dims[2 + axis];
      const out = Math.ceil(inSize / stride[axis]);
      const total = Math.max(0, (out - 1) * stride[axis] + (kernel[axis] - 1) * dilation[axis] + 1 - inSize);
      const small = Math.floor(total / 2);
      pads[axis] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[axis + 2] = total - pads[axis];
    }
  } else {
    throw new ModelFormatError(
      `${nodeLabel(node)}: attribute "auto_pad" is "${autoPad}", expected NOTSET, VALID, SAME_UPPER or SAME_LOWER`,
    );
  }
  return {
    kernel: [kernel[0], kernel[1]],
    stride: [stride[0], stride[1]],
    dilation: [dilation[0], dilation[1]],
    pads: [pads[0], pads[1], pads[2], pads[3]],
  };
}

/** An activation as seen after zero pads [top, left, bottom, right] (for auto_pad). */
export function paddedDims(x: Act, pads: readonly number[]): Act {
  if (x.dims.length !== 4) return x;
  const [n, ch, h, w] = x.dims;
  return { ...x, dims: [n, ch, h + pads[0] + pads[2], w + pads[1] + pads[3]] };
}

/** Window attributes with a preceding Pad's zero pads added to their own. */
export function withPads<T extends { pads: PoolAttrs['pads'] }>(win: T, pads: readonly number[]): T {
  return { ...win, pads: win.pads.map((p, i) => p + pads[i]) as PoolAttrs['pads'] };
}

export function rank4(node: RawNode, x: Act, what = '2-D (NCHW) activations'): void {
  if (x.dims.length !== 4)
    throw new UnsupportedError(
      `${nodeLabel(node)}: input ${formatDims(x.dims)} has rank ${x.dims.length}; supported: ${what}`,
    );
}

/** An activation of rank 2 or 4 (what per-channel operators take). */
export function rank2or4(node: RawNode, x: Act): void {
  if (x.dims.length !== 2 && x.dims.length !== 4)
    throw new UnsupportedError(`${nodeLabel(node)}: activation ${formatDims(x.dims)} must be rank 2 or 4`);
}
