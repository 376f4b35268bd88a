/**
 * Small `.lowbit` graphs written directly with the format writer (no ONNX, no quantizer), for the
 * tests of loading, running and malformed files.
 */
import { encodeModel, type Graph } from '../../lib/model/format.js';
import { packNibbles, packSignBits } from '../../lib/convert/weights.js';
import { Rng } from './rng.js';

/**
 * input f32 [2, 6, 6] -> quantize u8 -> qconv2d 3x3 pad 1 (5 channels, relu) -> maxpool 2x2
 * -> reshape [45] -> qdense (s32, 4 classes) -> affine -> softmax.
 */
export function integerModel(seed = 1): Uint8Array {
  const rand = new Rng(seed);
  const r = () => rand.float();
  const int8 = (n: number, lo: number, hi: number) =>
    Int8Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo + 1)));
  const graph: Graph = {
    inputs: [{ name: 'image', tensor: 0 }],
    outputs: [{ name: 'probs', tensor: 7 }],
    tensors: [
      { name: 'image', dtype: 'f32', shape: [2, 6, 6] },
      { name: 'x', dtype: 'u8', shape: [6, 6, 2], scale: 1 / 255, zero_point: 0 },
      { name: 'c1', dtype: 'u8', shape: [6, 6, 5], scale: 0.02, zero_point: 0 },
      { name: 'p1', dtype: 'u8', shape: [3, 3, 5], scale: 0.02, zero_point: 0 },
      { name: 'flat', dtype: 'u8', shape: [45], scale: 0.02, zero_point: 0 },
      { name: 'acc', dtype: 's32', shape: [4] },
      { name: 'logits', dtype: 'f32', shape: [4] },
      { name: 'probs', dtype: 'f32', shape: [4] },
    ],
    nodes: [
      { name: 'quantize', op: 'quantize', inputs: [0], outputs: [1] },
      {
        name: 'conv1',
        op: 'qconv2d',
        inputs: [1],
        outputs: [2],
        attrs: {
          kernel: [3, 3],
          stride: [1, 1],
          dilation: [1, 1],
          pads: [1, 1, 1, 1],
          groups: 1,
          bits: 8,
          clamp: [0, 255],
        },
        data: {
          weights: int8(5 * 3 * 3 * 2, -127, 127),
          bias: Int32Array.from({ length: 5 }, () => Math.floor(r() * 2000) - 1000),
          multiplier: Int32Array.from({ length: 5 }, () => (1 << 30) | Math.floor(r() * (1 << 29))),
          shift: Uint8Array.from({ length: 5 }, () => 38 + Math.floor(r() * 3)),
        },
      },
      {
        name: 'pool1',
        op: 'maxpool',
        inputs: [2],
        outputs: [3],
        attrs: { kernel: [2, 2], stride: [2, 2], pads: [0, 0, 0, 0] },
      },
      { name: 'flatten', op: 'reshape', inputs: [3], outputs: [4] },
      {
        name: 'fc',
        op: 'qdense',
        inputs: [4],
        outputs: [5],
        attrs: { bits: 4 },
        data: { weights: packNibbles(int8(4 * 45, -8, 7)) },
      },
      {
        name: 'fc.dequantize',
        op: 'affine',
        inputs: [5],
        outputs: [6],
        data: {
          scale: Float32Array.from({ length: 4 }, () => 0.001 + r() * 0.01),
          bias: Float32Array.from({ length: 4 }, () => r() - 0.5),
        },
      },
      { name: 'softmax', op: 'softmax', inputs: [6], outputs: [7] },
    ],
  };
  return encodeModel(graph);
}

/** The sizes of a {@link binaryModel}: square input, conv and pool windows; 64 conv channels. */
export interface BinaryModelSizes {
  /** the input's height and width (3 channels) */
  size: number;
  kernel: number;
  stride: number;
  pad: number;
  pool: number;
  classes: number;
}

/**
 * input f32 [3, 5, 5] -> quantize s8 -> sign -> bconv2d 3x3 pad 1 zero (64 ch, b1 out) ->
 * maxpool 2x2 (b1) -> reshape [256] -> bdense (f32 out, 3 classes); other `sizes` alike.
 */
export function binaryModel(
  seed = 2,
  { size, kernel, stride, pad, pool, classes }: BinaryModelSizes = {
    size: 5,
    kernel: 3,
    stride: 1,
    pad: 1,
    pool: 2,
    classes: 3,
  },
): Uint8Array {
  const rand = new Rng(seed);
  const r = () => rand.float();
  const signs = (n: number) => Float32Array.from({ length: n }, () => (r() < 0.5 ? -1 : 1));
  const convSize = (size + 2 * pad - kernel) / stride + 1;
  const pooled = Math.floor(convSize / pool);
  const flat = pooled * pooled * 64;
  const conv = { out: 64, kh: kernel, kw: kernel, icg: 3, data: signs(64 * kernel * kernel * 3) };
  const fc = { out: classes, kh: 1, kw: 1, icg: flat, data: signs(classes * flat) };
  const graph: Graph = {
    inputs: [{ name: 'x', tensor: 0 }],
    outputs: [{ name: 'y', tensor: 6 }],
    tensors: [
      { name: 'x', dtype: 'f32', shape: [3, size, size] },
      { name: 'xq', dtype: 's8', shape: [size, size, 3], scale: 1 / 127, zero_point: 0 },
      { name: 'xb', dtype: 'b1', shape: [size, size, 3] },
      { name: 'c1', dtype: 'b1', shape: [convSize, convSize, 64] },
      { name: 'p1', dtype: 'b1', shape: [pooled, pooled, 64] },
      { name: 'flat', dtype: 'b1', shape: [flat] },
      { name: 'y', dtype: 'f32', shape: [classes] },
    ],
    nodes: [
      { name: 'quantize', op: 'quantize', inputs: [0], outputs: [1] },
      { name: 'sign', op: 'sign', inputs: [1], outputs: [2] },
      {
        name: 'conv1',
        op: 'bconv2d',
        inputs: [2],
        outputs: [3],
        attrs: {
          kernel: [kernel, kernel],
          stride: [stride, stride],
          dilation: [1, 1],
          pads: [pad, pad, pad, pad],
          groups: 1,
          pad_value: 'zero',
        },
        data: {
          weights: packSignBits(conv),
          threshold: Int32Array.from({ length: 64 }, () => Math.floor(r() * 9) - 4),
          flip: Uint8Array.from({ length: 64 }, () => (r() < 0.3 ? 1 : 0)),
        },
      },
      {
        name: 'pool1',
        op: 'maxpool',
        inputs: [3],
        outputs: [4],
        attrs: { kernel: [pool, pool], stride: [pool, pool], pads: [0, 0, 0, 0] },
      },
      { name: 'flatten', op: 'reshape', inputs: [4], outputs: [5] },
      {
        name: 'fc',
        op: 'bdense',
        inputs: [5],
        outputs: [6],
        data: {
          weights: packSignBits(fc),
          scale: Float32Array.from({ length: classes }, () => 0.01 + r() * 0.1),
          bias: Float32Array.from({ length: classes }, () => r() - 0.5),
        },
      },
    ],
  };
  return encodeModel(graph);
}
