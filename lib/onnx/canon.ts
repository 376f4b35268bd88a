/**
 * Lowering of the ONNX graph to the canonical float operators of ir.ts, in one walk over the nodes
 * that some graph output depends on (dead nodes are neither folded nor checked), in topological order:
 *
 *  - nodes whose inputs are all constants are folded (fold.ts), as is `Shape` of an activation
 *    (whose dynamic batch becomes NaN, so that `Reshape(x, Concat(Shape(x)[0], -1))` reads [N, -1]);
 *  - Conv, Gemm, MatMul, BatchNormalization, Relu, Clip, ... become canonical nodes (one each), with
 *    their output dims inferred as they are created (shapes.ts);
 *  - the binarization forms stay symbolic until they are complete: `x >= 0` / `x < 0` (a "cond"),
 *    `Where(cond, 1, -1)` and `Sign(x)` (a "sign"), and the straight-through `S - a` (an "ste")
 *    whose `a + (S - a)` is the sign S again. A sign becomes a `sign` node when something reads it;
 *    reading a cond or an ste any other way is an UnsupportedError naming both nodes.
 *
 * Binarization and zero: ONNX Sign(0) = 0, while lowbit binarizes 0 to +1 (the packed sign bit is
 * set only for negative values). Every form is read as sign(0) = +1 — the same as PyTorch's
 * `where(x >= 0, 1, -1)` that lowbit's training scripts export, and different from ONNX `Sign` only
 * where x is exactly 0. (`x < 0 ? -1 : 1` is the same function; `Greater(x, 0)` is not, and is refused.)
 *
 * BatchNormalization and Mul / Add / Sub / Div by constants become `affine` nodes here;
 * simplify.ts folds them into a preceding conv / dense.
 */
import { ModelFormatError, UnsupportedError } from '../errors.js';
import type { Constant, FloatNode, FloatOp, ImportedQuant, PoolAttrs } from './ir.js';
import { FOLDABLE_OPS, foldNode, reshapeDims, shapeOf } from './fold.js';
import { describe, type RawInput, type RawModel, type RawNode } from './proto.js';
import { inferDims } from './shapes.js';
import { topoSort } from './toposort.js';
import { allEqual, ctensor, DT, dtypeName, FoldBudget, formatDims, isFloatType, size, type CTensor } from './tensor.js';

interface Act {
  kind: 'act';
  /** the canonical tensor name */
  tensor: string;
  dims: number[];
}
interface Const {
  kind: 'const';
  t: CTensor;
}
/** sign(x) with sign(0) = +1, not yet a node */
interface SignSym {
  kind: 'sign';
  x: string;
  dims: number[];
  /** the tensor name and node name the sign node gets */
  out: string;
  node: string;
  materialized?: Act;
}
/** x >= 0 (ge) or x < 0 (!ge), for a Where */
interface Cond {
  kind: 'cond';
  x: string;
  ge: boolean;
  dims: number[];
  node: RawNode;
}
/** S - a with S = sign(x), waiting for `a + (S - a)` */
interface Ste {
  kind: 'ste';
  x: string;
  a: string;
  dims: number[];
  node: RawNode;
}
/** QuantizeLinear of an activation, waiting for its DequantizeLinear */
interface Quant {
  kind: 'quant';
  x: string;
  quant: ImportedQuant;
  dims: number[];
  node: RawNode;
}
type Value = Act | Const | SignSym | Cond | Ste | Quant;

/** Operators lowered on activations (the rest of ONNX is only folded on constants). */
export const ACTIVATION_OPS: readonly string[] = [
  'Add', 'AveragePool', 'BatchNormalization', 'Cast', 'Clip', 'Concat', 'Conv', 'DequantizeLinear', 'Div', 'Dropout',
  'Flatten', 'Gemm', 'GlobalAveragePool', 'Greater', 'GreaterOrEqual', 'Identity', 'LeakyRelu', 'Less', 'LessOrEqual',
  'MatMul', 'MaxPool', 'Mul', 'Not', 'PRelu', 'QuantizeLinear', 'Relu', 'Reshape', 'Shape', 'Sign', 'Softmax', 'Sub', 'Where',
];

/** Attributes each lowered operator accepts (others are refused rather than ignored). */
const KNOWN_ATTRS: Record<string, readonly string[]> = {
  Conv: ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'],
  Gemm: ['alpha', 'beta', 'transA', 'transB'],
  BatchNormalization: ['epsilon', 'momentum', 'training_mode'],
  MaxPool: ['auto_pad', 'ceil_mode', 'dilations', 'kernel_shape', 'pads', 'storage_order', 'strides'],
  AveragePool: ['auto_pad', 'ceil_mode', 'count_include_pad', 'dilations', 'kernel_shape', 'pads', 'strides'],
  LeakyRelu: ['alpha'],
  Concat: ['axis'],
  Flatten: ['axis'],
  Reshape: ['allowzero'],
  Softmax: ['axis'],
  Dropout: ['seed', 'ratio'],
  Cast: ['to', 'saturate'],
  QuantizeLinear: ['axis', 'saturate'],
  DequantizeLinear: ['axis'],
  Shape: ['start', 'end'],
};

function supportedList(): string {
  return `supported on activations: ${ACTIVATION_OPS.join(', ')}; on constants (folded): ${[...new Set([...FOLDABLE_OPS, 'Constant'])].sort().join(', ')}`;
}

function toConstant(values: ArrayLike<number>, dims: number[]): Constant {
  return { dims, data: Float32Array.from(values) };
}

/** Does a constant of `cdims` broadcast onto an activation of `xdims` without enlarging it? */
function fitsOnto(cdims: number[], xdims: number[]): boolean {
  if (cdims.length > xdims.length) return false;
  return cdims.every((d, i) => d === 1 || d === xdims[xdims.length - cdims.length + i]);
}

