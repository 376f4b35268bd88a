/**
 * The `.lowbit` graph under construction while lowering a float graph: its tensors and nodes, the
 * lowbit value standing for each float tensor (float, 8-bit or packed bits), the quantization
 * parameters of every float tensor, and the conversions between representations (each done once
 * per tensor). The per-operator lowerings (lowering/*.ts) build on it.
 */
import { UnsupportedError } from '../errors.js';
import type { FloatGraph, FloatNode, ImportedQuant } from '../onnx/ir.js';
import { consumerMap } from '../onnx/shapes.js';
import { toDyadic } from '../ops/quantize.js';
import type { Graph, GraphData, GraphNode, GraphTensor } from '../model/format.js';
import type { TensorRange } from './calibrate.js';
import type { LayerInfo, LowerOptions } from './lower.js';

/**
 * A float tensor as lowbit holds it: tensor index `t`, of kind f32, q8 (u8 / s8) or b1. A rank-3
 * f32 tensor is CHW at the graph's boundary and HWC (layout 'hwc') inside it. A `flattened` value
 * is a [C, H, W] map flattened in lowbit's HWC order (ONNX flattens CHW).
 */
export type Value = { kind: 'f32' | 'q8' | 'b1'; t: number; flattened?: [number, number, number] };

const FLT_MAX = 3.4028234663852886e38;

/** Per-sample lowbit shape of a float tensor: NCHW -> [H, W, C], [N, C] -> [C]. */
export function sampleShape(dims: number[]): number[] {
  return dims.length === 4 ? [dims[2], dims[3], dims[1]] : dims.slice(1);
}

export const dataBytes = (d: Record<string, GraphData>) => Object.values(d).reduce((s, a) => s + a.byteLength, 0);

/** 8-bit quantization parameters of a range: u8 when it never goes negative, else symmetric s8. */
export function quantOf(r: TensorRange | ImportedQuant): ImportedQuant {
  if ('scale' in r) return r;
  const unsigned = r.lo >= 0;
  const extent = unsigned ? r.hi : Math.max(-r.lo, r.hi);
  return { dtype: unsigned ? 'u8' : 's8', zeroPoint: 0, scale: extent > 0 ? extent / (unsigned ? 255 : 127) : 1 };
}

/** [lo, hi] of a real clip interval in a tensor's quantized domain, inside its dtype. */
export function quantClamp(q: ImportedQuant, min = -Infinity, max = Infinity): [number, number] {
  const [dlo, dhi] = q.dtype === 'u8' ? [0, 255] : [-128, 127];
  const lo = Math.max(dlo, Math.min(dhi, Number.isFinite(min) ? Math.round(min / q.scale) + q.zeroPoint : dlo));
  const hi = Math.max(lo, Math.min(dhi, Number.isFinite(max) ? Math.round(max / q.scale) + q.zeroPoint : dhi));
  return [lo, hi];
}

/** [lo, hi] of a fused relu / clip on a float output, inside the finite float32 range. */
export function floatClamp(clip?: { min: number; max: number }): [number, number] {
  return [Math.max(-FLT_MAX, clip?.min ?? -FLT_MAX), Math.min(FLT_MAX, clip?.max ?? FLT_MAX)];
}

export function dyadicArrays(reals: ArrayLike<number>): { multiplier: Int32Array; shift: Uint8Array } {
  const multiplier = new Int32Array(reals.length),
    shift = new Uint8Array(reals.length);
  for (let c = 0; c < reals.length; ++c) {
    if (reals[c] === 0) continue; // a channel that is always 0
    const d = toDyadic(Math.abs(reals[c]));
    multiplier[c] = Math.sign(reals[c]) * d.multiplier;
    shift[c] = d.shift;
  }
  return { multiplier, shift };
}

export function int32Bias(bias: ArrayLike<number>, scale: ArrayLike<number>, layer: string): Int32Array {
  return Int32Array.from({ length: bias.length }, (_, c) => {
    const q = scale[c] === 0 ? 0 : Math.round(bias[c] / scale[c]);
    if (!(Math.abs(q) <= 2 ** 30))
      throw new UnsupportedError(
        `node '${layer}': bias[${c}] = ${bias[c]} does not fit the int32 accumulator at scale ${scale[c]}`,
      );
    return q;
  });
}

export class GraphBuilder {
  readonly tensors: GraphTensor[] = [];
  readonly nodes: GraphNode[] = [];
  readonly layers: LayerInfo[] = [];
  /** the lowbit value of each float tensor lowered so far */
  readonly values = new Map<string, Value>();
  /** float nodes lowered as part of an earlier node (a fused epilogue tail) */
  readonly fused = new Set<FloatNode>();
  private readonly consumers: Map<string, FloatNode[]>;
  /** imported QDQ parameters, which override calibration for both sides of each fake-quant node */
  private readonly imported = new Map<string, ImportedQuant>();
  /** a tensor read by several integer layers is unpacked or quantized once */
  private readonly q8Of = new Map<string, Value>();
  /** likewise, a tensor read by several float nodes is dequantized or transposed once */
  private readonly f32Of = new Map<string, Value>();

