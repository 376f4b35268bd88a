/**
 * `binary` suite: lowbit bconv2d (default ISA and forced scalar) against onnxruntime-node fp32 Conv
 * and int8 QLinearConv on the ResNet-18 3x3 layers, batch 1, 1 and 2 threads.
 * `binary-small` suite: the same on binary convs with 16-128 channels (CIFAR ResNet-20, VGG-Small,
 * the shipped Fashion-MNIST CNN at batch 64), with zero padding as the networks are trained.
 */
import * as ort from 'onnxruntime-node';
import { cpus, loadavg } from 'node:os';
import {
  bconv2d,
  bitpack,
  isa,
  packBinaryConv2dWeights,
  setIsa,
  setThreads,
  supportedIsas,
  tensor,
  threads,
  type BConv2dOptions,
  type F32Output,
  type Isa,
  type PackedBinaryWeights,
  type Tensor,
} from '../lib/index.js';
import {
  fill,
  gops,
  measure,
  ms,
  random,
  rate,
  ratio,
  round,
  tablePrinter,
  type Impl,
  type Row,
  type Suite,
  type SuiteOptions,
  type Timing,
  type TimingPlan,
} from './harness.js';
import { convF32Model, ortSession, qlinearConvModel, sameShape } from './onnx-models.js';
import { loadConvShapes, type ConvShape } from './shapes.js';

const THREADS = [1, 2];
const IMPLS = ['lowbit', 'lowbit-scalar', 'ort-fp32', 'ort-int8'] as const;
const QUICK: TimingPlan = { warmupMs: 40, rounds: 4, roundMs: 80 };
const FULL: TimingPlan = { warmupMs: 200, rounds: 8, roundMs: 250 };

interface Layer {
  shape: ConvShape;
  xb: Tensor<'b1'>;
  w: PackedBinaryWeights;
  options: BConv2dOptions<F32Output>;
  f32Model: Uint8Array;
  int8Model: Uint8Array;
  /** NCHW inputs of the ORT models */
  xF32: ort.Tensor;
  xU8: ort.Tensor;
  // Preallocated outputs for every implementation: the steady state of an inference server,
  // where a fresh multi-hundred-KiB output per call would time the allocator's page faults.
  y: Tensor<'f32'>;
  yF32: ort.Tensor;
  yU8: ort.Tensor;
}

/** Which layers a suite runs, and how lowbit pads them. */
interface Config {
  shapes: string;
  padValue: 'one' | 'zero';
}

function prepare(s: ConvShape, padValue: Config['padValue']): Layer {
  const rnd = random(3);
  const signed = () => rnd() * 2 - 1;
  // lowbit times bconv2d on a packed input: bit-packing the float input is a separate op.
  const inputSize = s.batch * s.cin * s.h * s.w;
  const outputSize = s.batch * s.cout * s.oh * s.ow;
  const x = tensor('f32', [s.batch, s.h, s.w, s.cin], fill(new Float32Array(inputSize), signed));
  const w = tensor(
    'f32',
    [s.cout, s.kernel, s.kernel, s.cin],
    fill(new Float32Array(s.cout * s.kernel * s.kernel * s.cin), signed),
  );
  const scale = fill(new Float32Array(s.cout), () => 0.01 + rnd() * 0.02);
  const bias = fill(new Float32Array(s.cout), signed);
  const inputDims = [s.batch, s.cin, s.h, s.w];
  return {
    shape: s,
    xb: bitpack(x),
    w: packBinaryConv2dWeights(w),
    options: { strides: s.stride, padding: { pads: s.pads, value: padValue }, output: { kind: 'f32', scale, bias } },
    f32Model: convF32Model(s),
    int8Model: qlinearConvModel(s),
    xF32: new ort.Tensor('float32', fill(new Float32Array(inputSize), signed), inputDims),
    xU8: new ort.Tensor(
      'uint8',
      fill(new Uint8Array(inputSize), () => Math.floor(rnd() * 256)),
      inputDims,
    ),
    y: tensor('f32', [s.batch, s.oh, s.ow, s.cout]),
    yF32: new ort.Tensor('float32', new Float32Array(outputSize), [s.batch, s.cout, s.oh, s.ow]),
    yU8: new ort.Tensor('uint8', new Uint8Array(outputSize), [s.batch, s.cout, s.oh, s.ow]),
  };
}

