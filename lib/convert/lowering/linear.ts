/**
 * conv / dense -> a binary layer (bconv2d / bdense) when its input is binary, a float layer
 * (fconv2d / fdense) when the options keep it in float, else an integer layer (qconv2d / qdense,
 * W8A8 or W4A8), with the element-wise tail fused into its epilogue: a sole clip (relu), then a
 * sole sign (a binary output), or the float output (a graph output, or the input of a softmax
 * that is one, or any output inside a float stream).
 */
import type { FloatNode, ImportedQuant } from '../../onnx/ir.js';
import { thresholdsFromAffine } from '../../ops/binary.js';
import type { GraphData, GraphTensor } from '../../model/format.js';
import {
  binaryScales,
  packNibbles,
  packSignBits,
  permuteFlattenedColumns,
  quantizeChannels,
  toOhwi,
} from '../weights.js';
import {
  dataBytes,
  dyadicArrays,
  floatClamp,
  int32Bias,
  quantClamp,
  sampleShape,
  type GraphBuilder,
  type LoweringTable,
} from '../graph-builder.js';
import { floatPreluData } from './activation.js';

/**
 * The rest of a binary block fused into a binary layer's float epilogue (a float stream only): the
 * residual add that is the sole reader of the layer's output `out` (its other input computed
 * already), then a sole RPReLU, a sole clip, and one sign of the result, which becomes the layer's
 * second output (the next binary layer's input). Marks the fused nodes; undefined when no add fits.
 */
function blockEpilogue(
  b: GraphBuilder,
  out: string,
  channels: number,
):
  | {
      out: string;
      residual: number;
      data: Record<string, GraphData>;
      clip?: { min: number; max: number };
      sign?: Extract<FloatNode, { op: 'sign' }>;
    }
  | undefined {
  const add = b.soleConsumer(out, 'add');
  const other = add?.inputs[0] === out ? add.inputs[1] : add?.inputs[0];
  if (!add || other === out || !b.values.has(other!)) return undefined;
  b.fused.add(add);
  const residual = b.asF32(other!, b.value(other!)).t;
  const data: Record<string, GraphData> = {};
  let y = add.output;
  const prelu = b.soleConsumer(y, 'prelu');
  if (prelu) {
    b.fused.add(prelu);
    Object.assign(data, floatPreluData(prelu, channels, 'prelu_'));
    y = prelu.output;
  }
  const { out: clipped, clip } = b.fuseClip(y);
  const signs = b.consumersOf(clipped).filter((c) => c.op === 'sign');
  const sign = signs.length === 1 ? (signs[0] as Extract<FloatNode, { op: 'sign' }>) : undefined;
  if (sign) {
    b.fused.add(sign);
    data.sign_threshold = sign.threshold ? Float32Array.from(sign.threshold.data) : new Float32Array(channels);
  }
  return { out: clipped, residual, data, clip, sign };
}

