// The shipped Fashion-MNIST models (models/, made by tools/train_fashion.py and
// scripts/convert-models.sh): what lowbit computes against what PyTorch computed, across ISAs,
// MST against dense, and the accuracy of every model on the full test set (Debian's
// dataset-fashion-mnist, which CI installs).
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel, readFashionMnist, readLbds, setIsa, supportedIsas, toInput, type Model } from '../lib/index.js';
import { argmax } from '../lib/data.js';
import { withJson } from '../lib/model/format.js';
import { runOrt } from './helpers/onnx-builder.js';

const models = new URL('../models/', import.meta.url).pathname;
const slice = readLbds(`${models}fashion-mnist-test-1000.lbds`);
const sliceInput = toInput(slice);
const torch = (name: string) =>
  JSON.parse(readFileSync(`${models}fashion-${name}.torch.json`, 'utf8')) as {
    slice_predictions: number[];
    slice_logits: number[][];
    slice_margins: number[];
    test_accuracy: number;
  };
const lowbitFiles = ['binary', 'binary-mst', 'w8a8', 'w4a8', 'mixed'];
const load = (name: string) => loadModel(`${models}fashion-${name}.lowbit`);

function predictions(model: Model, input: Float32Array): number[] {
  const logits = model.runSync(input).logits;
  const classes = logits.shape[1];
  return Array.from({ length: logits.shape[0] }, (_, i) => argmax(logits.data, i * classes, classes));
}

describe.each(['binary', 'binary-mst'])('the %s model against PyTorch', (name) => {
  it('predicts exactly what PyTorch predicted on the shipped slice, up to ties at float rounding', () => {
    const reference = torch(name);
    const model = load(name);
    const logits = model.runSync(sliceInput).logits.data;
    const predicted = predictions(model, sliceInput);
    predicted.forEach((p, i) => {
      if (p !== reference.slice_predictions[i]) expect(reference.slice_margins[i], `image ${i}`).toBeLessThan(1e-3);
    });
    // The logits themselves: integer layers are exact, only the float epilogues round.
    let worst = 0;
    reference.slice_logits.forEach((row, i) =>
      row.forEach((v, c) => (worst = Math.max(worst, Math.abs(v - logits[i * 10 + c]) / (1 + Math.abs(v))))),
    );
    expect(worst).toBeLessThan(1e-3);
  });
});

describe('integer and binary models on every ISA', () => {
  it.each(lowbitFiles)('%s: identical outputs on every supported ISA', (name) => {
    const model = load(name);
    const isas = supportedIsas();
    const results = isas.map((isa) => {
      setIsa(isa);
      return model.runSync(sliceInput.subarray(0, 200 * 784)).logits.data;
    });
    setIsa(isas[isas.length - 1]);
    for (const r of results.slice(1)) expect(r).toEqual(results[0]);
  });
});

describe('MST', () => {
  it('the MST model, forced onto its MST schedules, gives exactly the outputs of its dense twin', () => {
    // The file's layers use the 'auto' policy (these small layers run dense where the cost model
    // predicts no gain); 'always' makes every binary layer take the MST path.
    const file = readFileSync(`${models}fashion-binary-mst.lowbit`);
    let schedules = 0;
    const forced = withJson(file, (json) => {
      for (const node of (json as { nodes: Record<string, unknown>[] }).nodes)
        if (node.mst) {
          node.mst_policy = 'always';
          ++schedules;
        }
    });
    expect(schedules).toBe(3);
    const mst = loadModel(forced);
    const dense = loadModel(
      withJson(file, (json) => {
        for (const node of (json as { nodes: Record<string, unknown>[] }).nodes) delete node.mst;
      }),
    );
    expect(mst.runSync(sliceInput).logits.data).toEqual(dense.runSync(sliceInput).logits.data);
  });
});

const fullSet = existsSync('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz');
describe.skipIf(!fullSet && !process.env.CI)('accuracy on the full 10,000-image test set', () => {
  let input: Float32Array, labels: Uint8Array;
  const accuracy = (name: string) => {
    const p = predictions(load(name), input);
    return p.filter((v, i) => v === labels[i]).length / labels.length;
  };
  let float: number;
  beforeAll(async () => {
    const ds = readFashionMnist();
    input = toInput(ds);
    labels = ds.labels;
    const onnx = readFileSync(`${models}fashion-float.onnx`);
    const { logits } = await runOrt(onnx, { input: { dims: [ds.count, 1, 28, 28], data: input } });
    float =
      Array.from({ length: ds.count }, (_, i) => argmax(logits, i * 10, 10)).filter((v, i) => v === labels[i]).length /
      ds.count;
  });

  it('W8A8 is within 0.5 points of the float model in onnxruntime', () => {
    expect(Math.abs(accuracy('w8a8') - float)).toBeLessThanOrEqual(0.005);
  });
  it.each(['w4a8', 'mixed'])('%s is within 2 points of the float model', (name) => {
    expect(float - accuracy(name)).toBeLessThanOrEqual(0.02);
  });
  it.each(['binary', 'binary-mst'])("%s has PyTorch's accuracy", (name) => {
    expect(Math.abs(accuracy(name) - torch(name).test_accuracy)).toBeLessThanOrEqual(0.0005);
  });
});
