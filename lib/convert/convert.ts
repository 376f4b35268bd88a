/**
 * ONNX -> `.lowbit`: import and fold the ONNX graph, calibrate activation ranges on the user's
 * samples, choose the weight bits of each integer layer (fixed, or mixed under a size budget),
 * lower to the lowbit graph, and measure every layer's error against the float model.
 */
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { importOnnx } from '../onnx/import.js';
import type { FloatGraph } from '../onnx/ir.js';
import { nodeInputs } from '../onnx/shapes.js';
import { encodeModel } from '../model/format.js';
import { Model } from '../model/model.js';
import { packBinaryConv2dWeights } from '../ops/binary.js';
import { buildMst } from '../ops/mst.js';
import type { QWeightBits } from '../ops/qconv.js';
import { Tensor } from '../tensor.js';
import { AccuracyError, errorFromClone, type ErrorClone } from '../errors.js';
import { argmax } from '../data.js';
import { calibrate } from './calibrate.js';
import type { ConvertOptions, ConversionReport, ConvertPhase } from './options.js';
import { binaryLayers, lower, planFloat, type LayerInfo, type LowerOptions } from './lower.js';
import { signValues, type OhwiWeights } from './weights.js';
import { LayerRounding } from './rounding.js';

export type { ConvertOptions, ConversionReport, ConvertPhase, LayerReport } from './options.js';

/** The reduced-range trials (one lowering and run per inner layer) measure on this many samples at most. */
const REDUCED_RANGE_SAMPLES = 64;
/** A layer set goes to 7 bits when it raises the output error by at most this fraction. */
const REDUCED_RANGE_TOLERANCE = 0.01;
/** At most this many calibration samples are used to measure errors (the float model keeps every layer). */
const MEASURE_SAMPLES = 256;
/** ... and at most as many as keep this many float values of every tensor (2 GiB: 22 samples of
 *  ResNet-18 at 224 x 224). */
const MEASURE_VALUES = 2 ** 29;

/**
 * Converts an ONNX model to `.lowbit` bytes. The per-layer report is stored in the file's
 * metadata (`loadModel(bytes).metadata.report`) and printed by `npx lowbit info`. The conversion
 * runs on a worker thread (seconds of float evaluation and calibration), so the event loop stays
 * free; `onProgress` is still called on the caller's thread.
 * @throws UnsupportedError for an operator or attribute lowbit cannot run, naming the node
 * @throws ModelFormatError for a malformed ONNX file
 * @example const bytes = await convertOnnx(readFileSync('model.onnx'), { calibration: samples, bits: 8 });
 */
export async function convertOnnx(onnx: Uint8Array, options: ConvertOptions = {}): Promise<Uint8Array> {
  const { bytes, report } = await convertOnnxWithReport(onnx, options);
  // The caller does not see the report: its warnings go to the process.
  for (const w of report.warnings) process.emitWarning(w, { code: 'LOWBIT_CONVERSION' });
  return bytes;
}

/** {@link convertOnnx}, also returning the report (whose `warnings` are the caller's to show). */
export async function convertOnnxWithReport(
  onnx: Uint8Array,
  options: ConvertOptions = {},
): Promise<{ bytes: Uint8Array; report: ConversionReport }> {
  return CONVERT_WORKER ? convertInWorker(CONVERT_WORKER, onnx, options) : convertOnnxSync(onnx, options);
}

/**
 * The worker's script: beside this module once compiled to JavaScript. Run from the TypeScript
 * sources (the test suite), there is none, and the conversion runs on the calling thread.
 */
const CONVERT_WORKER = (() => {
  const url = new URL('./convert-worker.js', import.meta.url);
  return url.protocol === 'file:' && import.meta.url.endsWith('.js') && existsSync(url) ? url : undefined;
})();

