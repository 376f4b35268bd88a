/**
 * Whole models: load a `.lowbit` file and run it, synchronously or on the libuv thread pool.
 * The native loader validates the file completely; this side converts inputs and outputs.
 */
import { readFileSync } from 'node:fs';
import type { ConvertOptions } from '../convert/options.js';
import { awaitNative, callNative, ShapeError } from '../errors.js';
import { native, type NativeModelHandle } from '../native.js';
import { describe, Tensor } from '../tensor.js';
import { buildProfile, profileOptions, type ModelProfile, type ProfileOptions } from './profile.js';

/** Options of {@link loadModel}. */
export interface LoadOptions {
  /**
   * Fold each residual add into the integer conv that writes its input (bit-identical, less memory
   * and time). Default true; `LOWBIT_FUSE=0` in the environment makes the default false.
   */
  fuse?: boolean;
  /**
   * The largest activation arena one run takes, in bytes (default 256 MiB): a batch that would
   * need more is computed in chunks of the batch, with the same outputs bit for bit. A single
   * sample that needs more still runs, alone.
   */
  maxActivationBytes?: number;
  /**
   * The most bytes of idle activation arenas the model keeps for later runs (default 64 MiB): an
   * arena that would take the pool above it is freed when its run ends, so memory returns to the
   * system after a huge batch. 0 keeps none.
   */
  maxPooledBytes?: number;
}

const MiB = 1024 * 1024;

/** The checked load options; throws TypeError for a malformed options object */
function loadOptions(options: unknown): Required<LoadOptions> {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(
      `options: expected an object { fuse?, maxActivationBytes?, maxPooledBytes? }, got ${String(options)}`,
    );
  const {
    fuse = process.env.LOWBIT_FUSE !== '0',
    maxActivationBytes = 256 * MiB,
    maxPooledBytes = 64 * MiB,
    ...rest
  } = options as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length)
    throw new TypeError(`options: unknown option '${unknown[0]}' (expected fuse, maxActivationBytes, maxPooledBytes)`);
  if (typeof fuse !== 'boolean') throw new TypeError(`fuse: expected a boolean, got ${describe(fuse)}`);
  for (const [name, value] of [
    ['maxActivationBytes', maxActivationBytes],
    ['maxPooledBytes', maxPooledBytes],
  ] as const)
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
      throw new TypeError(`${name}: expected an integer number of bytes >= 0, got ${describe(value)}`);
  return { fuse, maxActivationBytes, maxPooledBytes } as Required<LoadOptions>;
}

/** Options of {@link Model.run}. */
export interface RunOptions {
  /**
   * Aborts the run: an aborted signal rejects at once; an abort while the run waits for a pool
   * thread removes it (it never runs), and one while it runs stops it at the next node. The
   * promise rejects with `signal.reason` (an AbortError DOMException unless given).
   */
  signal?: AbortSignal;
}

/** The checked run options; throws TypeError for a malformed options object */
function runOptions(options: unknown): RunOptions {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`options: expected an object { signal? }, got ${String(options)}`);
  const { signal, ...rest } = options as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length) throw new TypeError(`options: unknown option '${unknown[0]}' (expected signal)`);
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new TypeError(`signal: expected an AbortSignal, got ${describe(signal)}`);
  return { signal };
}

export interface ModelTensorInfo {
  name: string;
  /** always 'f32' at the model's boundaries */
  dtype: 'f32';
  /** [-1, ...sampleShape]: -1 stands for the batch, chosen per run */
  shape: number[];
  /** one sample's shape, in the layout of the source model (NCHW for images) */
  sampleShape: number[];
}

/**
 * A model input: a tensor whose first dimension is the batch, or a Float32Array of whole samples; or
 * a list of them, stacked along the batch natively (`run` stacks them on the pool thread, so the
 * calling thread copies nothing: the way to batch many requests' inputs; leave them unchanged until
 * the run settles).
 */
export type ModelInput = Tensor<'f32'> | Float32Array | readonly (Tensor<'f32'> | Float32Array)[];
/** One input per name, or the input itself for a model with a single input. */
export type ModelInputs = Record<string, ModelInput> | ModelInput;
export type ModelOutputs = Record<string, Tensor<'f32'>>;

export class Model {
  /** the graph's inputs, in order */
  readonly inputs: readonly ModelTensorInfo[];
  /** the graph's outputs, in order */
  readonly outputs: readonly ModelTensorInfo[];
  /** what the converter recorded: source model, per-layer report, options */
  readonly metadata: Record<string, unknown>;
  /** size of the model file in bytes */
  readonly bytes: number;
  private handle: NativeModelHandle | null;
  private readonly graphJson: string;

