/**
 * The float evaluator's native conv and dense (lowbit/ptq.h reference_conv) against their
 * JavaScript references in lib/onnx/ops/linear.ts, bit for bit, on every ISA: randomized shapes
 * with groups and depthwise, stride 2, padding, dilation, 1x1 images, odd channel counts and
 * batches above 1; values of mixed magnitudes with zeros, -0 and subnormals. Also the binding's
 * argument checks.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { isa, setIsa, supportedIsas } from '../lib/index.js';
import { native } from '../lib/native.js';
import type { FloatNode } from '../lib/onnx/ir.js';
import { conv, convReference, dense, denseReference } from '../lib/onnx/ops/linear.js';
import { fileSeed, rngFor, type Rng } from './helpers/rng.js';

const SEED = fileSeed('reference-conv.test.ts');

type ConvNode = Extract<FloatNode, { op: 'conv' }>;

/** Values that stress the float64 sums: wide magnitudes, exact zeros of both signs, subnormals. */
function values(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => {
    const r = rng.float();
    if (r < 0.05) return 0;
    if (r < 0.08) return -0;
    if (r < 0.1) return (rng.bool() ? 1 : -1) * rng.float() * 1e-40;
    return (2 * rng.float() - 1) * 2 ** rng.int(-20, 20);
  });
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function randomConv(rng: Rng): { node: ConvNode; x: { dims: number[]; data: Float32Array }; outDims: number[] } {
  const groups = rng.pick([1, 1, 1, 2, 3, 0]); // 0: depthwise
  const cg = groups === 0 ? 1 : rng.int(1, 9);
  const g = groups === 0 ? rng.int(1, 12) : groups;
  const og = groups === 0 ? rng.pick([1, 1, 2]) : rng.int(1, 11);
  const [kh, kw] = [rng.int(1, 4), rng.int(1, 4)];
  const [sh, sw] = [rng.pick([1, 1, 2, 3]), rng.pick([1, 1, 2])];
  const [dh, dw] = [rng.pick([1, 1, 2]), rng.pick([1, 1, 3])];
  const pads: [number, number, number, number] = [rng.int(0, 2), rng.int(0, 2), rng.int(0, 2), rng.int(0, 2)];
  const tiny = rng.bool(0.15);
  const h = Math.max(tiny ? 1 : rng.int(1, 19), dh * (kh - 1) + 1 - pads[0] - pads[2]);
  const w = Math.max(tiny ? 1 : rng.int(1, 23), dw * (kw - 1) + 1 - pads[1] - pads[3]);
  const n = rng.int(1, 3);
  const c = cg * g;
  const oc = og * g;
  const oh = Math.floor((h + pads[0] + pads[2] - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + pads[1] + pads[3] - dw * (kw - 1) - 1) / sw) + 1;
  const wdims = [oc, cg, kh, kw];
  const node: ConvNode = {
    op: 'conv',
    name: 'conv',
    input: 'x',
    output: 'y',
    weight: { dims: wdims, data: values(rng, oc * cg * kh * kw) },
    bias: rng.bool(0.7) ? { dims: [oc], data: values(rng, oc) } : null,
    attrs: { kernel: [kh, kw], stride: [sh, sw], dilation: [dh, dw], pads, groups: g },
  };
  return { node, x: { dims: [n, c, h, w], data: values(rng, n * c * h * w) }, outDims: [n, oc, oh, ow] };
}

describe('reference conv: native against the JavaScript loop', () => {
  const initial = isa();
  afterAll(() => setIsa(initial));

  for (const target of supportedIsas()) {
    it(`conv, 300 random shapes, bit for bit (${target})`, () => {
      setIsa(target);
      const rng = rngFor(SEED, `conv ${target}`);
      for (let t = 0; t < 300; ++t) {
        const { node, x, outDims } = randomConv(rng);
        const want = convReference(node, x, outDims);
        const got = conv(node, x);
        const label = `x [${x.dims}] w [${node.weight.dims}] ${JSON.stringify(node.attrs)} bias ${node.bias !== null}`;
        expect(got.length, label).toBe(want.length);
        expect(bits(got), label).toEqual(bits(want));
      }
    });

    it(`dense, random shapes, bit for bit (${target})`, () => {
      setIsa(target);
      const rng = rngFor(SEED, `dense ${target}`);
      for (let t = 0; t < 100; ++t) {
        const [n, k, o] = [rng.int(1, 5), rng.int(1, 300), rng.int(1, 40)];
        const node: Extract<FloatNode, { op: 'dense' }> = {
          op: 'dense',
          name: 'fc',
          input: 'x',
          output: 'y',
          weight: { dims: [o, k], data: values(rng, o * k) },
          bias: rng.bool() ? { dims: [o], data: values(rng, o) } : null,
        };
        const x = { dims: [n, k], data: values(rng, n * k) };
        expect(bits(dense(node, x)), `[${n}, ${k}] x [${o}, ${k}]`).toEqual(bits(denseReference(node, x)));
      }
    });
  }

  it('the binding checks its arguments', () => {
    const x = new Float32Array(2 * 4 * 5 * 5);
    const w = new Float32Array(6 * 2 * 3 * 3);
    const call = (over: Partial<Record<string, unknown>>) => () => {
      const a = {
        x,
        xd: [2, 4, 5, 5],
        w,
        wd: [6, 2, 3, 3],
        bias: null,
        s: [1, 1],
        d: [1, 1],
        p: [0, 0, 0, 0],
        g: 2,
        ...over,
      };
      return native.referenceConv(
        a.x as Float32Array,
        a.xd as number[],
        a.w as Float32Array,
        a.wd as number[],
        a.bias as Float32Array | null,
        a.s as number[],
        a.d as number[],
        a.p as number[],
        a.g as number,
      );
    };
    expect(call({})().length).toBe(2 * 6 * 3 * 3);
    expect(call({ x: new Float32Array(10) })).toThrow(/x: expected 200 values/);
    expect(call({ w: new Float64Array(108) })).toThrow(/weight/);
    expect(call({ bias: new Float32Array(5) })).toThrow(/bias: expected 6 values/);
    expect(call({ g: 3 })).toThrow(/groups/);
    expect(call({ g: 0 })).toThrow(/groups/);
    expect(call({ wd: [6, 2, 7, 3] })).toThrow(/window/);
    expect(call({ s: [0, 1] })).toThrow(/strides/);
    expect(call({ xd: [2, 4, 5] })).toThrow(/xDims/);
    expect(call({ xd: [2 ** 40, 4, 2 ** 20, 5] })).toThrow(/overflow/);
  });
});
