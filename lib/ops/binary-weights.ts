/**
 * Packed binary weights (native/src/binary/weights.cc): the leaf module of the binary family, which
 * both the operators (binary.ts) and the MST schedules (mst.ts) build on.
 */
import { callNative, ShapeError } from '../errors.js';
import { native, type NativeWeightsHandle } from '../native.js';
import { expectTensor, type Tensor } from '../tensor.js';
import { positiveInt } from './geometry.js';

/** Packed binary weights of a conv ([O, H, W, I/groups]) or dense ([O, I]) layer. */
export class PackedBinaryWeights {
  /** @internal */
  readonly handle: NativeWeightsHandle;
  readonly outChannels: number;
  readonly kernelH: number;
  readonly kernelW: number;
  readonly inChannelsPerGroup: number;
  readonly groups: number;

  /** @internal use packBinaryConv2dWeights / packBinaryDenseWeights */
  constructor(handle: NativeWeightsHandle, shape: readonly number[], groups: number) {
    this.handle = handle;
    [this.outChannels, this.kernelH, this.kernelW, this.inChannelsPerGroup] = shape;
    this.groups = groups;
  }

  /** Bytes of packed weight bits (1 bit per weight, rows padded to 64 bits). */
  get bytes(): number {
    return this.handle.bytes;
  }
}

/**
 * Packs binary conv weights. Values are sign-binarized (negative -> -1, zero and positive -> +1),
 * so float latent weights, int8 weights and +-1 weights all work.
 * @param weights OHWI tensor [outChannels, kernelH, kernelW, inChannels / groups], f32 or s8
 * @param options.groups grouped convolution (outChannels must be a multiple); default 1
 * @throws TypeError, ShapeError, RangeError
 */
export function packBinaryConv2dWeights(
  weights: Tensor<'f32' | 's8'>,
  options: { groups?: number } = {},
): PackedBinaryWeights {
  expectTensor(weights, 'weights', ['f32', 's8'], 4);
  const groups = positiveInt(options.groups ?? 1, 'groups');
  if (weights.shape[0] % groups !== 0)
    throw new ShapeError(`weights: output channels (${weights.shape[0]}) must be a multiple of groups (${groups})`);
  const handle = callNative(() =>
    native.packBinaryConv2dWeights(weights.data as Float32Array | Int8Array, [...weights.shape], groups),
  );
  return new PackedBinaryWeights(handle, weights.shape, groups);
}

/**
 * Packs binary dense weights [outFeatures, inFeatures] (f32 or s8, sign-binarized).
 * @throws TypeError, ShapeError
 */
export function packBinaryDenseWeights(weights: Tensor<'f32' | 's8'>): PackedBinaryWeights {
  expectTensor(weights, 'weights', ['f32', 's8'], 2);
  const [o, i] = weights.shape;
  const handle = callNative(() =>
    native.packBinaryConv2dWeights(weights.data as Float32Array | Int8Array, [o, 1, 1, i], 1),
  );
  return new PackedBinaryWeights(handle, [o, 1, 1, i], 1);
}