/** Checks the outputs once per layer: shapes, and the default ISA agreeing with scalar. */
async function check(
  layer: Layer,
  defaultIsa: Isa,
  fp32: ort.InferenceSession,
  int8: ort.InferenceSession,
): Promise<string[]> {
  const s = layer.shape;
  const problems: string[] = [];
  const y = bconv2d(layer.xb, layer.w, layer.options);
  setIsa('scalar');
  let yScalar: Tensor<'f32'>;
  try {
    yScalar = bconv2d(layer.xb, layer.w, layer.options);
  } finally {
    setIsa(defaultIsa);
  }
  if (!sameShape(y.shape, [s.batch, s.oh, s.ow, s.cout]))
    problems.push(`lowbit output shape [${y.shape.join(', ')}], expected [${s.batch}, ${s.oh}, ${s.ow}, ${s.cout}]`);
  const bad = y.data.findIndex((v, i) => v !== yScalar.data[i]); // bit-exact across ISAs
  if (bad >= 0)
    problems.push(
      `lowbit (${defaultIsa}) and lowbit-scalar differ at element ${bad}: ${y.data[bad]} vs ${yScalar.data[bad]}`,
    );
  for (const [name, session, x] of [
    ['ort-fp32', fp32, layer.xF32],
    ['ort-int8', int8, layer.xU8],
  ] as const) {
    const out = (await session.run({ x })).y;
    if (!sameShape(out.dims, [s.batch, s.cout, s.oh, s.ow]))
      problems.push(`${name} output dims [${out.dims.join(', ')}], expected [${s.batch}, ${s.cout}, ${s.oh}, ${s.ow}]`);
  }
  return problems.map((p) => `${s.name}: ${p}`);
}

async function run(config: Config, { quick }: SuiteOptions): Promise<Row[]> {
  const plan = quick ? QUICK : FULL;
  const defaultIsa = isa();
  const savedThreads = threads();
  const shapes = loadConvShapes(config.shapes);
  console.log(
    `binary: lowbit bconv2d (isa ${defaultIsa}; supported: ${supportedIsas().join(', ')}) vs onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common}` +
      ` on ${cpus()[0]?.model ?? 'unknown CPU'} x ${cpus().length}, node ${process.version}`,
  );
  const load = () => loadavg()[0].toFixed(2);
  console.log(`load average (1 min) before: ${load()}; anything else running on these cores skews the results`);
  console.log(
    `timing: per call, median after ${plan.warmupMs} ms warm-up; ${plan.rounds} interleaved rounds of ${plan.roundMs} ms per impl` +
      ` (${quick ? 'quick' : 'full'} run). "vs X" = X median / lowbit median: above 1, lowbit is faster.\n`,
  );
  const row = tablePrinter([
    ['workload', 18],
    ['thr', 3],
    ['lowbit ms', 0],
    ['Gop/s', 6],
    ['scalar ms', 0],
    ['Gop/s', 6],
    ['ort-fp32 ms', 0],
    ['Gop/s', 6],
    ['ort-int8 ms', 0],
    ['Gop/s', 6],
    ['vs fp32', 0],
    ['vs int8', 0],
    ['vs scalar', 0],
  ]);

  const layers = shapes.map((s) => prepare(s, config.padValue));
  const rows: Row[] = [];
  const problems: string[] = [];
  try {
    for (const n of THREADS) {
      setThreads(n);
      for (const layer of layers) {
        const s = layer.shape;
        const fp32 = await ortSession(layer.f32Model, n, false);
        const int8 = await ortSession(layer.int8Model, n, false);
        try {
          if (n === THREADS[0]) problems.push(...(await check(layer, defaultIsa, fp32, int8)));
          const conv = () => bconv2d(layer.xb, layer.w, { ...layer.options, out: layer.y });
          const impls: Impl[] = [
            { name: 'lowbit', run: conv },
            { name: 'lowbit-scalar', run: conv, before: () => setIsa('scalar'), after: () => setIsa(defaultIsa) },
            { name: 'ort-fp32', run: () => fp32.run({ x: layer.xF32 }, { y: layer.yF32 }), async: true },
            { name: 'ort-int8', run: () => int8.run({ x: layer.xU8 }, { y: layer.yU8 }), async: true },
          ];
          const t = await measure(impls, plan);
          const get = (impl: string) => t.get(impl) as Timing;
          for (const impl of IMPLS) {
            const { median, min, runs } = get(impl);
            rows.push({
              workload: s.name,
              impl,
              threads: n,
              median_ms: round(median, 4),
              gops: round(gops(s.macs, median), 2),
              min_ms: round(min, 4),
              runs,
            });
          }
          const lowbit = get('lowbit').median;
          row([
            s.name,
            String(n),
            ...IMPLS.flatMap((impl) => [ms(get(impl).median), rate(gops(s.macs, get(impl).median))]),
            ratio(get('ort-fp32').median, lowbit),
            ratio(get('ort-int8').median, lowbit),
            ratio(get('lowbit-scalar').median, lowbit),
          ]);
        } finally {
          await fp32.release();
          await int8.release();
        }
      }
    }
  } finally {
    setIsa(defaultIsa);
    setThreads(savedThreads);
  }
  console.log(`\nload average (1 min) after: ${load()}`);
  console.log(
    `MACs = N*OH*OW*Cout*3*3*Cin; Gop/s = 2 * MACs / median. lowbit pads with ${config.padValue === 'one' ? '+1' : 'zeros (exact)'}.`,
  );
  for (const p of problems) console.log(`WARNING ${p}`);
  return rows;
}

export const suite: Suite = { run: (options) => run({ shapes: 'resnet18_bconv.txt', padValue: 'one' }, options) };
export const smallSuite: Suite = {
  run: (options) => run({ shapes: 'small_bconv.txt', padValue: 'zero' }, options),
};
