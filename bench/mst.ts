/**
 * `mst` suite: bconv2d through an MST schedule against the dense bconv2d on the binary benchmark's
 * ResNet-18 3x3 layers (batch 1), for weights whose channel distances are (a) random and (b) controlled:
 * every channel a copy of an earlier one with a fraction d/K of its bits flipped (2, 5, 10, 20%).
 * Prints the schedule's op and storage ratios, both times, the speedup, and whether the cost model
 * behind `mstPolicy: 'auto'` picked the faster path.
 */
import { cpus, loadavg } from 'node:os';
import {
  bconv2d,
  bitpack,
  buildMst,
  isa,
  packBinaryConv2dWeights,
  setThreads,
  tensor,
  threads,
  type BConv2dOptions,
  type F32Output,
  type MstSchedule,
  type PackedBinaryWeights,
  type Tensor,
} from '../lib/index.js';
import {
  fill,
  gops,
  measure,
  ms,
  random,
  round,
  tablePrinter,
  type Row,
  type Suite,
  type SuiteOptions,
  type Timing,
  type TimingPlan,
} from './harness.js';
import { loadConvShapes, type ConvShape } from './shapes.js';

const THREADS = [1, 2];
/** null: random weights; else the fraction of bits each channel flips from the channel it copies */
const DISTANCES = [null, 0.02, 0.05, 0.1, 0.2] as const;
const QUICK: TimingPlan = { warmupMs: 30, rounds: 3, roundMs: 40 };
const FULL: TimingPlan = { warmupMs: 150, rounds: 6, roundMs: 150 };

/** OHWI ±1 weights: random, or channel c = a copy of a random earlier channel with round(f K) distinct flips. */
function weights(rnd: () => number, o: number, k: number, f: number | null): Float32Array {
  const w = new Float32Array(o * k);
  const order = Array.from({ length: k }, (_, i) => i);
  for (let c = 0; c < o; ++c) {
    const row = w.subarray(c * k, (c + 1) * k);
    if (c === 0 || f === null) {
      fill(row, () => (rnd() < 0.5 ? 1 : -1));
      continue;
    }
    const from = Math.floor(rnd() * c);
    row.set(w.subarray(from * k, (from + 1) * k));
    const flips = Math.round(f * k);
    for (let i = 0; i < flips; ++i) {
      // a partial Fisher-Yates shuffle picks distinct positions
      const j = i + Math.floor(rnd() * (k - i));
      [order[i], order[j]] = [order[j], order[i]];
      row[order[i]] = -row[order[i]];
    }
  }
  return w;
}

interface Layer {
  shape: ConvShape;
  label: string;
  xb: Tensor<'b1'>;
  w: PackedBinaryWeights;
  mst: MstSchedule;
  meanDk: number;
  options: BConv2dOptions<F32Output>;
  y: Tensor<'f32'>;
}

function prepare(s: ConvShape, f: number | null): Layer {
  const rnd = random(11);
  const k = s.kernel * s.kernel * s.cin;
  const x = tensor(
    'f32',
    [1, s.h, s.w, s.cin],
    fill(new Float32Array(s.h * s.w * s.cin), () => rnd() * 2 - 1),
  );
  const w = packBinaryConv2dWeights(tensor('f32', [s.cout, s.kernel, s.kernel, s.cin], weights(rnd, s.cout, k, f)));
  const mst = buildMst(w, { allowNegation: true });
  const children = s.cout - mst.roots.length;
  return {
    shape: s,
    label: f === null ? 'random' : `d/K ${f * 100}%`,
    xb: bitpack(x),
    w,
    mst,
    meanDk: children > 0 ? mst.stats.totalDistance / (children * k) : 0,
    options: {
      strides: s.stride,
      padding: { pads: s.pads, value: 'one' },
      output: { kind: 'f32', scale: new Float32Array(s.cout).fill(0.01), bias: new Float32Array(s.cout) },
    },
    y: tensor('f32', [1, s.oh, s.ow, s.cout]),
  };
}

