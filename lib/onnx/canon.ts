/**
 * Canonicalization of the ONNX graph to the canonical float operators of ir.ts, in one walk over
 * the nodes that some graph output depends on (dead nodes are neither folded nor checked), in
 * topological order:
 *
 *  - first, on the raw graph, every straight-through `Add(Sub(s, b), b)` becomes `Identity(s)`
 *    (dropStraightThrough), so b's branch is dead unless something else reads it;
 *  - nodes whose inputs are all constants are folded (fold.ts), as is `Shape` of an activation
 *    (whose dynamic batch becomes NaN, so that `Reshape(x, Concat(Shape(x)[0], -1))` reads [N, -1]);
 *  - Conv, Gemm, MatMul, BatchNormalization, Relu, Clip, ... become canonical nodes (one each), with
 *    their output dims inferred as they are created (shapes.ts). Each operator is one rule
 *    `{ attrs, canonicalize }` in canon/{linear,arithmetic,activation,pool,pad,shape,qdq,binarize}.ts;
 *    the list of supported operators is the table's keys;
 *  - the binarization forms stay symbolic until they are complete: `x >= 0` / `x < 0` (a "cond"),
 *    `Where(cond, 1, -1)` and `Sign(x)` (a "sign"), and a straight-through half `S - a` (an "ste")
 *    whose completion was not rewritten away. A sign becomes a `sign` node when something reads
 *    it; reading a cond or an ste any other way is an UnsupportedError naming both nodes. The
 *    forms live in canon/binarize.ts: rules for the operators that only binarize, and patterns
 *    tried before the rule of an operator that also has a general meaning (Sub).
 *
 * Binarization and zero: ONNX Sign(0) = 0, while lowbit binarizes 0 to +1 (the packed sign bit is
 * set only for negative values). Every form is read as sign(0) = +1 — the same as PyTorch's
 * `where(x >= 0, 1, -1)` that lowbit's training scripts export, and different from ONNX `Sign` only
 * where x is exactly 0. (`x < 0 ? -1 : 1` is the same function; `Greater(x, 0)` is not, and is refused.)
 *
 * A Pad of an activation stays symbolic (a "pad" value): a zero one read by a Conv / AveragePool folds
 * its pads into theirs (canon/pad.ts); read any other way it becomes a pad node.
 *
 * BatchNormalization and Mul / Add / Sub / Div by constants become `affine` nodes here;
 * simplify.ts folds them into a preceding conv / dense.
 */
import { ModelFormatError, UnsupportedError } from '../errors.js';
import type { FloatNode, FloatOp } from './ir.js';
import { FOLDABLE_OPS, foldNode } from './fold.js';
import { nodeLabel, type RawInput, type RawModel, type RawNode } from './proto.js';
import { inferDims } from './shapes.js';
import { topoSort } from './toposort.js';
import { ctensor, DT, FoldBudget, formatDims, size, type CTensor } from './tensor.js';
import {
  toConstant,
  type Act,
  type CanonPattern,
  type CanonRule,
  type Const,
  type Inputs,
  type Value,
} from './canon/common.js';
import { ACTIVATION_RULES } from './canon/activation.js';
import { ARITHMETIC_RULES } from './canon/arithmetic.js';
import { BINARIZE_PATTERNS, BINARIZE_RULES } from './canon/binarize.js';
import { LINEAR_RULES } from './canon/linear.js';
import { PAD_RULES } from './canon/pad.js';
import { POOL_RULES } from './canon/pool.js';
import { QDQ_RULES } from './canon/qdq.js';
import { SHAPE_RULES } from './canon/shape.js';

/** One rule per ONNX operator lowbit takes on activations (the rest of ONNX is only folded on constants). */
const RULES: Record<string, CanonRule> = {
  ...LINEAR_RULES,
  ...ARITHMETIC_RULES,
  ...ACTIVATION_RULES,
  ...POOL_RULES,
  ...PAD_RULES,
  ...SHAPE_RULES,
  ...QDQ_RULES,
  ...BINARIZE_RULES,
};
for (const op of Object.keys(BINARIZE_PATTERNS))
  if (!(op in RULES)) throw new Error(`internal: binarization pattern for ${op}, which has no rule`);

/** Operators canonicalized on activations, sorted. */
export const ACTIVATION_OPS: readonly string[] = Object.keys(RULES).sort();

