/**
 * `int` suite: lowbit qconv2d / qdense (W8A8, W4A8, W4A4) against onnxruntime-node int8
 * QLinearConv / QLinearMatMul and fp32 Conv / MatMul: the ResNet-18 3x3 stride-1 layers, a batch-1
 * GEMV 4096x4096 whose weights stream from DRAM, and a 64x1024x1024 GEMM; 1 and 2 threads.
 */
import * as ort from 'onnxruntime-node';
import { cpus, loadavg } from 'node:os';
import {
  isa,
  packQConv2dWeights,
  packQDenseWeights,
  qconv2d,
  qdense,
  setIsa,
  setThreads,
  supportedIsas,
  tensor,
  threads,
  toDyadic,
  type Isa,
  type PackedQWeights,
  type QConv2dOptions,
  type QOutOption,
  type Tensor,
} from '../lib/index.js';
import {
  fill,
  gops,
  measure,
  ms,
  random,
  rate,
  round,
  tablePrinter,
  type Impl,
  type Row,
  type Suite,
  type SuiteOptions,
  type Timing,
  type TimingPlan,
} from './harness.js';
import {
  convF32Model,
  fillInts,
  matMulF32Model,
  ortSession,
  qlinearConvModel,
  qlinearMatMulModel,
  sameShape,
  type MatMulShape,
} from './onnx-models.js';
import { loadConvShapes, type ConvShape } from './shapes.js';

const THREADS = [1, 2];
const IMPLS = ['lowbit-w8a8', 'lowbit-w4a8', 'lowbit-w4a4', 'ort-int8', 'ort-fp32'] as const;
type ImplName = (typeof IMPLS)[number];
const QUICK: TimingPlan = { warmupMs: 40, rounds: 4, roundMs: 80 };
const FULL: TimingPlan = { warmupMs: 200, rounds: 8, roundMs: 250 };
/**
 * Distinct weight matrices the GEMV cycles through, each timed call using the next one, for every
 * impl alike: even the smallest set (INT4, 8 MiB a matrix) is 64 MiB, twice the 32 MiB L3, so every
 * impl streams its weights from DRAM as a layer of a real model would.
 */
const GEMV_MATRICES = 8;
const GEMV: MatMulShape = { m: 1, k: 4096, n: 4096 };
const GEMM: MatMulShape = { m: 64, k: 1024, n: 1024 };

interface Variant {
  impl: ImplName;
  /** weight bits: values in [-127, 127] (8) or [-7, 7] (4) */
  bits: 8 | 4;
  /** INT4 activations: u8 in [0, 15] with zero point 0; else u8 in [0, 255] with zero point 128 */
  a4: boolean;
}

const VARIANTS: readonly Variant[] = [
  { impl: 'lowbit-w8a8', bits: 8, a4: false },
  { impl: 'lowbit-w4a8', bits: 4, a4: false },
  { impl: 'lowbit-w4a4', bits: 4, a4: true },
];

// Root mean square of the values each operand takes, for the output scales: u8 - 128 and s8 in
// [-127, 127] ~ 74 and 73; s4 in [-7, 7] ~ 4.3; u4 in [0, 15] (zero point 0) ~ 8.8.
const RMS_A8 = 74;
const RMS_A4 = Math.sqrt(77.5);
const RMS_W8 = 73;
const RMS_W4 = Math.sqrt(56 / 3);

type LowbitOptions = QConv2dOptions<'u8'> & QOutOption<'u8'>;

interface Workload {
  name: string;
  kind: 'conv' | 'dense';
  macs: number;
  /** lowbit output shape (NHWC, or [m, n]) and the ORT output dims (NCHW, or [m, n]) */
  shape: number[];
  ortShape: number[];
  /** reduction length of one output: 3 * 3 * cin, or k */
  k: number;
  channels: number;
  /** lowbit inputs: A8 (u8, zero point 128) and A4 (u8 in [0, 15]) */
  x8: Tensor<'u8'>;
  x4: Tensor<'u8'>;
  /** packed weights, one per matrix the workload cycles through (W4A8 and W4A4 share w4) */
  w8: PackedQWeights[];
  w4: PackedQWeights[];
  /** per variant: the call's options, `out` included */
  options: Map<ImplName, LowbitOptions>;
  y: Tensor<'u8'>;
  int8Models: Uint8Array[];
  f32Models: Uint8Array[];
  /** ORT inputs (the u8 one holds the same values as x8) and preallocated outputs */
  xU8: ort.Tensor;
  xF32: ort.Tensor;
  yU8: ort.Tensor;
  yF32: ort.Tensor;
  /** GEMV: sessions without spinning worker threads (see ortSession) */
  noSpin: boolean;
}

