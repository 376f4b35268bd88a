/** lowbit: fast CPU inference of binary and low-bit integer neural networks. */
export { LowbitError, QuantizationError, ShapeError, UnsupportedError } from './errors.js';
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
} from './quantize.js';
export { Tensor, tensor, b1Words, type DType, type DataOf } from './tensor.js';
export { isa, supportedIsas, setIsa, threads, setThreads, type Isa } from './runtime.js';
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
  type OutOption,
  type BMaxPool2dOptions,
} from './ops/binary.js';
