/**
 * Constant folding (lib/onnx/fold.ts) of each foldable operator against onnxruntime-node running
 * the same node on the same values as graph inputs: integers and bools exactly, floats to 1e-6
 * relative. Also: decoding of every supported initializer type from raw_data and typed fields,
 * and random corruptions of a model's bytes never escaping as anything but ModelFormatError /
 * UnsupportedError.
 */
import type * as Ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { ModelFormatError, UnsupportedError } from '../lib/errors.js';
import { foldNode } from '../lib/onnx/fold.js';
import { importOnnx } from '../lib/onnx/index.js';
import { decodeModel, type RawNode } from '../lib/onnx/proto.js';
import {
  f,
  i,
  ints,
  model,
  node,
  ORT_IN_PROCESS,
  randomValues,
  T,
  tensor,
  valueInfo,
  type Attr,
} from './helpers/onnx-builder.js';
import { fileSeed, rngFor } from './helpers/rng.js';

const { onnx } = onnxProto;
const SEED = fileSeed('onnx-fold.test.ts');

interface In {
  dtype: number;
  dims: number[];
  values: number[];
}
const F = (dims: number[], values: number[]): In => ({ dtype: T.FLOAT, dims, values });
const I64 = (dims: number[], values: number[]): In => ({ dtype: T.INT64, dims, values });
const B = (dims: number[], values: number[]): In => ({ dtype: T.BOOL, dims, values });
const ORT_TYPE: Record<number, Ort.Tensor.Type> = {
  [T.FLOAT]: 'float32',
  [T.DOUBLE]: 'float64',
  [T.INT8]: 'int8',
  [T.UINT8]: 'uint8',
  [T.INT32]: 'int32',
  [T.INT64]: 'int64',
  [T.BOOL]: 'bool',
};

function ortTensor(ort: typeof Ort, x: In): Ort.Tensor {
  const type = ORT_TYPE[x.dtype];
  const data =
    type === 'int64'
      ? BigInt64Array.from(x.values.map(BigInt))
      : type === 'bool'
        ? Uint8Array.from(x.values)
        : type === 'float32'
          ? Float32Array.from(x.values)
          : type === 'float64'
            ? Float64Array.from(x.values)
            : type === 'int8'
              ? Int8Array.from(x.values)
              : type === 'uint8'
                ? Uint8Array.from(x.values)
                : Int32Array.from(x.values);
  return new ort.Tensor(type, data, x.dims);
}

