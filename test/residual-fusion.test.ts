// The load-time fusion of a qconv2d with the qadd that is its output's only reader (native
// graph/fusion.h): on a converted residual network, the fused model's outputs equal the unfused
// one's (loadModel's fuse: false) bit for bit on every ISA, at 8 and 4 bits, and the fusion happened where the
// graph allows it and nowhere else (the 8-bit tensors between conv and add are gone from the plan).
// ResNet-18 itself: test/int-zoo.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { convertOnnx, loadModel, type Model } from '../lib/index.js';
import { expectSameOutputs, loadBoth } from './helpers/fusion.js';
import { ints, model, node, randomTensor, randomValues, valueInfo } from './helpers/onnx-builder.js';
import { fileSeed, rngFor, type Rng } from './helpers/rng.js';

const SEED = fileSeed('residual-fusion');

/**
 * input [N, 3, 9, 9] -> Conv 3->12 + Relu (r0)
 * identity block: Conv + Relu + Conv (c2), Add(c2, r0) + Relu                      -> fuses into c2
 * downsample block: Conv s2 + Relu + Conv (c4), then the shortcut Conv 1x1 s2 (d), Add(c4, d) + Relu
 *   -> fuses into d (c4 runs before d's input is ready... d is the later writer)
 * Conv 1x1 (c5) read by Add(c5, r2) and by Concat: two readers, no fusion
 * one channel: Conv 20->1 (c6), Conv 20->1 k3 (c7), Add(c6, c7)                   -> fuses into c7
 */
function resnetLike(rng: Rng): Uint8Array {
  const w = (name: string, dims: number[], scale: number) => randomTensor(rng, name, dims, -scale, scale);
  const pad1 = { pads: ints(1, 1, 1, 1) };
  return model({
    nodes: [
      node('Conv', ['x', 'w0', 'b0'], ['c0'], pad1),
      node('Relu', ['c0'], ['r0']),
      node('Conv', ['r0', 'w1', 'b1'], ['c1'], pad1),
      node('Relu', ['c1'], ['r1a']),
      node('Conv', ['r1a', 'w2', 'b2'], ['c2'], pad1),
      node('Add', ['c2', 'r0'], ['a1']),
      node('Relu', ['a1'], ['r1']),
      node('Conv', ['r1', 'w3', 'b3'], ['c3'], { ...pad1, strides: ints(2, 2) }),
      node('Relu', ['c3'], ['r3']),
      node('Conv', ['r3', 'w4', 'b4'], ['c4'], pad1),
      node('Conv', ['r1', 'wd', 'bd'], ['d'], { strides: ints(2, 2) }),
      node('Add', ['c4', 'd'], ['a2']),
      node('Relu', ['a2'], ['r2']),
      node('Conv', ['r2', 'w5', 'b5'], ['c5']),
      node('Add', ['c5', 'r2'], ['a3']),
      node('Concat', ['c5', 'a3'], ['cat'], { axis: { i: 1 } }),
      node('GlobalAveragePool', ['cat'], ['y1']),
      node('Conv', ['r2', 'w6', 'b6'], ['c6']),
      node('Conv', ['r2', 'w7', 'b7'], ['c7'], pad1),
      node('Add', ['c6', 'c7'], ['y2']),
    ],
    inputs: [valueInfo('x', ['N', 3, 9, 9])],
    outputs: ['y1', 'y2'],
    initializers: [
      w('w0', [12, 3, 3, 3], 0.5),
      w('b0', [12], 0.1),
      w('w1', [12, 12, 3, 3], 0.2),
      w('b1', [12], 0.1),
      w('w2', [12, 12, 3, 3], 0.2),
      w('b2', [12], 0.1),
      w('w3', [20, 12, 3, 3], 0.2),
      w('b3', [20], 0.1),
      w('w4', [20, 20, 3, 3], 0.2),
      w('b4', [20], 0.1),
      w('wd', [20, 12, 1, 1], 0.4),
      w('bd', [20], 0.1),
      w('w5', [20, 20, 1, 1], 0.3),
      w('b5', [20], 0.1),
      w('w6', [1, 20, 1, 1], 0.3),
      w('b6', [1], 0.1),
      w('w7', [1, 20, 3, 3], 0.2),
      w('b7', [1], 0.1),
    ],
  });
}

describe('a qconv2d fused with its residual qadd', () => {
  const models: Model[] = [];
  afterEach(() => {
    for (const m of models.splice(0)) m.dispose();
  });

  it.each([8, 4] as const)('gives the unfused outputs bit for bit at %d bits, fused where allowed', async (bits) => {
    const rng = rngFor(SEED, `net${bits}`);
    const onnx = resnetLike(rng);
    const calibration = randomValues(rng, 16 * 243, 0, 1);
    const bytes = await convertOnnx(onnx, { calibration, bits, maxOutputError: 10 });
    const { plain, fused } = loadBoth(bytes);
    models.push(plain, fused);
    // Odd batch sizes: the fused rows cross sample boundaries like the unfused add does.
    for (const batch of [1, 3]) expectSameOutputs(plain, fused, randomValues(rng, batch * 243, -0.5, 1.5));
    // The three fused convs' 8-bit outputs (9x9x12, 5x5x20, 5x5x1 bytes, each rounded up to the
    // arena's 64-byte alignment) are no longer planned; the conv read twice keeps its output.
    const align = (n: number) => Math.ceil(n / 64) * 64;
    expect(plain.memoryPlan(1).tensorBytes - fused.memoryPlan(1).tensorBytes).toBe(
      align(9 * 9 * 12) + align(5 * 5 * 20) + align(5 * 5),
    );
  });

  it('fuse is a boolean option of loadModel, false by default under LOWBIT_FUSE=0', async () => {
    const rng = rngFor(SEED, 'options');
    const bytes = await convertOnnx(resnetLike(rng), { calibration: randomValues(rng, 4 * 243, 0, 1), bits: 8 });
    const plan = (m: Model) => {
      models.push(m);
      return m.memoryPlan(1).tensorBytes;
    };
    const fused = plan(loadModel(bytes));
    expect(plan(loadModel(bytes, { fuse: false }))).toBeGreaterThan(fused);
    process.env.LOWBIT_FUSE = '0';
    try {
      expect(plan(loadModel(bytes))).toBe(plan(loadModel(bytes, { fuse: false })));
      expect(plan(loadModel(bytes, { fuse: true }))).toBe(fused);
    } finally {
      delete process.env.LOWBIT_FUSE;
    }
    expect(() => loadModel(bytes, { fuse: 'no' } as never)).toThrow(/^fuse: expected a boolean, got string/);
    expect(() => loadModel(bytes, { fusion: false } as never)).toThrow(
      /unknown option 'fusion' \(expected fuse, maxActivationBytes, maxPooledBytes\)/,
    );
    expect(() => loadModel(bytes, null as never)).toThrow(TypeError);
  });
});
