/**
 * A `.lowbit` integer network as an ONNX QDQ model: every 8-bit tensor becomes a float tensor
 * followed by QuantizeLinear / DequantizeLinear with the tensor's own scale and zero point, every
 * integer layer a float Conv / Gemm reading its weights as int8 initializers through a per-channel
 * DequantizeLinear (axis 0) and its bias as int32, so onnxruntime runs the same quantization (its
 * optimizer turns the pattern into QLinearConv and friends).
 *
 * The file stores what lowbit computes with: the weight codes, the int32 bias and the dyadic
 * rescale m * 2^-e = s_in * s_w[c] / s_out, not the float weight scales. They are reconstructed
 * from it as s_w[c] = m * 2^-e * s_out / s_in: the 31-bit multiplier holds the ratio to a relative
 * 2^-31, finer than the float32 the scale is written in, so the twin requantizes with lowbit's own
 * ratio (and old files export too; the format needs no new field).
 *
 * Layout: lowbit keeps maps HWC, ONNX NCHW; weights are transposed and a dense layer reading a
 * flattened map has its columns put back in ONNX's CHW order. Binary layers (1-bit tensors) have
 * no QDQ form and are refused.
 */
import { readFileSync } from 'node:fs';
import type { onnx as proto } from 'onnx-proto';
import { UnsupportedError } from '../errors.js';
import { decodeModel, type GraphTensor, type StoredModel } from '../model/format.js';
import { Model } from '../model/model.js';
import { describe } from '../tensor.js';
import { i, ints, model as encodeOnnx, node, T, tensor, valueInfo, type Attr } from './builder.js';

type StoredNode = StoredModel['json']['nodes'][number];
type Ctor<A> = { new (buffer: ArrayBuffer): A; BYTES_PER_ELEMENT: number };

/** [H, W, C] of a rank-1 tensor that is a map flattened in lowbit's HWC order (ONNX's holds CHW). */
type Flat = [number, number, number] | undefined;

const FLT_MAX = 3.4028234663852886e38;
/** A rank-3 f32 tensor in ONNX's CHW layout (the graph's boundary). */
const isChw = (x: GraphTensor) => x.dtype === 'f32' && x.shape.length === 3 && x.layout !== 'hwc';
const dtypeRange = (dtype: string): [number, number] => (dtype === 'u8' ? [0, 255] : [-128, 127]);

/** Index map of a [H, W, C]-flattened vector into ONNX's [C, H, W] order: onnx[k] = lowbit[map[k]]. */
function chwOrder([h, w, c]: [number, number, number]): Int32Array {
  const map = new Int32Array(h * w * c);
  for (let ci = 0; ci < c; ++ci)
    for (let y = 0; y < h; ++y) for (let x = 0; x < w; ++x) map[(ci * h + y) * w + x] = (y * w + x) * c + ci;
  return map;
}

/** Nibbles (low first) to int8 values. */
function unpackNibbles(packed: Uint8Array, n: number): Int8Array {
  return Int8Array.from({ length: n }, (_, k) => {
    const v = (packed[k >> 1] >> ((k & 1) * 4)) & 15;
    return v >= 8 ? v - 16 : v;
  });
}

class QdqWriter {
  readonly nodes: proto.INodeProto[] = [];
  readonly initializers: proto.ITensorProto[] = [];
  /** the ONNX float tensor standing for each lowbit tensor (the dequantized value of an 8-bit one) */
  private readonly names: (string | undefined)[];
  private readonly flat: Flat[];
  /** an integer layer with an s32 output: its Conv / Gemm is written by the node reading the accumulator */
  private readonly pending = new Map<number, (scale: Float32Array, bias: Float32Array) => string>();
  private readonly used = new Set<string>();
  private readonly tensors: GraphTensor[];

  constructor(private readonly stored: StoredModel) {
    const { json } = stored;
    this.tensors = json.tensors;
    this.names = new Array(json.tensors.length);
    this.flat = new Array(json.tensors.length);
    for (const io of [...json.inputs, ...json.outputs]) this.used.add(io.name);
  }