/** Per-channel dyadic output scales like the ORT models' (see qlinearConvModel), and an int32 bias. */
function epilogue(
  channels: number,
  k: number,
  rmsX: number,
  rmsW: number,
  withBias: boolean,
  inputZeroPoint: number,
  rnd: () => number,
): LowbitOptions {
  const multiplier = new Int32Array(channels);
  const shift = new Int32Array(channels);
  const spread = Math.sqrt(k) * rmsX * rmsW;
  for (let c = 0; c < channels; ++c) {
    // ORT: x_scale * w_scale[c] / y_scale = (0.5 + r) * 128 / (4 * sqrt(k) * 74 * 73)
    const d = toDyadic(((0.5 + rnd()) * 128) / (4 * spread));
    multiplier[c] = d.multiplier;
    shift[c] = d.shift;
  }
  const bias = withBias ? fill(new Int32Array(channels), () => Math.floor((rnd() - 0.5) * spread)) : undefined;
  return { inputZeroPoint, bias, multiplier, shift, outputZeroPoint: 128, dtype: 'u8' };
}

function variantOptions(
  w: Pick<Workload, 'channels' | 'k' | 'y'>,
  withBias: boolean,
  extra: Pick<QConv2dOptions, 'strides' | 'padding'>,
  seed: number,
): Map<ImplName, LowbitOptions> {
  const rnd = random(seed);
  return new Map(
    VARIANTS.map((v) => {
      const e = epilogue(
        w.channels,
        w.k,
        v.a4 ? RMS_A4 : RMS_A8,
        v.bits === 8 ? RMS_W8 : RMS_W4,
        withBias,
        v.a4 ? 0 : 128,
        rnd,
      );
      return [v.impl, { ...extra, ...e, out: w.y }];
    }),
  );
}

/** NHWC [1, h, w, c] bytes to NCHW [1, c, h, w]. */
function toNchw(x: Uint8Array, h: number, w: number, c: number): Uint8Array {
  const out = new Uint8Array(x.length);
  for (let p = 0; p < h * w; ++p) for (let ch = 0; ch < c; ++ch) out[ch * h * w + p] = x[p * c + ch];
  return out;
}

function prepareConv(s: ConvShape): Workload {
  const rnd = random(5);
  const size = s.h * s.w * s.cin;
  const wSize = s.cout * s.kernel * s.kernel * s.cin;
  const wShape = [s.cout, s.kernel, s.kernel, s.cin];
  const x8 = fillInts(new Uint8Array(size), 0, 255, 11);
  const y = tensor('u8', [1, s.oh, s.ow, s.cout]);
  const base = { shape: [1, s.oh, s.ow, s.cout], channels: s.cout, k: s.kernel * s.kernel * s.cin, y };
  const inputDims = [1, s.cin, s.h, s.w];
  return {
    ...base,
    name: s.name,
    kind: 'conv',
    macs: s.macs,
    ortShape: [1, s.cout, s.oh, s.ow],
    x8: tensor('u8', [1, s.h, s.w, s.cin], x8),
    x4: tensor('u8', [1, s.h, s.w, s.cin], fillInts(new Uint8Array(size), 0, 15, 12)),
    w8: [packQConv2dWeights(tensor('s8', wShape, fillInts(new Int8Array(wSize), -127, 127, 13)), { bits: 8 })],
    w4: [packQConv2dWeights(tensor('s8', wShape, fillInts(new Int8Array(wSize), -7, 7, 14)), { bits: 4 })],
    options: variantOptions(base, true, { strides: s.stride, padding: { pads: s.pads } }, 15),
    int8Models: [qlinearConvModel(s)],
    f32Models: [convF32Model(s)],
    xU8: new ort.Tensor('uint8', toNchw(x8, s.h, s.w, s.cin), inputDims),
    xF32: new ort.Tensor(
      'float32',
      fill(new Float32Array(size), () => rnd() * 2 - 1),
      inputDims,
    ),
    yU8: new ort.Tensor('uint8', new Uint8Array(s.cout * s.oh * s.ow), [1, s.cout, s.oh, s.ow]),
    yF32: new ort.Tensor('float32', new Float32Array(s.cout * s.oh * s.ow), [1, s.cout, s.oh, s.ow]),
    noSpin: false,
  };
}

