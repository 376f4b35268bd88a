/** lowbit: fast CPU inference of binary and low-bit integer neural networks. */
export {
  AccuracyError,
  LowbitError,
  ModelFormatError,
  QuantizationError,
  ShapeError,
  UnsupportedError,
} from './errors.js';
export {
  toDyadic,
  requantize,
  requantizeAsync,
  quantize,
  quantizeAsync,
  dequantize,
  quantizeWeights,
  packInt4,
  unpackInt4,
  roundHalfEven,
  type Dyadic,
  type RequantizeOptions,
  type QuantizeOptions,
} from './ops/quantize.js';
export { Tensor, tensor, b1Words, type DType, type DataOf } from './tensor.js';
export { isa, supportedIsas, setIsa, threads, setThreads, usableCpus, type Isa } from './runtime.js';
export {
  bitpack,
  bitpackAsync,
  packBinaryConv2dWeights,
  packBinaryDenseWeights,
  PackedBinaryWeights,
  bconv2d,
  bconv2dAsync,
  bdense,
  bdenseAsync,
  bmaxpool2d,
  bmaxpool2dAsync,
  thresholdsFromAffine,
  type BinaryPadding,
  type BinaryOutput,
  type F32Output,
  type S8Output,
  type B1Output,
  type BConv2dOptions,
  type BDenseOptions,
  type MstOptions,
  type OutOption,
} from './ops/binary.js';
export type { Pair, Pool2dOptions, Pool2dOptions as BMaxPool2dOptions } from './ops/geometry.js';
export {
  packQConv2dWeights,
  packQDenseWeights,
  PackedQWeights,
  qconv2d,
  qconv2dAsync,
  qdense,
  qdenseAsync,
  type PackQWeightsOptions,
  type QWeightBits,
  type QLayerOptions,
  type QConv2dOptions,
  type QPadding,
  type QOutOption,
} from './ops/qconv.js';
export {
  qadd,
  qaddAsync,
  qrelu,
  qreluAsync,
  qclamp,
  qclampAsync,
  qmaxpool2d,
  qmaxpool2dAsync,
  qavgpool2d,
  qavgpool2dAsync,
  qglobalavgpool,
  qglobalavgpoolAsync,
  qconcat,
  qconcatAsync,
  type QuantParams,
  type QuantOutputParams,
  type QAddOptions,
  type QReluOptions,
  type QMaxPool2dOptions,
  type QAvgPool2dOptions,
  type QGlobalAvgPoolOptions,
  type QConcatOptions,
} from './ops/qops.js';
export { buildMst, loadMst, MstSchedule, type BuildMstOptions, type MstStats } from './ops/mst.js';
export {
  Model,
  loadModel,
  type ModelTensorInfo,
  type ModelInput,
  type ModelInputs,
  type ModelOutputs,
} from './model/model.js';
export {
  MAX_PROFILE_RUNS,
  type ModelProfile,
  type NodeProfile,
  type OpProfile,
  type ProfileOptions,
} from './model/profile.js';
export {
  convertOnnx,
  convertOnnxWithReport,
  type ConvertOptions,
  type ConversionReport,
  type ConvertPhase,
  type LayerReport,
} from './convert/convert.js';
export { exportOnnxQdq } from './onnx/export-qdq.js';
export {
  readLbds,
  encodeLbds,
  readFashionMnist,
  toInput,
  readF32,
  encodeF32,
  FASHION_MNIST_DIR,
  type Dataset,
} from './data.js';