  /** A fresh ONNX name based on `base`. */
  private fresh(base: string): string {
    let name = base;
    for (let k = 1; this.used.has(name); ++k) name = `${base}_${k}`;
    this.used.add(name);
    return name;
  }

  private init(base: string, dims: number[], values: ArrayLike<number>, dataType: number = T.FLOAT): string {
    const name = this.fresh(base);
    this.initializers.push(tensor(name, dims, values, dataType));
    return name;
  }

  /** Adds a node; returns its (one) output's name. */
  private add(op: string, inputs: string[], out: string, attrs: Record<string, Attr> = {}): string {
    const name = this.fresh(out);
    this.nodes.push(node(op, inputs, [name], attrs, name));
    return name;
  }

  private data<A>(n: StoredNode, key: string, ctor: Ctor<A>): A | undefined {
    const ref = n[key] as { section: number } | undefined;
    if (!ref) return undefined;
    return new ctor(new Uint8Array(this.stored.sections[ref.section]).buffer);
  }

  private name(t: number, n: StoredNode): string {
    const name = this.names[t];
    if (name === undefined)
      throw new UnsupportedError(`node '${n.name}' (${n.op}): reads tensor ${t}, which has no ONNX form`);
    return name;
  }

  private is8(t: number): boolean {
    return this.tensors[t].dtype === 'u8' || this.tensors[t].dtype === 's8';
  }

  /** One sample's ONNX dims of tensor t: rank 3 as [C, H, W]. */
  onnxDims(t: number): number[] {
    const x = this.tensors[t];
    if (x.shape.length !== 3 || isChw(x)) return [...x.shape];
    const [h, w, c] = x.shape;
    return [c, h, w];
  }

  /** A per-channel array shaped to broadcast over tensor t in ONNX ([C, 1, 1] for maps). */
  private channelInit(base: string, t: number, values: Float32Array): string {
    const dims = this.onnxDims(t);
    const flat = this.flat[t];
    const v = flat ? Float32Array.from(chwOrder(flat), (k) => values[k]) : values;
    return this.init(base, dims.length === 3 ? [dims[0], 1, 1] : [values.length], v);
  }

  /**
   * Float tensor y quantized to 8-bit tensor t with t's scale and zero point, after t's clamp
   * [lo, hi] (a Relu where it is one, a Clip where it is narrower than the dtype).
   */
  private quantizeTo(y: string, t: number, clamp?: [number, number]): void {
    const x = this.tensors[t];
    const [dlo, dhi] = dtypeRange(x.dtype);
    const [lo, hi] = clamp ?? [dlo, dhi];
    const z = x.zero_point!;
    if (lo > dlo || hi < dhi)
      y =
        lo === z && hi === dhi
          ? this.add('Relu', [y], `${x.name}.relu`)
          : this.add(
              'Clip',
              [
                y,
                this.init(`${x.name}.lo`, [], [(lo - z) * x.scale!]),
                this.init(`${x.name}.hi`, [], [(hi - z) * x.scale!]),
              ],
              `${x.name}.clip`,
            );
    const qType = x.dtype === 'u8' ? T.UINT8 : T.INT8;
    const scale = this.init(`${x.name}.scale`, [], [x.scale!]);
    const zp = this.init(`${x.name}.zero_point`, [], [z], qType);
    const q = this.add('QuantizeLinear', [y, scale, zp], `${x.name}.q`);
    this.names[t] = this.add('DequantizeLinear', [q, scale, zp], `${x.name}.dq`);
  }

  /** A float output's fused clamp as a Clip (none when it spans the float range). */
  private floatClamp(y: string, t: number, clamp?: [number, number]): string {
    if (!clamp || (clamp[0] <= -FLT_MAX && clamp[1] >= FLT_MAX)) return y;
    const base = this.tensors[t].name;
    return this.add(
      'Clip',
      [y, this.init(`${base}.lo`, [], [clamp[0]]), this.init(`${base}.hi`, [], [clamp[1]])],
      `${base}.clip`,
    );
  }