function prepareDense(name: string, s: MatMulShape, matrices: number): Workload {
  const rnd = random(6);
  const x8 = fillInts(new Uint8Array(s.m * s.k), 0, 255, 21);
  const y = tensor('u8', [s.m, s.n]);
  const base = { shape: [s.m, s.n], channels: s.n, k: s.k, y };
  const seeds = Array.from({ length: matrices }, (_, i) => 100 + 10 * i);
  // lowbit dense weights are [out, in] = [n, k]; ORT's constant B is [k, n]
  const pack = (lo: number, hi: number, bits: 8 | 4, seed: number) =>
    packQDenseWeights(tensor('s8', [s.n, s.k], fillInts(new Int8Array(s.n * s.k), lo, hi, seed)), { bits });
  return {
    ...base,
    name,
    kind: 'dense',
    macs: s.m * s.k * s.n,
    ortShape: [s.m, s.n],
    x8: tensor('u8', [s.m, s.k], x8),
    x4: tensor('u8', [s.m, s.k], fillInts(new Uint8Array(s.m * s.k), 0, 15, 22)),
    w8: seeds.map((seed) => pack(-127, 127, 8, seed)),
    w4: seeds.map((seed) => pack(-7, 7, 4, seed + 1)),
    // QLinearMatMul and MatMul have no bias, so qdense gets none either
    options: variantOptions(base, false, {}, 23),
    int8Models: seeds.map((seed) => qlinearMatMulModel(s, seed + 2)),
    f32Models: seeds.map((seed) => matMulF32Model(s, seed + 4)),
    xU8: new ort.Tensor('uint8', x8, [s.m, s.k]),
    xF32: new ort.Tensor(
      'float32',
      fill(new Float32Array(s.m * s.k), () => rnd() * 2 - 1),
      [s.m, s.k],
    ),
    yU8: new ort.Tensor('uint8', new Uint8Array(s.m * s.n), [s.m, s.n]),
    yF32: new ort.Tensor('float32', new Float32Array(s.m * s.n), [s.m, s.n]),
    noSpin: matrices > 1,
  };
}

/** The timed lowbit call of a variant on weight matrix i, into the preallocated output (or a fresh one). */
function lowbitCall(wl: Workload, v: Variant, out = true): (matrix: number) => Tensor {
  const x = v.a4 ? wl.x4 : wl.x8;
  const ws = v.bits === 8 ? wl.w8 : wl.w4;
  const options: LowbitOptions = out ? wl.options.get(v.impl)! : { ...wl.options.get(v.impl)!, out: undefined };
  return wl.kind === 'conv' ? (i) => qconv2d(x, ws[i], options) : (i) => qdense(x, ws[i], options);
}

/** Calls `run` with 0, 1, ... (mod `count`): each timed call uses the next weight matrix. */
function cycling<T>(count: number, run: (i: number) => T): () => T {
  let i = 0;
  return () => {
    const r = run(i);
    i = i + 1 === count ? 0 : i + 1;
    return r;
  };
}