function lowerLinear(b: GraphBuilder, n: Extract<FloatNode, { op: 'conv' | 'dense' }>): void {
  let input = b.value(n.input);
  // The element-wise tail fused into this layer's epilogue.
  const { out: clipped, clip } = b.fuseClip(n.output);
  let out = clipped;
  const signNode = b.soleConsumer(out, 'sign');
  // sign(clip(y)) is sign(y) only where the clip keeps y on its side of the threshold.
  const threshold = (c: number) => signNode?.threshold?.data[c] ?? 0;
  const keepsSides = (w: number) =>
    !clip || Array.from({ length: w }, (_, c) => threshold(c)).every((t) => clip.min < t && clip.max >= t);
  const sign = signNode && keepsSides(n.weight.dims[0]) ? signNode : undefined;
  if (sign) {
    b.fused.add(sign);
    out = sign.output;
  }
  const softmax = b.soleConsumer(out, 'softmax');
  const toFloat = !sign && (b.isOutput(out) || (softmax !== undefined && b.isOutput(softmax.output)));
  const outShape = sampleShape(b.dims(n.output));

  let w = toOhwi(n.weight);
  const flattened = n.op === 'dense' ? input.flattened : undefined;
  if (flattened) w = permuteFlattenedColumns(w, flattened);
  const groups = n.op === 'conv' ? n.attrs.groups : 1;
  const bias = n.bias?.data ?? new Float32Array(w.out);
  const geometry =
    n.op === 'conv'
      ? { kernel: n.attrs.kernel, stride: n.attrs.stride, dilation: n.attrs.dilation, pads: n.attrs.pads, groups }
      : {};
  const alpha = input.kind === 'b1' ? binaryScales(w) : null;
  const binaryOutput = sign !== undefined;
  // The sign's threshold moves into the bias: y < t <=> y - t < 0.
  const minusThreshold = (b: ArrayLike<number>) =>
    sign?.threshold ? Float64Array.from(b, (v, c) => v - threshold(c)) : b;
  const signBias = minusThreshold(bias);

  if (alpha) {
    // real output = alpha[c] * dot + bias[c], dot the +-1 dot product
    const data: Record<string, GraphData> = { weights: packSignBits(w) };
    let dtype: GraphTensor['dtype'];
    let q: ImportedQuant | undefined;
    const attrs: Record<string, unknown> = { ...geometry };
    if (n.op === 'conv') attrs.pad_value = n.attrs.pads.some((p) => p > 0) ? 'zero' : 'one';
    const mst = b.options.mst?.(n.name, w, groups, outShape.length === 3 ? outShape[0] * outShape[1] : 1) ?? null;
    const layer = {
      name: n.name,
      kind: mst ? 'binary+MST' : 'binary',
      tensor: out,
      binary: binaryOutput,
      note: mst?.note,
    };
    if (binaryOutput) {
      const t = thresholdsFromAffine(alpha, signBias);
      Object.assign(data, { threshold: t.threshold, flip: t.flip });
      dtype = 'b1';
    } else if ((toFloat && outShape.length === 1) || b.options.floatStream) {
      Object.assign(data, { scale: Float32Array.from(alpha), bias: Float32Array.from(bias) });
      const block = b.options.floatStream && !clip ? blockEpilogue(b, out, w.out) : undefined;
      if (block) {
        // One pass: scale and bias, + residual, RPReLU, clamp, and the next layer's signs.
        Object.assign(data, block.data);
        attrs.clamp = floatClamp(block.clip);
        const y = b.addF32(block.out, outShape);
        const ins = [input.t, block.residual];
        const outs = [y];
        if (block.sign) outs.push(b.addTensor(block.sign.output, 'b1', outShape));
        if (mst) data.mst = mst.bytes;
        b.addNode(n.name, n.op === 'conv' ? 'bconv2d' : 'bdense', ins, outs, attrs, data);
        b.layers.push({ ...layer, bytes: dataBytes(data), tensor: block.out });
        b.values.set(block.out, { kind: 'f32', t: y });
        if (block.sign) b.values.set(block.sign.output, { kind: 'b1', t: outs[1] });
        return;
      }
      attrs.clamp = floatClamp(clip);
      dtype = 'f32';
    } else {
      // The binary engine's integer output is int8: symmetric, a relu clamps at 0.
      q = b.quantS8(out);
      const d = dyadicArrays(Array.from(alpha, (a) => a / q!.scale));
      Object.assign(data, { ...d, bias: Int32Array.from(bias, (v) => Math.round(v / q!.scale)) });
      attrs.clamp = quantClamp(q, clip?.min, clip?.max);
      dtype = 's8';
    }
    if (mst) data.mst = mst.bytes;
    const t =
      dtype === 's8'
        ? b.q8Tensor(out, outShape, q!)
        : dtype === 'f32'
          ? b.addF32(out, outShape)
          : b.addTensor(out, dtype, outShape);
    b.addNode(n.name, n.op === 'conv' ? 'bconv2d' : 'bdense', [input.t], [t], attrs, data);
    b.layers.push({ ...layer, bytes: dataBytes(data) });
    b.values.set(out, { kind: dtype === 'b1' ? 'b1' : dtype === 'f32' ? 'f32' : 'q8', t });
    return;
  }

  if (b.options.floatLayers?.has(n.name)) {
    // Float layer: y = clamp(conv(x, w) + bias) in float32; a sole sign after it is fused (the
    // layer writes the next binary layer's bits, never the floats).
    const x = b.asF32(n.input, input);
    const data: Record<string, GraphData> = { weights: Float32Array.from(w.data), bias: Float32Array.from(bias) };
    if (sign) data.sign_threshold = Float32Array.from({ length: w.out }, (_, c) => threshold(c));
    const y = sign ? b.addTensor(out, 'b1', outShape) : b.addF32(out, outShape);
    b.addNode(
      n.name,
      n.op === 'conv' ? 'fconv2d' : 'fdense',
      [x.t],
      [y],
      { ...geometry, clamp: floatClamp(clip) },
      data,
    );
    b.layers.push({ name: n.name, kind: 'f32', bytes: dataBytes(data), tensor: out, binary: binaryOutput });
    b.values.set(out, { kind: sign ? 'b1' : 'f32', t: y });
    return;
  }

  // Integer layer: acc = sum (x - z_x) * w_q exactly; real output = s_x * s_w[c] * acc + bias[c].
  input = b.asQ8(n.input, input);
  const qIn = { scale: b.tensors[input.t].scale!, zeroPoint: b.tensors[input.t].zero_point! };
  const bits = b.options.bits?.get(n.name) ?? 8;
  const rounded = b.options.round?.(n.name, w, bits, bias, flattened);
  const qw = rounded?.weights ?? quantizeChannels(w, bits);
  const qBias = rounded?.bias ?? bias;
  const accScale = Float64Array.from(qw.scales, (s) => s * qIn.scale);
  const data: Record<string, GraphData> = { weights: bits === 4 ? packNibbles(qw.values) : qw.values };
  const op = n.op === 'conv' ? 'qconv2d' : 'qdense';
  const attrs: Record<string, unknown> = { ...geometry, bits };
  b.layers.push({ name: n.name, kind: `W${bits}A8`, bytes: 0, tensor: out, binary: binaryOutput });
  const layer = b.layers[b.layers.length - 1];
  if (binaryOutput || toFloat) {
    // Keep the exact accumulator and finish in the layer's real scale: a threshold for a sign
    // (no rounding of the bias can move a sign) or the float output.
    const acc = b.addTensor(`${n.output}.acc`, 's32', outShape);
    b.addNode(n.name, op, [input.t], [acc], attrs, data);
    layer.bytes = dataBytes(data);
    if (binaryOutput) {
      const t = thresholdsFromAffine(accScale, minusThreshold(qBias));
      const signs = b.addTensor(out, 'b1', outShape);
      b.addNode(`${n.name}.sign`, 'threshold', [acc], [signs], {}, { threshold: t.threshold, flip: t.flip });
      layer.bytes += t.threshold.byteLength + t.flip.byteLength;
      b.values.set(out, { kind: 'b1', t: signs });
    } else {
      const shape = outShape.length === 3 ? [outShape[2], outShape[0], outShape[1]] : outShape;
      const f = b.addTensor(out, 'f32', shape);
      const affine = { scale: Float32Array.from(accScale), bias: Float32Array.from(qBias) };
      b.addNode(`${n.name}.dequantize`, 'affine', [acc], [f], { clamp: floatClamp(clip) }, affine);
      layer.bytes += dataBytes(affine);
      b.values.set(out, { kind: 'f32', t: f });
    }
    return;
  }
  const qOut = b.quant(out);
  Object.assign(data, {
    bias: int32Bias(qBias, accScale, n.name),
    ...dyadicArrays(Array.from(accScale, (s) => s / qOut.scale)),
  });
  attrs.clamp = quantClamp(qOut, clip?.min, clip?.max);
  const t = b.q8Tensor(out, outShape, qOut);
  b.addNode(n.name, op, [input.t], [t], attrs, data);
  layer.bytes = dataBytes(data);
  b.values.set(out, { kind: 'q8', t });
}

export const LINEAR_LOWERINGS: LoweringTable<'conv' | 'dense'> = {
  conv: { lower: lowerLinear },
  /** a dense layer reads a flattened map (its weight columns are permuted to lowbit's HWC order) */
  dense: { lower: lowerLinear, readsFlattened: true },
};