/** The most a kernel, stride, dilation or pad may be (the .lowbit format's limit). */
const MAX_WINDOW = 65535;

/** A window attribute: `count` integers >= `min` (else malformed), up to MAX_WINDOW (else unsupported). */
function windowInts(node: RawNode, name: string, v: number[], count: number, min: number): void {
  if (v.length !== count || v.some((k) => !Number.isInteger(k) || k < min)) {
    throw new ModelFormatError(`${describe(node)}: attribute "${name}" is [${v.join(', ')}], expected ${count} integers >= ${min}${count === 2 ? ' (2-D windows only)' : ''}`);
  }
  if (v.some((k) => k > MAX_WINDOW)) throw new UnsupportedError(`${describe(node)}: attribute "${name}" is [${v.join(', ')}]; supported: values in [${min}, ${MAX_WINDOW}]`);
}

/** Tensor dims lowbit can hold: each at most MAX_DIM, and at most MAX_SAMPLE values per sample (the batch aside). */
const MAX_DIM = 2 ** 24;
const MAX_SAMPLE = 2 ** 31 - 1;

function checkDims(dims: number[], what: string): void {
  if (dims.slice(1).some((d) => d > MAX_DIM) || size(dims.slice(1)) > MAX_SAMPLE) {
    throw new UnsupportedError(`${what}: dims ${formatDims(dims)}; supported: each dimension at most ${MAX_DIM} and at most ${MAX_SAMPLE} values per sample`);
  }
}

export interface LoweredGraph {
  inputs: string[];
  inputDims: Map<string, number[]>;
  outputs: string[];
  nodes: FloatNode[];
}

/**
 * The nodes some graph output depends on, in topological order (stable: the file's order where it
 * is valid). Dead nodes are skipped, so an unused constant subgraph is never folded.
 */
function liveSorted(model: RawModel): RawNode[] {
  const available = new Set<string>([...model.initializers.keys(), ...model.inputs.map((i) => i.name), '']);
  const producers = new Map<string, RawNode>();
  for (const node of model.nodes) {
    for (const o of node.outputs) {
      if (!o) continue;
      if (producers.has(o) || available.has(o)) throw new ModelFormatError(`${describe(node)}: output "${o}" is written more than once (field node.output)`);
      producers.set(o, node);
    }
  }
  for (const node of model.nodes) {
    for (const i of node.inputs) {
      if (!available.has(i) && !producers.has(i)) {
        throw new ModelFormatError(`${describe(node)}: input "${i}" is not a graph input, an initializer or a node output (field node.input)`);
      }
    }
  }
  const live = new Set<RawNode>();
  const stack = [...model.outputs];
  while (stack.length > 0) {
    const node = producers.get(stack.pop()!);
    if (!node || live.has(node)) continue;
    live.add(node);
    stack.push(...node.inputs);
  }
  const { sorted, stuck } = topoSort(
    model.nodes.filter((n) => live.has(n)),
    (n) => n.inputs,
    (n) => n.outputs,
    (name) => available.has(name),
  );
  if (stuck.length > 0) {
    // every stuck node reads a stuck node: walking back from one reaches the cycle
    const isStuck = new Set(stuck);
    let node = stuck[0];
    for (const seen = new Set<RawNode>(); !seen.has(node); ) {
      seen.add(node);
      node = node.inputs.map((i) => producers.get(i)).find((p) => p !== undefined && isStuck.has(p))!;
    }
    throw new ModelFormatError(`${describe(node)}: the graph has a cycle through this node`);
  }
  return sorted;
}

class Lowering {
  readonly values = new Map<string, Value>();
  readonly nodes: FloatNode[] = [];
  /** dims and producer of every canonical tensor */
  private readonly tensorDims = new Map<string, number[]>();
  private readonly producers = new Map<string, FloatNode>();
  /** operands of folded constant `Sub(b, a)` nodes, by output name (see constantSte) */
  private readonly subOrigins = new Map<string, { b: string; a: string }>();
  /** every tensor name some node or the graph output reads */
  readonly used = new Set<string>();
  private readonly budget: FoldBudget;

  constructor(
    private readonly model: RawModel,
    private readonly batch: number | undefined,
  ) {
    this.budget = FoldBudget.forModel(model.bytes);
  }

  run(): LoweredGraph {
    const { model } = this;
    const nodes = liveSorted(model);
    for (const node of nodes) for (const i of node.inputs) this.used.add(i);
    for (const o of model.outputs) this.used.add(o);
    for (const [name, t] of model.initializers) this.values.set(name, { kind: 'const', t });
    const inputDims = new Map<string, number[]>();
    for (const input of model.inputs) {
      const dims = this.inputDims(input);
      inputDims.set(input.name, dims);
      this.tensorDims.set(input.name, dims);
      this.values.set(input.name, { kind: 'act', tensor: input.name, dims });
    }
    for (const node of nodes) this.lower(node);
    return { inputs: model.inputs.map((i) => i.name), inputDims, outputs: model.outputs, nodes: this.outputsNamed() };
  }

  private inputDims(input: RawInput): number[] {
    const where = `ONNX graph input "${input.name}"`;
    const dims = input.dims.map((d, axis) => {
      if (axis === 0) {
        if (d === null) return this.batch ?? -1;
        if (this.batch !== undefined && this.batch !== d) throw new RangeError(`options.batch: ${this.batch}, but ${where} fixes the batch to ${d}`);
        return d;
      }
      if (d === null) throw new UnsupportedError(`${where}: dimension ${axis} is symbolic or missing (field type.tensor_type.shape.dim); only the batch axis 0 may be dynamic`);
      return d;
    });
    checkDims(dims, where);
    return dims;
  }

