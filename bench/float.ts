/**
 * `float` suite: lowbit's float layers (fconv2d / fdense, run as one-node models) against
 * onnxruntime-node fp32 Conv / MatMul (MLAS) on the layers a binary network keeps in float: the
 * ImageNet and CIFAR stems, the downsample 1x1 convs, and the classifier at batch 1 and 16; 1 and 2
 * threads. Both run the same weights; the outputs are checked against each other once per layer.
 */
import * as ort from 'onnxruntime-node';
import { cpus, loadavg } from 'node:os';
import { isa, loadModel, setIsa, setThreads, supportedIsas, threads, type Model } from '../lib/index.js';
import { encodeModel, type GraphTensor } from '../lib/model/format.js';
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
  type Row,
  type Suite,
  type SuiteOptions,
  type Timing,
  type TimingPlan,
} from './harness.js';
import { convF32Model, fillInts, matMulF32Model, ortSession, type MatMulShape } from './onnx-models.js';
import { loadConvShapes, type ConvShape } from './shapes.js';

const THREADS = [1, 2];
const IMPLS = ['lowbit', 'lowbit-scalar', 'ort-fp32'] as const;
const QUICK: TimingPlan = { warmupMs: 40, rounds: 4, roundMs: 80 };
const FULL: TimingPlan = { warmupMs: 200, rounds: 8, roundMs: 250 };
/** Classifiers: [batch, 512] x [512, classes] */
const DENSE: readonly MatMulShape[] = [
  { m: 1, k: 512, n: 1000 },
  { m: 16, k: 512, n: 1000 },
  { m: 1, k: 512, n: 10 },
  { m: 16, k: 512, n: 10 },
];

interface Layer {
  name: string;
  macs: number;
  lowbit: Model;
  ortModel: Uint8Array;
  /** the input in lowbit's layout (HWC, or rows) and in ORT's (NCHW, or rows) */
  x: Float32Array;
  xOrt: ort.Tensor;
  /** lowbit's output index i holds ORT's element ortIndex(i) */
  ortIndex: (i: number) => number;
}

// A float tensor inside the graph: [H, W, C] (the format's `"layout": "hwc"`).
const hwc = (name: string, shape: number[]) => ({ name, dtype: 'f32', shape, layout: 'hwc' }) as GraphTensor;

/** The fp32 Conv of onnx-models.ts (its weights regenerated from the same seed) and the same layer as fconv2d. */
function convLayer(s: ConvShape): Layer {
  // convF32Model(s, 1) draws the OIHW weights, then the bias, from random(1).
  const rnd = random(1);
  const oihw = fill(new Float32Array(s.cout * s.cin * s.kernel * s.kernel), () => rnd() * 2 - 1);
  const bias = fill(new Float32Array(s.cout), () => rnd() - 0.5);
  const taps = s.kernel * s.kernel;
  const ohwi = new Float32Array(oihw.length);
  for (let o = 0; o < s.cout; ++o)
    for (let i = 0; i < s.cin; ++i)
      for (let t = 0; t < taps; ++t) ohwi[(o * taps + t) * s.cin + i] = oihw[(o * s.cin + i) * taps + t];
  const file = encodeModel({
    inputs: [{ name: 'x', tensor: 0 }],
    outputs: [{ name: 'y', tensor: 1 }],
    tensors: [hwc('x', [s.h, s.w, s.cin]), hwc('y', [s.oh, s.ow, s.cout])],
    nodes: [
      {
        name: s.name,
        op: 'fconv2d',
        inputs: [0],
        outputs: [1],
        attrs: {
          kernel: [s.kernel, s.kernel],
          stride: [s.stride, s.stride],
          dilation: [1, 1],
          pads: s.pads,
          groups: 1,
        },
        data: { weights: ohwi, bias },
      },
    ],
  });
  const x = fill(new Float32Array(s.h * s.w * s.cin), random(5));
  const nchw = new Float32Array(x.length);
  for (let p = 0; p < s.h * s.w; ++p) for (let c = 0; c < s.cin; ++c) nchw[c * s.h * s.w + p] = x[p * s.cin + c];
  const pixels = s.oh * s.ow;
  return {
    name: s.name,
    macs: s.macs,
    lowbit: loadModel(file),
    ortModel: convF32Model(s),
    x,
    xOrt: new ort.Tensor('float32', nchw, [1, s.cin, s.h, s.w]),
    ortIndex: (i) => (i % s.cout) * pixels + Math.floor(i / s.cout),
  };
}

/** The fp32 MatMul of onnx-models.ts (its B regenerated from the same seed) and the same layer as fdense. */
function denseLayer(s: MatMulShape): Layer {
  // matMulF32Model(s, 3): B [k, n] = fillInts(k * n, -127, 127, 3) / 128.
  const q = fillInts(new Int8Array(s.k * s.n), -127, 127, 3);
  const oi = new Float32Array(q.length);
  for (let kk = 0; kk < s.k; ++kk) for (let j = 0; j < s.n; ++j) oi[j * s.k + kk] = q[kk * s.n + j] / 128;
  const file = encodeModel({
    inputs: [{ name: 'x', tensor: 0 }],
    outputs: [{ name: 'y', tensor: 1 }],
    tensors: [
      { name: 'x', dtype: 'f32', shape: [s.k] },
      { name: 'y', dtype: 'f32', shape: [s.n] },
    ],
    nodes: [{ name: 'fc', op: 'fdense', inputs: [0], outputs: [1], data: { weights: oi } }],
  });
  const x = fill(new Float32Array(s.m * s.k), random(6));
  return {
    name: `dense-${s.k}-${s.n}-b${s.m}`,
    macs: s.m * s.k * s.n,
    lowbit: loadModel(file),
    ortModel: matMulF32Model(s),
    x,
    xOrt: new ort.Tensor('float32', x, [s.m, s.k]),
    ortIndex: (i) => i,
  };
}

