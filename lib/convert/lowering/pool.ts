/**
 * maxpool (on 8 bits, packed bits or float), avgpool and global_avgpool (on 8 bits or float), pad
 * (in the input's representation where it holds the value exactly, else in float).
 */
import { quantClamp, quantOf, sampleShape, type GraphBuilder, type LoweringTable } from '../graph-builder.js';
import type { FloatNode } from '../../onnx/ir.js';

/** An average stays inside its input's range: the output keeps the input's parameters. */
function lowerAverage(b: GraphBuilder, n: Extract<FloatNode, { op: 'avgpool' | 'global_avgpool' }>): void {
  const shape = sampleShape(b.dims(n.output));
  const float = b.inFloat(n.input);
  const v = float ? b.asF32(n.input, b.value(n.input)) : b.asQ8(n.input, b.value(n.input));
  const t = b.addTensorLike(n.output, v.t, shape);
  const attrs: Record<string, unknown> = float ? {} : { clamp: quantClamp(quantOf(b.quantOfTensor(v.t))) };
  if (n.op === 'avgpool')
    Object.assign(attrs, {
      kernel: n.attrs.kernel,
      stride: n.attrs.stride,
      pads: n.attrs.pads,
      count_include_pad: n.countIncludePad,
    });
  b.addNode(n.name, n.op, [v.t], [t], attrs);
  b.values.set(n.output, { kind: v.kind, t });
}

/** The pad value as stored for tensor t (a bit, an 8-bit code, a float), or undefined where t cannot hold it exactly. */
function padCode(b: GraphBuilder, t: number, value: number): number | undefined {
  const x = b.tensors[t];
  if (x.dtype === 'f32') return value;
  if (x.dtype === 'b1') return value === 1 ? 0 : value === -1 ? 1 : undefined;
  const q = b.quantOfTensor(t);
  const code = value / q.scale + q.zeroPoint;
  const [lo, hi] = q.dtype === 'u8' ? [0, 255] : [-128, 127];
  return Number.isInteger(code) && code >= lo && code <= hi ? code : undefined;
}

export const POOL_LOWERINGS: LoweringTable<'maxpool' | 'avgpool' | 'global_avgpool' | 'pad'> = {
  pad: {
    lower(b, n) {
      let v = b.value(n.input);
      if (b.inFloat(n.input) || b.isChw(v.t) || padCode(b, v.t, n.value) === undefined) v = b.asF32(n.input, v);
      const t = b.addTensorLike(n.output, v.t, sampleShape(b.dims(n.output)));
      b.addNode(n.name, 'pad', [v.t], [t], { pads: n.pads, value: padCode(b, v.t, n.value) });
      b.values.set(n.output, { kind: v.kind, t });
    },
  },
  maxpool: {
    lower(b, n) {
      const shape = sampleShape(b.dims(n.output));
      let v = b.value(n.input);
      if (v.kind === 'f32') v = b.inFloat(n.input) ? b.asF32(n.input, v) : b.asQ8(n.input, v);
      const t = b.addTensorLike(n.output, v.t, shape);
      b.addNode(n.name, 'maxpool', [v.t], [t], { kernel: n.attrs.kernel, stride: n.attrs.stride, pads: n.attrs.pads });
      b.values.set(n.output, { kind: v.kind, t });
    },
  },
  avgpool: { lower: lowerAverage },
  global_avgpool: { lower: lowerAverage },
};