/** The conversion on the calling thread: what the worker runs. */
export function convertOnnxSync(
  onnx: Uint8Array,
  options: ConvertOptions = {},
): { bytes: Uint8Array; report: ConversionReport } {
  const bits = options.bits ?? 8;
  if (options.maxOutputError !== undefined && !(options.maxOutputError > 0))
    throw new RangeError(
      `maxOutputError: expected a number > 0 (Infinity to only warn), got ${String(options.maxOutputError)}`,
    );
  if (bits !== 8 && bits !== 7 && bits !== 4 && bits !== 'mixed')
    throw new RangeError(`bits: expected 8, 7, 4 or 'mixed', got ${String(bits)}`);
  const reducedRange = options.reducedRange ?? 'auto';
  if (reducedRange !== 'auto' && reducedRange !== 'off')
    throw new RangeError(`reducedRange: expected 'auto' or 'off', got ${String(reducedRange)}`);
  const rounding = options.rounding ?? 'gptq';
  if (rounding !== 'gptq' && rounding !== 'nearest')
    throw new RangeError(`rounding: expected 'gptq' or 'nearest', got ${String(rounding)}`);
  if (bits === 'mixed' && !(Number(options.sizeBudget) > 0))
    throw new RangeError(`sizeBudget: 'mixed' bits need a budget in bytes > 0, got ${String(options.sizeBudget)}`);
  const requested = options.floatLayers;
  if (
    requested !== undefined &&
    requested !== 'none' &&
    requested !== 'boundary' &&
    !(Array.isArray(requested) && requested.every((n) => typeof n === 'string'))
  )
    throw new RangeError(
      `floatLayers: expected 'none', 'boundary' or an array of layer names, got ${String(requested)}`,
    );
  const graph = importOnnx(onnx);
  // Binary networks keep their real-valued path in float by default: their outputs are then the
  // trained network's, and they run faster than with INT8 boundary layers (README, float layers).
  const floatLayers = requested ?? (binaryLayers(graph).size > 0 ? 'boundary' : 'none');
  const samples = options.calibration;
  if (!(samples instanceof Float32Array) || samples.length === 0)
    throw new TypeError(
      'calibration: expected a Float32Array of input samples (the quantizer needs activation ranges)',
    );
  const calibrationWarnings: string[] = [];
  const plan = planFloat(graph, floatLayers);
  const count = sampleCount(graph, samples);
  // Integer layers are rounded against their inputs' statistics, gathered while calibrating.
  let rounded = 0,
    roundTotal = 0;
  const rounder =
    rounding === 'gptq'
      ? new LayerRounding(graph, integerCandidates(graph, plan.floatLayers), count, () =>
          options.onProgress?.('round', ++rounded, roundTotal),
        )
      : undefined;
  // The float values errors are measured against: those of the first calibration samples, kept
  // while calibrating (no second float evaluation).
  const perSampleValues = [...graph.tensors.values()].reduce(
    (s, t) => s + t.dims.slice(1).reduce((a, b) => a * b, 1),
    0,
  );
  const byMemory = Math.floor(MEASURE_VALUES / perSampleValues);
  const measureCount = Math.max(1, Math.min(count, MEASURE_SAMPLES, Number.isFinite(byMemory) ? byMemory : Infinity));
  const kept = new Map<string, Float32Array[]>();
  const ranges = calibrate(graph, samples, {
    method: options.calibrationMethod,
    percentile: options.percentile,
    onProgress: (done, total) => options.onProgress?.('calibrate', done, total),
    warnings: calibrationWarnings,
    observe: (values, first, n) => {
      rounder?.observe(values);
      const take = Math.min(n, measureCount - first);
      if (take > 0)
        for (const [name, t] of values) {
          if (!kept.has(name)) kept.set(name, []);
          // the whole batch without a copy (every tensor is a new array, the input a view of the
          // caller's samples, none written later), else its first samples
          kept.get(name)!.push(take === n ? t.data : t.data.slice(0, (t.data.length / n) * take));
        }
    },
  });
  const reference: Reference = {
    values: new Map([...kept].map(([name, parts]) => [name, concat(parts)])),
    samples: measureCount,
  };
  kept.clear();
  // The graph is lowered several times (probe, final, each 'mixed' candidate); a binary layer's
  // schedule does not depend on the bits chosen, so it is built once.
  const schedules = new Map<string, ReturnType<typeof mstSchedule>>();
  const mst: LowerOptions['mst'] = (name, w, groups, pixels) => {
    if (!schedules.has(name)) schedules.set(name, mstSchedule(w, groups, pixels));
    return schedules.get(name)!;
  };
  const base: LowerOptions = {
    ranges,
    mst: options.mst ? mst : undefined,
    ...plan,
    round: rounder ? (name, w, b, bias, flattened) => rounder.round(name, w, b, bias, flattened) : undefined,
  };

  const integerLayers = lower(graph, { ...base, round: undefined })
    .layers.filter((l) => l.kind.startsWith('W'))
    .map((l) => l.name);
  const boundary = new Set([integerLayers[0], integerLayers[integerLayers.length - 1]]);
  const inner = integerLayers.filter((name) => !boundary.has(name));
  // bits 7 (reduced-range INT8) takes the place of 8 in the inner layers (the boundary keeps
  // boundaryBits, default 8: the most sensitive layers); 4 and 'mixed' move inner layers to 4.
  const eight: QWeightBits = bits === 7 ? 7 : 8;
  const bitsOf = (fourBit: Iterable<string>) => {
    const m = new Map<string, QWeightBits>(
      integerLayers.map((name) => [name, boundary.has(name) ? (options.boundaryBits ?? 8) : eight]),
    );
    for (const name of fourBit) m.set(name, 4);
    return m;
  };
  // bits 8 and 'mixed' with reducedRange 'auto': inner 8-bit layers whose weights in [-64, 64] cost
  // nothing measurable go to 7 bits (the same file size, 1.3-1.45x the speed on AVX2 without VNNI).
  const tryReduced = (bits === 8 || bits === 'mixed') && reducedRange === 'auto' && inner.length > 0;
  const withReduced = (m: Map<string, QWeightBits>, reduced: Iterable<string>) => {
    for (const name of reduced) if (m.get(name) === 8) m.set(name, 7);
    return m;
  };
  if (rounder) {
    // Each layer is rounded once for each of its possible bits, up front (with progress; later
    // lowerings find the results cached).
    const plans = bits === 'mixed' ? [bitsOf([]), bitsOf(inner)] : [bitsOf(bits === 4 ? inner : [])];
    if (tryReduced) plans.push(withReduced(bitsOf([]), inner));
    roundTotal = new Set(plans.flatMap((p) => [...p].map(([name, b]) => `${b}:${name}`))).size;
    for (const p of plans) lower(graph, { ...base, bits: p });
  }

  const measureSet = samples.subarray(0, (measureCount * samples.length) / count);
  const finish = (chosen: Map<string, QWeightBits>, sensitivity?: Map<string, number>) => {
    const probe = lower(graph, { ...base, bits: chosen, probe: true });
    const final = lower(graph, { ...base, bits: chosen });
    const report = measureErrors(graph, probe.graph, final.layers, reference, measureSet, options);
    for (const layer of report.layers) {
      if (sensitivity?.has(layer.name)) layer.sensitivity = sensitivity.get(layer.name);
      if (reduced?.cost.has(layer.name) && chosen.get(layer.name) !== 4)
        layer.reducedRangeCost = reduced.cost.get(layer.name);
    }
    report.warnings.push(...calibrationWarnings);
    checkOutputs(graph, report, chosen, options.maxOutputError);
    // The stored report gives the size without itself; the returned one the file's.
    report.modelBytes = encodeModel(final.graph).length;
    report.calibrationSamples = count;
    const stored = {
      report,
      options: {
        bits,
        sizeBudget: options.sizeBudget,
        boundaryBits: options.boundaryBits ?? 8,
        calibrationMethod: options.calibrationMethod ?? 'minmax',
        percentile: options.percentile,
        mst: options.mst ?? false,
        floatLayers,
        rounding,
        reducedRange,
      },
    };
    const bytes = encodeModel({ ...final.graph, producer: 'lowbit convertOnnx', metadata: stored });
    return { bytes, report: { ...report, modelBytes: bytes.length } };
  };
  const trialCount = Math.min(measureCount, REDUCED_RANGE_SAMPLES);
  const trialSet = measureSet.subarray(0, (trialCount * samples.length) / count);
  let reduced: ReturnType<typeof chooseReducedRange> | undefined;
  const reduce = (m: Map<string, QWeightBits>) => {
    if (!tryReduced) return m;
    reduced ??= chooseReducedRange(
      graph,
      base,
      bitsOf([]),
      inner,
      firstSamples(reference, trialCount),
      trialSet,
      (d, t) => options.onProgress?.('reduced-range', d, t),
    );
    return withReduced(m, reduced.chosen);
  };
  if (bits !== 'mixed') return finish(reduce(bitsOf(bits === 4 ? inner : [])));
  // The budget covers the whole file: the graph, and the report it stores (whose size hardly
  // depends on the bits chosen), plus a section's alignment.
  const all8 = finish(reduce(bitsOf([])));
  if (all8.bytes.length <= options.sizeBudget!) return all8;
  const reserve = all8.bytes.length - encodeModel(lower(graph, { ...base, bits: bitsOf([]) }).graph).length + 64;
  const mixed = chooseMixedBits(
    graph,
    base,
    inner,
    bitsOf,
    options.sizeBudget!,
    reserve,
    reference,
    measureSet,
    (d, t) => options.onProgress?.('sensitivity', d, t),
  );
  // The chosen count comes from estimated sizes (the per-layer savings do not add exactly, and the
  // report grows by the sensitivities): while the file is still over budget, one more layer goes to 4 bits.
  for (let count = mixed.count; ; count++) {
    const result = finish(reduce(bitsOf(mixed.order.slice(0, count))), mixed.sensitivity);
    if (result.bytes.length <= options.sizeBudget!) return result;
    if (count >= mixed.order.length)
      throw new RangeError(
        `sizeBudget: ${options.sizeBudget} bytes cannot be met: the model takes ${result.bytes.length} bytes with its report`,
      );
  }
}