  /** 8-bit output: quantize (after the clamp); f32: the float clamp, if any. */
  private finish(y: string, t: number, clamp?: [number, number]): void {
    if (this.is8(t)) this.quantizeTo(y, t, clamp);
    else this.names[t] = this.floatClamp(y, t, clamp);
  }

  /**
   * The weight initializer of a conv / dense layer: OHWI values to OIHW (conv) or OI with the
   * columns in ONNX's order (dense reading a flattened map).
   */
  private weights<A extends Int8Array | Float32Array>(
    n: StoredNode,
    values: A,
    input: number,
    output: number,
  ): { values: A; dims: number[] } {
    const c = this.tensors[output].shape[this.tensors[output].shape.length - 1];
    const k = values.length / c;
    if (n.op === 'qdense' || n.op === 'fdense') {
      const flat = this.flat[input];
      if (!flat) return { values, dims: [c, k] };
      const map = chwOrder(flat);
      const out = values.slice();
      for (let o = 0; o < c; ++o) for (let j = 0; j < k; ++j) out[o * k + j] = values[o * k + map[j]];
      return { values: out as A, dims: [c, k] };
    }
    const [kh, kw] = n.kernel as number[];
    const icg = k / (kh * kw);
    const out = values.slice();
    for (let o = 0; o < c; ++o)
      for (let y = 0; y < kh; ++y)
        for (let x = 0; x < kw; ++x)
          for (let ci = 0; ci < icg; ++ci)
            out[((o * icg + ci) * kh + y) * kw + x] = values[((o * kh + y) * kw + x) * icg + ci];
    return { values: out as A, dims: [c, icg, kh, kw] };
  }

  /** The Conv / Gemm of a layer with input x, weights w and bias b (ONNX names). */
  private linear(n: StoredNode, x: string, w: string, b: string, out: string): string {
    if (n.op === 'qdense' || n.op === 'fdense') return this.add('Gemm', [x, w, b], out, { transB: i(1) });
    const pads = n.pads as number[];
    return this.add('Conv', [x, w, b], out, {
      kernel_shape: ints(...(n.kernel as number[])),
      strides: ints(...(n.stride as number[])),
      dilations: ints(...(n.dilation as number[])),
      pads: ints(...pads),
      group: i((n.groups as number | undefined) ?? 1),
    });
  }

  private integerLayer(n: StoredNode): void {
    const [input] = n.inputs;
    const [output] = n.outputs;
    const x = this.name(input, n);
    const inScale = this.tensors[input].scale!;
    const c = this.tensors[output].shape[this.tensors[output].shape.length - 1];
    const packed = this.data(n, 'weights', Uint8Array)!;
    // bits 7 (weights in [-64, 64]) and 8 store one int8 per weight; 4 two per byte.
    const count = n.bits === 4 ? this.kernelSize(n, input) * c : packed.length;
    const codes = n.bits === 4 ? unpackNibbles(packed, count) : new Int8Array(packed.buffer);
    const { values, dims } = this.weights(n, codes, input, output);
    const qbias = this.data(n, 'bias', Int32Array) ?? new Int32Array(c);
    const base = this.tensors[output].name;
    /** The layer with per-channel weight scales sw (the sign of a negative one moved into the codes). */
    const emit = (sw: Float64Array, bias: (wScale: Float32Array) => string): string => {
      const k = values.length / c;
      const wq = values.slice();
      const wScale = new Float32Array(c);
      for (let o = 0; o < c; ++o) {
        // A channel whose rescale is 0 always gives 0 (zero point): zero weights do the same.
        const sign = sw[o] < 0 ? -1 : sw[o] > 0 ? 1 : 0;
        for (let j = 0; j < k; ++j) wq[o * k + j] *= sign;
        wScale[o] = sign === 0 ? 1 : Math.abs(sw[o]);
      }
      const w = this.dequantize(`${base}.weight`, dims, wq, T.INT8, wScale);
      return this.linear(n, x, w, bias(wScale), `${base}.${n.op === 'qconv2d' ? 'conv' : 'gemm'}`);
    };
    if (!this.is8(output)) {
      // s32: the affine reading it gives the scales, y = (acc + bias) * scale[c] + bias'[c].
      this.pending.set(output, (scale, fbias) =>
        emit(
          Float64Array.from(scale, (s) => s / inScale),
          () =>
            this.init(
              `${base}.bias`,
              [c],
              Float32Array.from(fbias, (b, o) => qbias[o] * scale[o] + b),
            ),
        ),
      );
      return;
    }
    const outScale = this.tensors[output].scale!;
    const m = this.data(n, 'multiplier', Int32Array)!;
    const e = this.data(n, 'shift', Uint8Array)!;
    const sw = Float64Array.from(m, (mult, o) => (mult * 2 ** -e[o] * outScale) / inScale);
    const y = emit(sw, (wScale) => {
      const b = Int32Array.from(qbias, (v, o) => (sw[o] < 0 ? -v : sw[o] > 0 ? v : 0));
      return this.dequantize(
        `${base}.bias`,
        [c],
        b,
        T.INT32,
        Float32Array.from(wScale, (s) => s * inScale),
      );
    });
    this.quantizeTo(y, output, n.clamp as [number, number]);
  }

