/** The one place that loads the compiled addon, and the typed view of what it exports. */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveAddon } from './addon-path.js';
import { fromNative } from './errors.js';

/** Opaque handle of packed binary weights owned by the addon. */
export interface NativeWeightsHandle {
  readonly bytes: number;
}

/** Opaque handle of an MST schedule (with the weights it was built from) owned by the addon. */
export type NativeMstHandle = object;

export interface NativeMstSchedule {
  handle: NativeMstHandle;
  order: Int32Array;
  parent: Int32Array;
  negate: Uint8Array;
  depth: Uint32Array;
  cost: Uint32Array;
  totalDistance: number;
  maxDepth: number;
  opRatio: number;
  storageRatio: number;
}

/** Opaque handle of packed integer weights owned by the addon. */
export interface NativeQHandle {
  readonly bytes: number;
}

/** Quantization of a qconv2d / qdense call, validated by the TypeScript layer. */
export interface NativeQOptions {
  dtype: 's8' | 'u8' | 's32';
  inputZeroPoint: number;
  bias?: Int32Array;
  multiplier?: Int32Array;
  shift?: Uint8Array;
  zeroPoint?: number;
  lo?: number;
  hi?: number;
}

export interface NativeResult {
  data: ArrayBuffer;
  shape: number[];
}

export interface NativeEpilogue {
  kind: 'f32' | 's8' | 'b1';
  scale?: Float32Array;
  bias?: Float32Array | Int32Array;
  lo?: number;
  hi?: number;
  multiplier?: Int32Array;
  shift?: Uint8Array;
  threshold?: Int32Array;
  flip?: Uint8Array;
}

/** Per-tensor quantization parameters of the integer element-wise and pooling operators. */
export interface NativeQuantParams {
  scale: number;
  zeroPoint: number;
}
export interface NativeQuantOutput extends NativeQuantParams {
  lo: number;
  hi: number;
}

/** A conv's geometry (integer convs pad with the input zero point). */
export interface NativeConvGeometry {
  strides: [h: number, w: number];
  dilations: [h: number, w: number];
  pads: [top: number, left: number, bottom: number, right: number];
}

/** A binary conv's geometry: also what a padded input bit reads as. */
export interface NativeBinaryConvGeometry extends NativeConvGeometry {
  padValue: 'one' | 'zero';
}

/** A pool's window. */
export interface NativePoolGeometry {
  kernel: [h: number, w: number];
  strides: [h: number, w: number];
  pads: [top: number, left: number, bottom: number, right: number];
}

/** Opaque handle of a loaded `.lowbit` model owned by the addon. */
export type NativeModelHandle = object;
/** Opaque cancel flag of one async model run. */
export type NativeRunToken = object;

export interface NativeModelTensor {
  name: string;
  dtype: string;
  shape: number[];
}

type OutputArray = Float32Array | Int8Array | BigUint64Array;

/** The named options that end a conv / dense call. */
export interface NativeCallOptions<Out> {
  /** run on the libuv pool and return a Promise */
  async: boolean;
  /** a preallocated output (sync calls only) */
  out?: Out;
}

