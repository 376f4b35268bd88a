/**
 * Running models for the command line: the addon-backed engine loaded on first use, top-1
 * accuracy over a dataset, and onnxruntime-node as the float reference.
 */
import { argmax, toInput, type Dataset } from '../data.js';
import { ShapeError } from '../errors.js';
import type { Model } from '../model/model.js';

/**
 * The addon-backed modules (models, ISA and threads), loaded on first use: help and usage errors
 * work without the compiled addon, and a missing addon is reported like any other error.
 */
export async function engine(): Promise<typeof import('../model/model.js') & typeof import('../runtime.js')> {
  const [model, runtime] = await Promise.all([import('../model/model.js'), import('../runtime.js')]);
  return { ...model, ...runtime };
}

/** Loads the model at `path`, runs `fn` on it and disposes of it. */
export async function withModel<T>(path: string, fn: (model: Model) => Promise<T>): Promise<T> {
  const { loadModel } = await engine();
  const model = loadModel(path);
  try {
    return await fn(model);
  } finally {
    model.dispose();
  }
}

/** Values per sample of the model's one input. @throws ShapeError for a model with several inputs */
export function perSample(model: Model): number {
  if (model.inputs.length !== 1)
    throw new ShapeError(
      `the model has ${model.inputs.length} inputs (${model.inputs.map((i) => i.name).join(', ')}); the command line runs single-input models`,
    );
  return model.inputs[0].sampleShape.reduce((a, b) => a * b, 1);
}

/** @throws ShapeError when the images of `ds` (named `what`) are not the model's input samples */
export function checkDatasetFits(model: Model, ds: Dataset, what: string): void {
  const size = ds.channels * ds.height * ds.width;
  if (size !== perSample(model))
    throw new ShapeError(
      `${what}: images of ${ds.channels}x${ds.height}x${ds.width} do not fit the model's input ${model.inputs[0].name} [N, ${model.inputs[0].sampleShape.join(', ')}]`,
    );
}

// ---- accuracy ----------------------------------------------------------------------------------

/** Runs a batch of whole samples and returns the first output's values. */
export type Predict = (input: Float32Array, batch: number) => Float32Array | Promise<Float32Array>;

export function lowbitPredict(model: Model): Predict {
  const output = model.outputs[0].name;
  return (input) => model.runSync(input)[output].data;
}

export interface Accuracy {
  correct: number;
  total: number;
  /** wall time of each full batch, ms */
  batchMs: number[];
  /** wall time of all batches, ms */
  totalMs: number;
}

/**
 * Top-1 accuracy of `predict` on images [0, count) of `ds`, in batches.
 * @param progress called after each batch with the images done
 */
export async function evaluateAccuracy(
  predict: Predict,
  ds: Dataset,
  options: { count?: number; batch?: number; progress?: (done: number) => void } = {},
): Promise<Accuracy> {
  const count = Math.min(options.count ?? ds.count, ds.count);
  const batch = options.batch ?? 64;
  let correct = 0;
  let totalMs = 0;
  const batchMs: number[] = [];
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    const input = toInput(ds, start, n);
    const t0 = performance.now();
    const out = await predict(input, n);
    const ms = performance.now() - t0;
    totalMs += ms;
    if (n === batch) batchMs.push(ms);
    const classes = out.length / n;
    for (let i = 0; i < n; ++i) if (argmax(out, i * classes, classes) === ds.labels[start + i]) ++correct;
    options.progress?.(start + n);
  }
  return { correct, total: count, batchMs, totalMs };
}

// ---- onnxruntime-node ------------------------------------------------------------------------

export type Ort = typeof import('onnxruntime-node');
export type OrtSession = import('onnxruntime-node').InferenceSession;

/** onnxruntime-node, loaded on demand: it is a development dependency of lowbit, not a runtime one. */
export async function loadOrt(): Promise<Ort> {
  try {
    const mod = (await import('onnxruntime-node')) as Ort & { default?: Ort };
    return mod.InferenceSession ? mod : mod.default!;
  } catch (error) {
    throw new Error(
      `onnxruntime-node is not available (${(error as Error).message.split('\n')[0]}); ` +
        'install it with `npm install onnxruntime-node` to run the ONNX reference',
    );
  }
}

/** A CPU session as the benchmarks make it: `threads` intra-op threads, sequential, all graph optimizations. */
export function ortSession(ort: Ort, onnx: Uint8Array, threads: number): Promise<OrtSession> {
  return ort.InferenceSession.create(onnx, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

/** Runs the session's first input on a batch of samples of `sampleShape`; returns the first output. */
export function ortPredict(ort: Ort, session: OrtSession, sampleShape: readonly number[]): Predict {
  const input = session.inputNames[0];
  const output = session.outputNames[0];
  return async (data, batch) => {
    const result = await session.run({ [input]: new ort.Tensor('float32', data, [batch, ...sampleShape]) });
    return result[output].data as Float32Array;
  };
}