  /** Weights per tap of a conv (kh * kw * Ci / groups), or a dense layer's inputs. */
  private kernelSize(n: StoredNode, input: number): number {
    const inC = this.tensors[input].shape[this.tensors[input].shape.length - 1];
    if (n.op === 'qdense') return this.tensors[input].shape.reduce((a, b) => a * b, 1);
    const [kh, kw] = n.kernel as number[];
    return (kh * kw * inC) / ((n.groups as number | undefined) ?? 1);
  }

  /** A DequantizeLinear of integer codes with per-channel scales on axis 0 (zero points 0). */
  private dequantize(
    base: string,
    dims: number[],
    codes: ArrayLike<number>,
    type: number,
    scales: Float32Array,
  ): string {
    const q = this.init(`${base}.q`, dims, codes, type);
    const scale = this.init(`${base}.scale`, [scales.length], scales);
    const zp = this.init(`${base}.zero_point`, [scales.length], new Int32Array(scales.length), type);
    return this.add('DequantizeLinear', [q, scale, zp], base, { axis: i(0) });
  }

  private floatLayer(n: StoredNode): void {
    const [input] = n.inputs;
    const [output] = n.outputs;
    if (this.tensors[output].dtype === 'b1') this.binary(n);
    const base = this.tensors[output].name;
    const { values, dims } = this.weights(n, this.data(n, 'weights', Float32Array)!, input, output);
    const w = this.init(`${base}.weight`, dims, values);
    const bias = this.data(n, 'bias', Float32Array) ?? new Float32Array(dims[0]);
    const y = this.linear(n, this.name(input, n), w, this.init(`${base}.bias`, [dims[0]], bias), base);
    this.names[output] = this.floatClamp(y, output, n.clamp as [number, number]);
  }

  private pool(n: StoredNode, op: string): void {
    const [input] = n.inputs;
    const [output] = n.outputs;
    if (this.tensors[input].dtype === 'b1') this.binary(n);
    const attrs: Record<string, Attr> = {};
    if (op !== 'GlobalAveragePool')
      Object.assign(attrs, {
        kernel_shape: ints(...(n.kernel as number[])),
        strides: ints(...(n.stride as number[])),
        pads: ints(...(n.pads as number[])),
      });
    if (op === 'AveragePool') attrs.count_include_pad = i(n.count_include_pad ? 1 : 0);
    const y = this.add(op, [this.name(input, n)], `${this.tensors[output].name}.${op}`, attrs);
    this.finish(y, output, n.clamp as [number, number]);
  }