  private constructor(handle: NativeModelHandle, bytes: number) {
    this.handle = handle;
    this.bytes = bytes;
    const info = native.modelInfo(handle);
    const toInfo = (t: { name: string; shape: number[] }): ModelTensorInfo =>
      Object.freeze({ name: t.name, dtype: 'f32', shape: [-1, ...t.shape], sampleShape: [...t.shape] });
    this.inputs = Object.freeze(info.inputs.map(toInfo));
    this.outputs = Object.freeze(info.outputs.map(toInfo));
    this.graphJson = info.json;
    this.metadata = (JSON.parse(info.json) as { metadata?: Record<string, unknown> }).metadata ?? {};
  }

  /** Loads a model from `.lowbit` bytes. @throws ModelFormatError for a malformed file */
  static fromBytes(bytes: Uint8Array, options: LoadOptions = {}): Model {
    if (!(bytes instanceof Uint8Array))
      throw new TypeError(`model: expected a Uint8Array or a file path, got ${describe(bytes)}`);
    const o = loadOptions(options);
    return new Model(
      callNative(() => native.loadModel(bytes, o.fuse, o.maxActivationBytes, o.maxPooledBytes)),
      bytes.byteLength,
    );
  }

  /**
   * Converts an ONNX model (see `convertOnnx` for the options; `calibration` is needed) and loads
   * the result.
   * @throws UnsupportedError for an operator lowbit cannot run, ModelFormatError for a malformed ONNX file
   * @example const model = await Model.fromOnnx(readFileSync('model.onnx'), { calibration: toInput(readLbds('calib.lbds')) });
   */
  static async fromOnnx(onnx: Uint8Array, options: ConvertOptions = {}): Promise<Model> {
    // The runtime does not depend on the converter: it is loaded here, on first use (it imports
    // this module to check its output, and is much the heavier part).
    const { convertOnnx } = await import('../convert/convert.js');
    return Model.fromBytes(await convertOnnx(onnx, options));
  }

  /** The graph as stored in the file (JSON): tensors, nodes, attributes. */
  graph(): { tensors: unknown[]; nodes: { name: string; op: string }[] } & Record<string, unknown> {
    return JSON.parse(this.graphJson);
  }

  /**
   * Activation memory of `batch` samples at once: the arena, and what it would take unplanned (a
   * run chunks a batch whose arena exceeds `maxActivationBytes`).
   */
  memoryPlan(batch = 1): { arenaBytes: number; tensorBytes: number } {
    return callNative(() => native.modelPlan(this.live(), checkBatch(batch)));
  }

  /** Runs the model on the calling thread. */
  runSync(inputs: ModelInputs): ModelOutputs {
    const { batch, arrays } = this.prepare(inputs);
    return this.wrap(
      batch,
      callNative(() => native.runModel(this.live(), batch, arrays)),
    );
  }