  /** Graph outputs must be tensors of their own name: renames a node output, or adds a copy. */
  private outputsNamed(): FloatNode[] {
    const { model, nodes } = this;
    const taken = new Set<string>(model.inputs.map((i) => i.name));
    const outputs = new Set(model.outputs);
    const renamed = new Map<string, string>(); // applied to every reader at the end, in one pass
    for (const name of model.outputs) {
      const v = this.values.get(name);
      if (!v) throw new ModelFormatError(`ONNX graph output "${name}" is not produced by any node (field graph.output)`);
      if (v.kind === 'const') throw new UnsupportedError(`ONNX graph output "${name}" is a constant`);
      const act = this.materialize(v, `graph output "${name}"`);
      const tensor = renamed.get(act.tensor) ?? act.tensor;
      const producer = this.producers.get(tensor);
      if (tensor !== name && producer && !taken.has(tensor) && !outputs.has(tensor)) {
        producer.output = name;
        renamed.set(tensor, name);
      } else if (tensor !== name) {
        nodes.push({ op: 'clip', input: tensor, min: -Infinity, max: Infinity, name: `${name}.copy`, output: name });
      }
      taken.add(name);
    }
    if (renamed.size > 0) {
      const rename = (t: string) => renamed.get(t) ?? t;
      for (const n of nodes) {
        if ('inputs' in n) n.inputs = n.inputs.map(rename) as typeof n.inputs;
        else n.input = rename(n.input);
      }
      for (const value of this.values.values()) if (value.kind === 'act') value.tensor = rename(value.tensor);
    }
    return nodes;
  }

  private push(fnode: FloatNode, dims: number[]): void {
    this.nodes.push(fnode);
    this.producers.set(fnode.output, fnode);
    this.tensorDims.set(fnode.output, dims);
  }

  private emit(node: RawNode, op: FloatOp, output = node.outputs[0]): Act {
    const fnode = { ...op, name: node.name, output } as FloatNode;
    const dims = inferDims(fnode, (name) => {
      const d = this.tensorDims.get(name);
      if (!d) throw new Error(`internal: tensor "${name}" has no dims`);
      return d;
    });
    checkDims(dims, `${describe(node)}: output "${output}"`);
    this.push(fnode, dims);
    const act: Act = { kind: 'act', tensor: output, dims };
    this.values.set(output, act);
    return act;
  }

  /** An activation value as a tensor: a sign becomes a `sign` node; cond / ste / quant cannot. */
  private materialize(v: Value, reader: string): Act {
    switch (v.kind) {
      case 'act':
        return v;
      case 'sign':
        if (!v.materialized) {
          this.push({ op: 'sign', input: v.x, name: v.node, output: v.out }, v.dims);
          v.materialized = { kind: 'act', tensor: v.out, dims: v.dims };
        }
        return v.materialized;
      case 'cond':
        throw new UnsupportedError(
          `${describe(v.node)}: a comparison of an activation is supported only as the condition of a binarization Where(x >= 0, 1, -1) (or Where(x < 0, -1, 1)); here ${reader} reads it`,
        );
      case 'ste':
        throw new UnsupportedError(`${describe(v.node)}: Sub of an activation from its sign is supported only inside the straight-through form a + (sign - a); here ${reader} reads it`);
      case 'quant':
        throw new UnsupportedError(`${describe(v.node)}: QuantizeLinear of an activation must feed a DequantizeLinear (a QDQ pair); here ${reader} reads it`);
      case 'const':
        throw new UnsupportedError(`${reader}: expected an activation, got a constant`);
    }
  }

  /** The sign a value stands for (a sign symbol, or the output of a sign node), if any. */
  private signOf(v: Value | undefined): string | undefined {
    if (!v) return undefined;
    if (v.kind === 'sign') return v.x;
    if (v.kind === 'act') {
      const p = this.producers.get(v.tensor);
      if (p?.op === 'sign') return p.input;
    }
    return undefined;
  }

  private lower(node: RawNode): void {
    if (node.domain && node.domain !== 'ai.onnx') {
      throw new UnsupportedError(`${describe(node)}: operator ${node.domain}.${node.opType} of a custom domain is not supported; ${supportedList()}`);
    }
    const ins = node.inputs.map((name) => (name ? this.values.get(name) : undefined));
    if (node.opType === 'Constant') return this.constantNode(node);

    const present = ins.filter((v): v is Value => v !== undefined);
    if (present.length > 0 && present.every((v) => v.kind === 'const')) {
      const consts = ins.map((v) => (v as Const | undefined)?.t);
      const ste = node.opType === 'Add' ? this.constantSte(node) : undefined;
      if (node.opType === 'Sub') this.subOrigins.set(node.outputs[0], { b: node.inputs[0], a: node.inputs[1] });
      const out = ste ? [ste] : foldNode(node, consts, this.model.opset, this.budget);
      if (!out) {
        if (ACTIVATION_OPS.includes(node.opType) || node.opType in KNOWN_ATTRS) {
          throw new UnsupportedError(`${describe(node)}: ${node.opType} with only constant inputs cannot be folded; foldable operators: ${FOLDABLE_OPS.join(', ')}`);
        }
        this.unsupportedOp(node);
      }
      out.forEach((t, i) => node.outputs[i] && this.values.set(node.outputs[i], { kind: 'const', t }));
      return;
    }
    if (!ACTIVATION_OPS.includes(node.opType)) this.unsupportedOp(node);
    const known = KNOWN_ATTRS[node.opType] ?? [];
    for (const a of node.attrs.names()) {
      if (!known.includes(a)) {
        throw new UnsupportedError(`${describe(node)}: attribute "${a}" is not supported for ${node.opType}${known.length ? ` (supported: ${known.join(', ')})` : ''}`);
      }
    }
    this.lowerOp(node, ins);
  }