  private reshape(n: StoredNode): void {
    const [input] = n.inputs;
    const [output] = n.outputs;
    const src = this.tensors[input];
    const dst = this.tensors[output];
    if (src.dtype === 'b1') this.binary(n);
    const x = this.name(input, n);
    const base = dst.name;
    const chw = isChw(src);
    let y: string;
    if (src.shape.length === 3 && dst.shape.length === 1) {
      // ONNX flattens CHW; an HWC map's flattened order is remembered for the layer reading it.
      y = this.add('Flatten', [x], `${base}.flatten`, { axis: i(1) });
      if (!chw) this.flat[output] = src.shape as [number, number, number];
    } else if (
      src.shape.length === 1 &&
      dst.shape.length === 3 &&
      this.flat[input]?.every((d, k) => d === dst.shape[k]) &&
      !isChw(dst)
    ) {
      y = this.add(
        'Reshape',
        [x, this.init(`${base}.shape`, [4], [0, ...this.onnxDims(output)], T.INT64)],
        `${base}.reshape`,
      );
    } else if (src.shape.length < 3 && dst.shape.length < 3 && !this.flat[input]) {
      y = this.add(
        'Reshape',
        [x, this.init(`${base}.shape`, [dst.shape.length + 1], [0, ...dst.shape], T.INT64)],
        `${base}.reshape`,
      );
    } else if (
      src.shape.length === 3 &&
      dst.shape.length === 3 &&
      chw === isChw(dst) &&
      src.shape.every((d, k) => d === dst.shape[k])
    ) {
      y = x;
    } else
      throw new UnsupportedError(
        `node '${n.name}' (reshape): [${src.shape.join(', ')}] -> [${dst.shape.join(', ')}] has no ONNX QDQ form here (only flattening a map, its inverse, and reshapes of vectors)`,
      );
    // A reshape keeps the quantization: re-quantizing with the same parameters is the QDQ form.
    this.finish(y, output);
  }

  private binary(n: StoredNode): never {
    throw new UnsupportedError(
      `node '${n.name}' (${n.op}): reads or writes 1-bit tensors; binary layers have no ONNX QDQ form (ONNX has no 1-bit tensor type or XNOR-popcount operator, and a float Sign + Conv stand-in would not be an int8 peer); export an integer model (lowbit convert --bits 8, 4 or mixed), or run the float ONNX model in onnxruntime`,
    );
  }