function supportedList(): string {
  return `supported on activations: ${ACTIVATION_OPS.join(', ')}; on constants (folded): ${[...new Set([...FOLDABLE_OPS, 'Constant'])].sort().join(', ')}`;
}

/** Tensor dims lowbit can hold: each at most MAX_DIM, and at most MAX_SAMPLE values per sample (the batch aside). */
const MAX_DIM = 2 ** 24;
const MAX_SAMPLE = 2 ** 31 - 1;

function checkDims(dims: number[], what: string): void {
  if (dims.slice(1).some((d) => d > MAX_DIM) || size(dims.slice(1)) > MAX_SAMPLE) {
    throw new UnsupportedError(
      `${what}: dims ${formatDims(dims)}; supported: each dimension at most ${MAX_DIM} and at most ${MAX_SAMPLE} values per sample`,
    );
  }
}

export interface CanonicalGraph {
  inputs: string[];
  inputDims: Map<string, number[]>;
  outputs: string[];
  nodes: FloatNode[];
}

/**
 * The straight-through identity on the raw graph: `Add(Sub(s, b), b)` (either operand order) is s
 * up to float rounding whatever b is (`s.detach() - b.detach() + b`, `x + (s - x).detach()`), so
 * the Add becomes `Identity(s)` and b's branch (ApproxSign's Less / Cast / Mul polynomial, a Clip,
 * a Tanh) is dead unless something else reads it. In every straight-through form b has s's shape.
 */
function dropStraightThrough(model: RawModel): RawNode[] {
  const { nodes } = model;
  const producers = new Map<string, RawNode>();
  for (const node of nodes) for (const o of node.outputs) if (o) producers.set(o, node);
  const standard = (n: RawNode) => !n.domain || n.domain === 'ai.onnx';
  // A constant s could broadcast to a smaller shape than b's: (1 - b) + b is not Identity(1).
  const constant = (name: string) => model.initializers.has(name) || producers.get(name)?.opType === 'Constant';
  return nodes.map((node) => {
    if (node.opType !== 'Add' || !standard(node) || node.inputs.length !== 2) return node;
    const [p, q] = node.inputs;
    for (const [d, b] of [
      [p, q],
      [q, p],
    ]) {
      const sub = producers.get(d);
      if (
        b &&
        sub?.opType === 'Sub' &&
        standard(sub) &&
        sub.inputs.length === 2 &&
        sub.inputs[1] === b &&
        !constant(sub.inputs[0])
      )
        return { ...node, opType: 'Identity', domain: '', inputs: [sub.inputs[0]] };
    }
    return node;
  });
}

/**
 * The nodes some graph output depends on, in topological order (stable: the file's order where it
 * is valid). Dead nodes are skipped, so an unused constant subgraph is never folded.
 */