  constructor(
    readonly graph: FloatGraph,
    readonly options: LowerOptions,
  ) {
    this.consumers = consumerMap(graph.nodes);
    for (const n of graph.nodes)
      if (n.op === 'fakequant') {
        this.imported.set(n.input, n.quant);
        this.imported.set(n.output, n.quant);
      }
  }

  isOutput(name: string): boolean {
    return this.graph.outputs.includes(name);
  }

  /** The nodes reading `name`. */
  consumersOf(name: string): FloatNode[] {
    return this.consumers.get(name) ?? [];
  }

  /** The one node reading `name`, if it is an `op` and `name` is not a graph output. */
  soleConsumer<K extends FloatNode['op']>(name: string, op: K): Extract<FloatNode, { op: K }> | undefined {
    const c = this.consumers.get(name) ?? [];
    return c.length === 1 && c[0].op === op && !this.isOutput(name)
      ? (c[0] as Extract<FloatNode, { op: K }>)
      : undefined;
  }

  /**
   * A clip that is the sole reader of `out`, fused into the node producing `out`: the tensor the
   * node's result then stands for, and the clip interval.
   */
  fuseClip(out: string): { out: string; clip?: { min: number; max: number } } {
    const clipNode = this.soleConsumer(out, 'clip');
    if (!clipNode) return { out };
    this.fused.add(clipNode);
    return { out: clipNode.output, clip: { min: clipNode.min, max: clipNode.max } };
  }

  /** The 8-bit parameters of a float tensor: imported (QDQ), else from its calibrated range. */
  quant(name: string): ImportedQuant {
    const q = this.imported.get(name) ?? this.options.ranges.get(name);
    if (!q) throw new RangeError(`calibration: no range for tensor '${name}' (give calibration data)`);
    return quantOf(q);
  }

  /** quant(name) as s8 (the binary engine's integer output): a u8 range becomes symmetric. */
  quantS8(name: string): ImportedQuant {
    const q = this.quant(name);
    return q.dtype === 's8' ? q : { dtype: 's8', zeroPoint: 0, scale: (q.scale * 255) / 127 };
  }

  /** The quantization parameters of 8-bit tensor t. */
  quantOfTensor(t: number): ImportedQuant {
    const src = this.tensors[t];
    return { dtype: src.dtype as 'u8', scale: src.scale!, zeroPoint: src.zero_point! };
  }

  /** The float dims of a float tensor. */
  dims(name: string): number[] {
    return this.graph.tensors.get(name)!.dims;
  }

  value(name: string): Value {
    return this.values.get(name)!;
  }

  addTensor(name: string, dtype: GraphTensor['dtype'], shape: number[], q?: ImportedQuant): number {
    this.tensors.push(q ? { name, dtype, shape, scale: q.scale, zero_point: q.zeroPoint } : { name, dtype, shape });
    return this.tensors.length - 1;
  }

  /** A float activation inside the graph: HWC when rank 3. */
  addF32(name: string, shape: number[]): number {
    const t = this.addTensor(name, 'f32', shape);
    if (shape.length === 3) this.tensors[t].layout = 'hwc';
    return t;
  }

  /** A tensor of `like`'s dtype, layout and (for 8 bits) quantization parameters, of another shape. */
  addTensorLike(name: string, like: number, shape: number[]): number {
    const src = this.tensors[like];
    if (src.dtype === 'f32' && src.layout === 'hwc') return this.addF32(name, shape);
    return this.addTensor(name, src.dtype, shape, src.scale ? this.quantOfTensor(like) : undefined);
  }

  /** Whether tensor t is a rank-3 f32 tensor in ONNX's CHW layout (a graph input or output). */
  isChw(t: number): boolean {
    const x = this.tensors[t];
    return x.dtype === 'f32' && x.shape.length === 3 && x.layout !== 'hwc';
  }

  /**
   * Whether an element-wise node computes in float: when the options keep the real-valued stream
   * in float, or when an input already is a float activation (a float layer's output).
   */
  inFloat(...inputs: string[]): boolean {
    return (
      this.options.floatStream === true ||
      inputs.some((i) => this.value(i).kind === 'f32' && !this.graph.inputs.includes(i))
    );
  }

  q8Tensor(name: string, shape: number[], q: ImportedQuant): number {
    return this.addTensor(name, q.dtype, shape, q);
  }

  addNode(
    name: string,
    op: string,
    inputs: number[],
    outputs: number[],
    attrs?: Record<string, unknown>,
    data?: Record<string, GraphData>,
  ): void {
    this.nodes.push({ name, op, inputs, outputs, attrs, data });
  }

