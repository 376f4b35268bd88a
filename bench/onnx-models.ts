/**
 * One-layer ONNX models for the onnxruntime-node peer, built in code with onnx-proto:
 * opset 13, NCHW, random constant weights. `Conv` in fp32; `QLinearConv` with u8 activations
 * (zero point 128), s8 per-channel weights (zero point 0) and an s32 bias. `MatMul` in fp32;
 * `QLinearMatMul` with u8 activations (zero point 128) and s8 per-column weights (zero point 0).
 * Also the onnxruntime session options every suite uses.
 */
import * as ort from 'onnxruntime-node';
import onnxProto, { type onnx as proto } from 'onnx-proto';
import { fill, random } from './harness.js';
import type { ConvShape } from './shapes.js';

const { onnx } = onnxProto;
const T = onnx.TensorProto.DataType;

type Data = Float32Array | Uint8Array | Int8Array | Int32Array;

function initializer(name: string, dataType: number, dims: number[], data: Data): proto.ITensorProto {
  return { name, dataType, dims, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

function valueInfo(name: string, elemType: number, dims: number[]): proto.IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((dimValue) => ({ dimValue })) } } } };
}

function ints(name: string, values: number[]): proto.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: values };
}

function model(
  node: proto.INodeProto,
  initializers: proto.ITensorProto[],
  input: proto.IValueInfoProto,
  output: proto.IValueInfoProto,
): Uint8Array {
  const proto = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'lowbit-bench',
    graph: { name: 'layer', node: [node], initializer: initializers, input: [input], output: [output] },
  });
  return onnx.ModelProto.encode(proto).finish();
}

function convAttributes(s: ConvShape): proto.IAttributeProto[] {
  const [top, left, bottom, right] = s.pads;
  return [
    ints('kernel_shape', [s.kernel, s.kernel]),
    ints('strides', [s.stride, s.stride]),
    ints('pads', [top, left, bottom, right]), // ONNX order: begins (H, W) then ends (H, W)
  ];
}

/** fp32 `Conv` with weights [cout, cin, k, k] and bias; input `x` [batch, cin, h, w] f32, output `y`. */
export function convF32Model(s: ConvShape, seed = 1): Uint8Array {
  const rnd = random(seed);
  const w = fill(new Float32Array(s.cout * s.cin * s.kernel * s.kernel), () => rnd() * 2 - 1);
  const b = fill(new Float32Array(s.cout), () => rnd() - 0.5);
  return model(
    { opType: 'Conv', input: ['x', 'w', 'b'], output: ['y'], attribute: convAttributes(s) },
    [initializer('w', T.FLOAT, [s.cout, s.cin, s.kernel, s.kernel], w), initializer('b', T.FLOAT, [s.cout], b)],
    valueInfo('x', T.FLOAT, [s.batch, s.cin, s.h, s.w]),
    valueInfo('y', T.FLOAT, [s.batch, s.cout, s.oh, s.ow]),
  );
}

/** int8 `QLinearConv`, per-channel weight scales; input `x` [batch, cin, h, w] u8, output `y` u8. */
export function qlinearConvModel(s: ConvShape, seed = 2): Uint8Array {
  const rnd = random(seed);
  const k = s.cin * s.kernel * s.kernel;
  const scalar = (name: string, dataType: number, data: Data) => initializer(name, dataType, [], data);
  const w = fill(new Int8Array(s.cout * k), () => Math.floor(rnd() * 255) - 127);
  const wScale = fill(new Float32Array(s.cout), () => (0.5 + rnd()) / 127);
  const bias = fill(new Int32Array(s.cout), () => Math.floor((rnd() - 0.5) * 4096));
  const xScale = 1 / 64;
  // A sum of k products of uniform u8 - 128 and s8 values has a spread of about sqrt(k) * 74 * 73;
  // let +-4 of those span the 128 output steps on each side, so few outputs saturate.
  const yScale = (4 * Math.sqrt(k) * 74 * 73 * xScale) / 127 / 128;
  return model(
    {
      opType: 'QLinearConv',
      input: ['x', 'x_scale', 'x_zero_point', 'w', 'w_scale', 'w_zero_point', 'y_scale', 'y_zero_point', 'b'],
      output: ['y'],
      attribute: convAttributes(s),
    },
    [
      scalar('x_scale', T.FLOAT, Float32Array.of(xScale)),
      scalar('x_zero_point', T.UINT8, Uint8Array.of(128)),
      initializer('w', T.INT8, [s.cout, s.cin, s.kernel, s.kernel], w),
      initializer('w_scale', T.FLOAT, [s.cout], wScale),
      initializer('w_zero_point', T.INT8, [s.cout], new Int8Array(s.cout)),
      scalar('y_scale', T.FLOAT, Float32Array.of(yScale)),
      scalar('y_zero_point', T.UINT8, Uint8Array.of(128)),
      initializer('b', T.INT32, [s.cout], bias),
    ],
    valueInfo('x', T.UINT8, [s.batch, s.cin, s.h, s.w]),
    valueInfo('y', T.UINT8, [s.batch, s.cout, s.oh, s.ow]),
  );
}