function liveSorted(model: RawModel): RawNode[] {
  const nodes = dropStraightThrough(model);
  const available = new Set<string>([...model.initializers.keys(), ...model.inputs.map((i) => i.name), '']);
  const producers = new Map<string, RawNode>();
  for (const node of nodes) {
    for (const o of node.outputs) {
      if (!o) continue;
      if (producers.has(o) || available.has(o))
        throw new ModelFormatError(`${nodeLabel(node)}: output "${o}" is written more than once (field node.output)`);
      producers.set(o, node);
    }
  }
  for (const node of nodes) {
    for (const i of node.inputs) {
      if (!available.has(i) && !producers.has(i)) {
        throw new ModelFormatError(
          `${nodeLabel(node)}: input "${i}" is not a graph input, an initializer or a node output (field node.input)`,
        );
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
    nodes.filter((n) => live.has(n)),
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
    throw new ModelFormatError(`${nodeLabel(node)}: the graph has a cycle through this node`);
  }
  return sorted;
}

/**
 * The walk over the live nodes. The operator rules (canon/*.ts) build on its public methods:
 * reading inputs as activations or constants, emitting canonical nodes, setting symbolic values.
 */
export class Canonicalizer {
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

  run(): CanonicalGraph {
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
    for (const node of nodes) this.canonicalizeNode(node);
    return { inputs: model.inputs.map((i) => i.name), inputDims, outputs: model.outputs, nodes: this.outputsNamed() };
  }

  private inputDims(input: RawInput): number[] {
    const where = `ONNX graph input "${input.name}"`;
    const dims = input.dims.map((d, axis) => {
      if (axis === 0) {
        if (d === null) return this.batch ?? -1;
        if (this.batch !== undefined && this.batch !== d)
          throw new RangeError(`options.batch: ${this.batch}, but ${where} fixes the batch to ${d}`);
        return d;
      }
      if (d === null)
        throw new UnsupportedError(
          `${where}: dimension ${axis} is symbolic or missing (field type.tensor_type.shape.dim); only the batch axis 0 may be dynamic`,
        );
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
      if (!v)
        throw new ModelFormatError(`ONNX graph output "${name}" is not produced by any node (field graph.output)`);
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

  /** Adds the canonical node `op` for ONNX node `node`, inferring and checking its output dims. */
  emit(node: RawNode, op: FloatOp, output = node.outputs[0]): Act {
    const fnode = { ...op, name: node.name, output } as FloatNode;
    const dims = inferDims(fnode, (name) => {
      const d = this.tensorDims.get(name);
      if (!d) throw new Error(`internal: tensor "${name}" has no dims`);
      return d;
    });
    checkDims(dims, `${nodeLabel(node)}: output "${output}"`);
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
          `${nodeLabel(v.node)}: a comparison of an activation is supported only as the condition of a binarization Where(x >= 0, 1, -1) (or Where(x < 0, -1, 1)); here ${reader} reads it`,
        );
      case 'ste':
        throw new UnsupportedError(
          `${nodeLabel(v.node)}: Sub of an activation from its sign is supported only inside the straight-through form a + (sign - a); here ${reader} reads it`,
        );
      case 'quant':
        throw new UnsupportedError(
          `${nodeLabel(v.node)}: QuantizeLinear of an activation must feed a DequantizeLinear (a QDQ pair); here ${reader} reads it`,
        );
      case 'pad':
        if (!v.materialized) {
          const output = v.node.outputs[0];
          this.push({ op: 'pad', input: v.x.tensor, pads: v.pads, value: v.value, name: v.node.name, output }, v.dims);
          v.materialized = { kind: 'act', tensor: output, dims: v.dims };
        }
        return v.materialized;
      case 'const':
        throw new UnsupportedError(`${reader}: expected an activation, got a constant`);
    }
  }

  /** The sign a value stands for (a sign symbol, or the output of a sign node), if any. */
  signOf(v: Value | undefined): string | undefined {
    if (!v) return undefined;
    if (v.kind === 'sign') return v.x;
    if (v.kind === 'act') {
      const p = this.producers.get(v.tensor);
      if (p?.op === 'sign') return p.input;
    }
    return undefined;
  }

  private canonicalizeNode(node: RawNode): void {
    if (node.domain && node.domain !== 'ai.onnx') {
      throw new UnsupportedError(
        `${nodeLabel(node)}: operator ${node.domain}.${node.opType} of a custom domain is not supported; ${supportedList()}`,
      );
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
        if (Object.hasOwn(RULES, node.opType)) {
          throw new UnsupportedError(
            `${nodeLabel(node)}: ${node.opType} with only constant inputs cannot be folded; foldable operators: ${FOLDABLE_OPS.join(', ')}`,
          );
        }
        this.unsupportedOp(node);
      }
      out.forEach((t, i) => node.outputs[i] && this.values.set(node.outputs[i], { kind: 'const', t }));
      return;
    }
    const rule = Object.hasOwn(RULES, node.opType) ? RULES[node.opType] : this.unsupportedOp(node);
    const known = rule.attrs;
    for (const a of node.attrs.names()) {
      if (!known.includes(a)) {
        throw new UnsupportedError(
          `${nodeLabel(node)}: attribute "${a}" is not supported for ${node.opType}${known.length ? ` (supported: ${known.join(', ')})` : ''}`,
        );
      }
    }
    const patterns: readonly CanonPattern[] = Object.hasOwn(BINARIZE_PATTERNS, node.opType)
      ? BINARIZE_PATTERNS[node.opType]
      : [];
    for (const pattern of patterns) if (pattern(this, node, ins)) return;
    rule.canonicalize(this, node, ins);
  }

  private unsupportedOp(node: RawNode): never {
    // XNOR-Net scales a binary conv's output by K = mean over channels of |x|, box-filtered: a
    // per-sample, per-pixel factor that no fused epilogue or folded BN can hold.
    const xnor =
      node.opType === 'Abs' || node.opType === 'ReduceMean'
        ? " (if this is XNOR-Net's activation scale K = mean(|x|) over channels: it depends on each sample and is not supported; BNNs after XNOR-Net drop it, and BiBench's XNOR variants without it import)"
        : '';
    throw new UnsupportedError(
      `${nodeLabel(node)}: operator ${node.opType} on an activation is not supported${xnor}; ${supportedList()}`,
    );
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
        const same =
          b?.kind === 'const' &&
          av?.kind === 'const' &&
          b.t.dtype === av.t.dtype &&
          b.t.dims.length === av.t.dims.length &&
          b.t.dims.every((d, i) => d === av.t.dims[i]);
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
    else if (a.has('value_floats'))
      t = ctensor(DT.FLOAT, [a.floats('value_floats')!.length], a.floats('value_floats')!.map(Math.fround));
    else if (a.has('value_int')) t = ctensor(DT.INT64, [], [a.int('value_int', 0)]);
    else if (a.has('value_ints')) t = ctensor(DT.INT64, [a.ints('value_ints')!.length], a.ints('value_ints')!);
    if (!t)
      throw new UnsupportedError(
        `${nodeLabel(node)}: only value, value_float(s) and value_int(s) constants are supported (attributes: ${a.names().join(', ') || 'none'})`,
      );
    this.values.set(node.outputs[0], { kind: 'const', t });
  }

  // ------------------------------------------------------------------ for the operator rules

  /** The opset of the model's default domain. */
  get opset(): number {
    return this.model.opset;
  }

  /** Input i, which must be given. */
  present(node: RawNode, ins: Inputs, i: number): Value {
    const v = ins[i];
    if (!v) throw new ModelFormatError(`${nodeLabel(node)}: input ${i} is required (field node.input)`);
    return v;
  }

  /** Input i as an activation tensor (a sign becomes a node here). */
  activation(node: RawNode, ins: Inputs, i: number): Act {
    const v = ins[i];
    if (!v) throw new ModelFormatError(`${nodeLabel(node)}: input ${i} is required (field node.input)`);
    if (v.kind === 'const')
      throw new UnsupportedError(
        `${nodeLabel(node)}: input ${i} ("${node.inputs[i]}") must be an activation, not a constant`,
      );
    return this.materialize(v, nodeLabel(node));
  }

  /**
   * Input i as an activation and the zero pads [top, left, bottom, right] of a Pad before it
   * (all 0 without one), for an operator that folds them into its own (Conv, AveragePool).
   */
  paddedActivation(node: RawNode, ins: Inputs, i: number): { x: Act; pads: [number, number, number, number] } {
    const v = ins[i];
    if (v?.kind === 'pad' && v.value === 0 && !v.materialized) return { x: v.x, pads: v.pads };
    return { x: this.activation(node, ins, i), pads: [0, 0, 0, 0] };
  }

  /** Input i, the operator's `role`, as a constant. */
  constant(node: RawNode, ins: Inputs, i: number, role: string): CTensor {
    const v = ins[i];
    if (!v) throw new ModelFormatError(`${nodeLabel(node)}: input ${i} (${role}) is required (field node.input)`);
    if (v.kind !== 'const') {
      throw new UnsupportedError(
        `${nodeLabel(node)}: the ${role} ("${node.inputs[i]}") must be a constant (an initializer, or computed from constants only)`,
      );
    }
    return v.t;
  }

  affine(node: RawNode, x: Act, scale: ArrayLike<number>, bias: ArrayLike<number>): void {
    const n = x.dims[1];
    if (x.dims.length !== 2 && x.dims.length !== 4)
      throw new UnsupportedError(`${nodeLabel(node)}: activation ${formatDims(x.dims)} must be rank 2 or 4`);
    this.emit(node, { op: 'affine', input: x.tensor, scale: toConstant(scale, [n]), bias: toConstant(bias, [n]) });
  }

  /** The node's first output is `v` (no canonical node). */
  set(node: RawNode, v: Value): void {
    this.values.set(node.outputs[0], v);
  }

  /** Secondary outputs (BN statistics, Dropout mask, MaxPool indices) must be unused. */
  onlyFirstOutput(node: RawNode): void {
    for (const [i, o] of node.outputs.entries()) {
      if (i > 0 && o && this.used.has(o))
        throw new UnsupportedError(
          `${nodeLabel(node)}: output ${i} ("${o}") is used; only the first output is supported`,
        );
    }
  }
}

/** Canonicalizes a decoded model (not yet simplified). */
export function canonicalize(model: RawModel, batch: number | undefined): CanonicalGraph {
  return new Canonicalizer(model, batch).run();
}