  write(n: StoredNode): void {
    const { inputs, outputs } = n;
    const [input] = inputs;
    const [output] = outputs;
    const out = () => this.tensors[output];
    switch (n.op) {
      case 'quantize':
        this.quantizeTo(this.name(input, n), output);
        this.flat[output] = this.flat[input];
        return;
      case 'dequantize':
      case 'transpose':
        // Both sides are one NCHW (or [N, C]) tensor in ONNX.
        this.names[output] = this.name(input, n);
        this.flat[output] = this.flat[input];
        return;
      case 'qconv2d':
      case 'qdense':
        return this.integerLayer(n);
      case 'fconv2d':
      case 'fdense':
        return this.floatLayer(n);
      case 'affine': {
        const scale = this.data(n, 'scale', Float32Array)!;
        const bias = this.data(n, 'bias', Float32Array)!;
        const layer = this.pending.get(input);
        if (layer) {
          this.names[output] = this.floatClamp(layer(scale, bias), output, n.clamp as [number, number]);
          this.flat[output] = this.flat[input];
          return;
        }
        if (this.tensors[input].dtype !== 'f32') this.binary(n);
        const x = this.name(input, n);
        this.flat[output] = this.flat[input];
        const y = this.add('Mul', [x, this.channelInit(`${out().name}.scale`, input, scale)], `${out().name}.mul`);
        const z = this.add('Add', [y, this.channelInit(`${out().name}.bias`, input, bias)], `${out().name}.add`);
        this.names[output] = this.floatClamp(z, output, n.clamp as [number, number]);
        return;
      }
      case 'maxpool':
        return this.pool(n, 'MaxPool');
      case 'avgpool':
        return this.pool(n, 'AveragePool');
      case 'global_avgpool':
        return this.pool(n, 'GlobalAveragePool');
      case 'add':
      case 'concat': {
        if (inputs.some((t) => this.flat[t] || this.tensors[t].dtype === 'b1'))
          throw new UnsupportedError(`node '${n.name}' (${n.op}): reads a flattened map or packed bits`);
        const ins = inputs.map((t) => this.name(t, n));
        const y =
          n.op === 'add'
            ? this.add('Add', ins, `${out().name}.add`)
            : this.add('Concat', ins, `${out().name}.concat`, { axis: i(1) });
        return this.finish(y, output, n.clamp as [number, number]);
      }
      case 'clamp':
        this.flat[output] = this.flat[input];
        return this.finish(this.name(input, n), output, n.clamp as [number, number]);
      case 'prelu':
        return this.prelu(n);
      case 'pad': {
        const src = this.tensors[input];
        if (src.dtype === 'b1') this.binary(n);
        const [top, left, bottom, right] = n.pads as number[];
        const code = n.value as number;
        const value = this.is8(input) ? (code - src.zero_point!) * src.scale! : code;
        const base = out().name;
        const y = this.add(
          'Pad',
          [
            this.name(input, n),
            this.init(`${base}.pads`, [8], [0, 0, top, left, 0, 0, bottom, right], T.INT64),
            this.init(`${base}.value`, [], [value]),
          ],
          `${base}.pad`,
        );
        return this.finish(y, output);
      }
      case 'reshape':
        return this.reshape(n);
      case 'softmax':
        this.names[output] = this.add('Softmax', [this.name(input, n)], `${out().name}.softmax`, { axis: i(-1) });
        return;
      case 'bconv2d':
      case 'bdense':
      case 'threshold':
      case 'sign':
      case 'unpack':
        return this.binary(n);
      default:
        throw new UnsupportedError(`node '${n.name}': operator '${n.op}' has no ONNX QDQ form in this exporter`);
    }
  }

  private prelu(n: StoredNode): void {
    const [input] = n.inputs;
    const [output] = n.outputs;
    const base = this.tensors[output].name;
    const x = this.name(input, n);
    this.flat[output] = this.flat[input];
    if (!this.is8(input)) {
      // v = x - input_bias; y = (v >= 0 ? v : v * slope) + output_bias
      const inBias = this.data(n, 'input_bias', Float32Array);
      const outBias = this.data(n, 'output_bias', Float32Array);
      const v = inBias ? this.add('Sub', [x, this.channelInit(`${base}.input_bias`, input, inBias)], `${base}.sub`) : x;
      const slope = this.data(n, 'slope', Float32Array)!;
      const y = this.add('PRelu', [v, this.channelInit(`${base}.slope`, input, slope)], `${base}.prelu`);
      this.names[output] = outBias
        ? this.add('Add', [y, this.channelInit(`${base}.output_bias`, input, outBias)], `${base}.add`)
        : y;
      return;
    }
    // Two rescales m * 2^-e: positive side s_in / s_out, negative side slope * s_in / s_out.
    const ratio = (m: Int32Array, e: Uint8Array) => Float64Array.from(m, (v, c) => v * 2 ** -e[c]);
    const pos = ratio(this.data(n, 'multiplier_pos', Int32Array)!, this.data(n, 'shift_pos', Uint8Array)!);
    const neg = ratio(this.data(n, 'multiplier_neg', Int32Array)!, this.data(n, 'shift_neg', Uint8Array)!);
    const unit = this.tensors[input].scale! / this.tensors[output].scale!;
    // y = PRelu(x * gain, slope) with gain = pos * s_out / s_in (1 from the converter) and slope = neg / pos.
    const gain = Float32Array.from(pos, (p) => p / unit);
    const slope = Float32Array.from(neg, (v, c) => (pos[c] === 0 ? 0 : v / pos[c]));
    const scaled = gain.every((g) => Math.abs(g - 1) < 1e-6)
      ? x
      : this.add('Mul', [x, this.channelInit(`${base}.gain`, input, gain)], `${base}.gain`);
    const y = this.add('PRelu', [scaled, this.channelInit(`${base}.slope`, input, slope)], `${base}.prelu`);
    this.quantizeTo(y, output, n.clamp as [number, number]);
  }