async function run({ quick }: SuiteOptions): Promise<Row[]> {
  const plan = quick ? QUICK : FULL;
  const savedThreads = threads();
  console.log(
    `mst: lowbit bconv2d through MST schedules vs dense (isa ${isa()}) on ${cpus()[0]?.model ?? 'unknown CPU'} x ${cpus().length}, node ${process.version}`,
  );
  console.log(
    `load average (1 min) before: ${loadavg()[0].toFixed(2)}; anything else running on these cores skews the results`,
  );
  console.log(
    `timing: per call, median after ${plan.warmupMs} ms warm-up, ${plan.rounds} interleaved rounds of ${plan.roundMs} ms per impl (${quick ? 'quick' : 'full'} run).` +
      '\nweights: random, or each channel a copy of an earlier one with d/K of its bits flipped; schedules built with negation, depth unbounded.' +
      '\n"speedup" = dense median / MST median; "auto" = the path the cost model picks (mstPolicy \'auto\'): ok, SLOWER (MST picked, slower than dense)' +
      ' or missed (dense picked, MST faster by the factor shown).\n',
  );
  const row = tablePrinter([
    ['workload', 17],
    ['weights', 9],
    ['thr', 3],
    ['mean d/K', 0],
    ['op ratio', 0],
    ['storage', 0],
    ['dense ms', 0],
    ['mst ms', 0],
    ['speedup', 0],
    ['auto', 18],
  ]);
  const rows: Row[] = [];
  const problems: string[] = [];
  const shapes = loadConvShapes('resnet18_bconv.txt');
  try {
    for (const s of shapes) {
      for (const f of DISTANCES) {
        const layer = prepare(s, f);
        const mstOptions = { ...layer.options, mst: layer.mst, mstPolicy: 'always' as const };
        // The MST path must give the dense kernel's outputs, bit for bit.
        const want = bconv2d(layer.xb, layer.w, layer.options);
        const got = bconv2d(layer.xb, layer.w, mstOptions);
        const bad = got.data.findIndex((v, i) => !Object.is(v, want.data[i]));
        if (bad >= 0) problems.push(`${s.name} ${layer.label}: MST and dense differ at element ${bad}`);
        for (const n of THREADS) {
          setThreads(n);
          const t = await measure(
            [
              { name: 'lowbit-dense', run: () => bconv2d(layer.xb, layer.w, { ...layer.options, out: layer.y }) },
              { name: 'lowbit-mst', run: () => bconv2d(layer.xb, layer.w, { ...mstOptions, out: layer.y }) },
            ],
            plan,
          );
          const dense = t.get('lowbit-dense') as Timing;
          const mst = t.get('lowbit-mst') as Timing;
          const cost = layer.mst.predictCost(s.oh * s.ow);
          const auto = cost.useMst ? 'lowbit-mst' : 'lowbit-dense';
          // 'auto' must never be slower than dense; picking dense where MST was faster only forgoes a gain.
          const verdict = cost.useMst
            ? mst.median <= dense.median * 1.05
              ? 'ok'
              : 'SLOWER'
            : mst.median < dense.median * 0.95
              ? `missed ${(dense.median / mst.median).toFixed(2)}x`
              : 'ok';
          const stats = {
            op_ratio: round(layer.mst.stats.opRatio, 3),
            storage_ratio: round(layer.mst.stats.storageRatio, 3),
            mean_dk: round(layer.meanDk, 4),
            auto,
          };
          for (const [impl, timing] of [
            ['lowbit-dense', dense],
            ['lowbit-mst', mst],
          ] as const)
            rows.push({
              workload: `${s.name} ${layer.label}`,
              impl,
              threads: n,
              median_ms: round(timing.median, 4),
              gops: round(gops(s.macs, timing.median), 2),
              min_ms: round(timing.min, 4),
              runs: timing.runs,
              ...stats,
            });
          row([
            s.name,
            layer.label,
            String(n),
            `${(layer.meanDk * 100).toFixed(1)}%`,
            layer.mst.stats.opRatio.toFixed(2),
            layer.mst.stats.storageRatio.toFixed(2),
            ms(dense.median),
            ms(mst.median),
            `${(dense.median / mst.median).toFixed(2)}x`,
            `${cost.useMst ? 'mst' : 'dense'} ${verdict}`,
          ]);
        }
      }
    }
  } finally {
    setThreads(savedThreads);
  }
  console.log(`\nload average (1 min) after: ${loadavg()[0].toFixed(2)}`);
  for (const p of problems) console.log(`WARNING ${p}`);
  return rows;
}

export const suite: Suite = { run };