/** Messages from the conversion worker (convert-worker.ts). */
export type WorkerMessage =
  | { kind: 'progress'; phase: ConvertPhase; done: number; total: number }
  | { kind: 'done'; bytes: Uint8Array; report: ConversionReport }
  | { kind: 'error'; error: ErrorClone };

function convertInWorker(
  script: URL,
  onnx: Uint8Array,
  options: ConvertOptions,
): Promise<{ bytes: Uint8Array; report: ConversionReport }> {
  const { onProgress, ...cloneable } = options;
  if (onProgress !== undefined && typeof onProgress !== 'function')
    throw new TypeError(`onProgress: expected a function, got ${typeof onProgress}`);
  return new Promise((resolve, reject) => {
    // The model and samples are copied to the worker: the caller may reuse its buffers at once.
    // No inherited node flags: a caller's --input-type or --eval would stop the worker's start.
    const worker = new Worker(script, { workerData: { onnx, options: cloneable }, execArgv: [] });
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      f();
      void worker.terminate();
    };
    worker.on('message', (m: WorkerMessage) => {
      if (m.kind === 'progress') onProgress?.(m.phase, m.done, m.total);
      else if (m.kind === 'done') settle(() => resolve({ bytes: m.bytes, report: m.report }));
      else settle(() => reject(errorFromClone(m.error)));
    });
    worker.on('error', (e) => settle(() => reject(e)));
    worker.on('exit', (code) =>
      settle(() => reject(new Error(`convertOnnx: the conversion worker exited with code ${code}`))),
    );
  });
}

