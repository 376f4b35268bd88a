/**
 * Lowers the float graph to a `.lowbit` graph: binary layers where a sign feeds weights of the
 * form +-a per channel, integer (W8A8 / W4A8) layers elsewhere, every rescale dyadic, and the
 * element-wise tail of each layer (relu / clip, sign, the float output) fused into its epilogue.
 * One lowering per float operator (lowering/*.ts, by kind as in onnx/ops/), on a GraphBuilder.
 */
import { UnsupportedError } from '../errors.js';
import type { FloatGraph } from '../onnx/ir.js';
import { nodeInputs } from '../onnx/shapes.js';
import type { Graph } from '../model/format.js';
import type { QWeightBits } from '../ops/qconv.js';
import type { TensorRange } from './calibrate.js';
import { GraphBuilder, type LoweringTable, type OpLowering } from './graph-builder.js';
import { ACTIVATION_LOWERINGS } from './lowering/activation.js';
import { ARITHMETIC_LOWERINGS } from './lowering/arithmetic.js';
import { BINARIZE_LOWERINGS } from './lowering/binarize.js';
import { LINEAR_LOWERINGS } from './lowering/linear.js';
import { POOL_LOWERINGS } from './lowering/pool.js';
import { QDQ_LOWERINGS } from './lowering/qdq.js';
import { SHAPE_LOWERINGS } from './lowering/shape.js';
import { binaryScales, toOhwi, type OhwiWeights, type QuantizedWeights } from './weights.js';

export interface LowerOptions {
  /** calibrated range of every float tensor */
  ranges: Map<string, TensorRange>;
  /** weight bits of each integer conv / dense layer, by node name (default 8) */
  bits?: Map<string, QWeightBits>;
  /** the MST schedule of a binary layer (serialized), or null to run it dense; pixels: output pixels per sample */
  mst?: (name: string, w: OhwiWeights, groups: number, pixels: number) => { bytes: Uint8Array; note: string } | null;
  /** also output every layer's result (dequantized) as `probe:<layer>`, to measure error */
  probe?: boolean;
  /** conv / dense layers kept in float32 (fconv2d / fdense), by node name */
  floatLayers?: Set<string>;
  /** every real-valued tensor in float32: the binary layers' outputs, residual adds, pools */
  floatStream?: boolean;
  /** an integer layer's weights and bias other than by round-to-nearest (rounding.ts); OHWI
   *  weights, columns permuted for a flattened input */
  round?: (
    name: string,
    w: OhwiWeights,
    bits: QWeightBits,
    bias: ArrayLike<number>,
    flattened?: [number, number, number],
  ) => { weights: QuantizedWeights; bias: Float32Array } | undefined;
}

/**
 * The conv / dense layers that become binary layers: a binarized input (a sign, through max-pools
 * and flattens) and weights +-a per output channel.
 */
export function binaryLayers(g: FloatGraph): Set<string> {
  const binarized = new Set<string>();
  const layers = new Set<string>();
  for (const n of g.nodes) {
    if (n.op === 'sign') binarized.add(n.output);
    else if ((n.op === 'maxpool' || n.op === 'flatten') && binarized.has(n.input)) binarized.add(n.output);
    else if ((n.op === 'conv' || n.op === 'dense') && binarized.has(n.input) && binaryScales(toOhwi(n.weight)))
      layers.add(n.name);
  }
  return layers;
}

/**
 * What stays in float32 (ConvertOptions.floatLayers): 'none'; the layers named; or 'boundary': in
 * a network with binary layers every other layer and the whole real-valued stream between them (its
 * stem, shortcuts, residual sums and head, as the network was trained), else the first and the
 * last layer.
 */
export function planFloat(
  g: FloatGraph,
  spec: 'none' | 'boundary' | readonly string[],
): Pick<LowerOptions, 'floatLayers' | 'floatStream'> {
  const linear = g.nodes.filter((n) => n.op === 'conv' || n.op === 'dense').map((n) => n.name);
  if (spec === 'none') return {};
  if (spec === 'boundary') {
    const binary = binaryLayers(g);
    if (binary.size > 0) return { floatLayers: new Set(linear.filter((n) => !binary.has(n))), floatStream: true };
    return { floatLayers: new Set(linear.length > 0 ? [linear[0], linear[linear.length - 1]] : []) };
  }
  for (const name of spec)
    if (!linear.includes(name))
      throw new RangeError(
        `floatLayers: no conv / dense layer named '${name}' (the layers: ${linear.map((l) => `'${l}'`).join(', ')})`,
      );
  return { floatLayers: new Set(spec) };
}

/** What the converter reports per conv / dense layer. */
export interface LayerInfo {
  name: string;
  /** 'binary', 'binary+MST', 'W8A8', 'W4A8', 'f32' */
  kind: string;
  /** bytes of its weights and per-channel parameters in the file */
  bytes: number;
  /** the float tensor its (fused) output stands for */
  tensor: string;
  /** whether that output is binary (compare signs) or continuous (compare values) */
  binary: boolean;
  note?: string;
}

/** One lowering per float operator kind (the compiler insists on every kind having one). */
const LOWERINGS: LoweringTable = {
  ...LINEAR_LOWERINGS,
  ...ARITHMETIC_LOWERINGS,
  ...ACTIVATION_LOWERINGS,
  ...POOL_LOWERINGS,
  ...SHAPE_LOWERINGS,
  ...BINARIZE_LOWERINGS,
  ...QDQ_LOWERINGS,
};

export function lower(g: FloatGraph, options: LowerOptions): { graph: Graph; layers: LayerInfo[] } {
  const b = new GraphBuilder(g, options);
  for (const name of g.inputs) b.values.set(name, { kind: 'f32', t: b.addTensor(name, 'f32', b.dims(name).slice(1)) });

  for (const n of g.nodes) {
    if (b.fused.has(n)) continue;
    const lowering = LOWERINGS[n.op] as OpLowering<typeof n.op>;
    lowering.lower(b, n);
    for (const i of nodeInputs(n)) {
      const v = b.values.get(i);
      if (v?.flattened && !lowering.readsFlattened)
        throw new UnsupportedError(
          `node '${n.name}' (${n.op}): reads a flattened feature map; lowbit supports a flattened map only as the input of a dense (Gemm / MatMul) layer`,
        );
    }
  }

  const outputs = g.outputs.map((name) => {
    const v = b.values.get(name);
    if (!v) throw new UnsupportedError(`output '${name}': not computed by the graph`);
    const t = b.toF32(name, v);
    if (b.tensors[t].name !== name) b.tensors[t].name = name;
    return { name, tensor: t };
  });
  if (options.probe)
    for (const layer of b.layers) {
      const v = b.value(layer.tensor);
      if (g.outputs.includes(layer.tensor)) continue;
      outputs.push({ name: `probe:${layer.name}`, tensor: b.toF32(`probe:${layer.name}`, v) });
    }
  return { graph: b.build(outputs), layers: b.layers };
}
