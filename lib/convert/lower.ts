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
import type { TensorRange } from './calibrate.js';
import { GraphBuilder, type LoweringTable, type OpLowering } from './graph-builder.js';
import { ACTIVATION_LOWERINGS } from './lowering/activation.js';
import { ARITHMETIC_LOWERINGS } from './lowering/arithmetic.js';
import { BINARIZE_LOWERINGS } from './lowering/binarize.js';
import { LINEAR_LOWERINGS } from './lowering/linear.js';
import { POOL_LOWERINGS } from './lowering/pool.js';
import { QDQ_LOWERINGS } from './lowering/qdq.js';
import { SHAPE_LOWERINGS } from './lowering/shape.js';
import type { OhwiWeights } from './weights.js';

export interface LowerOptions {
  /** calibrated range of every float tensor */
  ranges: Map<string, TensorRange>;
  /** weight bits of each integer conv / dense layer, by node name (default 8) */
  bits?: Map<string, 8 | 4>;
  /** the MST schedule of a binary layer (serialized), or null to run it dense; pixels: output pixels per sample */
  mst?: (name: string, w: OhwiWeights, groups: number, pixels: number) => { bytes: Uint8Array; note: string } | null;
  /** also output every layer's result (dequantized) as `probe:<layer>`, to measure error */
  probe?: boolean;
}

/** What the converter reports per conv / dense layer. */
export interface LayerInfo {
  name: string;
  /** 'binary', 'binary+MST', 'W8A8', 'W4A8' */
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