/** The conv / dense layers that become integer layers: neither binary nor kept in float. */
function integerCandidates(graph: FloatGraph, floatLayers: Set<string> | undefined): Set<string> {
  const binary = binaryLayers(graph);
  return new Set(
    graph.nodes
      .filter((n) => (n.op === 'conv' || n.op === 'dense') && !binary.has(n.name) && !floatLayers?.has(n.name))
      .map((n) => n.name),
  );
}

function sampleCount(graph: FloatGraph, samples: Float32Array): number {
  const per = graph.tensors
    .get(graph.inputs[0])!
    .dims.slice(1)
    .reduce((a, b) => a * b, 1);
  return samples.length / per;
}

/**
 * The MST schedule of a binary layer, with the cost model's predicted speedup over the dense
 * kernel at batch 1 and 64. The schedule is always stored: at run time the 'auto' policy takes
 * the MST path only where the model predicts it faster, so a layer too small to gain runs dense.
 */
function mstSchedule(w: OhwiWeights, groups: number, pixels: number): { bytes: Uint8Array; note: string } {
  const packed = packBinaryConv2dWeights(new Tensor('s8', [w.out, w.kh, w.kw, w.icg], signValues(w)), { groups });
  const schedule = buildMst(packed);
  const speedup = [1, 64].map((batch) => {
    const c = schedule.predictCost(pixels * batch);
    return `${(c.dense / c.mst).toFixed(2)}x at batch ${batch}${c.useMst ? '' : ' (runs dense)'}`;
  });
  return {
    bytes: schedule.serialize(),
    note: `op ratio ${schedule.stats.opRatio.toFixed(1)}, predicted ${speedup.join(', ')}`,
  };
}

interface Reference {
  /** float values of every tensor a layer or output stands for */
  values: Map<string, Float32Array>;
  /** how many samples they hold */
  samples: number;
}

