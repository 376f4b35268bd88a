// The Model API on small hand-written graphs: metadata, sync and async runs, batching,
// concurrency, the memory plan, and bad arguments.
import { describe, expect, it } from 'vitest';
import { loadModel, ModelFormatError, ShapeError, Tensor } from '../lib/index.js';
import { binaryModel, integerModel } from './helpers/tiny-models.js';
import { fileSeed, rngFor } from './helpers/rng.js';

const seed = fileSeed('model-api');
const samples = (n: number, perSample: number, label: string) => {
  const r = rngFor(seed, label);
  return Float32Array.from({ length: n * perSample }, () => r.float() * 2 - 0.5);
};

describe.each([
  ['integer', integerModel, 'image', 'probs', [2, 6, 6], [4]],
  ['binary', binaryModel, 'x', 'y', [3, 5, 5], [3]],
] as const)('%s model', (_kind, make, inputName, outputName, inShape, outShape) => {
  const per = inShape.reduce((a, b) => a * b, 1);

  it('reports its inputs and outputs', () => {
    const model = loadModel(make());
    expect(model.inputs).toEqual([
      { name: inputName, dtype: 'f32', shape: [-1, ...inShape], sampleShape: [...inShape] },
    ]);
    expect(model.outputs).toEqual([
      { name: outputName, dtype: 'f32', shape: [-1, ...outShape], sampleShape: [...outShape] },
    ]);
    expect(model.bytes).toBe(make().length);
  });

  it('gives every sample the same result alone and in batches of any size, sync and async', async () => {
    const model = loadModel(make());
    const x = samples(7, per, 'batch');
    const all = model.runSync(x)[outputName];
    expect(all.shape).toEqual([7, ...outShape]);
    const outPer = outShape.reduce((a, b) => a * b, 1);
    for (let i = 0; i < 7; ++i) {
      const one = model.runSync({ [inputName]: x.slice(i * per, (i + 1) * per) })[outputName];
      expect(one.data).toEqual(all.data.slice(i * outPer, (i + 1) * outPer));
    }
    const asTensor = await model.run(new Tensor('f32', [7, ...inShape], x));
    expect(asTensor[outputName].data).toEqual(all.data);
  });

  it('runs concurrently on one model with identical results, and the inputs may change after run() returns', async () => {
    const model = loadModel(make());
    const inputs = Array.from({ length: 24 }, (_, i) => samples(1 + (i % 5), per, `concurrent${i}`));
    const expected = inputs.map((x) => model.runSync(x)[outputName].data);
    const pending = inputs.map((x) => model.run(x));
    for (const x of inputs) x.fill(Number.NaN); // copied before run() returned
    const results = await Promise.all(pending);
    results.forEach((r, i) => expect(r[outputName].data).toEqual(expected[i]));
  });

  it('stacks an input given as a list of arrays along the batch, sync and async, natively', async () => {
    const model = loadModel(make());
    const x = samples(9, per, 'parts');
    const expected = model.runSync(x)[outputName].data;
    const cuts = [0, 1, 4, 9]; // parts of 1, 3 and 5 samples, one of them a tensor
    const parts = [
      x.slice(cuts[0] * per, cuts[1] * per),
      new Tensor('f32', [3, ...inShape], x.slice(cuts[1] * per, cuts[2] * per)),
      x.subarray(cuts[2] * per, cuts[3] * per), // a view into a larger buffer
    ];
    expect(model.runSync(parts)[outputName].data).toEqual(expected);
    expect(model.runSync({ [inputName]: parts })[outputName].data).toEqual(expected);
    const pending = Array.from({ length: 8 }, () => model.run(parts));
    for (const r of await Promise.all(pending)) expect(r[outputName].data).toEqual(expected);

    expect(() => model.runSync([])).toThrow(/inputs\.\w+: expected at least one array, got \[\]/);
    expect(() => model.runSync([x.slice(0, per), new Float32Array(per + 1)])).toThrow(
      new RegExp(`inputs\\.${inputName}\\[1\\]: expected a multiple of ${per} values`),
    );
    expect(() => model.runSync([x.slice(0, per), new Float64Array(per) as unknown as Float32Array])).toThrow(
      /\[1\]: expected a Float32Array or an f32 Tensor/,
    );
    const detached = new Float32Array(per);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    await expect(model.run([x.slice(0, per), detached])).rejects.toThrow(/\[1\]/);
  });

  it('plans activation memory once per batch size, sharing buffers between tensors', () => {
    const model = loadModel(make());
    const p1 = model.memoryPlan(1),
      p64 = model.memoryPlan(64);
    expect(p1.arenaBytes).toBeGreaterThan(0);
    expect(p1.arenaBytes).toBeLessThan(p1.tensorBytes);
    expect(p64.arenaBytes).toBeGreaterThanOrEqual(p1.arenaBytes * 32);
  });

  it('rejects bad inputs with named errors', async () => {
    const model = loadModel(make());
    expect(() => model.runSync(new Float32Array(per + 1))).toThrow(ShapeError);
    expect(() => model.runSync(new Float32Array(0))).toThrow(ShapeError);
    expect(() => model.runSync(new Float64Array(per) as unknown as Float32Array)).toThrow(TypeError);
    expect(() => model.runSync({ nope: new Float32Array(per) })).toThrow(/unknown input 'nope'/);
    expect(() => model.runSync({})).toThrow(TypeError);
    expect(() => model.runSync(new Tensor('f32', [1, per], new Float32Array(per)))).toThrow(ShapeError);
    expect(() => model.runSync(new Tensor('s8', [1, ...inShape]) as unknown as Tensor<'f32'>)).toThrow(TypeError);
    await expect(model.run(new Float32Array(per - 1))).rejects.toThrow(ShapeError);
    expect(() => model.memoryPlan(0)).toThrow(RangeError);
    const detached = new Float32Array(per);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    expect(() => model.runSync(detached)).toThrow();
  });

  it('cannot be used after dispose(), while a run in flight still completes', async () => {
    const model = loadModel(make());
    const x = samples(3, per, 'dispose');
    const expected = model.runSync(x)[outputName].data;
    const pending = model.run(x);
    model.dispose();
    expect((await pending)[outputName].data).toEqual(expected);
    expect(() => model.runSync(x)).toThrow(/disposed/);
    model.dispose(); // idempotent
  });
});

describe('loadModel', () => {
  it('rejects what is not a model', () => {
    expect(() => loadModel(new Uint8Array(10))).toThrow(ModelFormatError);
    expect(() => loadModel(42 as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => loadModel('/nonexistent/model.lowbit')).toThrow(/ENOENT/);
  });
});