/** Checks a workload once: output shapes, and each variant's default ISA agreeing with scalar bit for bit. */
async function check(
  wl: Workload,
  defaultIsa: Isa,
  int8: ort.InferenceSession,
  fp32: ort.InferenceSession,
): Promise<string[]> {
  const problems: string[] = [];
  for (const v of VARIANTS) {
    const call = lowbitCall(wl, v, false);
    const y = call(0);
    setIsa('scalar');
    let yScalar: Tensor;
    try {
      yScalar = call(0);
    } finally {
      setIsa(defaultIsa);
    }
    if (y.dtype !== 'u8' || !sameShape(y.shape, wl.shape))
      problems.push(`${v.impl} output ${y.dtype} [${y.shape.join(', ')}], expected u8 [${wl.shape.join(', ')}]`);
    const bad = y.data.findIndex((value, i) => value !== yScalar.data[i]); // bit-exact across ISAs
    if (bad >= 0)
      problems.push(
        `${v.impl} (${defaultIsa}) and scalar differ at element ${bad}: ${y.data[bad]} vs ${yScalar.data[bad]}`,
      );
    let saturated = 0;
    for (const value of y.data) if (value === 0 || value === 255) ++saturated;
    if (saturated > y.size / 10)
      problems.push(`${v.impl}: ${saturated} of ${y.size} outputs saturate (output scales too small)`);
  }
  for (const [name, session, x] of [
    ['ort-int8', int8, wl.xU8],
    ['ort-fp32', fp32, wl.xF32],
  ] as const) {
    const out = (await session.run({ x })).y;
    if (!sameShape(out.dims, wl.ortShape))
      problems.push(`${name} output dims [${out.dims.join(', ')}], expected [${wl.ortShape.join(', ')}]`);
  }
  return problems.map((p) => `${wl.name}: ${p}`);
}