  /**
   * Runs the model on the libuv thread pool. An input array is copied before this returns, so it
   * may be reused at once; an input given as a list of arrays is stacked on the pool thread instead,
   * so leave those unchanged until the run settles. Concurrent runs on one model are safe. `signal` aborts the run (see
   * {@link RunOptions}); the model stays usable.
   * @example const { logits } = await model.run(images, { signal: AbortSignal.timeout(100) });
   */
  async run(inputs: ModelInputs, options: RunOptions = {}): Promise<ModelOutputs> {
    const { signal } = runOptions(options);
    signal?.throwIfAborted();
    const { batch, arrays } = this.prepare(inputs);
    const handle = this.live();
    if (!signal) return this.wrap(batch, await awaitNative(() => native.runModelAsync(handle, batch, arrays)));
    const token = native.runToken();
    const running = awaitNative(() => native.runModelAsync(handle, batch, arrays, token));
    let onAbort = (): void => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        native.cancelRun(token);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
    running.catch(() => {}); // a cancelled run's own rejection is expected, and dropped
    try {
      return this.wrap(batch, await Promise.race([running, aborted]));
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Profiles the model per operator, on the calling thread: `warmup` untimed runs, then `runs`
   * timed ones, each node timed natively around its own work (plain runs time nothing). Returns
   * per node, in graph order, its median and mean time, its share of the whole run's median, its
   * multiply-accumulates (1-bit ones in binary layers) and their rate; the same per operator; and
   * the last run's outputs.
   * @throws RangeError for runs < 1 or warmup < 0 (or not integers), as `runSync` for bad inputs
   * @example const { nodes, medianMs } = model.profile(images, { runs: 20 });
   */
  profile(inputs: ModelInputs, options: ProfileOptions = {}): ModelProfile {
    const { runs, warmup } = profileOptions(options);
    const { batch, arrays } = this.prepare(inputs);
    const result = callNative(() => native.profileModel(this.live(), batch, arrays, runs, warmup));
    const graph = this.graph() as unknown as Parameters<typeof buildProfile>[0];
    return buildProfile(graph, batch, result.nodeMs, result.totalMs, this.wrap(batch, result.outputs));
  }

  /**
   * Releases the native model now (its weights and activation arenas); runs already started
   * finish first. A second call does nothing. A model dropped without it is freed when garbage
   * collected (its native memory is reported to V8, so collection comes in time), but disposing
   * returns the memory at once: `using model = loadModel(path)` does so at the end of the scope.
   */
  dispose(): void {
    if (this.handle) native.disposeModel(this.handle);
    this.handle = null;
  }

  /** {@link dispose}, for `using model = loadModel(...)` (TypeScript >= 5.2). */
  [Symbol.dispose](): void {
    this.dispose();
  }

  private live(): NativeModelHandle {
    if (!this.handle) throw new TypeError('model: disposed');
    return this.handle;
  }

  private prepare(inputs: ModelInputs): { batch: number; arrays: (Float32Array | Float32Array[])[] } {
    const single = inputs instanceof Tensor || inputs instanceof Float32Array || Array.isArray(inputs);
    if (single && this.inputs.length !== 1)
      throw new TypeError(
        `inputs: this model has ${this.inputs.length} inputs; pass an object { ${this.inputs.map((i) => i.name).join(', ')} }`,
      );
    const byName = (single ? { [this.inputs[0].name]: inputs } : inputs) as Record<string, unknown>;
    if (typeof byName !== 'object' || byName === null)
      throw new TypeError(`inputs: expected an object of Float32Arrays or f32 tensors, got ${describe(inputs)}`);
    for (const key of Object.keys(byName))
      if (!this.inputs.some((i) => i.name === key))
        throw new TypeError(
          `inputs: unknown input '${key}' (the model's inputs: ${this.inputs.map((i) => i.name).join(', ')})`,
        );
    let batch = -1;
    const arrays = this.inputs.map((info) => {
      const value = byName[info.name];
      const perSample = info.sampleShape.reduce((a, b) => a * b, 1);
      // One array of whole samples: its data and sample count.
      const samples = (v: unknown, name: string): { data: Float32Array; n: number } => {
        if (v instanceof Tensor) {
          if (v.dtype !== 'f32') throw new TypeError(`${name}: expected an f32 tensor, got ${v.dtype}`);
          const expected = [v.shape[0], ...info.sampleShape];
          if (v.shape.length !== expected.length || v.shape.some((d, i) => d !== expected[i]))
            throw new ShapeError(
              `${name}: expected shape [N, ${info.sampleShape.join(', ')}], got [${v.shape.join(', ')}]`,
            );
          return { data: v.data as Float32Array, n: v.shape[0] };
        }
        if (v instanceof Float32Array) {
          if (v.length === 0 || v.length % perSample !== 0)
            throw new ShapeError(
              `${name}: expected a multiple of ${perSample} values (samples of [${info.sampleShape.join(', ')}]), got ${v.length}`,
            );
          return { data: v, n: v.length / perSample };
        }
        throw new TypeError(`${name}: expected a Float32Array or an f32 Tensor, got ${describe(v)}`);
      };
      let data: Float32Array | Float32Array[];
      let n: number;
      if (Array.isArray(value)) {
        if (value.length === 0) throw new ShapeError(`inputs.${info.name}: expected at least one array, got []`);
        const parts = value.map((v, i) => samples(v, `inputs.${info.name}[${i}]`));
        data = parts.map((p) => p.data);
        n = parts.reduce((sum, p) => sum + p.n, 0);
      } else {
        ({ data, n } = samples(value, `inputs.${info.name}`));
      }
      if (batch >= 0 && n !== batch)
        throw new ShapeError(`inputs.${info.name}: batch ${n} differs from the other inputs' ${batch}`);
      batch = n;
      return data;
    });
    return { batch: checkBatch(batch), arrays };
  }

  private wrap(batch: number, arrays: Float32Array[]): ModelOutputs {
    const out: ModelOutputs = {};
    this.outputs.forEach((info, i) => {
      out[info.name] = new Tensor('f32', [batch, ...info.sampleShape], arrays[i]);
    });
    return out;
  }
}

function checkBatch(batch: number): number {
  if (!Number.isSafeInteger(batch) || batch < 1)
    throw new RangeError(`batch: expected an integer >= 1, got ${String(batch)}`);
  return batch;
}

/**
 * Loads a `.lowbit` model from a file path or from its bytes.
 * @throws ModelFormatError for a malformed file, with the section and field it failed on
 * @example const model = loadModel('models/fashion-binary.lowbit'); const { logits } = await model.run(images);
 */
export function loadModel(source: string | Uint8Array, options: LoadOptions = {}): Model {
  if (typeof source === 'string') return Model.fromBytes(readFileSync(source), options);
  return Model.fromBytes(source, options);
}
