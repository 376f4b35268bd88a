/**
 * Lowers the float graph to a `.lowbit` graph: binary layers where a sign feeds weights of the
 * form +-a per channel, integer (W8A8 / W4A8) layers elsewhere, every rescale dyadic, and the
 * element-wise tail of each layer (relu / clip, sign, the float output) fused into its epilogue.
 */
import { UnsupportedError } from '../errors.js';
import type { FloatGraph, FloatNode, ImportedQuant } from '../onnx/ir.js';
import { thresholdsFromAffine } from '../ops/binary.js';
import { toDyadic } from '../quantize.js';
import type { TensorRange } from './calibrate.js';
import type { Graph, GraphData, GraphNode, GraphTensor } from '../model/format.js';
import { binaryScales, packNibbles, packSignBits, permuteFlattenedColumns, quantizeChannels, toOhwi, type OhwiWeights } from './weights.js';

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

type Value = { kind: 'f32' | 'q8' | 'b1'; t: number; flattened?: [number, number, number] };

const FLT_MAX = 3.4028234663852886e38;

/** Per-sample lowbit shape of a float tensor: NCHW -> [H, W, C], [N, C] -> [C]. */
function sampleShape(dims: number[]): number[] {
  return dims.length === 4 ? [dims[2], dims[3], dims[1]] : dims.slice(1);
}

const dataBytes = (d: Record<string, GraphData>) => Object.values(d).reduce((s, a) => s + a.byteLength, 0);

/** 8-bit quantization parameters of a range: u8 when it never goes negative, else symmetric s8. */
function quantOf(r: TensorRange | ImportedQuant): ImportedQuant {
  if ('scale' in r) return r;
  const unsigned = r.lo >= 0;
  const extent = unsigned ? r.hi : Math.max(-r.lo, r.hi);
  return { dtype: unsigned ? 'u8' : 's8', zeroPoint: 0, scale: extent > 0 ? extent / (unsigned ? 255 : 127) : 1 };
}

/** [lo, hi] of a real clip interval in a tensor's quantized domain, inside its dtype. */
function quantClamp(q: ImportedQuant, min = -Infinity, max = Infinity): [number, number] {
  const [dlo, dhi] = q.dtype === 'u8' ? [0, 255] : [-128, 127];
  const lo = Math.max(dlo, Math.min(dhi, Number.isFinite(min) ? Math.round(min / q.scale) + q.zeroPoint : dlo));
  const hi = Math.max(lo, Math.min(dhi, Number.isFinite(max) ? Math.round(max / q.scale) + q.zeroPoint : dhi));
  return [lo, hi];
}

/** [lo, hi] of a fused relu / clip on a float output, inside the finite float32 range. */
function floatClamp(clip?: { min: number; max: number }): [number, number] {
  return [Math.max(-FLT_MAX, clip?.min ?? -FLT_MAX), Math.min(FLT_MAX, clip?.max ?? FLT_MAX)];
}

function dyadicArrays(reals: ArrayLike<number>): { multiplier: Int32Array; shift: Uint8Array } {
  const multiplier = new Int32Array(reals.length), shift = new Uint8Array(reals.length);
  for (let c = 0; c < reals.length; ++c) {
    if (reals[c] === 0) continue; // a channel that is always 0
    const d = toDyadic(Math.abs(reals[c]));
    multiplier[c] = Math.sign(reals[c]) * d.multiplier;
    shift[c] = d.shift;
  }
  return { multiplier, shift };
}

function int32Bias(bias: ArrayLike<number>, scale: ArrayLike<number>, layer: string): Int32Array {
  return Int32Array.from({ length: bias.length }, (_, c) => {
    const q = scale[c] === 0 ? 0 : Math.round(bias[c] / scale[c]);
    if (!(Math.abs(q) <= 2 ** 30)) throw new UnsupportedError(`node '${layer}': bias[${c}] = ${bias[c]} does not fit the int32 accumulator at scale ${scale[c]}`);
    return q;
  });
}