  private unsupportedOp(node: RawNode): never {
    throw new UnsupportedError(`${describe(node)}: operator ${node.opType} is not supported; ${supportedList()}`);
  }

  /**
   * `Add(a, Sub(b, a))` on constants is b exactly (the straight-through weight form
   * w + (q - w)), which float rounding of the two steps would not always give.
   */
  private constantSte(node: RawNode): CTensor | undefined {
    const [p, q] = node.inputs;
    for (const [a, sub] of [
      [p, q],
      [q, p],
    ]) {
      const origin = this.subOrigins.get(sub);
      if (origin && origin.a === a) {
        const b = this.values.get(origin.b);
        const av = this.values.get(a);
        const same = b?.kind === 'const' && av?.kind === 'const' && b.t.dtype === av.t.dtype && b.t.dims.length === av.t.dims.length && b.t.dims.every((d, i) => d === av.t.dims[i]);
        if (same) return b.t;
      }
    }
    return undefined;
  }

  private constantNode(node: RawNode): void {
    const a = node.attrs;
    let t: CTensor | undefined;
    if (a.has('value')) t = a.tensor('value');
    else if (a.has('value_float')) t = ctensor(DT.FLOAT, [], [Math.fround(a.float('value_float', 0))]);
    else if (a.has('value_floats')) t = ctensor(DT.FLOAT, [a.floats('value_floats')!.length], a.floats('value_floats')!.map(Math.fround));
    else if (a.has('value_int')) t = ctensor(DT.INT64, [], [a.int('value_int', 0)]);
    else if (a.has('value_ints')) t = ctensor(DT.INT64, [a.ints('value_ints')!.length], a.ints('value_ints')!);
    if (!t) throw new UnsupportedError(`${describe(node)}: only value, value_float(s) and value_int(s) constants are supported (attributes: ${a.names().join(', ') || 'none'})`);
    this.values.set(node.outputs[0], { kind: 'const', t });
  }

  // ------------------------------------------------------------------ helpers for lowerOp

  private act(node: RawNode, ins: (Value | undefined)[], i: number): Act {
    const v = ins[i];
    if (!v) throw new ModelFormatError(`${describe(node)}: input ${i} is required (field node.input)`);
    if (v.kind === 'const') throw new UnsupportedError(`${describe(node)}: input ${i} ("${node.inputs[i]}") must be an activation, not a constant`);
    return this.materialize(v, describe(node));
  }

  private konst(node: RawNode, ins: (Value | undefined)[], i: number, role: string): CTensor {
    const v = ins[i];
    if (!v) throw new ModelFormatError(`${describe(node)}: input ${i} (${role}) is required (field node.input)`);
    if (v.kind !== 'const') {
      throw new UnsupportedError(`${describe(node)}: the ${role} ("${node.inputs[i]}") must be a constant (an initializer, or computed from constants only)`);
    }
    return v.t;
  }

  private scalarOf(node: RawNode, t: CTensor, role: string): number {
    if (size(t.dims) !== 1) throw new UnsupportedError(`${describe(node)}: the ${role} must be a single value, got ${formatDims(t.dims)}`);
    return t.data[0];
  }

  /** A constant as one value per channel (axis 1) of `x`: per-channel or uniform constants only. */
  private perChannel(node: RawNode, c: CTensor, x: Act, role: string): Float64Array {
    const channels = x.dims[1];
    const rank = x.dims.length;
    if (!fitsOnto(c.dims, x.dims)) {
      throw new UnsupportedError(`${describe(node)}: the ${role} ${formatDims(c.dims)} does not broadcast onto the activation ${formatDims(x.dims)} without changing its shape`);
    }
    const aligned = c.dims.map((d, i) => [rank - c.dims.length + i, d]);
    if (aligned.every(([axis, d]) => d === 1 || axis === 1)) {
      const varies = aligned.some(([axis, d]) => axis === 1 && d === channels && d !== 1);
      return Float64Array.from({ length: channels }, (_, ch) => c.data[varies ? ch : 0]);
    }
    if (allEqual(c, c.data[0])) return new Float64Array(channels).fill(c.data[0]);
    throw new UnsupportedError(
      `${describe(node)}: the ${role} ${formatDims(c.dims)} varies along an axis other than the channels (axis 1) of ${formatDims(x.dims)}; only scalars and per-channel constants are supported`,
    );
  }

  private affine(node: RawNode, x: Act, scale: ArrayLike<number>, bias: ArrayLike<number>): void {
    const n = x.dims[1];
    if (x.dims.length !== 2 && x.dims.length !== 4) throw new UnsupportedError(`${describe(node)}: activation ${formatDims(x.dims)} must be rank 2 or 4`);
    this.emit(node, { op: 'affine', input: x.tensor, scale: toConstant(scale, [n]), bias: toConstant(bias, [n]) });
  }

  private set(node: RawNode, v: Value, output = 0): void {
    this.values.set(node.outputs[output], v);
  }

  /** Secondary outputs (BN statistics, Dropout mask, MaxPool indices) must be unused. */
  private onlyFirstOutput(node: RawNode): void {
    for (const [i, o] of node.outputs.entries()) {
      if (i > 0 && o && this.used.has(o)) throw new UnsupportedError(`${describe(node)}: output ${i} ("${o}") is used; only the first output is supported`);
    }
  }