/** A binary conv / dense call's options: also its MST schedule and policy. */
export interface NativeBinaryCallOptions extends NativeCallOptions<OutputArray> {
  mst?: NativeMstHandle;
  mstPolicy?: 'auto' | 'always';
}
export interface NativeBinding {
  isa(): string;
  supportedIsas(): string[];
  setIsa(name: string): void;
  threads(): number;
  setThreads(n: number): void;
  usableCpus(): number;
  packBinaryConv2dWeights(data: Float32Array | Int8Array, shape: number[], groups: number): NativeWeightsHandle;
  bitpack(
    data: Float32Array | Int8Array,
    rows: number,
    channels: number,
    async: boolean,
  ): NativeResult | Promise<NativeResult>;
  bconv2d(
    input: BigUint64Array,
    inputShape: number[],
    weights: NativeWeightsHandle,
    geometry: NativeBinaryConvGeometry,
    output: NativeEpilogue,
    call: NativeBinaryCallOptions,
  ): NativeResult | Promise<NativeResult>;
  bdense(
    input: BigUint64Array,
    rows: number,
    inChannels: number,
    weights: NativeWeightsHandle,
    output: NativeEpilogue,
    call: NativeBinaryCallOptions,
  ): NativeResult | Promise<NativeResult>;
  toDyadic(multiplier: number): [multiplier: number, shift: number];
  /** h (k x k) += x^T x, x: rows x k (lowbit/ptq.h) */
  gramAccumulate(h: Float32Array, x: Float32Array, rows: number, k: number): void;
  /** in place: the lower Cholesky factor of a (k x k); false when a pivot is not positive */
  cholesky(a: Float32Array, k: number): boolean;
  /** nearest-plane rounding of w (rows x k) with the Cholesky factor l of the inputs' Gram matrix */
  compensatedRound(
    w: Float32Array,
    rows: number,
    k: number,
    scales: Float32Array,
    qmax: number,
    l: Float32Array,
  ): Int8Array;
  /** the converter's float reference conv (lowbit/ptq.h), bit for bit that of lib/onnx/ops/linear.ts */
  referenceConv(
    x: Float32Array,
    xDims: readonly number[],
    weight: Float32Array,
    weightDims: readonly number[],
    bias: Float32Array | null,
    stride: readonly number[],
    dilation: readonly number[],
    pads: readonly number[],
    groups: number,
  ): Float32Array;
  /** gptqRound's factor of h (lowbit/ptq.h gptq_factor): l (k x k) and the column order; null when h cannot be factored */
  gptqFactor(
    h: Float32Array,
    k: number,
    damp: number,
    actOrder: boolean,
  ): { l: Float32Array; perm: Uint32Array } | null;
  /** gptqRound of w (rows x k) with a factor from gptqFactor */
  gptqRoundFactored(
    l: Float32Array,
    perm: Uint32Array,
    k: number,
    w: Float32Array,
    rows: number,
    scales: Float32Array,
    qmax: number,
  ): Int8Array;
  /** GPTQ rounding of w (rows x k) against the Gram matrix h; null when h cannot be factored */
  gptqRound(
    h: Float32Array,
    k: number,
    w: Float32Array,
    rows: number,
    scales: Float32Array,
    qmax: number,
    damp: number,
    actOrder: boolean,
  ): Int8Array | null;
  quantize(
    x: Float32Array,
    scale: number,
    zeroPoint: number,
    lo: number,
    hi: number,
    async: boolean,
  ): NativeResult | Promise<NativeResult>;
  dequantize(
    q: Int8Array | Uint8Array,
    scale: number,
    zeroPoint: number,
    async: boolean,
  ): NativeResult | Promise<NativeResult>;
  requantize(
    acc: Int32Array,
    rows: number,
    channels: number,
    params: { multiplier: Int32Array; shift: Uint8Array; bias?: Int32Array; lo: number; hi: number },
    async: boolean,
  ): NativeResult | Promise<NativeResult>;
  buildMst(weights: NativeWeightsHandle, maxDepth: number, allowNegation: boolean): NativeMstSchedule;
  serializeMst(schedule: NativeMstHandle): Uint8Array;
  loadMst(bytes: Uint8Array): {
    weights: NativeWeightsHandle;
    shape: number[];
    groups: number;
    schedule: NativeMstSchedule;
  };
  mstPositions(schedule: NativeMstHandle, channel: number): Uint32Array;
  mstCost(
    schedule: NativeMstHandle,
    pixels: number,
  ): { dense: number; mst: number; useMst: boolean; runnable: boolean };
  packQConv2dWeights(data: Int8Array, shape: number[], groups: number, bits: number): NativeQHandle;
  qconv2d(
    input: Int8Array | Uint8Array,
    inputShape: number[],
    weights: NativeQHandle,
    geometry: NativeConvGeometry,
    options: NativeQOptions,
    call: NativeCallOptions<Int8Array | Uint8Array | Int32Array>,
  ): NativeResult | Promise<NativeResult>;
  qdense(
    input: Int8Array | Uint8Array,
    rows: number,
    inChannels: number,
    weights: NativeQHandle,
    options: NativeQOptions,
    call: NativeCallOptions<Int8Array | Uint8Array | Int32Array>,
  ): NativeResult | Promise<NativeResult>;
  bmaxpool2d(
    input: BigUint64Array,
    inputShape: number[],
    geometry: NativePoolGeometry,
    async: boolean,
  ): NativeResult | Promise<NativeResult>;
  qadd(
    a: Int8Array | Uint8Array,
    b: Int8Array | Uint8Array,
    aParams: NativeQuantParams,
    bParams: NativeQuantParams,
    output: NativeQuantOutput,
    async: boolean,
  ): NativeResult | Promise<NativeResult>;
  qclamp(x: Int8Array | Uint8Array, lo: number, hi: number, async: boolean): NativeResult | Promise<NativeResult>;
  qmaxpool2d(
    x: Int8Array | Uint8Array,
    inputShape: number[],
    geometry: NativePoolGeometry,
    async: boolean,
  ): NativeResult | Promise<NativeResult>;
  qavgpool2d(
    x: Int8Array | Uint8Array,
    inputShape: number[],
    geometry: NativePoolGeometry,
    countIncludePad: boolean,
    input: NativeQuantParams,
    output: NativeQuantOutput,
    async: boolean,
  ): NativeResult | Promise<NativeResult>;
  qglobalavgpool(
    x: Int8Array | Uint8Array,
    inputShape: number[],
    input: NativeQuantParams,
    output: NativeQuantOutput,
    async: boolean,
  ): NativeResult | Promise<NativeResult>;
  qconcat(
    inputs: (Int8Array | Uint8Array)[],
    outer: number,
    inner: number,
    axisSizes: number[],
    params: NativeQuantParams[],
    output: NativeQuantOutput,
    async: boolean,
  ): NativeResult | Promise<NativeResult>;
  loadModel(bytes: Uint8Array, fuse: boolean, maxActivationBytes: number, maxPooledBytes: number): NativeModelHandle;
  modelInfo(model: NativeModelHandle): { json: string; inputs: NativeModelTensor[]; outputs: NativeModelTensor[] };
  modelPlan(model: NativeModelHandle, batch: number): { arenaBytes: number; tensorBytes: number };
  runModel(model: NativeModelHandle, batch: number, inputs: (Float32Array | Float32Array[])[]): Float32Array[];
  runModelAsync(
    model: NativeModelHandle,
    batch: number,
    /** per input: one array (copied now), or parts stacked on the pool thread (read there) */
    inputs: (Float32Array | Float32Array[])[],
    token?: NativeRunToken,
  ): Promise<Float32Array[]>;
  /** A cancel flag for one runModelAsync: cancelRun(token) stops it before it starts or at the next node. */
  runToken(): NativeRunToken;
  cancelRun(token: NativeRunToken): void;
  profileModel(
    model: NativeModelHandle,
    batch: number,
    inputs: (Float32Array | Float32Array[])[],
    runs: number,
    warmup: number,
  ): { outputs: Float32Array[]; nodeMs: Float64Array; totalMs: Float64Array };
  disposeModel(model: NativeModelHandle): void;
}

const here = dirname(fileURLToPath(import.meta.url));
// The package root: lib/.. under vitest, dist/lib/../.. once compiled.
const root = [resolve(here, '..'), resolve(here, '../..')].find((dir) => existsSync(join(dir, 'package.json')));

export const native: NativeBinding = resolveAddon(
  {
    root: root ?? resolve(here, '..'),
    platform: process.platform,
    arch: process.arch,
    override: process.env.LOWBIT_ADDON_PATH,
    armVersion: Number((process.config.variables as Record<string, unknown>).arm_version),
  },
  (path) => {
    try {
      return createRequire(import.meta.url)(path) as NativeBinding;
    } catch (error) {
      // dlopen failures go back to the resolver (next candidate); the addon's own errors are typed
      if ((error as { code?: unknown }).code === 'ERR_DLOPEN_FAILED') throw error;
      throw fromNative(error);
    }
  },
);