export function lower(g: FloatGraph, options: LowerOptions): { graph: Graph; layers: LayerInfo[] } {
  const tensors: GraphTensor[] = [];
  const nodes: GraphNode[] = [];
  const layers: LayerInfo[] = [];
  const values = new Map<string, Value>();
  const consumers = new Map<string, FloatNode[]>();
  for (const n of g.nodes) for (const i of inputsOf(n)) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const isOutput = (name: string) => g.outputs.includes(name);
  const soleConsumer = (name: string, op: string) => {
    const c = consumers.get(name) ?? [];
    return c.length === 1 && c[0].op === op && !isOutput(name) ? c[0] : undefined;
  };
  const fused = new Set<FloatNode>();

  // Imported QDQ parameters override calibration for both sides of each fake-quant node.
  const imported = new Map<string, ImportedQuant>();
  for (const n of g.nodes)
    if (n.op === 'fakequant') {
      imported.set(n.input, n.quant);
      imported.set(n.output, n.quant);
    }
  const quant = (name: string): ImportedQuant => {
    const q = imported.get(name) ?? options.ranges.get(name);
    if (!q) throw new RangeError(`calibration: no range for tensor '${name}' (give calibration data)`);
    return quantOf(q);
  };
  const quantS8 = (name: string): ImportedQuant => {
    const q = quant(name);
    return q.dtype === 's8' ? q : { dtype: 's8', zeroPoint: 0, scale: (q.scale * 255) / 127 };
  };
  const dims = (name: string) => g.tensors.get(name)!.dims;

  const addTensor = (name: string, dtype: GraphTensor['dtype'], shape: number[], q?: ImportedQuant): number => {
    tensors.push(q ? { name, dtype, shape, scale: q.scale, zero_point: q.zeroPoint } : { name, dtype, shape });
    return tensors.length - 1;
  };
  const addNode = (name: string, op: string, inputs: number[], outputs: number[], attrs?: Record<string, unknown>, data?: Record<string, GraphData>) => {
    nodes.push({ name, op, inputs, outputs, attrs, data });
  };
  const q8Tensor = (name: string, shape: number[], q: ImportedQuant) => addTensor(name, q.dtype, shape, q);

  // ---- conversions between representations -----------------------------------------------------
  // A tensor read by several integer layers is unpacked or quantized once.
  const q8Of = new Map<string, Value>();
  const asQ8 = (name: string, v: Value): Value => {
    if (v.kind === 'q8') return v;
    const done = q8Of.get(name);
    if (done) return done;
    const shape = [...tensors[v.t].shape];
    let result: Value;
    if (v.kind === 'b1') {
      const t = q8Tensor(`${name}.unpacked`, shape, { dtype: 's8', scale: 1, zeroPoint: 0 });
      addNode(`${name}.unpack`, 'unpack', [v.t], [t]);
      result = { kind: 'q8', t, flattened: v.flattened };
    } else {
      if (shape.length === 3) shape.push(shape.shift()!); // CHW -> HWC
      const t = q8Tensor(`${name}.q`, shape, quant(name));
      addNode(`${name}.quantize`, 'quantize', [v.t], [t]);
      result = { kind: 'q8', t };
    }
    q8Of.set(name, result);
    return result;
  };
  const toF32 = (name: string, v: Value): number => {
    if (v.kind === 'f32') return v.t;
    const q = asQ8(name, v);
    if (q.flattened) {
      // A flattened map is HWC inside lowbit and CHW in ONNX: back to [H, W, C], dequantize
      // (HWC -> CHW), then flatten the float map.
      const [c, h, w] = q.flattened;
      const src = tensors[q.t];
      const t = addTensor(`${name}.hwc`, src.dtype, [h, w, c], { dtype: src.dtype as 'u8', scale: src.scale!, zeroPoint: src.zero_point! });
      addNode(`${name}.unflatten`, 'reshape', [q.t], [t]);
      const chw = addTensor(`${name}.chw`, 'f32', [c, h, w]);
      addNode(`${name}.dequantize`, 'dequantize', [t], [chw]);
      const flat = addTensor(`${name}.f32`, 'f32', [c * h * w]);
      addNode(`${name}.flatten`, 'reshape', [chw], [flat]);
      return flat;
    }
    const shape = [...tensors[q.t].shape];
    if (shape.length === 3) shape.unshift(shape.pop()!); // HWC -> CHW
    const t = addTensor(`${name}.f32`, 'f32', shape);
    addNode(`${name}.dequantize`, 'dequantize', [q.t], [t]);
    return t;
  };

  // ---- conv / dense ----------------------------------------------------------------------------
  const lowerLinear = (n: Extract<FloatNode, { op: 'conv' | 'dense' }>) => {
    let input = values.get(n.input)!;
    // The element-wise tail fused into this layer's epilogue.
    let out = n.output;
    let clip: { min: number; max: number } | undefined;
    const clipNode = soleConsumer(out, 'clip') as Extract<FloatNode, { op: 'clip' }> | undefined;
    if (clipNode) {
      fused.add(clipNode);
      clip = { min: clipNode.min, max: clipNode.max };
      out = clipNode.output;
    }
    const signNode = soleConsumer(out, 'sign');
    const sign = signNode && (!clip || (clip.min <= 0 && clip.max >= 0)) ? signNode : undefined;
    if (sign) {
      fused.add(sign);
      out = sign.output;
    }
    const softmax = soleConsumer(out, 'softmax');
    const toFloat = !sign && (isOutput(out) || (softmax !== undefined && isOutput(softmax.output)));
    const outShape = sampleShape(dims(n.output));

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

    if (alpha) {
      // real output = alpha[c] * dot + bias[c], dot the +-1 dot product
      const data: Record<string, GraphData> = { weights: packSignBits(w) };
      let dtype: GraphTensor['dtype'];
      let q: ImportedQuant | undefined;
      const attrs: Record<string, unknown> = { ...geometry };
      if (n.op === 'conv') attrs.pad_value = n.attrs.pads.some((p) => p > 0) ? 'zero' : 'one';
      if (binaryOutput) {
        const t = thresholdsFromAffine(alpha, bias);
        Object.assign(data, { threshold: t.threshold, flip: t.flip });
        dtype = 'b1';
      } else if (toFloat && outShape.length === 1) {
        Object.assign(data, { scale: Float32Array.from(alpha), bias: Float32Array.from(bias) });
        attrs.clamp = floatClamp(clip);
        dtype = 'f32';
      } else {
        // The binary engine's integer output is int8: symmetric, a relu clamps at 0.
        q = quantS8(out);
        const d = dyadicArrays(Array.from(alpha, (a) => a / q!.scale));
        Object.assign(data, { ...d, bias: Int32Array.from(bias, (b) => Math.round(b / q!.scale)) });
        attrs.clamp = quantClamp(q, clip?.min, clip?.max);
        dtype = 's8';
      }
      const mst = options.mst?.(n.name, w, groups, outShape.length === 3 ? outShape[0] * outShape[1] : 1) ?? null;
      if (mst) data.mst = mst.bytes;
      const t = dtype === 's8' ? q8Tensor(out, outShape, q!) : addTensor(out, dtype, outShape);
      addNode(n.name, n.op === 'conv' ? 'bconv2d' : 'bdense', [input.t], [t], attrs, data);
      layers.push({ name: n.name, kind: mst ? 'binary+MST' : 'binary', bytes: dataBytes(data), tensor: out, binary: binaryOutput, note: mst?.note });
      values.set(out, { kind: dtype === 'b1' ? 'b1' : dtype === 'f32' ? 'f32' : 'q8', t });
      return;
    }

    // Integer layer: acc = sum (x - z_x) * w_q exactly; real output = s_x * s_w[c] * acc + bias[c].
    input = asQ8(n.input, input);
    const qIn = { scale: tensors[input.t].scale!, zeroPoint: tensors[input.t].zero_point! };
    const bits = options.bits?.get(n.name) ?? 8;
    const qw = quantizeChannels(w, bits);
    const accScale = Float64Array.from(qw.scales, (s) => s * qIn.scale);
    const data: Record<string, GraphData> = { weights: bits === 4 ? packNibbles(qw.values) : qw.values };
    const op = n.op === 'conv' ? 'qconv2d' : 'qdense';
    const attrs: Record<string, unknown> = { ...geometry, bits };
    layers.push({ name: n.name, kind: `W${bits}A8`, bytes: 0, tensor: out, binary: binaryOutput });
    const layer = layers[layers.length - 1];
    if (binaryOutput || toFloat) {
      // Keep the exact accumulator and finish in the layer's real scale: a threshold for a sign
      // (no rounding of the bias can move a sign) or the float output.
      const acc = addTensor(`${n.output}.acc`, 's32', outShape);
      addNode(n.name, op, [input.t], [acc], attrs, data);
      layer.bytes = dataBytes(data);
      if (binaryOutput) {
        const t = thresholdsFromAffine(accScale, bias);
        const b = addTensor(out, 'b1', outShape);
        addNode(`${n.name}.sign`, 'threshold', [acc], [b], {}, { threshold: t.threshold, flip: t.flip });
        layer.bytes += t.threshold.byteLength + t.flip.byteLength;
        values.set(out, { kind: 'b1', t: b });
      } else {
        const shape = outShape.length === 3 ? [outShape[2], outShape[0], outShape[1]] : outShape;
        const f = addTensor(out, 'f32', shape);
        const affine = { scale: Float32Array.from(accScale), bias: Float32Array.from(bias) };
        addNode(`${n.name}.dequantize`, 'affine', [acc], [f], { clamp: floatClamp(clip) }, affine);
        layer.bytes += dataBytes(affine);
        values.set(out, { kind: 'f32', t: f });
      }
      return;
    }
    const qOut = quant(out);
    Object.assign(data, { bias: int32Bias(bias, accScale, n.name), ...dyadicArrays(Array.from(accScale, (s) => s / qOut.scale)) });
    attrs.clamp = quantClamp(qOut, clip?.min, clip?.max);
    const t = q8Tensor(out, outShape, qOut);
    addNode(n.name, op, [input.t], [t], attrs, data);
    layer.bytes = dataBytes(data);
    values.set(out, { kind: 'q8', t });
  };

  // ---- the graph ---------------------------------------------------------------------------------
  for (const name of g.inputs) values.set(name, { kind: 'f32', t: addTensor(name, 'f32', dims(name).slice(1)) });

  for (const n of g.nodes) {
    if (fused.has(n)) continue;
    const shape = sampleShape(dims(n.output));
    switch (n.op) {
      case 'conv':
      case 'dense':
        lowerLinear(n);
        break;
      case 'maxpool': {
        let v = values.get(n.input)!;
        if (v.kind === 'f32') v = asQ8(n.input, v);
        const src = tensors[v.t];
        const t = addTensor(n.output, src.dtype, shape, src.scale ? { dtype: src.dtype as 'u8', scale: src.scale, zeroPoint: src.zero_point! } : undefined);
        addNode(n.name, 'maxpool', [v.t], [t], { kernel: n.attrs.kernel, stride: n.attrs.stride, pads: n.attrs.pads });
        values.set(n.output, { kind: v.kind, t });
        break;
      }
      case 'avgpool':
      case 'global_avgpool': {
        // An average stays inside its input's range: the output keeps the input's parameters.
        const v = asQ8(n.input, values.get(n.input)!);
        const src = tensors[v.t];
        const t = addTensor(n.output, src.dtype, shape, { dtype: src.dtype as 'u8', scale: src.scale!, zeroPoint: src.zero_point! });
        const attrs: Record<string, unknown> = { clamp: quantClamp(quantOf({ dtype: src.dtype as 'u8', scale: src.scale!, zeroPoint: src.zero_point! })) };
        if (n.op === 'avgpool') Object.assign(attrs, { kernel: n.attrs.kernel, stride: n.attrs.stride, pads: n.attrs.pads, count_include_pad: n.countIncludePad });
        addNode(n.name, n.op, [v.t], [t], attrs);
        values.set(n.output, { kind: 'q8', t });
        break;
      }
      case 'add':
      case 'concat': {
        let out = n.output;
        let clip: { min: number; max: number } | undefined;
        const clipNode = soleConsumer(out, 'clip') as Extract<FloatNode, { op: 'clip' }> | undefined;
        if (clipNode) {
          fused.add(clipNode);
          clip = clipNode;
          out = clipNode.output;
        }
        const ins = n.inputs.map((i) => asQ8(i, values.get(i)!).t);
        const q = quant(out);
        const t = q8Tensor(out, sampleShape(dims(out)), q);
        addNode(n.name, n.op, ins, [t], { clamp: quantClamp(q, clip?.min, clip?.max) });
        values.set(out, { kind: 'q8', t });
        break;
      }
      case 'clip': {
        const v = asQ8(n.input, values.get(n.input)!);
        const src = tensors[v.t];
        const q = { dtype: src.dtype as 'u8', scale: src.scale!, zeroPoint: src.zero_point! };
        const t = q8Tensor(n.output, shape, q);
        addNode(n.name, 'clamp', [v.t], [t], { clamp: quantClamp(q, n.min, n.max) });
        values.set(n.output, { kind: 'q8', t });
        break;
      }
      case 'prelu': {
        const v = asQ8(n.input, values.get(n.input)!);
        const inScale = tensors[v.t].scale!;
        const q = quant(n.output);
        const channels = shape[shape.length - 1];
        const slope = n.slope.data.length === 1 ? new Float32Array(channels).fill(n.slope.data[0]) : n.slope.data;
        const pos = dyadicArrays(new Array(channels).fill(inScale / q.scale));
        const neg = dyadicArrays(Array.from(slope, (s) => (s * inScale) / q.scale));
        const t = q8Tensor(n.output, shape, q);
        addNode(n.name, 'prelu', [v.t], [t], { clamp: quantClamp(q) }, {
          multiplier_pos: pos.multiplier, shift_pos: pos.shift, multiplier_neg: neg.multiplier, shift_neg: neg.shift,
        });
        values.set(n.output, { kind: 'q8', t });
        break;
      }
      case 'flatten': {
        let v = values.get(n.input)!;
        const src = tensors[v.t];
        const inDims = dims(n.input);
        const spatial = inDims.length === 4 && inDims[2] * inDims[3] > 1;
        // Packed bits flatten in place only when every pixel's words are full.
        if (v.kind === 'b1' && spatial && src.shape[2] % 64 !== 0) v = asQ8(n.input, v);
        const from = tensors[v.t];
        const t = addTensor(n.output, from.dtype, shape, from.scale ? { dtype: from.dtype as 'u8', scale: from.scale, zeroPoint: from.zero_point! } : undefined);
        addNode(n.name, 'reshape', [v.t], [t]);
        values.set(n.output, { kind: v.kind, t, flattened: v.kind !== 'f32' && spatial ? [inDims[1], inDims[2], inDims[3]] : undefined });
        break;
      }
      case 'sign': {
        const v = values.get(n.input)!;
        if (v.kind === 'b1') {
          values.set(n.output, v);
          break;
        }
        const q8 = asQ8(n.input, v);
        const t = addTensor(n.output, 'b1', tensors[q8.t].shape);
        addNode(n.name, 'sign', [q8.t], [t]);
        values.set(n.output, { kind: 'b1', t, flattened: q8.flattened });
        break;
      }
      case 'softmax': {
        const t = addTensor(n.output, 'f32', shape);
        addNode(n.name, 'softmax', [toF32(n.input, values.get(n.input)!)], [t]);
        values.set(n.output, { kind: 'f32', t });
        break;
      }
      case 'fakequant': {
        const v = values.get(n.input)!;
        values.set(n.output, v.kind === 'f32' ? asQ8(n.output, v) : v);
        break;
      }
      case 'affine':
        throw new UnsupportedError(`node '${n.name}': a per-channel scale/shift (BatchNormalization or Mul/Add by a constant) that does not follow a Conv or Gemm is not supported`);
    }
    for (const i of inputsOf(n)) {
      const v = values.get(i);
      if (v?.flattened && n.op !== 'dense' && n.op !== 'sign' && n.op !== 'flatten')
        throw new UnsupportedError(`node '${n.name}' (${n.op}): reads a flattened feature map; lowbit supports a flattened map only as the input of a dense (Gemm / MatMul) layer`);
    }
  }

  const outputs = g.outputs.map((name) => {
    const v = values.get(name);
    if (!v) throw new UnsupportedError(`output '${name}': not computed by the graph`);
    return { name, tensor: finalF32(name, v) };
  });
  function finalF32(name: string, v: Value): number {
    const t = toF32(name, v);
    if (tensors[t].name !== name) tensors[t].name = name;
    return t;
  }
  if (options.probe)
    for (const layer of layers) {
      const v = values.get(layer.tensor)!;
      if (g.outputs.includes(layer.tensor)) continue;
      outputs.push({ name: `probe:${layer.name}`, tensor: toF32(`probe:${layer.name}`, v) });
    }
  return { graph: { inputs: g.inputs.map((name) => ({ name, tensor: values.get(name)!.t })), outputs, tensors, nodes }, layers };
}

export function inputsOf(n: FloatNode): string[] {
  return 'inputs' in n ? n.inputs : [n.input];
}
