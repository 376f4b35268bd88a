// The held-out Fashion-MNIST networks (models/heldout-*.onnx, made by tools/train_heldout.py): plain
// float CNNs lowbit did not shape (global average pool, residual adds, unfolded batch norms) that
// the converter must quantize without losing what PyTorch predicted.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { convertOnnxWithReport, loadModel, readLbds, toInput, type ConvertOptions } from '../lib/index.js';
import { argmax } from '../lib/data.js';
import { runOrt } from './helpers/onnx-builder.js';

const models = new URL('../models/', import.meta.url).pathname;
const slice = readLbds(`${models}fashion-mnist-test-1000.lbds`);
// Calibrate on the slice's last 64 images and compare on its first 936, which calibration never saw.
const CALIB = 64;
const calibration = toInput(slice, slice.count - CALIB, CALIB);
const count = slice.count - CALIB;
const input = toInput(slice, 0, count);

describe.each(['vgg', 'resnet'])('heldout-%s', (name) => {
  const torch = JSON.parse(readFileSync(`${models}heldout-${name}.torch.json`, 'utf8')) as {
    slice_predictions: number[];
  };
  const onnx = readFileSync(`${models}heldout-${name}.onnx`);
  /** Correct predictions of the 936 images, and agreement with PyTorch's. */
  const score = (logits: Float32Array) => {
    let agree = 0,
      correct = 0;
    for (let i = 0; i < count; i++) {
      const p = argmax(logits, i * 10, 10);
      if (p === torch.slice_predictions[i]) agree++;
      if (p === slice.labels[i]) correct++;
    }
    return { agree: agree / count, accuracy: correct / count };
  };
  const convert = async (options: ConvertOptions) => {
    const { bytes, report } = await convertOnnxWithReport(onnx, { calibration, ...options });
    const logits = loadModel(bytes).runSync(input).logits;
    expect(logits.shape).toEqual([count, 10]);
    return { ...score(logits.data), bytes, report };
  };
  // The float model on the same images (onnxruntime-node).
  let float: number;
  beforeAll(async () => {
    const { logits } = await runOrt(onnx, { input: { dims: [count, 1, 28, 28], data: input } });
    float = score(logits).accuracy;
    expect(float).toBeGreaterThan(0.85);
  });

  // Measured (seed-0 models, 64 calibration images, the other 936; float 89.6% vgg, 91.9% resnet):
  // W8A8 -0.1 / -0.3 points (-0.2 / -0.6 with round-to-nearest), W4A8 +0.1 / -0.1 points (-0.2 /
  // -3.1 with round-to-nearest; output error 0.013 / 0.020 against 0.094 / 0.114). The issue's
  // targets: 0.5 and 1.5 points.
  // bits 7: reduced-range INT8 (weights in [-64, 64]) in the inner layers, held to the W8A8 target.
  it.each([
    [8, 0.005],
    [7, 0.005],
    [4, 0.015],
  ] as const)('W%iA8 keeps the float accuracy within %f', async (bits, loss) => {
    const r = await convert({ bits, reducedRange: 'off' });
    expect(float - r.accuracy).toBeLessThanOrEqual(loss);
    expect(r.agree).toBeGreaterThanOrEqual(bits === 4 ? 0.96 : 0.98);
    const kinds = r.report.layers.map((l) => l.kind);
    expect(kinds.slice(1, -1).every((k) => k === `W${bits}A8`)).toBe(true);
    expect([kinds[0], kinds[kinds.length - 1]]).toEqual(['W8A8', 'W8A8']);
  });

  it('GPTQ rounding halves the W4A8 output error of round-to-nearest', async () => {
    const gptq = await convert({ bits: 4 });
    const nearest = await convert({ bits: 4, rounding: 'nearest' });
    expect(gptq.report.outputError.logits).toBeLessThan(0.5 * nearest.report.outputError.logits);
  });

  it('mixed bits under a budget between the W4A8 and W8A8 sizes rank the layers by sensitivity', async () => {
    const [w8, w4] = [(await convert({ bits: 8 })).bytes.length, (await convert({ bits: 4 })).bytes.length];
    const r = await convert({ bits: 'mixed', sizeBudget: Math.round((w8 + w4) / 2) });
    expect(r.bytes.length).toBeLessThanOrEqual((w8 + w4) / 2);
    expect(float - r.accuracy).toBeLessThanOrEqual(0.015);
    const inner = r.report.layers.slice(1, -1);
    expect(inner.every((l) => typeof l.sensitivity === 'number' && l.sensitivity > 0)).toBe(true);
    expect(inner.some((l) => l.kind === 'W4A8') && inner.some((l) => l.kind !== 'W4A8')).toBe(true);
  });

  // reducedRange 'auto' (the default) puts the inner layers whose 7-bit weights cost nothing
  // measurable at W7A8.
  it("8 bits: reducedRange 'auto' moves the inner layers that cost nothing to 7 bits, reporting each one's cost", async () => {
    const off = await convert({ bits: 8, reducedRange: 'off' });
    const auto = await convert({ bits: 8 });
    const [first, last] = [auto.report.layers[0], auto.report.layers[auto.report.layers.length - 1]];
    expect([first.kind, last.kind, first.reducedRangeCost, last.reducedRangeCost]).toEqual([
      'W8A8',
      'W8A8',
      undefined,
      undefined,
    ]);
    const inner = auto.report.layers.slice(1, -1);
    expect(inner.every((l) => typeof l.reducedRangeCost === 'number')).toBe(true);
    // A layer whose 7-bit weights lowered the output error is always taken, one that is left at
    // full range raised it. Measured on these 64 calibration images: ResNet 3 of its 5 inner layers
    // at 7 bits, VGG none of its 2.
    for (const l of inner) expect(l.kind).toBe(l.reducedRangeCost! <= 0 ? 'W7A8' : l.kind);
    for (const l of inner) if (l.kind === 'W8A8') expect(l.reducedRangeCost).toBeGreaterThan(0);
    if (name === 'resnet') expect(inner.some((l) => l.kind === 'W7A8')).toBe(true);
    // No accuracy cost: the output error within 5% of full range's on the measuring samples, the
    // same accuracy within 0.3 points on the held-out images.
    expect(auto.report.outputError.logits).toBeLessThanOrEqual(1.05 * off.report.outputError.logits);
    expect(Math.abs(auto.accuracy - off.accuracy)).toBeLessThanOrEqual(0.003);
    expect(float - auto.accuracy).toBeLessThanOrEqual(0.005);
    expect(loadModel(auto.bytes).metadata.options).toMatchObject({ bits: 8, reducedRange: 'auto' });
  });
});