const speedup = (other: number, lowbit: number) => other / lowbit;
const x2 = (v: number) => `${v.toFixed(2)}x`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 2 : 1)} MiB`;

async function run({ quick }: SuiteOptions): Promise<Row[]> {
  const plan = quick ? QUICK : FULL;
  const defaultIsa = isa();
  const savedThreads = threads();
  console.log(
    `int: lowbit qconv2d/qdense W8A8, W4A8, W4A4 (isa ${defaultIsa}; supported: ${supportedIsas().join(', ')}) vs onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common}` +
      ` int8 QLinearConv/QLinearMatMul and fp32 Conv/MatMul on ${cpus()[0]?.model ?? 'unknown CPU'} x ${cpus().length}, node ${process.version}`,
  );
  const load = () => loadavg()[0].toFixed(2);
  console.log(`load average (1 min) before: ${load()}; anything else running on these cores skews the results`);
  const setupStart = performance.now();
  const workloads = [
    ...loadConvShapes('resnet18_bconv.txt')
      .filter((s) => s.stride === 1)
      .map(prepareConv),
    prepareDense(`gemv-${GEMV.k}x${GEMV.n}`, GEMV, GEMV_MATRICES),
    prepareDense(`gemm-${GEMM.m}x${GEMM.k}x${GEMM.n}`, GEMM, 1),
  ];
  console.log(`data and packed weights ready in ${((performance.now() - setupStart) / 1000).toFixed(1)} s`);
  console.log(
    `timing: per call, median after ${plan.warmupMs} ms warm-up; ${plan.rounds} interleaved rounds of ${plan.roundMs} ms per impl` +
      ` (${quick ? 'quick' : 'full'} run). "X vs Y" = Y median / X median: above 1, lowbit X is faster.\n`,
  );
  const row = tablePrinter([
    ['workload', 17],
    ['thr', 3],
    ['w8a8 ms', 0],
    ['Gop/s', 6],
    ['w4a8 ms', 0],
    ['Gop/s', 6],
    ['w4a4 ms', 0],
    ['Gop/s', 6],
    ['ort-int8 ms', 0],
    ['Gop/s', 6],
    ['ort-fp32 ms', 0],
    ['Gop/s', 6],
    ['w8a8 vs int8', 0],
    ['w4a8 vs int8', 0],
    ['w4a4 vs int8', 0],
    ['w8a8 vs fp32', 0],
    ['w4a8 vs fp32', 0],
    ['w4a4 vs fp32', 0],
  ]);

  const rows: Row[] = [];
  const problems: string[] = [];
  /** speed-ups (ORT int8 median / lowbit median) by workload, thread count and variant */
  const vsInt8 = new Map<string, number>();
  try {
    for (const n of THREADS) {
      setThreads(n);
      for (const wl of workloads) {
        const int8 = await Promise.all(wl.int8Models.map((m) => ortSession(m, n, wl.noSpin)));
        const fp32 = await Promise.all(wl.f32Models.map((m) => ortSession(m, n, wl.noSpin)));
        try {
          if (n === THREADS[0]) problems.push(...(await check(wl, defaultIsa, int8[0], fp32[0])));
          const count = wl.w8.length;
          const impls: Impl[] = [
            ...VARIANTS.map((v) => ({ name: v.impl, run: cycling(count, lowbitCall(wl, v)) })),
            { name: 'ort-int8', run: cycling(count, (i) => int8[i].run({ x: wl.xU8 }, { y: wl.yU8 })), async: true },
            { name: 'ort-fp32', run: cycling(count, (i) => fp32[i].run({ x: wl.xF32 }, { y: wl.yF32 })), async: true },
          ];
          const t = await measure(impls, plan);
          const median = (impl: ImplName) => (t.get(impl) as Timing).median;
          for (const impl of IMPLS) {
            const { median: med, min, runs } = t.get(impl) as Timing;
            rows.push({
              workload: wl.name,
              impl,
              threads: n,
              median_ms: round(med, 4),
              gops: round(gops(wl.macs, med), 2),
              min_ms: round(min, 4),
              runs,
            });
          }
          for (const v of VARIANTS)
            vsInt8.set(`${wl.name}/${n}/${v.impl}`, speedup(median('ort-int8'), median(v.impl)));
          row([
            wl.name,
            String(n),
            ...IMPLS.flatMap((impl) => [ms(median(impl)), rate(gops(wl.macs, median(impl)))]),
            ...VARIANTS.map((v) => x2(speedup(median('ort-int8'), median(v.impl)))),
            ...VARIANTS.map((v) => x2(speedup(median('ort-fp32'), median(v.impl)))),
          ]);
        } finally {
          for (const s of [...int8, ...fp32]) await s.release();
        }
      }
    }
  } finally {
    setIsa(defaultIsa);
    setThreads(savedThreads);
  }
  console.log(`\nload average (1 min) after: ${load()}`);
  const gemv = workloads.find((w) => w.kind === 'dense' && w.w8.length > 1)!;
  const convs = workloads.filter((w) => w.kind === 'conv');
  console.log(
    `MACs = OH*OW*Cout*3*3*Cin for the convs (${(convs[0].macs / 1e6).toFixed(1)} M each), m*k*n for the dense layers` +
      ` (${workloads
        .filter((w) => w.kind === 'dense')
        .map((w) => `${w.name} ${(w.macs / 1e6).toFixed(1)} M`)
        .join(', ')}); Gop/s = 2 * MACs / median.`,
  );
  console.log(
    `${gemv.name}: each call uses the next of ${gemv.w8.length} distinct weight matrices, for every impl` +
      ` (per impl: W8 ${mib(gemv.w8.length * gemv.w8[0].bytes)}, W4 ${mib(gemv.w4.length * gemv.w4[0].bytes)},` +
      ` ORT int8 ${mib(gemv.w8.length * GEMV.k * GEMV.n)}, fp32 ${mib(gemv.w8.length * GEMV.k * GEMV.n * 4)}; L3 32 MiB): weights stream from DRAM.`,
  );
  console.log('packed weight bytes, W8 vs W4 (target: W4 about half):');
  for (const wl of workloads) {
    const [b8, b4] = [wl.w8[0].bytes, wl.w4[0].bytes];
    console.log(
      `  ${wl.name.padEnd(17)} W8 ${b8.toLocaleString('en-US').padStart(10)} B, W4 ${b4.toLocaleString('en-US').padStart(10)} B: ${x2(b4 / b8)}`,
    );
  }
  const target = (label: string, names: readonly string[], impl: ImplName, goal: number) => {
    for (const n of THREADS) {
      const values = names.map((name) => vsInt8.get(`${name}/${n}/${impl}`)!);
      const below = values.filter((v) => v < goal).length;
      console.log(
        `target ${label} >= ${x2(goal)} ORT int8, ${n} thr: ${values.map(x2).join(' ')}` +
          (below === 0 ? ' (met)' : ` (NOT met: ${below} of ${values.length} below)`),
      );
    }
  };
  // Issue 14's target (it was 0.9x without VNNI, issue 12).
  target(
    'W8A8 conv',
    convs.map((w) => w.name),
    'lowbit-w8a8',
    1.0,
  );
  target('W4A8 GEMV', [gemv.name], 'lowbit-w4a8', 1.5);
  for (const p of problems) console.log(`WARNING ${p}`);
  return rows;
}

export const suite: Suite = { run };