/** lowbit (default ISA and scalar) against ORT: the largest difference relative to the output's scale. */
async function check(layer: Layer, defaultIsa: string, session: ort.InferenceSession): Promise<string[]> {
  const y = layer.lowbit.runSync(layer.x).y.data as Float32Array;
  setIsa('scalar');
  let yScalar: Float32Array;
  try {
    yScalar = layer.lowbit.runSync(layer.x).y.data as Float32Array;
  } finally {
    setIsa(defaultIsa as Parameters<typeof setIsa>[0]);
  }
  const yOrt = (await session.run({ x: layer.xOrt })).y.data as Float32Array;
  if (yOrt.length !== y.length) return [`${layer.name}: ${y.length} outputs, onnxruntime ${yOrt.length}`];
  let scale = 0;
  for (const v of yOrt) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  let worstScalar = 0;
  for (let i = 0; i < y.length; ++i) {
    const want = yOrt[layer.ortIndex(i)];
    worst = Math.max(worst, Math.abs(y[i] - want));
    worstScalar = Math.max(worstScalar, Math.abs(yScalar[i] - want));
  }
  const problems: string[] = [];
  for (const [impl, diff] of [
    ['lowbit', worst],
    ['lowbit-scalar', worstScalar],
  ] as const)
    if (!(diff <= 1e-4 * scale))
      problems.push(`${layer.name}: ${impl} differs from onnxruntime by ${diff} (|y| <= ${scale})`);
  return problems;
}

async function run({ quick }: SuiteOptions): Promise<Row[]> {
  const plan = quick ? QUICK : FULL;
  const defaultIsa = isa();
  const savedThreads = threads();
  console.log(
    `float: lowbit fconv2d / fdense (isa ${defaultIsa}; supported: ${supportedIsas().join(', ')}) vs onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common} fp32` +
      ` on ${cpus()[0]?.model ?? 'unknown CPU'} x ${cpus().length}, node ${process.version}`,
  );
  const load = () => loadavg()[0].toFixed(2);
  console.log(`load average (1 min) before: ${load()}; anything else running on these cores skews the results`);
  console.log(
    `timing: per call, median after ${plan.warmupMs} ms warm-up; ${plan.rounds} interleaved rounds of ${plan.roundMs} ms per impl` +
      ` (${quick ? 'quick' : 'full'} run). Both run a one-node model and return a fresh output array per call` +
      ` (lowbit's Model.runSync has no output option). "vs ort" = ort median / lowbit median: above 1, lowbit is faster.\n`,
  );
  const row = tablePrinter([
    ['workload', 22],
    ['thr', 3],
    ['lowbit ms', 0],
    ['Gop/s', 6],
    ['scalar ms', 0],
    ['Gop/s', 6],
    ['ort-fp32 ms', 0],
    ['Gop/s', 6],
    ['vs ort', 0],
    ['vs scalar', 0],
  ]);
  const layers = [...loadConvShapes('float_layers.txt').map(convLayer), ...DENSE.map(denseLayer)];
  const rows: Row[] = [];
  const problems: string[] = [];
  try {
    for (const n of THREADS) {
      setThreads(n);
      for (const layer of layers) {
        const session = await ortSession(layer.ortModel, n, false);
        try {
          if (n === THREADS[0]) problems.push(...(await check(layer, defaultIsa, session)));
          const lowbit = () => layer.lowbit.runSync(layer.x);
          const t = await measure(
            [
              { name: 'lowbit', run: lowbit },
              { name: 'lowbit-scalar', run: lowbit, before: () => setIsa('scalar'), after: () => setIsa(defaultIsa) },
              { name: 'ort-fp32', run: () => session.run({ x: layer.xOrt }), async: true },
            ],
            plan,
          );
          const get = (impl: string) => t.get(impl) as Timing;
          for (const impl of IMPLS) {
            const { median, min, runs } = get(impl);
            rows.push({
              workload: layer.name,
              impl,
              threads: n,
              median_ms: round(median, 4),
              gops: round(gops(layer.macs, median), 2),
              min_ms: round(min, 4),
              runs,
            });
          }
          row([
            layer.name,
            String(n),
            ...IMPLS.flatMap((impl) => [ms(get(impl).median), rate(gops(layer.macs, get(impl).median))]),
            ratio(get('ort-fp32').median, get('lowbit').median),
            ratio(get('lowbit-scalar').median, get('lowbit').median),
          ]);
        } finally {
          await session.release();
        }
      }
    }
  } finally {
    setIsa(defaultIsa);
    setThreads(savedThreads);
    for (const layer of layers) layer.lowbit.dispose();
  }
  console.log(`\nload average (1 min) after: ${load()}`);
  console.log('MACs = OH*OW*Cout*kh*kw*Cin (conv) or batch*K*N (dense); Gop/s = 2 * MACs / median.');
  for (const p of problems) console.log(`WARNING ${p}`);
  return rows;
}

export const suite: Suite = { run };
