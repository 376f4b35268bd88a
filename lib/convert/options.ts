/**
 * The converter's options and report: a leaf module, so that what reads or passes them (the
 * runtime's Model.fromOnnx, the CLI, the worker) need not import the converter itself.
 * convert.ts re-exports them.
 */

export interface ConvertOptions {
  /** calibration samples: whole samples of the model's input, in its layout (NCHW images) */
  calibration?: Float32Array;
  /**
   * weight bits of the float conv / dense layers: 8 (W8A8, default), 7 (reduced-range INT8: weights in
   * [-64, 64], exact with vpmaddubsw on AVX2 CPUs without VNNI, 1.3-1.45x the W8A8 speed there), 4 (W4A8)
   * or 'mixed' (4 and 8)
   */
  bits?: 8 | 7 | 4 | 'mixed';
  /**
   * for bits 8 and 'mixed': 'auto' (default) gives an inner 8-bit layer reduced-range weights (W7A8,
   * in [-64, 64]: the same size, exact with vpmaddubsw on AVX2 CPUs without VNNI, 1.3-1.45x the
   * W8A8 speed there, the same speed elsewhere) where the conversion measures no cost: each layer
   * alone at 7 bits is run on up to 64 calibration samples, and the cheapest go to 7 bits while
   * together they raise the output error by at most 1% (each layer's cost is in the report);
   * 'off' keeps every 8-bit layer at full range (bits 7 puts every inner layer at 7 bits)
   */
  reducedRange?: 'auto' | 'off';
  /** for 'mixed': the largest model file, in bytes (the report it stores included) */
  sizeBudget?: number;
  /** weight bits of the first and the last integer layer (default 8: they are the most sensitive) */
  boundaryBits?: 8 | 4;
  /** activation ranges: 'minmax' (default) or 'percentile' */
  calibrationMethod?: 'minmax' | 'percentile';
  /** for 'percentile': the percentile of |x| kept, default 99.99 */
  percentile?: number;
  /**
   * How the weights of the integer layers are rounded (their per-channel scales are the same):
   * 'gptq' (default) rounds them to keep each layer's output close to the float layer's on the
   * calibration samples (GPTQ-style error compensation over the layer's inputs, then bias
   * correction: the mean output shift the rounding leaves is folded into the bias); 'nearest'
   * rounds each weight to its nearest level (what lowbit did before).
   */
  rounding?: 'gptq' | 'nearest';
  /** build MST schedules for the binary layers (kept where the cost model predicts a gain) */
  mst?: boolean;
  /**
   * Layers kept in float32 rather than quantized: 'none', the conv / dense layers named, or
   * 'boundary': in a network with binary layers, every other layer and the real-valued stream
   * between the binary layers (stem, shortcuts, residual sums, head), as the network was trained,
   * so lowbit's outputs match the float model's up to float rounding; in a network without, the
   * first and the last layer. Default: 'boundary' for a network with binary layers (the trained
   * network's predictions, and faster than INT8 boundary layers), else 'none'.
   */
  floatLayers?: 'none' | 'boundary' | string[];
  /**
   * The largest relative RMS error an output may have against the float model on the measuring
   * samples before the conversion is refused with an {@link AccuracyError}. Default: 0.5 for an
   * output computed by 8-bit layers only, 1.0 with 4-bit layers (measured errors are a few
   * percent, and up to about 25% at 4 bits), none after a binarization (one value within half a
   * quantization step of 0 takes either sign, and a random binary network can amplify that;
   * there a large error is a warning). `Infinity` only warns.
   */
  maxOutputError?: number;
  /** calls while calibrating and measuring */
  onProgress?: (phase: ConvertPhase, done: number, total: number) => void;
}

/**
 * The conversion's phases, in order: float evaluation of the calibration samples ('calibrate'),
 * rounding of the weights ('round', with rounding 'gptq'), for 'mixed' the error of each layer
 * alone at 4 bits ('sensitivity'), with reducedRange 'auto' the error of each inner layer alone at
 * 7 bits ('reduced-range'), and the error of every layer of the result ('measure').
 */
export type ConvertPhase = 'calibrate' | 'round' | 'sensitivity' | 'reduced-range' | 'measure';

export interface LayerReport {
  name: string;
  /** 'binary', 'binary+MST', 'W8A8', 'W7A8', 'W4A8', 'f32' */
  kind: string;
  /** bytes of the layer's weights and parameters */
  bytes: number;
  /** on the calibration samples: relative RMS error of the layer's output against the float
   *  model, or for a binary output the fraction of signs that differ */
  error: number;
  metric: 'relative-rms' | 'sign-mismatch';
  /** for an MST layer: its op ratio and predicted speedup */
  note?: string;
  /** for 'mixed' bits: the relative RMS error of the model outputs with this layer alone at 4 bits
   *  (every other at 8), which ranks the layers (the least sensitive per byte saved go to 4 bits) */
  sensitivity?: number;
  /** for an inner 8-bit layer with reducedRange 'auto': how much the model's output error (relative
   *  RMS) rises with this layer alone at 7 bits; the layers at 7 bits have kind 'W7A8' */
  reducedRangeCost?: number;
}

export interface ConversionReport {
  layers: LayerReport[];
  /** relative RMS error of each model output against the float model */
  outputError: Record<string, number>;
  /** for [N, classes] outputs: how often the arg-max agrees with the float model */
  top1Agreement: Record<string, number>;
  modelBytes: number;
  calibrationSamples: number;
  /** what the converter found suspicious but not fatal (degenerate calibration data, an output
   *  error beyond what the bits explain); also printed by `npx lowbit convert` and `info` */
  warnings: string[];
}