  // ---- conversions between representations -----------------------------------------------------

  /** Float tensor `name` (lowbit value v) as 8 bits: b1 is unpacked to s8, f32 quantized. */
  asQ8(name: string, v: Value): Value {
    if (v.kind === 'q8') return v;
    const done = this.q8Of.get(name);
    if (done) return done;
    const shape = [...this.tensors[v.t].shape];
    let result: Value;
    if (v.kind === 'b1') {
      const t = this.q8Tensor(`${name}.unpacked`, shape, { dtype: 's8', scale: 1, zeroPoint: 0 });
      this.addNode(`${name}.unpack`, 'unpack', [v.t], [t]);
      result = { kind: 'q8', t, flattened: v.flattened };
    } else {
      if (this.isChw(v.t)) shape.push(shape.shift()!); // CHW -> HWC
      const t = this.q8Tensor(`${name}.q`, shape, this.quant(name));
      this.addNode(`${name}.quantize`, 'quantize', [v.t], [t]);
      result = { kind: 'q8', t, flattened: v.flattened };
    }
    this.q8Of.set(name, result);
    return result;
  }

  /** Float tensor `name` as a float activation (HWC when rank 3): transposed, unpacked or dequantized. */
  asF32(name: string, v: Value): Value {
    if (v.kind === 'f32' && !this.isChw(v.t)) return v;
    const done = this.f32Of.get(name);
    if (done) return done;
    let result: Value;
    if (v.kind === 'f32') {
      const [c, h, w] = this.tensors[v.t].shape;
      const t = this.addF32(`${name}.hwc`, [h, w, c]);
      this.addNode(`${name}.transpose`, 'transpose', [v.t], [t]);
      result = { kind: 'f32', t };
    } else if (v.kind === 'b1') {
      // Straight to +-1.0: no 8-bit copy between the bits and the float layer.
      const t = this.addF32(`${name}.f32`, [...this.tensors[v.t].shape]);
      this.addNode(`${name}.unpack`, 'unpack', [v.t], [t]);
      result = { kind: 'f32', t, flattened: v.flattened };
    } else {
      const q = this.asQ8(name, v);
      const t = this.addF32(`${name}.f32`, [...this.tensors[q.t].shape]);
      this.addNode(`${name}.dequantize`, 'dequantize', [q.t], [t]);
      result = { kind: 'f32', t, flattened: q.flattened };
    }
    this.f32Of.set(name, result);
    return result;
  }

  /** Float tensor `name` (lowbit value v) as an f32 tensor in ONNX layout (CHW, or flattened CHW). */
  toF32(name: string, v: Value): number {
    if (v.kind === 'f32' && !v.flattened && !this.hwc(v.t)) return v.t;
    const f = v.kind === 'f32' ? v : this.asQ8(name, v);
    // HWC -> CHW: a float activation is transposed, an 8-bit one dequantized.
    const op = f.kind === 'f32' ? 'transpose' : 'dequantize';
    if (f.flattened) {
      // A flattened map is HWC inside lowbit and CHW in ONNX: back to [H, W, C], to float CHW,
      // then flatten the float map.
      const [c, h, w] = f.flattened;
      const t =
        f.kind === 'f32' ? this.addF32(`${name}.hwc`, [h, w, c]) : this.addTensorLike(`${name}.hwc`, f.t, [h, w, c]);
      this.addNode(`${name}.unflatten`, 'reshape', [f.t], [t]);
      const chw = this.addTensor(`${name}.chw`, 'f32', [c, h, w]);
      this.addNode(`${name}.${op}`, op, [t], [chw]);
      const flat = this.addTensor(`${name}.f32`, 'f32', [c * h * w]);
      this.addNode(`${name}.flatten`, 'reshape', [chw], [flat]);
      return flat;
    }
    const shape = [...this.tensors[f.t].shape];
    if (shape.length === 3) shape.unshift(shape.pop()!); // HWC -> CHW
    const t = this.addTensor(`${name}.f32`, 'f32', shape);
    this.addNode(`${name}.${op}`, op, [f.t], [t]);
    return t;
  }

  private hwc(t: number): boolean {
    return this.tensors[t].layout === 'hwc';
  }

  /** The finished graph, with these outputs. */
  build(outputs: Graph['outputs']): Graph {
    const { graph, tensors, nodes } = this;
    return { inputs: graph.inputs.map((name) => ({ name, tensor: this.value(name).t })), outputs, tensors, nodes };
  }
}

/** How one float operator becomes lowbit nodes. */
export interface OpLowering<K extends FloatNode['op']> {
  lower(b: GraphBuilder, n: Extract<FloatNode, { op: K }>): void;
  /** whether it takes a flattened feature map as input (else reading one is refused) */
  readsFlattened?: boolean;
}

export type LoweringTable<K extends FloatNode['op'] = FloatNode['op']> = { [P in K]: OpLowering<P> };