/** The node folded by lowbit, and run by ORT; compares the first output. */
async function checkFold(
  op: string,
  inputs: (In | null)[],
  attrs: Record<string, Attr> = {},
  opset = 13,
): Promise<void> {
  const names = inputs.map((x, k) => (x ? `in${k}` : ''));
  const n = node(op, names, ['out'], attrs, 'n');
  const present = inputs.map((x, k) => [x, `in${k}`] as const).filter((p): p is readonly [In, string] => p[0] !== null);
  const graph = (initializers: boolean) =>
    onnx.ModelProto.encode(
      onnx.ModelProto.create({
        irVersion: 8,
        opsetImport: [{ domain: '', version: opset }],
        graph: {
          name: 'fold',
          node: [n],
          input: initializers ? [] : present.map(([x, name]) => valueInfo(name, x.dims, x.dtype)),
          initializer: initializers ? present.map(([x, name]) => tensor(name, x.dims, x.values, x.dtype)) : [],
          output: [{ name: 'out' }],
        },
      }),
    ).finish();
  const raw = decodeModel(graph(true));
  const rawNode: RawNode = raw.nodes[0];
  const folded = foldNode(
    rawNode,
    rawNode.inputs.map((name) => (name ? raw.initializers.get(name) : undefined)),
    opset,
  )![0];

  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(graph(false));
  const result = (await session.run(Object.fromEntries(present.map(([x, name]) => [name, ortTensor(ort, x)]))))['out'];
  await session.release();
  const label = `${op} ${JSON.stringify(attrs)}`;
  expect(folded.dims, `${label}: dims`).toEqual([...result.dims]);
  expect(ORT_TYPE[folded.dtype], `${label}: type`).toBe(result.type);
  const expected = Array.from(result.data as ArrayLike<number | bigint | boolean>, Number);
  if (result.type === 'float32' || result.type === 'float64') {
    folded.data.forEach((v, k) => {
      const e = expected[k];
      if (Number.isNaN(e)) expect(v, `${label} [${k}]`).toBeNaN();
      else if (!Number.isFinite(e)) expect(v, `${label} [${k}]`).toBe(e);
      else
        expect(Math.abs(v - e), `${label} [${k}]: ${v} vs ${e}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(e)));
    });
  } else {
    expect(Array.from(folded.data), label).toEqual(expected);
  }
}

const rng = rngFor(SEED, 'values');
const rand = (n: number, lo = -2, hi = 2) => Array.from(randomValues(rng, n, lo, hi));
const a23 = F([2, 3], [-1.5, 0, 2.25, -0.5, 3, 7]);
const ties = F([8], [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.4999, -3.7]);

describe.skipIf(!ORT_IN_PROCESS)('element-wise', () => {
  for (const op of ['Abs', 'Neg', 'Sign', 'Floor', 'Ceil', 'Relu', 'Round', 'Reciprocal', 'Sqrt', 'Exp', 'Identity']) {
    it(op, async () => {
      await checkFold(op, [op === 'Sqrt' ? F([2, 3], rand(6, 0, 4)) : a23]);
      if (op === 'Round' || op === 'Sign') await checkFold(op, [ties]);
    });
  }

  it('Add / Sub / Mul / Div / Pow with broadcasting', async () => {
    const x = F([2, 3], rand(6));
    const y = F([3], rand(3, 0.5, 2));
    for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
      await checkFold(op, [x, y]);
      await checkFold(op, [F([2, 1], rand(2)), F([1, 3], rand(3, 0.5, 2))]);
    }
    await checkFold('Pow', [F([2, 3], rand(6, 0, 3)), F([], [0.5])]);
    await checkFold('Pow', [x, F([], [2])]);
  });

  it('integer arithmetic: Div truncates, Add / Mul exact', async () => {
    const p = I64([6], [-7, 7, -8, 9, 0, 123456789012]);
    const q = I64([6], [2, -2, 3, 4, 5, 7]);
    for (const op of ['Add', 'Sub', 'Mul', 'Div']) await checkFold(op, [p, q]);
  });

  it('Max / Min with three inputs, Where, Clip (inputs, omitted bounds)', async () => {
    await checkFold('Max', [F([2, 3], rand(6)), F([3], rand(3)), F([], [0.1])]);
    await checkFold('Min', [F([2, 3], rand(6)), F([2, 1], rand(2))]);
    await checkFold('Where', [B([2, 3], [1, 0, 1, 0, 0, 1]), F([3], [1, 2, 3]), F([], [-1])]);
    await checkFold('Clip', [a23, F([], [-1]), F([], [1])]);
    await checkFold('Clip', [a23, null, F([], [2])]);
    await checkFold('Clip', [I64([4], [-5, 0, 3, 9]), I64([], [-1]), I64([], [4])]);
  });

  it('comparisons and logic', async () => {
    const x = F([2, 3], [0, -1, 2, 0, 3, -4]);
    const zero = F([], [0]);
    for (const op of ['GreaterOrEqual', 'Greater', 'Less', 'LessOrEqual', 'Equal']) await checkFold(op, [x, zero]);
    const p = B([4], [0, 0, 1, 1]);
    const q = B([4], [0, 1, 0, 1]);
    for (const op of ['And', 'Or', 'Xor']) await checkFold(op, [p, q]);
    await checkFold('Not', [p]);
  });

  it('Cast between float, integer and bool types', async () => {
    const x = F([6], [2.7, -2.7, 0, 1, -0.5, 100]);
    for (const to of [T.INT32, T.INT64, T.INT8, T.BOOL, T.DOUBLE]) await checkFold('Cast', [x], { to: i(to) });
    await checkFold('Cast', [F([3], [0, 100, 255])], { to: i(T.UINT8) });
    await checkFold('Cast', [I64([3], [-3, 0, 5])], { to: i(T.FLOAT) });
    await checkFold('Cast', [B([2], [1, 0])], { to: i(T.FLOAT) });
  });
});

describe.skipIf(!ORT_IN_PROCESS)('reductions', () => {
  const x = F([2, 3, 4], rand(24));
  for (const op of ['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceSum']) {
    it(`${op}: axes as attribute (opset 13) or input (opset 18), keepdims, all axes`, async () => {
      if (op === 'ReduceSum') {
        await checkFold(op, [x, I64([2], [1, 2])], { keepdims: i(1) });
        await checkFold(op, [x, I64([1], [-1])], { keepdims: i(0) });
      } else {
        await checkFold(op, [x], { axes: ints(1, 2), keepdims: i(1) });
        await checkFold(op, [x], { axes: ints(-1), keepdims: i(0) });
      }
      await checkFold(op, [x]);
      await checkFold(op, [x, I64([1], [0])], { keepdims: i(0) }, 18);
    });
  }
});

describe.skipIf(!ORT_IN_PROCESS)('shape and data movement', () => {
  const x = F([2, 3, 4], rand(24));
  it('Reshape (0 and -1), Flatten, Transpose, Unsqueeze, Squeeze', async () => {
    await checkFold('Reshape', [x, I64([3], [0, -1, 2])]);
    await checkFold('Flatten', [x], { axis: i(2) });
    await checkFold('Transpose', [x], { perm: ints(2, 0, 1) });
    await checkFold('Transpose', [x]);
    await checkFold('Unsqueeze', [x, I64([2], [0, -1])]);
    await checkFold('Unsqueeze', [x], { axes: ints(1) }, 11);
    await checkFold('Squeeze', [F([1, 3, 1], rand(3)), I64([1], [2])]);
    await checkFold('Squeeze', [F([1, 3, 1], rand(3))]);
  });

  it('Concat, Expand, Shape (start / end), Size, Gather, Slice, ConstantOfShape, Range', async () => {
    await checkFold('Concat', [F([2, 1], rand(2)), F([2, 3], rand(6))], { axis: i(-1) });
    await checkFold('Expand', [F([3, 1], rand(3)), I64([3], [2, 3, 4])]);
    await checkFold('Shape', [x]);
    await checkFold('Shape', [x], { start: i(1), end: i(-1) }, 15);
    await checkFold('Size', [x]);
    await checkFold('Gather', [x, I64([2], [-1, 0])], { axis: i(1) });
    await checkFold('Gather', [I64([4], [5, 6, 7, 8]), I64([], [2])]);
    await checkFold('Slice', [x, I64([2], [1, -1]), I64([2], [3, -100]), I64([2], [1, 2]), I64([2], [1, -2])]);
    await checkFold('Slice', [x, I64([1], [0]), I64([1], [1])]);
    await checkFold('Slice', [
      I64([3], [1, 2, 3]),
      I64([1], [1]),
      I64([1], [9223372036854775807n as unknown as number]),
    ]);
    await checkFold('ConstantOfShape', [I64([2], [2, 3])], { value: { t: tensor('', [1], [7], T.INT64) } });
    await checkFold('Range', [I64([], [2]), I64([], [11]), I64([], [3])]);
    await checkFold('Range', [F([], [1]), F([], [-1]), F([], [-0.5])]);
  });
});

describe.skipIf(!ORT_IN_PROCESS)('quantization', () => {
  it('QuantizeLinear / DequantizeLinear, per tensor and per axis', async () => {
    const x = F([2, 3], [-1, -0.0079, 0, 0.0235, 0.5, 2]);
    await checkFold('QuantizeLinear', [x, F([], [1 / 128]), { dtype: T.UINT8, dims: [], values: [128] }]);
    await checkFold('QuantizeLinear', [x, F([], [0.01])]);
    await checkFold(
      'QuantizeLinear',
      [x, F([3], [0.01, 0.02, 0.005]), { dtype: T.INT8, dims: [3], values: [0, 1, -2] }],
      { axis: i(1) },
    );
    await checkFold(
      'DequantizeLinear',
      [
        { dtype: T.INT8, dims: [2, 3], values: [-128, -1, 0, 1, 5, 127] },
        F([2], [0.5, 0.25]),
        { dtype: T.INT8, dims: [2], values: [0, 3] },
      ],
      { axis: i(0) },
    );
    await checkFold('DequantizeLinear', [
      { dtype: T.UINT8, dims: [3], values: [0, 128, 255] },
      F([], [0.1]),
      { dtype: T.UINT8, dims: [], values: [128] },
    ]);
  });
});

describe('initializer decoding', () => {
  it('every supported type from raw_data and from the typed fields', () => {
    const cases: [number, number[]][] = [
      [T.FLOAT, [1.5, -2, 0]],
      [T.DOUBLE, [1e-300, -2.5, 3]],
      [T.INT8, [-128, 0, 127]],
      [T.UINT8, [0, 128, 255]],
      [T.INT32, [-(2 ** 31), 0, 2 ** 31 - 1]],
      [T.INT64, [-(2 ** 52), 0, 2 ** 53 - 1]],
      [T.BOOL, [1, 0, 1]],
    ];
    for (const [dtype, values] of cases) {
      for (const typed of [false, true]) {
        const raw = decodeModel(
          model({
            nodes: [node('Relu', ['x'], ['y'])],
            inputs: [valueInfo('x', ['N', 3])],
            outputs: ['y'],
            initializers: [tensor('c', [3], values, dtype, typed)],
          }),
        );
        const c = raw.initializers.get('c')!;
        expect(c.dtype).toBe(dtype);
        expect(Array.from(c.data), `type ${dtype} typed ${typed}`).toEqual(values);
      }
    }
  });
});

describe('corrupted models', () => {
  it('random byte corruptions raise only ModelFormatError or UnsupportedError', () => {
    const r = rngFor(SEED, 'fuzz');
    const bytes = model({
      nodes: [
        node('Conv', ['x', 'w', 'b'], ['c'], { pads: ints(1, 1, 1, 1) }),
        node('BatchNormalization', ['c', 's', 'b', 'm', 'v'], ['n'], { epsilon: f(1e-5) }),
        node('Relu', ['n'], ['y']),
      ],
      inputs: [valueInfo('x', ['N', 2, 4, 4])],
      outputs: ['y'],
      initializers: [
        tensor('w', [3, 2, 3, 3], rand(54)),
        tensor('b', [3], rand(3)),
        tensor('s', [3], rand(3)),
        tensor('m', [3], rand(3)),
        tensor('v', [3], rand(3, 0.5, 1)),
      ],
    });
    expect(() => importOnnx(bytes)).not.toThrow();
    let failures = 0;
    for (let trial = 0; trial < 400; ++trial) {
      const b = Uint8Array.from(bytes);
      const edits = 1 + r.int(0, 3);
      for (let e = 0; e < edits; ++e) b[r.int(0, b.length - 1)] = r.int(0, 255);
      const cut = r.bool(0.2) ? r.int(1, b.length) : b.length;
      try {
        importOnnx(b.subarray(0, cut));
      } catch (error) {
        ++failures;
        if (!(error instanceof ModelFormatError || error instanceof UnsupportedError)) {
          throw new Error(`trial ${trial}: ${(error as Error).name}: ${(error as Error).message}`);
        }
      }
    }
    expect(failures).toBeGreaterThan(0);
  });
});