  /** The graph's inputs, read in lowbit's layouts. */
  inputs(): proto.IValueInfoProto[] {
    const { json } = this.stored;
    const inputs = json.inputs.map(({ name, tensor: t }) => {
      const x = this.tensors[t];
      if (x.shape.length === 3 && x.layout === 'hwc') {
        // fed as [N, H, W, C]: to NCHW
        this.names[t] = this.add('Transpose', [name], `${name}.nchw`, { perm: ints(0, 3, 1, 2) });
        return valueInfo(name, ['N', ...x.shape]);
      }
      this.names[t] = name;
      return valueInfo(name, ['N', ...x.shape]);
    });
    return inputs;
  }

  /** The graph's outputs, written in lowbit's layouts and under its names. */
  outputs(): proto.IValueInfoProto[] {
    return this.stored.json.outputs.map(({ name, tensor: t }) => {
      const x = this.tensors[t];
      let y = this.names[t]!;
      const flat = this.flat[t];
      if (flat) {
        // ONNX holds CHW order: back to lowbit's HWC order.
        const [h, w, c] = flat;
        y = this.add('Reshape', [y, this.init(`${name}.chw`, [4], [0, c, h, w], T.INT64)], `${name}.chw`);
        y = this.add('Transpose', [y], `${name}.hwc`, { perm: ints(0, 2, 3, 1) });
        y = this.add('Flatten', [y], `${name}.flat`, { axis: i(1) });
      } else if (x.shape.length === 3 && x.layout === 'hwc')
        y = this.add('Transpose', [y], `${name}.nhwc`, { perm: ints(0, 2, 3, 1) });
      if (y !== name) this.nodes.push(node('Identity', [y], [name], {}, this.fresh(`${name}.identity`)));
      return valueInfo(name, ['N', ...x.shape]);
    });
  }
}

/**
 * Writes a `.lowbit` integer model (W8A8, W4A8, mixed, with float layers) as an ONNX QDQ model
 * (opset 13) that runs the same quantization in onnxruntime: QuantizeLinear / DequantizeLinear with
 * each tensor's scale and zero point around float Conv / Gemm / Add / pools, int8 weights with
 * per-channel scales (axis 0), int32 biases. Its inputs and outputs are the model's, in the same
 * layouts (NCHW images).
 * @throws ModelFormatError for a file that is not a valid `.lowbit` model, UnsupportedError for a
 * model with binary layers (no QDQ form)
 * @example writeFileSync('model.qdq.onnx', exportOnnxQdq('model.lowbit'));
 */
export function exportOnnxQdq(modelPathOrBytes: string | Uint8Array): Uint8Array {
  if (typeof modelPathOrBytes !== 'string' && !(modelPathOrBytes instanceof Uint8Array))
    throw new TypeError(`model: expected a Uint8Array or a file path, got ${describe(modelPathOrBytes)}`);
  const bytes = typeof modelPathOrBytes === 'string' ? readFileSync(modelPathOrBytes) : modelPathOrBytes;
  // The native loader checks every field; what it accepts is read here without further checks.
  Model.fromBytes(bytes).dispose();
  const stored = decodeModel(bytes);
  const writer = new QdqWriter(stored);
  const inputs = writer.inputs();
  for (const n of stored.json.nodes) writer.write(n);
  const outputs = writer.outputs();
  return encodeOnnx({
    nodes: writer.nodes,
    initializers: writer.initializers,
    inputs,
    outputs,
    opset: 13,
    producer: 'lowbit',
    name: 'lowbit-qdq',
  });
}