  private windowAttrs(node: RawNode, x: Act, kernelDefault?: number[]): { kernel: [number, number]; stride: [number, number]; dilation: [number, number]; pads: PoolAttrs['pads'] } {
    const a = node.attrs;
    const kernel = a.ints('kernel_shape') ?? kernelDefault;
    if (!kernel) throw new ModelFormatError(`${describe(node)}: attribute "kernel_shape" is required`);
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
      throw new ModelFormatError(`${describe(node)}: attribute "auto_pad" is "${autoPad}", expected NOTSET, VALID, SAME_UPPER or SAME_LOWER`);
    }
    return { kernel: [kernel[0], kernel[1]], stride: [stride[0], stride[1]], dilation: [dilation[0], dilation[1]], pads: [pads[0], pads[1], pads[2], pads[3]] };
  }

  private rank4(node: RawNode, x: Act, what = '2-D (NCHW) activations'): void {
    if (x.dims.length !== 4) throw new UnsupportedError(`${describe(node)}: input ${formatDims(x.dims)} has rank ${x.dims.length}; supported: ${what}`);
  }

  // ------------------------------------------------------------------ the operators

  private lowerOp(node: RawNode, ins: (Value | undefined)[]): void {
    const a = node.attrs;
    switch (node.opType) {
      case 'Conv': {
        const x = this.act(node, ins, 0);
        this.rank4(node, x, 'rank-4 NCHW input (2-D convolution)');
        const w = this.konst(node, ins, 1, 'weight');
        if (w.dims.length !== 4) throw new UnsupportedError(`${describe(node)}: weight ${formatDims(w.dims)} is not rank 4 (2-D convolution only)`);
        const b = ins[2] ? this.konst(node, ins, 2, 'bias') : undefined;
        if (b && (b.dims.length !== 1 || b.dims[0] !== w.dims[0])) throw new ModelFormatError(`${describe(node)}: bias ${formatDims(b.dims)} for ${w.dims[0]} output channels`);
        const win = this.windowAttrs(node, x, w.dims.slice(2));
        const extent = [win.kernel[0] * win.dilation[0], win.kernel[1] * win.dilation[1]];
        if (win.pads.some((p, i) => p >= extent[i % 2])) {
          throw new UnsupportedError(`${describe(node)}: attribute "pads" is [${win.pads.join(', ')}]; supported: pads smaller than the dilated kernel extent (${extent.join(' x ')})`);
        }
        const groups = a.int('group', 1);
        if (!Number.isInteger(groups) || groups < 1 || x.dims[1] % groups !== 0 || w.dims[0] % groups !== 0) {
          throw new ModelFormatError(`${describe(node)}: attribute "group" is ${groups}, expected a positive integer dividing the input's ${x.dims[1]} channels and the ${w.dims[0]} output channels`);
        }
        this.emit(node, {
          op: 'conv',
          input: x.tensor,
          weight: toConstant(w.data, [...w.dims]),
          bias: b ? toConstant(b.data, [...b.dims]) : null,
          attrs: { kernel: win.kernel, stride: win.stride, dilation: win.dilation, pads: win.pads, groups },
        });
        return;
      }
      case 'Gemm': {
        const x = this.act(node, ins, 0);
        if (x.dims.length !== 2) throw new UnsupportedError(`${describe(node)}: input A ${formatDims(x.dims)} must be rank 2 [N, I]`);
        const bt = this.konst(node, ins, 1, 'B');
        const alpha = a.float('alpha', 1);
        const beta = a.float('beta', 1);
        if (a.int('transA', 0) !== 0) throw new UnsupportedError(`${describe(node)}: transA = 1 is not supported (attribute "transA"); the activation must be A [N, I]`);
        const transB = a.int('transB', 0) !== 0;
        if (bt.dims.length !== 2) throw new ModelFormatError(`${describe(node)}: B ${formatDims(bt.dims)} is not rank 2`);
        const [inDim, outDim] = transB ? [bt.dims[1], bt.dims[0]] : bt.dims;
        if (inDim !== x.dims[1]) throw new ModelFormatError(`${describe(node)}: A ${formatDims(x.dims)} and B ${formatDims(bt.dims)} (transB ${Number(transB)}) do not agree`);
        const w = new Float64Array(outDim * inDim);
        for (let o = 0; o < outDim; ++o) for (let i = 0; i < inDim; ++i) w[o * inDim + i] = alpha * bt.data[transB ? o * inDim + i : i * outDim + o];
        let bias: Constant | null = null;
        if (ins[2] && beta !== 0) {
          const c = this.konst(node, ins, 2, 'C');
          if (c.dims.length > 2 || c.dims.slice(0, -1).some((d) => d !== 1) || (c.dims.length > 0 && c.dims[c.dims.length - 1] !== outDim && c.dims[c.dims.length - 1] !== 1)) {
            throw new UnsupportedError(`${describe(node)}: C ${formatDims(c.dims)} must be a scalar, [${outDim}] or [1, ${outDim}]`);
          }
          const perOut = c.dims.length > 0 && c.dims[c.dims.length - 1] === outDim;
          bias = toConstant(
            Array.from({ length: outDim }, (_, o) => beta * c.data[perOut ? o : 0]),
            [outDim],
          );
        }
        this.emit(node, { op: 'dense', input: x.tensor, weight: toConstant(w, [outDim, inDim]), bias });
        return;
      }
      case 'MatMul': {
        const x = this.act(node, ins, 0);
        if (x.dims.length !== 2) throw new UnsupportedError(`${describe(node)}: input A ${formatDims(x.dims)} must be rank 2 [N, I]`);
        const bt = this.konst(node, ins, 1, 'B');
        if (bt.dims.length !== 2) throw new UnsupportedError(`${describe(node)}: B ${formatDims(bt.dims)} must be a rank-2 constant [I, O]`);
        const [inDim, outDim] = bt.dims;
        if (inDim !== x.dims[1]) throw new ModelFormatError(`${describe(node)}: A ${formatDims(x.dims)} and B ${formatDims(bt.dims)} do not agree`);
        const w = new Float64Array(outDim * inDim);
        for (let o = 0; o < outDim; ++o) for (let i = 0; i < inDim; ++i) w[o * inDim + i] = bt.data[i * outDim + o];
        this.emit(node, { op: 'dense', input: x.tensor, weight: toConstant(w, [outDim, inDim]), bias: null });
        return;
      }
      case 'BatchNormalization': {
        const x = this.act(node, ins, 0);
        if (a.int('training_mode', 0) !== 0) throw new UnsupportedError(`${describe(node)}: training_mode = 1 is not supported (attribute "training_mode"); export the model in eval mode`);
        this.onlyFirstOutput(node);
        const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => this.konst(node, ins, i, ['', 'scale', 'B', 'mean', 'var'][i]));
        const c = x.dims[1];
        for (const t of [scale, bias, mean, variance]) {
          if (t.data.length !== c) throw new ModelFormatError(`${describe(node)}: a parameter of ${formatDims(t.dims)} for ${c} channels`);
        }
        const eps = a.float('epsilon', 1e-5);
        const s = Float64Array.from(scale.data, (v, i) => v / Math.sqrt(variance.data[i] + eps));
        const t = Float64Array.from(bias.data, (v, i) => v - mean.data[i] * s[i]);
        this.affine(node, x, s, t);
        return;
      }
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
        return this.arithmetic(node, ins);
      case 'Relu': {
        const x = this.act(node, ins, 0);
        this.emit(node, { op: 'clip', input: x.tensor, min: 0, max: Infinity });
        return;
      }
      case 'Clip': {
        const x = this.act(node, ins, 0);
        const min = ins[1] ? this.scalarOf(node, this.konst(node, ins, 1, 'min'), 'min') : -Infinity;
        const max = ins[2] ? this.scalarOf(node, this.konst(node, ins, 2, 'max'), 'max') : Infinity;
        this.emit(node, { op: 'clip', input: x.tensor, min, max });
        return;
      }
      case 'LeakyRelu': {
        const x = this.act(node, ins, 0);
        if (x.dims.length !== 2 && x.dims.length !== 4) throw new UnsupportedError(`${describe(node)}: activation ${formatDims(x.dims)} must be rank 2 or 4`);
        const alpha = a.float('alpha', 0.01);
        this.emit(node, { op: 'prelu', input: x.tensor, slope: toConstant(new Float64Array(x.dims[1]).fill(alpha), [x.dims[1]]) });
        return;
      }
      case 'PRelu': {
        const x = this.act(node, ins, 0);
        if (x.dims.length !== 2 && x.dims.length !== 4) throw new UnsupportedError(`${describe(node)}: activation ${formatDims(x.dims)} must be rank 2 or 4`);
        const slope = this.perChannel(node, this.konst(node, ins, 1, 'slope'), x, 'slope');
        this.emit(node, { op: 'prelu', input: x.tensor, slope: toConstant(slope, [slope.length]) });
        return;
      }
      case 'MaxPool':
      case 'AveragePool': {
        const x = this.act(node, ins, 0);
        this.rank4(node, x);
        this.onlyFirstOutput(node);
        if (a.int('ceil_mode', 0) !== 0) throw new UnsupportedError(`${describe(node)}: ceil_mode = 1 is not supported (attribute "ceil_mode"); supported: ceil_mode 0`);
        if (a.int('storage_order', 0) !== 0) throw new UnsupportedError(`${describe(node)}: storage_order = 1 is not supported (attribute "storage_order")`);
        const win = this.windowAttrs(node, x);
        if (win.dilation.some((d) => d !== 1)) throw new UnsupportedError(`${describe(node)}: dilations [${win.dilation}] are not supported for pooling (attribute "dilations"); supported: 1`);
        const attrs: PoolAttrs = { kernel: win.kernel, stride: win.stride, pads: win.pads };
        if (node.opType === 'MaxPool') this.emit(node, { op: 'maxpool', input: x.tensor, attrs });
        else this.emit(node, { op: 'avgpool', input: x.tensor, attrs, countIncludePad: a.int('count_include_pad', 0) !== 0 });
        return;
      }
      case 'GlobalAveragePool': {
        const x = this.act(node, ins, 0);
        this.rank4(node, x);
        this.emit(node, { op: 'global_avgpool', input: x.tensor });
        return;
      }
      case 'Concat': {
        const xs = node.inputs.map((_, i) => this.act(node, ins, i));
        const rank = xs[0].dims.length;
        const axisAttr = a.int('axis', NaN);
        if (Number.isNaN(axisAttr)) throw new ModelFormatError(`${describe(node)}: attribute "axis" is required`);
        const axis = axisAttr < 0 ? axisAttr + rank : axisAttr;
        if (axis !== 1 || (rank !== 2 && rank !== 4)) {
          throw new UnsupportedError(`${describe(node)}: concatenation on axis ${axisAttr} of rank-${rank} tensors; supported: the channel axis 1 of rank-2 or rank-4 tensors`);
        }
        if (xs.length === 1) return this.set(node, xs[0]);
        this.emit(node, { op: 'concat', inputs: xs.map((x) => x.tensor) });
        return;
      }
      case 'Flatten': {
        const x = this.act(node, ins, 0);
        const axisAttr = a.int('axis', 1);
        const axis = axisAttr < 0 ? axisAttr + x.dims.length : axisAttr;
        if (axis !== 1) throw new UnsupportedError(`${describe(node)}: Flatten with axis ${axisAttr} is not supported (attribute "axis"); supported: axis 1`);
        if (x.dims.length === 2) return this.set(node, x);
        this.emit(node, { op: 'flatten', input: x.tensor });
        return;
      }
      case 'Reshape':
        return this.reshape(node, ins);
      case 'Softmax': {
        const x = this.act(node, ins, 0);
        const axisAttr = a.int('axis', this.model.opset < 13 ? 1 : -1);
        const axis = axisAttr < 0 ? axisAttr + x.dims.length : axisAttr;
        if (x.dims.length !== 2 || axis !== 1) {
          throw new UnsupportedError(`${describe(node)}: Softmax on axis ${axisAttr} of ${formatDims(x.dims)}; supported: axis 1 (or -1) of a rank-2 [N, C] tensor`);
        }
        this.emit(node, { op: 'softmax', input: x.tensor });
        return;
      }
      case 'Identity':
        return this.set(node, this.present(node, ins, 0));
      case 'Dropout': {
        this.onlyFirstOutput(node);
        const mode = ins[2];
        if (mode && (mode.kind !== 'const' || mode.t.data[0] !== 0)) throw new UnsupportedError(`${describe(node)}: Dropout in training mode (input "training_mode") is not supported`);
        return this.set(node, this.present(node, ins, 0));
      }
      case 'Cast': {
        const v = this.present(node, ins, 0);
        const to = a.int('to', 0);
        if (v.kind === 'cond' || v.kind === 'sign') return this.set(node, v);
        if (!isFloatType(to)) throw new UnsupportedError(`${describe(node)}: Cast of an activation to ${dtypeName(to)}; supported: FLOAT, DOUBLE (or a binarization condition)`);
        return this.set(node, this.act(node, ins, 0));
      }
      case 'Sign': {
        const v = this.present(node, ins, 0);
        if (v.kind === 'sign') return this.set(node, v);
        const x = this.act(node, ins, 0);
        return this.set(node, { kind: 'sign', x: x.tensor, dims: x.dims, out: node.outputs[0], node: node.name });
      }
      case 'GreaterOrEqual':
      case 'LessOrEqual':
      case 'Less':
      case 'Greater':
        return this.comparison(node, ins);
      case 'Not': {
        const c = this.present(node, ins, 0);
        if (c.kind !== 'cond') throw new UnsupportedError(`${describe(node)}: Not on an activation is supported only on a binarization condition (x >= 0 or x < 0)`);
        return this.set(node, { ...c, ge: !c.ge, node });
      }
      case 'Where':
        return this.where(node, ins);
      case 'QuantizeLinear': {
        const x = this.act(node, ins, 0);
        const scale = this.konst(node, ins, 1, 'y_scale');
        const zp = ins[2] ? this.konst(node, ins, 2, 'y_zero_point') : undefined;
        if (size(scale.dims) !== 1 || (zp && size(zp.dims) !== 1)) {
          throw new UnsupportedError(`${describe(node)}: per-axis quantization of an activation (scale ${formatDims(scale.dims)}); supported: per tensor`);
        }
        const dtype = zp ? zp.dtype : DT.UINT8;
        if (dtype !== DT.UINT8 && dtype !== DT.INT8) throw new UnsupportedError(`${describe(node)}: zero point of type ${dtypeName(dtype)}; supported for activations: UINT8, INT8`);
        const s = scale.data[0];
        if (!(s > 0) || !Number.isFinite(s)) throw new ModelFormatError(`${describe(node)}: scale ${s} must be finite and > 0 (input "y_scale")`);
        const quant: ImportedQuant = { scale: Math.fround(s), zeroPoint: zp ? zp.data[0] : 0, dtype: dtype === DT.UINT8 ? 'u8' : 's8' };
        return this.set(node, { kind: 'quant', x: x.tensor, quant, dims: x.dims, node });
      }
      case 'DequantizeLinear': {
        const q = this.present(node, ins, 0);
        if (q.kind !== 'quant') throw new UnsupportedError(`${describe(node)}: DequantizeLinear of an activation must read a QuantizeLinear (a QDQ pair)`);
        const scale = this.konst(node, ins, 1, 'x_scale');
        const zp = ins[2] ? this.konst(node, ins, 2, 'x_zero_point') : undefined;
        if (size(scale.dims) !== 1 || Math.fround(scale.data[0]) !== q.quant.scale || (zp ? zp.data[0] : 0) !== q.quant.zeroPoint) {
          throw new UnsupportedError(`${describe(node)}: scale / zero point differ from those of ${describe(q.node)}; supported: a QDQ pair with equal parameters`);
        }
        this.emit(node, { op: 'fakequant', input: q.x, quant: q.quant });
        return;
      }
      case 'Shape': {
        const v = this.present(node, ins, 0) as Exclude<Value, Const>; // Shape of a constant was folded
        return this.set(node, { kind: 'const', t: shapeOf(node, v.dims) });
      }
      default:
        this.unsupportedOp(node);
    }
  }

  private present(node: RawNode, ins: (Value | undefined)[], i: number): Value {
    const v = ins[i];
    if (!v) throw new ModelFormatError(`${describe(node)}: input ${i} is required (field node.input)`);
    return v;
  }

  private arithmetic(node: RawNode, ins: (Value | undefined)[]): void {
    const op = node.opType;
    const p = this.present(node, ins, 0);
    const q = this.present(node, ins, 1);
    if (op === 'Add') {
      // straight-through binarization: a + (S - a) or (S - a) + a
      for (const [ste, other] of [
        [p, q],
        [q, p],
      ]) {
        if (ste.kind === 'ste' && other.kind === 'act' && other.tensor === ste.a) {
          return this.set(node, { kind: 'sign', x: ste.x, dims: ste.dims, out: node.outputs[0], node: node.name });
        }
      }
    }
    if (op === 'Sub' && p.kind !== 'const' && q.kind !== 'const') {
      const x = this.signOf(p);
      if (x !== undefined) {
        const a = this.act(node, ins, 1);
        return this.set(node, { kind: 'ste', x, a: a.tensor, dims: a.dims, node });
      }
    }
    if (p.kind !== 'const' && q.kind !== 'const') {
      if (op !== 'Add') throw new UnsupportedError(`${describe(node)}: ${op} of two activations is not supported; supported: Add of two activations, ${op} of an activation and a constant`);
      const x = this.act(node, ins, 0);
      const y = this.act(node, ins, 1);
      if (x.dims.length !== y.dims.length || x.dims.some((d, i) => d !== y.dims[i])) {
        throw new UnsupportedError(`${describe(node)}: Add of activations of different shapes ${formatDims(x.dims)} and ${formatDims(y.dims)} (broadcasting) is not supported`);
      }
      this.emit(node, { op: 'add', inputs: [x.tensor, y.tensor] });
      return;
    }
    const constFirst = p.kind === 'const';
    const x = this.act(node, ins, constFirst ? 1 : 0);
    const c = this.perChannel(node, ((constFirst ? p : q) as Const).t, x, 'constant');
    const n = c.length;
    const ones = new Float64Array(n).fill(1);
    const zeros = new Float64Array(n);
    switch (op) {
      case 'Add':
        return this.affine(node, x, ones, c);
      case 'Mul':
        return this.affine(node, x, c, zeros);
      case 'Sub':
        return constFirst ? this.affine(node, x, ones.map(() => -1), c) : this.affine(node, x, ones, c.map((v) => -v));
      default:
        if (constFirst) throw new UnsupportedError(`${describe(node)}: Div of a constant by an activation is not supported`);
        return this.affine(node, x, c.map((v) => 1 / v), zeros);
    }
  }

  private comparison(node: RawNode, ins: (Value | undefined)[]): void {
    const p = this.present(node, ins, 0);
    const q = this.present(node, ins, 1);
    const op = node.opType;
    // x >= 0: GreaterOrEqual(x, 0), LessOrEqual(0, x); x < 0: Less(x, 0), Greater(0, x)
    const xFirst = op === 'GreaterOrEqual' || op === 'Less';
    const [xv, zero] = xFirst ? [p, q] : [q, p];
    if (xv.kind !== 'const' && zero.kind === 'const' && allEqual(zero.t, 0)) {
      const x = this.act(node, ins, xFirst ? 0 : 1);
      if (fitsOnto(zero.t.dims, x.dims)) return this.set(node, { kind: 'cond', x: x.tensor, ge: op === 'GreaterOrEqual' || op === 'LessOrEqual', dims: x.dims, node });
    }
    throw new UnsupportedError(
      `${describe(node)}: ${op} on an activation is supported only as a binarization condition x >= 0 (GreaterOrEqual(x, 0), LessOrEqual(0, x)) or x < 0 (Less(x, 0), Greater(0, x))`,
    );
  }

  private where(node: RawNode, ins: (Value | undefined)[]): void {
    const c = this.present(node, ins, 0);
    const yes = ins[1];
    const no = ins[2];
    if (c.kind === 'cond' && yes?.kind === 'const' && no?.kind === 'const') {
      const [pos, neg] = c.ge ? [yes.t, no.t] : [no.t, yes.t];
      if (allEqual(pos, 1) && allEqual(neg, -1) && fitsOnto(pos.dims, c.dims) && fitsOnto(neg.dims, c.dims)) {
        return this.set(node, { kind: 'sign', x: c.x, dims: c.dims, out: node.outputs[0], node: node.name });
      }
    }
    throw new UnsupportedError(
      `${describe(node)}: Where on activations is supported only as the binarization Where(x >= 0, 1, -1) (or Where(x < 0, -1, 1)) with constant branches of all 1 and all -1`,
    );
  }

  private reshape(node: RawNode, ins: (Value | undefined)[]): void {
    const x = this.act(node, ins, 0);
    const shape = this.konst(node, ins, 1, 'shape');
    const target = Array.from(shape.data);
    const allowZero = node.attrs.int('allowzero', 0) !== 0;
    const batch = x.dims[0];
    const shown = `[${target.map((v) => (Number.isNaN(v) ? 'N' : v)).join(', ')}]`;
    const refuse = (why: string): never => {
      throw new UnsupportedError(`${describe(node)}: Reshape of ${formatDims(x.dims)} to ${shown}: ${why}; supported: reshapes that keep the batch and flatten ([N, -1], [N, C*H*W], [-1, C*H*W]) or change nothing`);
    };
    if (target.length === 0) refuse('a scalar target');
    if (target.slice(1).some((v) => Number.isNaN(v))) refuse('the batch size appears outside axis 0');
    const t0 = target[0];
    const perSample = size(x.dims.slice(1));
    let rest: number[];
    if (Number.isNaN(t0) || (t0 === 0 && !allowZero) || (t0 > 0 && t0 === batch)) {
      rest = reshapeDims(node, x.dims.slice(1), target.slice(1).map((v, i) => (v === 0 && !allowZero ? (x.dims[i + 1] ?? refuse('0 copies a missing axis')) : v)), true);
    } else if (t0 === -1) {
      rest = target.slice(1).map((v, i) => (v === 0 && !allowZero ? (x.dims[i + 1] ?? refuse('0 copies a missing axis')) : v));
      if (rest.some((v) => v < 1) || size(rest) !== perSample) refuse('the batch axis would change');
    } else if (t0 > 0 && batch < 0) {
      return refuse(`the target fixes the batch to ${t0} while the input's batch is dynamic (import with { batch: ${t0} } to fix it)`);
    } else {
      return refuse('the batch axis would change');
    }
    if (rest.length === x.dims.length - 1 && rest.every((d, i) => d === x.dims[i + 1])) return this.set(node, x);
    if (rest.length === 1 && rest[0] === perSample) {
      this.emit(node, { op: 'flatten', input: x.tensor });
      return;
    }
    refuse('not a flattening reshape');
  }
}

/** Lowers a decoded model to canonical nodes (not yet simplified). */
export function lower(model: RawModel, batch: number | undefined): LoweredGraph {
  return new Lowering(model, batch).run();
}
