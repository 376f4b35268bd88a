// The held-out Fashion-MNIST networks (models/heldout-*.onnx, made by tools/train_heldout.py): plain
// float CNNs lowbit did not shape (global average pool, residual adds, unfolded batch norms) that
// the converter must quantize without losing what PyTorch predicted.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { convertOnnxWithReport, loadModel, readLbds, toInput } from '../lib/index.js';
import { argmax } from '../lib/data.js';

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

  it.each([8, 4] as const)('converts at %i bits and keeps close to PyTorch on the slice', async (bits) => {
    const { bytes } = await convertOnnxWithReport(onnx, { bits, calibration });
    const logits = loadModel(bytes).runSync(input).logits;
    expect(logits.shape).toEqual([count, 10]);
    let agree = 0,
      correct = 0;
    for (let i = 0; i < count; i++) {
      const p = argmax(logits.data, i * 10, 10);
      if (p === torch.slice_predictions[i]) agree++;
      if (p === slice.labels[i]) correct++;
    }
    const torchCorrect = torch.slice_predictions.slice(0, count).filter((p, i) => p === slice.labels[i]).length;
    // Measured on the seed-0 models: W8A8 agrees on 99.6% (vgg) / 99.1% (resnet) and loses 0.2 / 0.6
    // points; W4A8 agrees on 96.6% / 94.8%. W8A8 must hold the float model's accuracy;
    // W4A8 is what better rounding should improve, so only a floor against gross breakage.
    if (bits === 8) {
      expect(agree / count).toBeGreaterThanOrEqual(0.97);
      expect((torchCorrect - correct) / count).toBeLessThanOrEqual(0.01);
    } else {
      expect(agree / count).toBeGreaterThanOrEqual(0.85);
    }
  });
});