/**
 * Fills `a` with seeded integers in [lo, hi] (hi - lo < 256), four per draw of the generator (the
 * low bits of a draw are not used twice): fast enough for matrices of 16 M entries, where a draw per
 * entry takes half a second. Exported for the benchmarks' own large weight matrices.
 */
export function fillInts<A extends Int8Array | Uint8Array>(a: A, lo: number, hi: number, seed: number): A {
  const rnd = random(seed);
  const span = hi - lo + 1;
  for (let i = 0; i < a.length; i += 4) {
    let bits = Math.floor(rnd() * 4294967296);
    for (let j = i; j < i + 4 && j < a.length; ++j, bits >>>= 8) a[j] = lo + (((bits & 255) * span) >> 8);
  }
  return a;
}

/** A matrix product [m, k] x [k, n], as ONNX `MatMul` computes it (B constant). */
export interface MatMulShape {
  m: number;
  k: number;
  n: number;
}

/** fp32 `MatMul` with a constant B [k, n]; input `x` [m, k] f32, output `y` [m, n]. */
export function matMulF32Model(s: MatMulShape, seed = 3): Uint8Array {
  const q = fillInts(new Int8Array(s.k * s.n), -127, 127, seed);
  const b = new Float32Array(q.length);
  for (let i = 0; i < q.length; ++i) b[i] = q[i] / 128;
  return model(
    { opType: 'MatMul', input: ['x', 'b'], output: ['y'] },
    [initializer('b', T.FLOAT, [s.k, s.n], b)],
    valueInfo('x', T.FLOAT, [s.m, s.k]),
    valueInfo('y', T.FLOAT, [s.m, s.n]),
  );
}

/**
 * int8 `QLinearMatMul` with a constant s8 B [k, n], per-column scales (`b_scale` and `b_zero_point`
 * of shape [n], zero points 0); input `x` [m, k] u8 with zero point 128, output `y` [m, n] u8 with
 * zero point 128.
 */
export function qlinearMatMulModel(s: MatMulShape, seed = 4): Uint8Array {
  const rnd = random(seed);
  const scalar = (name: string, dataType: number, data: Data) => initializer(name, dataType, [], data);
  const b = fillInts(new Int8Array(s.k * s.n), -127, 127, seed + 1);
  const bScale = fill(new Float32Array(s.n), () => (0.5 + rnd()) / 127);
  const xScale = 1 / 64;
  // As in qlinearConvModel: +-4 spreads of a k-term sum span the 128 output steps on each side.
  const yScale = (4 * Math.sqrt(s.k) * 74 * 73 * xScale) / 127 / 128;
  return model(
    {
      opType: 'QLinearMatMul',
      input: ['x', 'x_scale', 'x_zero_point', 'b', 'b_scale', 'b_zero_point', 'y_scale', 'y_zero_point'],
      output: ['y'],
    },
    [
      scalar('x_scale', T.FLOAT, Float32Array.of(xScale)),
      scalar('x_zero_point', T.UINT8, Uint8Array.of(128)),
      initializer('b', T.INT8, [s.k, s.n], b),
      initializer('b_scale', T.FLOAT, [s.n], bScale),
      initializer('b_zero_point', T.INT8, [s.n], new Int8Array(s.n)),
      scalar('y_scale', T.FLOAT, Float32Array.of(yScale)),
      scalar('y_zero_point', T.UINT8, Uint8Array.of(128)),
    ],
    valueInfo('x', T.UINT8, [s.m, s.k]),
    valueInfo('y', T.UINT8, [s.m, s.n]),
  );
}

/**
 * The CPU EP session every suite times: n intra-op threads, sequential, all graph optimizations.
 * With `noSpin`, idle worker threads block instead of spinning:
 * the GEMV cycles through 8 sessions, each with its own intra-op pool, and with spinning on, the
 * pools of the 7 idle sessions spin on the 2 cores while the 8th runs (measured: 2-thread fp32 GEMV
 * 16.6 ms instead of 3.4 ms, int8 1.5 ms instead of 0.9 ms; one session alone runs as fast either way).
 */
export function ortSession(model: Uint8Array, n: number, noSpin: boolean): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: n,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    ...(noSpin ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
  });
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