/** The reference of its first `n` samples. */
function firstSamples(ref: Reference, n: number): Reference {
  const values = new Map([...ref.values].map(([name, v]) => [name, v.subarray(0, (v.length / ref.samples) * n)]));
  return { values, samples: n };
}

function concat(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function relativeRms(q: Float32Array, f: Float32Array): number {
  let num = 0,
    den = 0;
  for (let i = 0; i < f.length; ++i) {
    num += (q[i] - f[i]) ** 2;
    den += f[i] ** 2;
  }
  return den > 0 ? Math.sqrt(num / den) : Math.sqrt(num / Math.max(1, f.length));
}

function signMismatch(q: Float32Array, f: Float32Array): number {
  let differ = 0;
  for (let i = 0; i < f.length; ++i) if (q[i] < 0 !== f[i] < 0) ++differ;
  return differ / Math.max(1, f.length);
}

function argmaxAgreement(q: Float32Array, f: Float32Array, classes: number): number {
  const rows = f.length / classes;
  let agree = 0;
  for (let r = 0; r < rows; ++r) if (argmax(q, r * classes, classes) === argmax(f, r * classes, classes)) ++agree;
  return agree / Math.max(1, rows);
}

function runLowbit(graphBytes: Uint8Array, samples: Float32Array) {
  const model = Model.fromBytes(graphBytes);
  try {
    return model.runSync(samples);
  } finally {
    model.dispose();
  }
}

function measureErrors(
  graph: FloatGraph,
  probeGraph: ReturnType<typeof lower>['graph'],
  layers: LayerInfo[],
  ref: Reference,
  samples: Float32Array,
  options: ConvertOptions,
): ConversionReport {
  const outputs = runLowbit(encodeModel(probeGraph), samples);
  const report: ConversionReport = {
    layers: [],
    outputError: {},
    top1Agreement: {},
    modelBytes: 0,
    calibrationSamples: 0,
    warnings: [],
  };
  layers.forEach((layer, i) => {
    const q = outputs[graph.outputs.includes(layer.tensor) ? layer.tensor : `probe:${layer.name}`].data;
    const f = ref.values.get(layer.tensor)!;
    report.layers.push({
      name: layer.name,
      kind: layer.kind,
      bytes: layer.bytes,
      error: layer.binary ? signMismatch(q, f) : relativeRms(q, f),
      metric: layer.binary ? 'sign-mismatch' : 'relative-rms',
      ...(layer.note ? { note: layer.note } : {}),
    });
    options.onProgress?.('measure', i + 1, layers.length);
  });
  for (const name of graph.outputs) {
    const q = outputs[name].data,
      f = ref.values.get(name)!;
    report.outputError[name] = relativeRms(q, f);
    const dims = graph.tensors.get(name)!.dims;
    if (dims.length === 2) report.top1Agreement[name] = argmaxAgreement(q, f, dims[1]);
  }
  return report;
}

/** Output errors below these the chosen bits explain (measured: 0.2-6% with 8-bit layers, up to 25% with 4-bit ones). */
const EXPLAINED_ERROR = { 8: 0.1, 4: 0.3 };

/**
 * The guard against a wrong conversion: an output far from the float model is refused (an
 * {@link AccuracyError} naming it), one beyond what its bits explain is a report warning.
 */
function checkOutputs(
  graph: FloatGraph,
  report: ConversionReport,
  bits: Map<string, QWeightBits>,
  maxOutputError: number | undefined,
) {
  const fourBit = [...bits.values()].includes(4);
  const binarized = afterBinarization(graph);
  const explained = EXPLAINED_ERROR[fourBit ? 4 : 8];
  const what = fourBit ? '8- and 4-bit layers' : '8-bit layers'; // 7 bits count as 8
  for (const [name, error] of Object.entries(report.outputError)) {
    const limit = maxOutputError ?? (binarized.has(name) ? Infinity : fourBit ? 1 : 0.5);
    const measured = `output '${name}': relative RMS error ${error.toFixed(3)} against the float model on the calibration samples`;
    if (!(error <= limit))
      throw new AccuracyError(
        `${measured}, above the ${limit} that ${what} explain: lowbit converted this model wrongly (please report it with the model), or pass maxOutputError to accept it`,
        name,
        error,
        limit,
      );
    if (error > explained)
      report.warnings.push(
        `${measured}, more than the ${explained} that ${what} explain${binarized.has(name) ? ' (it follows a binarization: values within half a quantization step of 0 may take either sign)' : ''}`,
      );
  }
}

/** The tensors computed from a binarized (sign) value. */
function afterBinarization(graph: FloatGraph): Set<string> {
  const binarized = new Set<string>();
  for (const n of graph.nodes)
    if (n.op === 'sign' || nodeInputs(n).some((i) => binarized.has(i))) binarized.add(n.output);
  return binarized;
}

/** Mean relative RMS error of the model outputs for one choice of bits. */
function outputError(
  graph: FloatGraph,
  options: LowerOptions,
  ref: Reference,
  samples: Float32Array,
): { error: number; bytes: number } {
  const bytes = encodeModel(lower(graph, options).graph);
  const outputs = runLowbit(bytes, samples);
  const errors = graph.outputs.map((name) => relativeRms(outputs[name].data, ref.values.get(name)!));
  return { error: errors.reduce((a, b) => a + b, 0) / errors.length, bytes: bytes.length };
}

/**
 * Picks 4 or 8 bits per inner layer so that the file fits `budget` bytes with the least output
 * error: each layer's sensitivity (output error with that layer alone at 4 bits) is measured, then
 * layers are ordered by error added per byte saved. Returns that order and how many of its first
 * layers go to 4 bits by the estimated sizes.
 */
function chooseMixedBits(
  graph: FloatGraph,
  base: LowerOptions,
  inner: string[],
  bitsOf: (four: Iterable<string>) => Map<string, QWeightBits>,
  fileBudget: number,
  reserve: number,
  ref: Reference,
  samples: Float32Array,
  onProgress: (done: number, total: number) => void,
): { order: string[]; count: number; sensitivity: Map<string, number> } {
  const budget = fileBudget - reserve; // what the graph may take beside the stored report
  const all8 = outputError(graph, { ...base, bits: bitsOf([]) }, ref, samples);
  const all4 = encodeModel(lower(graph, { ...base, bits: bitsOf(inner) }).graph).length;
  if (all4 > budget)
    throw new RangeError(
      `sizeBudget: ${fileBudget} bytes cannot be met; with every inner layer at 4 bits the model takes ${all4 + reserve} bytes (at 8 bits ${all8.bytes + reserve})`,
    );
  const sensitivity = new Map<string, number>();
  const candidates = inner.map((name, i) => {
    const r = outputError(graph, { ...base, bits: bitsOf([name]) }, ref, samples);
    sensitivity.set(name, r.error);
    onProgress(i + 1, inner.length);
    return { name, added: Math.max(0, r.error - all8.error), saved: all8.bytes - r.bytes };
  });
  candidates.sort((a, b) => a.added / Math.max(1, a.saved) - b.added / Math.max(1, b.saved));
  let count = 0;
  for (let bytes = all8.bytes; bytes > budget && count < candidates.length; count++) bytes -= candidates[count].saved;
  return { order: candidates.map((c) => c.name), count, sensitivity };
}

/**
 * Which inner 8-bit layers go to 7-bit weights with no measurable cost: each layer alone at 7 bits
 * is run on `samples`; its cost is the rise of the output error over all-8 (an independent noise,
 * so costs add in squares). The cheapest layers are taken while their summed costs keep the output
 * error within REDUCED_RANGE_TOLERANCE of all-8's; a layer that lowers the error is always taken.
 */
function chooseReducedRange(
  graph: FloatGraph,
  base: LowerOptions,
  all8: Map<string, QWeightBits>,
  inner: string[],
  ref: Reference,
  samples: Float32Array,
  onProgress: (done: number, total: number) => void,
): { chosen: string[]; cost: Map<string, number> } {
  const e8 = outputError(graph, { ...base, bits: all8 }, ref, samples).error;
  const cost = new Map<string, number>();
  const trials = inner.map((name, i) => {
    const bits = new Map(all8).set(name, 7);
    const e7 = outputError(graph, { ...base, bits }, ref, samples).error;
    cost.set(name, e7 - e8);
    onProgress(i + 1, inner.length);
    return { name, added: e7 * e7 - e8 * e8 };
  });
  trials.sort((a, b) => a.added - b.added);
  const allowed = ((1 + REDUCED_RANGE_TOLERANCE) ** 2 - 1) * e8 * e8;
  const chosen: string[] = [];
  let sum = 0;
  for (const t of trials) {
    if (t.added > 0 && sum + t.added > allowed) break;
    sum += Math.max(0, t.added);
    chosen.push(t.name);
  }
  return { chosen, cost };
}
