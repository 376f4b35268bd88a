/**
 * The float graph an ONNX model becomes after import, constant folding and simplification: a
 * handful of canonical operators with normalised attributes, NCHW activations, every constant a
 * Float32Array. The quantizer lowers it to a `.lowbit` graph; `evaluate.ts` runs it in float for
 * calibration and for measuring conversion error.
 */

/** A constant tensor (row-major, ONNX dims). */
export interface Constant {
  dims: number[];
  data: Float32Array;
}

/** Quantization parameters imported from a QDQ model (QuantizeLinear / DequantizeLinear pair). */
export interface ImportedQuant {
  scale: number;
  zeroPoint: number;
  dtype: 'u8' | 's8';
}

export interface ConvAttrs {
  /** [kh, kw] */
  kernel: [number, number];
  stride: [number, number];
  dilation: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
  groups: number;
}

export interface PoolAttrs {
  kernel: [number, number];
  stride: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
}

/** The canonical operators. `input` names are tensor names in `FloatGraph.tensors`. */
export type FloatOp =
  /** weight [O, I/groups, kh, kw], bias [O] or null */
  | { op: 'conv'; input: string; weight: Constant; bias: Constant | null; attrs: ConvAttrs }
  /** y = x W^T + b: weight [O, I], bias [O] or null; x is [N, I] */
  | { op: 'dense'; input: string; weight: Constant; bias: Constant | null }
  /** per-channel affine on axis 1: y = x * scale[c] + bias[c] (a BatchNormalization, or Mul/Add
   *  by constants, that could not be folded into a conv or dense) */
  | { op: 'affine'; input: string; scale: Constant; bias: Constant }
  /** y = min(max(x, min), max); Relu is { min: 0, max: Infinity } */
  | { op: 'clip'; input: string; min: number; max: number }
  /**
   * y = (v >= 0 ? v : slope[c] * v) + shiftOut[c] with v = x + shiftIn[c]; slope has one value per
   * channel (axis 1), LeakyRelu repeats alpha; the shifts (ReActNet's RPReLU: a learnable bias on
   * each side) are absent for a plain PReLU
   */
  | { op: 'prelu'; input: string; slope: Constant; shiftIn?: Constant; shiftOut?: Constant }
  | { op: 'maxpool'; input: string; attrs: PoolAttrs }
  | { op: 'avgpool'; input: string; attrs: PoolAttrs; countIncludePad: boolean }
  | { op: 'global_avgpool'; input: string }
  /** element-wise sum of two tensors of the same shape */
  | { op: 'add'; inputs: [string, string] }
  /** concatenation along axis 1 (channels) */
  | { op: 'concat'; inputs: string[] }
  /** constant padding of H and W with `value`: pads [top, left, bottom, right] (a zero Pad before a
   *  Conv or AveragePool folds into its pads instead) */
  | { op: 'pad'; input: string; pads: [number, number, number, number]; value: number }
  /** to [N, product of the rest] (ONNX Flatten with axis 1, or a Reshape to [N, -1]) */
  | { op: 'flatten'; input: string }
  /**
   * lowbit binarization: x >= threshold[c] -> +1, else -1 (threshold 0 when absent; ONNX Sign(0) = 0
   * is read as +1, see docs); a per-channel threshold is ReActNet's RSign, sign(x + b) with threshold -b
   */
  | { op: 'sign'; input: string; threshold?: Constant }
  /** softmax over axis 1 of a [N, C] tensor */
  | { op: 'softmax'; input: string }
  /** fake quantization from a QDQ pair: y = (clamp(round_half_even(x / scale) + zp) - zp) * scale */
  | { op: 'fakequant'; input: string; quant: ImportedQuant };

export type FloatNode = FloatOp & {
  /** the ONNX node name (or `op_type#index` when unnamed), for error messages and reports */
  name: string;
  output: string;
};

export interface FloatTensorInfo {
  /** NCHW (rank 4) or [N, C] (rank 2); dims[0] is the batch and is -1 when dynamic */
  dims: number[];
}

export interface FloatGraph {
  /** graph inputs (f32, non-constant), in ONNX order */
  inputs: string[];
  /** graph outputs, in ONNX order */
  outputs: string[];
  /** topologically sorted */
  nodes: FloatNode[];
  /** every non-constant tensor: graph inputs and node outputs */
  tensors: Map<string, FloatTensorInfo>;
}
